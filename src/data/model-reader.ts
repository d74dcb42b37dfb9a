import type { Pool, QueryArrayConfig } from 'pg';
import type { DataSource, ValueTransformer } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { ClauseSet, FieldMask, ModelScope, withFieldMask } from '../access/model-access';
import type { RowRule } from '../access/model-rules';
import type { Decision } from '../shield/rules';
import { accessDenied } from '../shield/shield';
import type { Context } from '../context';
import type { AppError } from '../errors';
import type { ModelDefinition, ModelField, ModelRelation } from './define-model';
import { SqlParameters } from '../db/sql-parameters';
import { EVERYTHING, Wanted, subSelection, wants } from './selection';

/** A row's stored values by field name, as TypeORM hydrates an entity (transformers applied). */
export type RowValues = Record<string, unknown>;

/** Where a projected row keeps its stored values (cursors, relation keys and loaders read them). */
const VALUES = Symbol('bastion.rowValues');

/** The stored values behind a row the data API handed out (or the row itself, for an entity). */
export function valuesOf(row: object): RowValues {
  return ((row as { [VALUES]?: RowValues })[VALUES] ?? row) as RowValues;
}

/** The shield rules of every model's fields, by model name and field: what the projection decides with. */
export type ModelRowRules = ReadonlyMap<string, ReadonlyMap<string, RowRule>>;

/** A to-one relation's row (or null), or a to-many's count, loaded after the page, batched per request. */
export type RelationLoader = (relation: ModelRelation, parent: RowValues, wanted: Wanted) => Promise<unknown>;

/**
 * How a model's rows are read for one request and one selection: which columns, which to-one
 * relations joined (LEFT JOIN LATERAL, each scoped by the related model's own read scope, so the
 * page and its authors are one statement), and how a raw row becomes the object the executor
 * reads. That object holds, for each selected field, its value or its denial: the fields' shield
 * rules are decided once per distinct mask, not per field per row (see RowFieldRule).
 */
export class ReadPlan {
  /** Stored fields read: the selected ones, what the policy needs to place a row, relation keys, the id. */
  readonly stored: readonly ModelField[];
  private readonly outputs: readonly Output[];
  private readonly joins: readonly { relation: ModelRelation; plan: ReadPlan }[];
  private readonly decisions = new Map<ClauseSet, Decisions>();

  private readonly loader: RelationLoader;
  private readonly wanted: Wanted;

  /**
   * `join`: read selected to-one relations in the same statement, at any depth (a page, a row by
   * id, a batch of related rows), so a query's rows never wait on a load for one; otherwise (rows a
   * write returns) they come from `loader`, batched per request, like counts. `extraFields`: stored
   * fields needed besides the selected ones (sort keys for cursors, a relation's key).
   */
  constructor(
    readonly model: ModelDefinition,
    readonly scope: ModelScope,
    wanted: Wanted,
    private readonly rules: ModelRowRules,
    private readonly context: Context,
    options: { readonly loader: RelationLoader; readonly join: boolean; readonly extraFields?: readonly string[] },
  ) {
    this.loader = options.loader;
    this.wanted = wanted;
    const stored = new Set<string>(['id', ...scope.rows.policyFields, ...(options.extraFields ?? [])]);
    const outputs: Output[] = [];
    const joins: { relation: ModelRelation; plan: ReadPlan }[] = [];
    for (const field of model.fields) {
      if (!wants(wanted, field.name)) continue;
      stored.add(field.name);
      outputs.push({ name: field.name, kind: 'stored', field, decode: decoderOf(field) });
    }
    for (const relation of model.relations) {
      if (relation.kind === 'one' && wants(wanted, relation.name)) {
        stored.add(relation.by);
        const target = relation.target();
        const targetScope = context.access.scope(target.access, 'read');
        // Joined only when the viewer may read the target at all (the rule denies the field otherwise).
        const joined = options.join && !targetScope.rows.empty;
        const join = joined
          ? joins.push({
              relation,
              plan: new ReadPlan(target, targetScope, subSelection(wanted, relation.name), rules, context, {
                loader: this.loader,
                join: true,
                extraFields: [relation.to],
              }),
            }) - 1
          : -1;
        outputs.push({ name: relation.name, kind: 'one', relation, join });
      }
      if (relation.kind === 'many') {
        // The list itself has a resolver (it takes `first`); it needs the row's id, always read.
        if (relation.count && wants(wanted, relation.count.name)) outputs.push({ name: relation.count.name, kind: 'count', relation });
      }
    }
    this.stored = model.fields.filter((field) => stored.has(field.name));
    this.outputs = outputs;
    this.joins = joins;
  }

