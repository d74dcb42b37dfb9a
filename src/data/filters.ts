import { SqlParameters, fieldExpression } from '../db/sql-parameters';
import { Allow, ArrayMaxSize, IsOptional, MaxLength } from 'class-validator';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import { blindIndexesOf } from '../crypto/encrypted-column';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import type { FieldKind, ModelDefinition, ModelField } from './define-model';

/** How many values an `in` list may hold, and how long a compared string may be. */
const MAX_IN = 100;
const MAX_TEXT = 1000;
/** A `where` may nest AND/OR this deep and hold this many conditions in all. */
const MAX_DEPTH = 5;
const MAX_CONDITIONS = 50;

@InputType({ description: 'Conditions on a text field; all given ones must hold. contains and startsWith ignore case.' })
export class StringFilter {
  @Field(() => String, { nullable: true, description: 'Equal to.' }) @IsOptional() @MaxLength(MAX_TEXT) eq?: string | null;
  @Field(() => String, { nullable: true, description: 'Not equal to (null counts as different).' }) @IsOptional() @MaxLength(MAX_TEXT) ne?:
    string | null;
  @Field(() => [String], { nullable: true, description: `One of these (at most ${MAX_IN}).` })
  @IsOptional()
  @ArrayMaxSize(MAX_IN)
  @MaxLength(MAX_TEXT, { each: true })
  in?: string[] | null;
  @Field(() => String, { nullable: true, description: 'Sorts before.' }) @IsOptional() @MaxLength(MAX_TEXT) lt?: string | null;
  @Field(() => String, { nullable: true, description: 'Sorts before or equal.' }) @IsOptional() @MaxLength(MAX_TEXT) lte?: string | null;
  @Field(() => String, { nullable: true, description: 'Sorts after.' }) @IsOptional() @MaxLength(MAX_TEXT) gt?: string | null;
  @Field(() => String, { nullable: true, description: 'Sorts after or equal.' }) @IsOptional() @MaxLength(MAX_TEXT) gte?: string | null;
  @Field(() => String, { nullable: true, description: 'Contains this text, ignoring case.' }) @IsOptional() @MaxLength(MAX_TEXT) contains?:
    string | null;
  @Field(() => String, { nullable: true, description: 'Starts with this text, ignoring case.' })
  @IsOptional()
  @MaxLength(MAX_TEXT)
  startsWith?: string | null;
  @Field(() => Boolean, { nullable: true, description: 'true: has no value; false: has one.' }) isNull?: boolean | null;
}

@InputType({ description: 'Conditions on a whole-number field; all given ones must hold.' })
export class IntFilter {
  @Field(() => Int, { nullable: true, description: 'Equal to.' }) eq?: number | null;
  @Field(() => Int, { nullable: true, description: 'Not equal to (null counts as different).' }) ne?: number | null;
  @Field(() => [Int], { nullable: true, description: `One of these (at most ${MAX_IN}).` }) @IsOptional() @ArrayMaxSize(MAX_IN) in?:
    number[] | null;
  @Field(() => Int, { nullable: true, description: 'Less than.' }) lt?: number | null;
  @Field(() => Int, { nullable: true, description: 'Less than or equal.' }) lte?: number | null;
  @Field(() => Int, { nullable: true, description: 'Greater than.' }) gt?: number | null;
  @Field(() => Int, { nullable: true, description: 'Greater than or equal.' }) gte?: number | null;
  @Field(() => Boolean, { nullable: true, description: 'true: has no value; false: has one.' }) isNull?: boolean | null;
}

@InputType({ description: 'Conditions on a number field; all given ones must hold.' })
export class FloatFilter {
  @Field(() => Float, { nullable: true, description: 'Equal to.' }) eq?: number | null;
  @Field(() => Float, { nullable: true, description: 'Not equal to (null counts as different).' }) ne?: number | null;
  @Field(() => [Float], { nullable: true, description: `One of these (at most ${MAX_IN}).` }) @IsOptional() @ArrayMaxSize(MAX_IN) in?:
    number[] | null;
  @Field(() => Float, { nullable: true, description: 'Less than.' }) lt?: number | null;
  @Field(() => Float, { nullable: true, description: 'Less than or equal.' }) lte?: number | null;
  @Field(() => Float, { nullable: true, description: 'Greater than.' }) gt?: number | null;
  @Field(() => Float, { nullable: true, description: 'Greater than or equal.' }) gte?: number | null;
  @Field(() => Boolean, { nullable: true, description: 'true: has no value; false: has one.' }) isNull?: boolean | null;
}

