import { validate } from 'class-validator';
import type { GraphQLResolveInfo } from 'graphql';
import type { DataSource, EntityManager, SelectQueryBuilder } from 'typeorm';
import { ID_FIELD, ModelScope, RowScope } from '../access/model-access';
import type { Context } from '../context';
import { conflictOnDuplicate } from '../db/unique-violation';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import type { ModelDefinition, ModelRelation } from './define-model';
import { WhereInput, whereSql } from './filters';
import { SqlParameters } from '../db/sql-parameters';
import { Keyset, SortDirection, SortKey } from '../db/keyset';
import { ModelRowRules, ReadPlan, RowSource, RowValues, fieldOf, valuesOf } from './model-reader';
import { MAX_PAGE_SIZE } from '../graphql/pagination';
import { EVERYTHING, Selection, Wanted, selectionOf } from './selection';
import type { LiveChange } from './live-changes';

const NOTHING: Wanted = { fields: new Map() };

/** The alias every generated query uses for the model's table. */
const ROW = 'm';

export interface ListArgs {
  readonly where?: WhereInput | null;
  readonly orderBy?: readonly { field: string; direction: SortDirection }[] | null;
  readonly first: number;
  readonly after?: string | null;
}

type Info = Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments' | 'variableValues'>;

/** One edge of a page; the cursor is encoded only when the client selects it. */
class Edge {
  constructor(
    readonly node: object,
    private readonly keyset: Keyset,
  ) {}

  get cursor(): string {
    return this.keyset.cursorOf(valuesOf(this.node));
  }
}

class PageInfoValue {
  constructor(
    readonly hasNextPage: boolean,
    private readonly last: object | undefined,
    private readonly keyset: Keyset,
  ) {}

  get endCursor(): string | null {
    return this.last ? this.keyset.cursorOf(valuesOf(this.last)) : null;
  }
}

/** A Relay connection; `totalCount` is counted only when the client selects it. */
export class Connection {
  constructor(
    readonly edges: readonly Edge[],
    readonly pageInfo: PageInfoValue | { hasNextPage: boolean; endCursor: string | null },
    private readonly count: () => Promise<number>,
  ) {}

  get totalCount(): Promise<number> {
    return this.count();
  }
}

const EMPTY_PAGE = (): Connection => new Connection([], { hasNextPage: false, endCursor: null }, () => Promise.resolve(0));

/**
 * Reads and writes a model's rows for one viewer, with the policy applied in SQL: every query is
 * narrowed by the viewer's scope for its action (so a row outside it is NOT_FOUND, exactly like a
 * missing one), every row returned is decided field by field from its mask, every write is checked
 * against the grants' fields and re-checked after (WITH CHECK). One transaction per write.
 *
 * Reads select only the columns the query asks for (plus what the policy and the cursors need),
 * join selected to-one relations in the same statement, and come back from pg as arrays: no
 * entity hydration per row. Writes go through TypeORM entities (validation, transformers).
 */
export class ModelStore {
  private readonly source: RowSource;

  constructor(
    private readonly dataSource: DataSource,
    private readonly rules: ModelRowRules,
  ) {
    this.source = new RowSource(dataSource);
  }

  async list(model: ModelDefinition, context: Context, args: ListArgs, info: Info): Promise<Connection> {
    const scope = context.access.scope(model.access, 'read');
    if (scope.rows.empty) return EMPTY_PAGE();
    const selected = selectionOf(info);
    const keyset = new Keyset(ROW, sortKeysOf(model, scope, args.orderBy ?? [], context));
    const node = selected.fields.get('edges')?.fields.get('node') ?? undefined;
    const cursors =
      selected.fields.get('edges')?.fields.has('cursor') === true || selected.fields.get('pageInfo')?.fields.has('endCursor') === true;
    const plan = this.plan(model, scope, node ?? { fields: new Map() }, context, {
      join: true,
      extraFields: cursors ? keyset.keys.map((key) => key.field.name) : [],
    });

    const parameters = new SqlParameters();
    const conditions = plan.scopeConditions(ROW, parameters);
    const filtered = whereSql(model, ROW, args.where, parameters, (field) => showingSql(model, scope.rows, field, parameters));
    if (filtered) conditions.push(filtered);
    const counted = [...conditions];
    if (args.after != null) conditions.push(keyset.after(args.after, parameters));
    const order = keyset
      .orderBy()
      .map(([expression, direction]) => `${expression} ${direction}`)
      .join(', ');
    const sql = `${plan.selectFrom(ROW, parameters)}${whereClause(conditions)} ORDER BY ${order} LIMIT ${args.first + 1}`;
    const raw = await this.source.rows(sql, parameters);

    const page = raw.length > args.first ? raw.slice(0, args.first) : raw;
    const edges = page.map((row) => new Edge(plan.fromRaw(row), keyset));
    return new Connection(edges, new PageInfoValue(raw.length > args.first, edges.at(-1)?.node, keyset), async () => {
      const [[count]] = await this.source.rows(`SELECT count(*)::int FROM "${model.table}" "${ROW}"${whereClause(counted)}`, parameters);
      return count as number;
    });
  }