  /** How many columns `selectFrom` selects before any extra ones: this model's, then each joined relation's (with its own joins). */
  get columnCount(): number {
    return this.stored.length + this.joins.reduce((sum, { plan }) => sum + plan.columnCount, 0);
  }

  /** The columns, in the order `decode` reads them: this model's, then each joined relation's. */
  columns(alias: string): string[] {
    return this.stored.map((field) => `"${alias}"."${field.column}"`);
  }

  /**
   * `SELECT … FROM table alias [LEFT JOIN LATERAL …]`: the joined relations' columns follow this
   * model's, each relation's own joins nested inside its subquery. Each lateral subquery reads the
   * target's row by the relation key, inside the viewer's read scope of the target, and only where
   * the viewer may read the target's key field itself (joining on a hidden field would reveal it).
   */
  selectFrom(alias: string, parameters: SqlParameters, extraColumns: readonly string[] = []): string {
    const columns = this.columns(alias);
    const joins: string[] = [];
    this.joins.forEach(({ relation, plan }, index) => {
      const joined = `${alias}_${index}`;
      const inner = `${joined}_t`;
      const key = plan.model.fields.find((field) => field.name === relation.to)!;
      const by = this.model.fields.find((field) => field.name === relation.by)!;
      const conditions = [
        `"${inner}"."${key.column}" = "${alias}"."${by.column}"`,
        ...plan.scopeConditions(inner, parameters, relation.to),
      ];
      joins.push(`LEFT JOIN LATERAL (${plan.selectFrom(inner, parameters)} WHERE ${conditions.join(' AND ')} LIMIT 1) "${joined}" ON TRUE`);
      for (let at = 0; at < plan.columnCount; at += 1) columns.push(`"${joined}"."o${at}"`);
    });
    // Named by position: rows come back as arrays, and a derived table over this select needs unique names.
    const named = [...columns, ...extraColumns].map((column, at) => `${column} AS "o${at}"`);
    return `SELECT ${named.join(', ')} FROM "${this.model.table}" "${alias}"${joins.length > 0 ? ` ${joins.join(' ')}` : ''}`;
  }

  /** The read scope as conditions on `alias`; with `showing`, only rows where that field is readable too. */
  scopeConditions(alias: string, parameters: SqlParameters, showing?: string): string[] {
    const bind = (value: unknown) => parameters.add(value);
    const columnOf = (name: string) => fieldOf(this.model, name).column;
    const conditions = [this.scope.rows.toSql(alias, bind, columnOf) ?? 'FALSE'];
    const visible = showing === undefined ? null : this.scope.rows.showing(showing);
    if (visible) conditions.push(visible.toSql(alias, bind, columnOf) ?? 'FALSE');
    return conditions.filter((condition) => condition !== 'TRUE');
  }

  /** The row values of a raw result row (an array, in `selectFrom` order), from `offset`; joined rows come after, each with its own. */
  decode(raw: readonly unknown[], offset = 0): DecodedRow & { next: number } {
    const values: RowValues = {};
    let at = offset;
    for (const field of this.stored) values[field.name] = raw[at++];
    const joined: (DecodedRow | null)[] = [];
    for (const { plan } of this.joins) {
      const decoded = plan.decode(raw, at);
      // A joined row always has its id: all null means the join found nothing.
      joined.push(decoded.values.id == null ? null : decoded);
      at = decoded.next;
    }
    return { values, joined, next: at };
  }

  /** A raw result row as the object the executor reads. */
  fromRaw(raw: readonly unknown[]): object {
    const { values, joined } = this.decode(raw);
    return this.project(values, joined);
  }