@InputType({ description: 'Conditions on a true/false field.' })
export class BooleanFilter {
  // The schema checks the types; class-validator only needs to know the properties exist.
  @Field(() => Boolean, { nullable: true, description: 'Equal to.' }) @Allow() eq?: boolean | null;
  @Field(() => Boolean, { nullable: true, description: 'Not equal to (null counts as different).' }) @Allow() ne?: boolean | null;
  @Field(() => Boolean, { nullable: true, description: 'true: has no value; false: has one.' }) @Allow() isNull?: boolean | null;
}

@InputType({ description: 'Conditions on a date-time field (millisecond precision); all given ones must hold.' })
export class DateTimeFilter {
  @Field(() => Date, { nullable: true, description: 'At exactly.' }) eq?: Date | null;
  @Field(() => Date, { nullable: true, description: 'Not at (null counts as different).' }) ne?: Date | null;
  @Field(() => [Date], { nullable: true, description: `One of these (at most ${MAX_IN}).` }) @IsOptional() @ArrayMaxSize(MAX_IN) in?:
    Date[] | null;
  @Field(() => Date, { nullable: true, description: 'Before.' }) lt?: Date | null;
  @Field(() => Date, { nullable: true, description: 'At or before.' }) lte?: Date | null;
  @Field(() => Date, { nullable: true, description: 'After.' }) gt?: Date | null;
  @Field(() => Date, { nullable: true, description: 'At or after.' }) gte?: Date | null;
  @Field(() => Boolean, { nullable: true, description: 'true: has no value; false: has one.' }) isNull?: boolean | null;
}

@InputType({ description: 'Conditions on an id field.' })
export class IDFilter {
  @Field(() => ID, { nullable: true, description: 'Equal to.' }) @IsOptional() @MaxLength(64) eq?: string | null;
  @Field(() => ID, { nullable: true, description: 'Not equal to (null counts as different).' }) @IsOptional() @MaxLength(64) ne?:
    string | null;
  @Field(() => [ID], { nullable: true, description: `One of these (at most ${MAX_IN}).` })
  @IsOptional()
  @ArrayMaxSize(MAX_IN)
  @MaxLength(64, { each: true })
  in?: string[] | null;
  @Field(() => Boolean, { nullable: true, description: 'true: has no value; false: has one.' }) isNull?: boolean | null;
}

@InputType({ description: 'An encrypted field can only be compared for equality (through its blind index).' })
export class EncryptedFilter {
  @Field(() => String, { nullable: true, description: 'Equal to (exact value, normalised as the field declares).' })
  @IsOptional()
  @MaxLength(MAX_TEXT)
  eq?: string | null;
}

/** The filter input type for a field. */
export function filterTypeOf(field: ModelField): Function {
  if (field.encrypted) return EncryptedFilter;
  const byKind: Record<FieldKind, Function> = {
    id: IDFilter,
    string: StringFilter,
    int: IntFilter,
    float: FloatFilter,
    boolean: BooleanFilter,
    datetime: DateTimeFilter,
  };
  return byKind[field.kind];
}

/** A model's `where` value as it arrives: per-field filters plus AND/OR lists. */
export type WhereInput = { AND?: WhereInput[] | null; OR?: WhereInput[] | null } & Record<string, unknown>;

/**
 * Translates a client's `where` into parameterised SQL: only fields the model marks filterable
 * exist in the input type, every value is a parameter, column names come from metadata. Returns
 * null for an empty where. `readableWhere(field)` is the SQL of the rows where the viewer may
 * read that field (null: every row in scope): a condition on a field holds only there, so
 * filtering can never test a value the viewer could not read (no equality oracle on a phone).
 */