  async get(model: ModelDefinition, context: Context, id: string, info: Info): Promise<object> {
    const scope = context.access.scope(model.access, 'read');
    if (!isUuid(id) || scope.rows.empty) throw notFound(model);
    const plan = this.plan(model, scope, selectionOf(info), context, { join: true });
    const parameters = new SqlParameters();
    const conditions = [...plan.scopeConditions(ROW, parameters), `"${ROW}"."id" = ${parameters.add(id)}`];
    const [row] = await this.source.rows(`${plan.selectFrom(ROW, parameters)}${whereClause(conditions)}`, parameters);
    if (!row) throw notFound(model);
    return plan.fromRaw(row);
  }

  async create(model: ModelDefinition, context: Context, input: Record<string, unknown>, info?: Info): Promise<object> {
    const scope = context.access.scope(model.access, 'create');
    const fields = givenFields(input);
    const clauses = scope.writableClauses(fields);
    const row = Object.assign(new model.entity(), input) as Record<string, unknown>;
    if (model.ownerField) row[model.ownerField.name] = context.viewer.userId;
    await validateRow(model, row, fields);
    if (!scope.admits(row, clauses)) throw denied(context, `You may not create this ${model.name}.`);
    const saved = await conflictOnDuplicate(
      () =>
        this.dataSource.transaction(async (manager) => {
          await this.checkReferences(manager, model, context, row, fields);
          return manager.save(row);
        }),
      `This ${model.name} already exists.`,
    );
    return this.written(model, context, saved, info);
  }

  async update(model: ModelDefinition, context: Context, id: string, input: Record<string, unknown>, info?: Info): Promise<object> {
    const scope = context.access.scope(model.access, 'update');
    const fields = givenFields(input);
    if (fields.length === 0) throw new AppError('BAD_USER_INPUT', 'Give at least one field to change.', { details: { field: 'input' } });
    const clauses = scope.writableClauses(fields);
    const saved = await conflictOnDuplicate(
      () =>
        this.dataSource.transaction(async (manager) => {
          const row = (await this.findScoped(manager, model, scope.narrowedTo(clauses), id, true)) as Record<string, unknown>;
          Object.assign(row, input);
          await validateRow(model, row, fields);
          if (!scope.admits(row, clauses)) throw denied(context, `You may not make this change to the ${model.name}.`);
          await this.checkReferences(manager, model, context, row, fields);
          return manager.save(row);
        }),
      `This change collides with another ${model.name}.`,
    );
    return this.written(model, context, saved, info);
  }

  async delete(model: ModelDefinition, context: Context, id: string): Promise<void> {
    const scope = context.access.scope(model.access, 'delete');
    await this.dataSource.transaction(async (manager) => {
      await this.findScoped(manager, model, scope.rows, id, true);
      await manager.delete(model.entity, { id });
    });
  }

  /**
   * A change delivered to a subscriber (LiveChanges decided it may see it), answered as a query's
   * row would be: each field decided by the subscriber's read scope as it is now; relations loaded
   * for it, batched per delivery.
   */
  changed(model: ModelDefinition, context: Context, change: LiveChange, info: Info): { kind: string; id: string; node: object | null } {
    if (change.row === null) return { kind: change.kind, id: change.id, node: null };
    const plan = this.plan(model, context.access.scope(model.access, 'read'), selectionOf(info).fields.get('node') ?? NOTHING, context, {
      join: false,
    });
    return { kind: change.kind, id: change.id, node: plan.project(change.row, [], false) };
  }

