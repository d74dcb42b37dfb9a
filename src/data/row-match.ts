import { blindIndexedProperties, blindIndexesOf } from '../crypto/encrypted-column';
import { SqlParameters } from '../db/sql-parameters';
import { isUuid } from '../db/uuid';
import type { ModelDefinition, ModelField } from './define-model';
import { WhereInput, whereSql } from './filters';

/**
 * Does a row (stored values by field name, as a TypeORM entity holds them: decrypted values, Date objects,
 * blind-index properties present) meet a client's `where`, exactly as whereSql's SQL would decide it in PostgreSQL?
 * `readable(field)` is the in-memory side of whereSql's `readableWhere`: false when the viewer may not read that field
 * in this row; a condition on such a field does not hold (same as `(condition AND readable)` in SQL).
 *
 * Text is ordered by code point, as the "C" and C.UTF-8 collations order it, and folded for contains/startsWith as
 * a UTF-8 LC_CTYPE folds it; `utf8` and `folded` say where other database settings decide otherwise.
 */
export function rowMatchesWhere(
  model: ModelDefinition,
  where: WhereInput | null | undefined,
  row: Readonly<Record<string, unknown>>,
  readable: (field: string) => boolean = () => true,
): boolean {
  checkWhere(model, where);
  return matchesCheckedWhere(model, where, row, readable);
}

/** Refuses a where the SQL refuses (too deep, too many conditions, a NUL character), with the same error. */
export function checkWhere(model: ModelDefinition, where: WhereInput | null | undefined): void {
  whereSql(model, 'm', where, new SqlParameters());
}

/** rowMatchesWhere for a where already checked (a subscription's, checked once when it starts, decided at every change). */
export function matchesCheckedWhere(
  model: ModelDefinition,
  where: WhereInput | null | undefined,
  row: Readonly<Record<string, unknown>>,
  readable: (field: string) => boolean = () => true,
): boolean {
  // With no NOT in the SQL, a condition that is NULL there (a comparison with a NULL column) decides as false: booleans suffice.
  const holds = (node: WhereInput): boolean =>
    model.fields.every((field) => {
      const filter = node[field.name] as Record<string, unknown> | null | undefined;
      if (!field.filterable || filter == null) return true;
      return Object.entries(filter).every(
        ([operator, value]) => value == null || (conditionHolds(model, field, operator, value, row) && readable(field.name)),
      );
    }) &&
    (node.AND ?? []).every(holds) &&
    (!node.OR || node.OR.length === 0 || node.OR.some(holds));
  return !where || holds(where);
}

function conditionHolds(
  model: ModelDefinition,
  field: ModelField,
  operator: string,
  value: unknown,
  row: Readonly<Record<string, unknown>>,
): boolean {
  if (field.encrypted) {
    // EncryptedFilter has only `eq`; the SQL compares the stored blind index with the value's (old and new during a rotation).
    const { indexProperty } = blindIndexedProperties(model.entity).find((indexed) => indexed.property === field.name)!;
    const stored = row[indexProperty];
    return typeof stored === 'string' && blindIndexesOf(model.entity, field.name, String(value)).includes(stored);
  }
  const stored = row[field.name];
  if (operator === 'isNull') return (stored == null) === Boolean(value);
  if (operator === 'ne') return stored == null || !equal(field, stored, value);
  if (stored == null) return false;
  switch (operator) {
    case 'eq':
      return equal(field, stored, value);
    case 'in':
      return (value as unknown[]).some((item) => equal(field, stored, item));
    case 'lt':
      return compare(field, stored, value) < 0;
    case 'lte':
      return compare(field, stored, value) <= 0;
    case 'gt':
      return compare(field, stored, value) > 0;
    case 'gte':
      return compare(field, stored, value) >= 0;
    case 'contains':
      return folded(stored as string).includes(folded(String(value)));
    case 'startsWith':
      return folded(stored as string).indexOf(folded(String(value))) === 0;
    default:
      // whereSql has already refused it.
      throw new Error(`unknown filter operator ${operator}`);
  }
}

/** A value that is not a uuid equals no id (whereSql: FALSE for eq, TRUE for ne, dropped from in). */
function equal(field: ModelField, stored: unknown, value: unknown): boolean {
  return (field.kind !== 'id' || isUuid(String(value))) && compare(field, stored, value) === 0;
}

/** The sign of `stored` minus `value` in PostgreSQL's order for the column's type. */
function compare(field: ModelField, stored: unknown, value: unknown): number {
  switch (field.kind) {
    case 'string':
      return Buffer.compare(utf8(String(stored)), utf8(String(value)));
    case 'id':
      // A uuid is 16 bytes: its letters' case is only how it is written.
      return Buffer.compare(utf8(String(stored).toLowerCase()), utf8(String(value).toLowerCase()));
    case 'datetime':
      // Both sides are instants at millisecond precision (the column as stored, or date_trunc'd; Dates hold no finer).
      // An ISO string without an offset is local time here, and in the session's TimeZone for PostgreSQL.
      return timeOf(stored) - timeOf(value);
    default:
      // int, float, boolean (false < true). numeric columns arrive as strings and compare as doubles here: beyond a
      // double's 17 digits, or against a `real` column (PostgreSQL rounds the value to float4), the SQL can differ.
      return numericSign(Number(stored), Number(value));
  }
}

/** float8's order: NaN equals NaN and sorts above every number (JavaScript's < says neither). */
function numericSign(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number(Number.isNaN(a)) - Number(Number.isNaN(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

function timeOf(value: unknown): number {
  return value instanceof Date ? value.getTime() : new Date(String(value)).getTime();
}

/**
 * Text as PostgreSQL holds it: UTF-8 (a lone surrogate becomes U+FFFD on the way there). Comparing the bytes is code point
 * order, the "C" and C.UTF-8 collations' order; JavaScript's < compares UTF-16 units instead (it puts 😀 before ｱ).
 * A linguistic collation (en_US.UTF-8, ICU) orders differently: there lt/gt here can disagree with the SQL.
 */
function utf8(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/**
 * What ILIKE compares in a UTF-8 database: lower() of both sides, a character at a time (towlower in LC_CTYPE), so
 * without JavaScript's context rules (a final Σ is σ, not ς). Against C.UTF-8 of glibc 2.36 (checked on every code
 * point) it differs only for İ (U+0130: "i" there, "i̇" here) and letters newer than glibc's Unicode tables (Unicode 16
 * on). With LC_CTYPE "C" (the embedded cluster's --locale=C) PostgreSQL folds ASCII letters only: there "É" does not
 * contain "é", here it does.
 */
function folded(text: string): Buffer {
  return utf8(Array.from(text, (character) => character.toLowerCase()).join(''));
}