export function whereSql(
  model: ModelDefinition,
  alias: string,
  where: WhereInput | null | undefined,
  parameters: SqlParameters,
  readableWhere: (field: string) => string | null = () => null,
): string | null {
  let conditions = 0;
  const visit = (node: WhereInput, depth: number): string | null => {
    if (depth > MAX_DEPTH)
      throw new AppError('BAD_USER_INPUT', `where nests AND/OR more than ${MAX_DEPTH} levels deep.`, { details: { field: 'where' } });
    const parts: string[] = [];
    for (const field of model.fields) {
      const filter = node[field.name] as Record<string, unknown> | null | undefined;
      if (!field.filterable || filter == null) continue;
      for (const [operator, value] of Object.entries(filter)) {
        if (value === null || value === undefined) continue;
        conditions += 1;
        if (conditions > MAX_CONDITIONS)
          throw new AppError('BAD_USER_INPUT', `where holds more than ${MAX_CONDITIONS} conditions.`, { details: { field: 'where' } });
        const condition = conditionSql(model, alias, field, operator, value, parameters);
        const readable = readableWhere(field.name);
        parts.push(readable === null ? condition : `(${condition} AND ${readable})`);
      }
    }
    for (const [key, joiner] of [
      ['AND', ' AND '],
      ['OR', ' OR '],
    ] as const) {
      const list = node[key];
      if (!list || list.length === 0) continue;
      const inner = list.map((child) => visit(child, depth + 1) ?? 'TRUE');
      parts.push(`(${inner.join(joiner)})`);
    }
    return parts.length > 0 ? parts.join(' AND ') : null;
  };
  return where ? visit(where, 1) : null;
}

function conditionSql(
  model: ModelDefinition,
  alias: string,
  field: ModelField,
  operator: string,
  value: unknown,
  parameters: SqlParameters,
): string {
  // PostgreSQL text cannot hold NUL: say so, rather than fail inside the database.
  if ((Array.isArray(value) ? value : [value]).some((item) => typeof item === 'string' && item.includes('\u0000'))) {
    throw new AppError('BAD_USER_INPUT', `where.${field.name}.${operator} must not contain a NUL character.`, {
      details: { field: 'where' },
    });
  }
  if (field.encrypted) {
    // Only `eq` exists in EncryptedFilter: the value's blind index is compared, never ciphertext
    // (two of them while a blind-index key rotation is under way).
    const indexes = blindIndexesOf(model.entity, field.name, String(value));
    const column = `"${alias}"."${field.blindIndexColumn}"`;
    return indexes.length === 1 ? `${column} = ${parameters.add(indexes[0])}` : `${column} = ANY(${parameters.add(indexes)}::text[])`;
  }
  const expression = fieldExpression(alias, field);
  if (field.kind === 'id') {
    // A value that is not a uuid cannot equal a uuid column: no match (and no cast error from PostgreSQL).
    if (operator === 'eq' && !isUuid(String(value))) return 'FALSE';
    if (operator === 'ne' && !isUuid(String(value))) return 'TRUE';
    if (operator === 'in') value = (value as unknown[]).filter((item) => isUuid(String(item)));
  }
  switch (operator) {
    case 'eq':
      return `${expression} = ${parameters.add(value)}`;
    case 'ne':
      return `${expression} IS DISTINCT FROM ${parameters.add(value)}`;
    case 'in':
      return (value as unknown[]).length === 0 ? 'FALSE' : `${expression} IN ${parameters.addList(value as unknown[])}`;
    case 'lt':
      return `${expression} < ${parameters.add(value)}`;
    case 'lte':
      return `${expression} <= ${parameters.add(value)}`;
    case 'gt':
      return `${expression} > ${parameters.add(value)}`;
    case 'gte':
      return `${expression} >= ${parameters.add(value)}`;
    case 'contains':
      return `${expression} ILIKE ${parameters.add(`%${escapeLike(String(value))}%`)}`;
    case 'startsWith':
      return `${expression} ILIKE ${parameters.add(`${escapeLike(String(value))}%`)}`;
    case 'isNull':
      return value ? `${expression} IS NULL` : `${expression} IS NOT NULL`;
    default:
      // The input types allow nothing else; reaching here is a bug, not a client error.
      throw new Error(`unknown filter operator ${operator}`);
  }
}

/** LIKE's own wildcards in client text match themselves (PostgreSQL's default escape is the backslash). */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}