  /** A one-to-many relation's first rows per parent (one statement for the page), in the target's default order. */
  many(model: ModelDefinition, relation: ModelRelation, context: Context, row: object, first: number, info: Info): Promise<object[]> {
    if (first < 1 || first > MAX_PAGE_SIZE)
      throw new AppError('BAD_USER_INPUT', `first must be between 1 and ${MAX_PAGE_SIZE}.`, { details: { field: 'first' } });
    const target = relation.target();
    const selected = selectionOf(info);
    const loader = context.loaders.get(
      `${model.name}.${relation.name}:${first}:${selectionId(selected)}`,
      async (parentIds: readonly unknown[]) => {
        const scope = context.access.scope(target.access, 'read');
        const byParent = new Map<unknown, object[]>(parentIds.map((id) => [id, []]));
        if (!scope.rows.empty) {
          const plan = this.plan(target, scope, selected, context, { join: true, extraFields: [relation.by] });
          const parameters = new SqlParameters();
          const order = new Keyset(ROW, sortKeysOf(target, scope, [], context))
            .orderBy()
            .map(([expression, direction]) => `${expression} ${direction}`)
            .join(', ');
          const by = fieldOf(target, relation.by);
          const conditions = this.relatedConditions(plan, scope.rows, relation.by, parentIds, parameters);
          // The first `first` rows of each parent, ranked inside the same scoped query.
          const rank = `row_number() OVER (PARTITION BY "${ROW}"."${by.column}" ORDER BY ${order})`;
          const ranked = `${plan.selectFrom(ROW, parameters, [rank])}${whereClause(conditions)}`;
          // The rank is the last column: decoding reads the plan's columns and ignores it.
          const raw = await this.source.rows(
            `SELECT * FROM (${ranked}) ranked WHERE ranked."o${plan.columnCount}" <= ${parameters.add(first)} ORDER BY ranked."o${plan.columnCount}"`,
            parameters,
          );
          for (const related of raw) {
            const node = plan.fromRaw(related);
            byParent.get(valuesOf(node)[relation.by])?.push(node);
          }
        }
        return parentIds.map((id) => byParent.get(id)!);
      },
    );
    return loader.load(valuesOf(row).id);
  }

  /** The read plan of a model for one request; relations it does not join are loaded per request, batched. */
  private plan(
    model: ModelDefinition,
    scope: ModelScope,
    wanted: Wanted,
    context: Context,
    options: { join: boolean; extraFields?: readonly string[] },
  ): ReadPlan {
    return new ReadPlan(model, scope, wanted, this.rules, context, {
      ...options,
      loader: (relation, parent, relationWanted) => this.loadRelation(model, relation, context, parent, relationWanted),
    });
  }

  /** A written row as the client reads it: in the viewer's read scope, relations loaded after. */
  private written(model: ModelDefinition, context: Context, saved: object, info: Info | undefined): object {
    const plan = this.plan(model, context.access.scope(model.access, 'read'), info ? selectionOf(info) : EVERYTHING, context, {
      join: false,
    });
    return plan.project(saved as RowValues, [], false);
  }

  /** A to-one relation's row, or a count of a to-many's rows, for a row whose page did not join it: batched per request. */
  private loadRelation(
    model: ModelDefinition,
    relation: ModelRelation,
    context: Context,
    parent: RowValues,
    wanted: Wanted,
  ): Promise<unknown> {
    const target = relation.target();
    if (relation.kind === 'many') {
      const loader = context.loaders.get(`${model.name}.${relation.name}:count`, async (parentIds: readonly unknown[]) => {
        const scope = context.access.scope(target.access, 'read');
        if (scope.rows.empty) return parentIds.map(() => 0);
        const parameters = new SqlParameters();
        const by = `"${ROW}"."${fieldOf(target, relation.by).column}"`;
        const plan = this.plan(target, scope, { fields: new Map() }, context, { join: false });
        const raw = await this.source.rows(
          `SELECT ${by}, count(*)::int FROM "${target.table}" ` +
            `"${ROW}"${whereClause(this.relatedConditions(plan, scope.rows, relation.by, parentIds, parameters))} GROUP BY ${by}`,
          parameters,
        );
        const counts = new Map(raw.map(([key, count]) => [key, count as number]));
        return parentIds.map((id) => counts.get(id) ?? 0);
      });
      return loader.load(parent.id);
    }
    const key = parent[relation.by];
    if (key == null) return Promise.resolve(null);
    const loader = context.loaders.get(`${model.name}.${relation.name}:${selectionId(wanted)}`, async (keys: readonly unknown[]) => {
      const scope = context.access.scope(target.access, 'read');
      if (scope.rows.empty) return keys.map(() => null);
      const plan = this.plan(target, scope, wanted, context, { join: true, extraFields: [relation.to] });
      const parameters = new SqlParameters();
      const raw = await this.source.rows(
        `${plan.selectFrom(ROW, parameters)}${whereClause(this.relatedConditions(plan, scope.rows, relation.to, keys, parameters))}`,
        parameters,
      );
      const byKey = new Map<unknown, object>();
      for (const related of raw) {
        const node = plan.fromRaw(related);
        byKey.set(valuesOf(node)[relation.to], node);
      }
      return keys.map((candidate) => byKey.get(candidate) ?? null);
    });
    return loader.load(key);
  }