  /**
   * The object the executor reads for one row: each selected field's value (decrypted only now,
   * and only when it may be read) or its denial, the relations' rows, the mask for fields that keep
   * a resolver, and the stored values behind it. Values of the stored fields that an entity holds
   * are already hydrated; raw ones are decoded here (`raw`: they came from SQL).
   */
  project(values: RowValues, joined: readonly (DecodedRow | null)[] = [], raw = true): object {
    const decisions = this.decisionsFor(values);
    const row: Record<string | symbol, unknown> = {};
    for (let index = 0; index < this.outputs.length; index += 1) {
      const output = this.outputs[index];
      const decision = decisions.allowed[index];
      if (decision !== true) {
        row[output.name] = decision;
        continue;
      }
      switch (output.kind) {
        case 'stored': {
          const value = values[output.name];
          row[output.name] = raw && output.decode && value != null ? output.decode(value) : value;
          break;
        }
        case 'one': {
          if (output.join >= 0) {
            const related = joined[output.join];
            row[output.name] = related ? this.joins[output.join].plan.project(related.values, related.joined) : null;
          } else {
            row[output.name] = this.loader(output.relation, values, subSelection(this.wanted, output.name));
          }
          break;
        }
        case 'count':
          row[output.name] = this.loader(output.relation, values, EVERYTHING);
          break;
      }
    }
    row[VALUES] = values;
    return withFieldMask(row, decisions.mask);
  }

  /** The decisions for a row, made once per set of clauses it falls in (per distinct mask). */
  private decisionsFor(values: RowValues): Decisions {
    const set = this.scope.unrestricted ? 0 : this.scope.rows.matching(values);
    let decisions = this.decisions.get(set);
    if (!decisions) {
      const mask = this.scope.unrestricted ? ('all' as const) : this.scope.rows.fieldsOf(set);
      decisions = { mask, allowed: this.outputs.map((output) => this.decide(output.name, mask)) };
      this.decisions.set(set, decisions);
    }
    return decisions;
  }

  /** The field's shield rule, decided for a mask: true, or the error the field answers with (logged, as shield logs a denial). */
  private decide(field: string, mask: FieldMask): true | AppError {
    const rule = this.rules.get(this.model.name)?.get(field);
    let decision: Decision;
    try {
      decision = rule ? rule.row.decide(mask, this.context.access) : false;
    } catch {
      decision = false; // a rule that throws denies, as shield's does
    }
    if (decision === true) return true;
    if (decision instanceof Error) {
      this.context.logger.info(
        { field: `${this.model.name}.${field}`, userId: this.context.viewer.userId, code: decision.code },
        'access denied',
      );
      return decision;
    }
    return accessDenied(this.context, `${this.model.name}.${field}`);
  }
}

/** A row's stored values, and its joined relations' rows (null where the join found none). */
interface DecodedRow {
  readonly values: RowValues;
  readonly joined: readonly (DecodedRow | null)[];
}

type Output =
  | { readonly name: string; readonly kind: 'stored'; readonly field: ModelField; readonly decode: ((value: unknown) => unknown) | null }
  | { readonly name: string; readonly kind: 'one'; readonly relation: ModelRelation; readonly join: number }
  | { readonly name: string; readonly kind: 'count'; readonly relation: ModelRelation };

interface Decisions {
  readonly mask: FieldMask;
  /** Per output: true, or the field's denial. */
  readonly allowed: readonly (true | AppError)[];
}

/** A column's TypeORM transformer(s), applied as TypeORM applies them on hydration (an encrypted column decrypts). */
function decoderOf(field: ModelField): ((value: unknown) => unknown) | null {
  const transformer = field.transformer;
  if (!transformer) return null;
  if (Array.isArray(transformer))
    return (value) => [...transformer].reverse().reduce((current, step: ValueTransformer) => step.from(current), value);
  return (value) => transformer.from(value) as unknown;
}

export function fieldOf(model: ModelDefinition, property: string): ModelField {
  const field = model.fields.find((candidate) => candidate.name === property);
  if (!field) throw new Error(`${model.name} has no stored field ${property}`);
  return field;
}

/**
 * Runs the data API's reads on pg directly: rows come back as arrays (no per-row objects keyed by
 * column, no entity hydration), and named TypeORM-style parameters (`:p0`, `:...p1`) are turned
 * into PostgreSQL's `$1` by TypeORM's own driver, as its query builder does.
 */
export class RowSource {
  private readonly pool: Pool;
  private readonly driver: PostgresDriver;

  constructor(dataSource: DataSource) {
    this.driver = dataSource.driver as PostgresDriver;
    this.pool = this.driver.master as Pool;
  }

  async rows(sql: string, parameters: SqlParameters): Promise<unknown[][]> {
    const [text, values] = this.driver.escapeQueryWithParameters(sql, parameters.values);
    const query: QueryArrayConfig = { text, values, rowMode: 'array' };
    return (await this.pool.query(query)).rows;
  }
}