  /**
   * Target rows whose `field` is one of `keys`, inside the viewer's read scope, and only where the
   * viewer may read `field` itself: joining on a hidden field would reveal it (a comment's postId).
   */
  private relatedConditions(plan: ReadPlan, rows: RowScope, field: string, keys: readonly unknown[], parameters: SqlParameters): string[] {
    const key = fieldOf(plan.model, field);
    const usable = key.kind === 'id' ? keys.filter((candidate) => isUuid(String(candidate))) : [...keys];
    return [
      ...plan.scopeConditions(ROW, parameters, field),
      usable.length > 0 ? `"${ROW}"."${key.column}" IN ${parameters.addList(usable)}` : 'FALSE',
    ];
  }

  /**
   * A written reference (a comment's postId) must name a row the viewer may read: nobody comments
   * on a draft they cannot see. NOT_FOUND names the field, as for a row that does not exist. The
   * row is share-locked, so it cannot be deleted before this write commits.
   */
  private async checkReferences(
    manager: EntityManager,
    model: ModelDefinition,
    context: Context,
    row: Record<string, unknown>,
    fields: readonly string[],
  ): Promise<void> {
    for (const relation of model.relations) {
      if (relation.kind !== 'one' || !fields.includes(relation.by) || row[relation.by] == null) continue;
      const target = relation.target();
      const scope = context.access.scope(target.access, 'read');
      const found = await this.scoped(manager, target, scope.rows, relation.to, row[relation.by])
        .select(`"${ROW}"."id"`, 'id')
        .setLock('pessimistic_read')
        .getRawOne<{ id: string }>();
      if (!found) throw new AppError('NOT_FOUND', `No ${target.name} with this ${relation.by}.`, { details: { field: relation.by } });
    }
  }

  /** The row with this id inside `rows`, as an entity to change (locked until commit), or NOT_FOUND. */
  private async findScoped(
    manager: EntityManager,
    model: ModelDefinition,
    rows: RowScope,
    id: string,
    forUpdate: boolean,
  ): Promise<object> {
    if (!isUuid(id) || rows.empty) throw notFound(model);
    const query = this.scoped(manager, model, rows, ID_FIELD, id);
    if (forUpdate) query.setLock('pessimistic_write');
    const row = await query.getOne();
    if (!row) throw notFound(model);
    return row;
  }

  /** A TypeORM query for the rows in `rows` whose `field` (readable there) equals `value`. */
  private scoped(
    manager: EntityManager,
    model: ModelDefinition,
    rows: RowScope,
    field: string,
    value: unknown,
  ): SelectQueryBuilder<object> {
    const parameters = new SqlParameters();
    const bind = (bound: unknown) => parameters.add(bound);
    const columnOf = (name: string) => fieldOf(model, name).column;
    const visible = rows.showing(field);
    const key = fieldOf(model, field);
    const matching = key.kind !== 'id' || isUuid(String(value)) ? `"${ROW}"."${key.column}" = ${parameters.add(value)}` : 'FALSE';
    const conditions = [
      rows.toSql(ROW, bind, columnOf) ?? 'FALSE',
      ...(visible ? [visible.toSql(ROW, bind, columnOf) ?? 'FALSE'] : []),
      matching,
    ];
    return manager.createQueryBuilder(model.entity, ROW).where(conditions.join(' AND ')).setParameters(parameters.values);
  }
}

function whereClause(conditions: readonly string[]): string {
  const real = conditions.filter((condition) => condition !== 'TRUE');
  return real.length > 0 ? ` WHERE ${real.join(' AND ')}` : '';
}

/** The rows in scope whose `field` the viewer may read, as SQL; null when that is every row in scope. */
function showingSql(model: ModelDefinition, rows: RowScope, field: string, parameters: SqlParameters): string | null {
  const visible = rows.showing(field);
  if (!visible) return null;
  return (
    visible.toSql(
      ROW,
      (value) => parameters.add(value),
      (name) => fieldOf(model, name).column,
    ) ?? 'FALSE'
  );
}

/** Selections are shared per document: one loader per selection, so rows loaded for different sub-selections never mix. */
const selectionIds = new WeakMap<Selection, number>();
let nextSelectionId = 1;
function selectionId(wanted: Wanted): string {
  if (wanted === EVERYTHING) return 'all';
  let id = selectionIds.get(wanted);
  if (id === undefined) selectionIds.set(wanted, (id = nextSelectionId++));
  return String(id);
}

/**
 * The client's orderBy (field names already checked by the schema's enum), then the id as the
 * tie-break; without one, oldest first when createdAt is readable in every row. A sort key must
 * be readable in every row in scope: the order (and the cursor) would reveal it otherwise.
 */
function sortKeysOf(
  model: ModelDefinition,
  scope: ModelScope,
  orderBy: readonly { field: string; direction: SortDirection }[],
  context: Context,
): SortKey[] {
  if (orderBy.length > 3) throw new AppError('BAD_USER_INPUT', 'orderBy takes at most 3 fields.', { details: { field: 'orderBy' } });
  const readableEverywhere = (field: string) => scope.unrestricted || scope.rows.showing(field) === null;
  const keys: SortKey[] = orderBy.map((entry) => {
    if (!readableEverywhere(entry.field)) throw denied(context, `You may not sort ${model.plural} by ${entry.field}.`, 'orderBy');
    return { field: fieldOf(model, entry.field), direction: entry.direction };
  });
  const createdAt = model.fields.find((field) => field.name === 'createdAt' && !field.nullable);
  if (keys.length === 0 && createdAt && readableEverywhere(createdAt.name)) keys.push({ field: createdAt, direction: 'ASC' });
  if (!keys.some((key) => key.field.name === ID_FIELD))
    keys.push({ field: fieldOf(model, ID_FIELD), direction: keys.at(-1)?.direction ?? 'ASC' });
  return keys;
}

/** FORBIDDEN for a signed-in viewer, UNAUTHENTICATED for an anonymous one. */
function denied(context: Context, message: string, field?: string): AppError {
  return new AppError(context.viewer.userId === null ? 'UNAUTHENTICATED' : 'FORBIDDEN', message, field ? { details: { field } } : {});
}

function givenFields(input: Record<string, unknown>): string[] {
  return Object.keys(input).filter((key) => input[key] !== undefined);
}

/**
 * The written fields against the model: no null in a NOT NULL column, no NUL character (PostgreSQL
 * text cannot hold one), then the model's class-validator constraints. The first problem is
 * BAD_USER_INPUT naming its field. Only the fields written are judged: a stored value that breaks
 * a constraint added later does not block changing another field.
 */
async function validateRow(model: ModelDefinition, row: Record<string, unknown>, written: readonly string[]): Promise<void> {
  for (const name of written) {
    const field = fieldOf(model, name);
    const value = row[name];
    if (value === null && !field.nullable) throw invalidField(model, name, 'must not be null');
    if (typeof value === 'string' && value.includes('\u0000')) throw invalidField(model, name, 'must not contain a NUL character');
  }
  const problems = await validate(row, { skipMissingProperties: true, forbidUnknownValues: false });
  const problem = problems.find((candidate) => written.includes(candidate.property));
  if (problem) throw invalidField(model, problem.property, Object.values(problem.constraints ?? {})[0] ?? 'is not valid');
}

function invalidField(model: ModelDefinition, field: string, detail: string): AppError {
  return new AppError('BAD_USER_INPUT', `${model.name}.${field}: ${detail}.`, { details: { field } });
}

function notFound(model: ModelDefinition): AppError {
  return new AppError('NOT_FOUND', `No ${model.name} with this id.`);
}
