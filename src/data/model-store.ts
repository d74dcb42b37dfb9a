import { validate } from 'class-validator';
import type { DataSource, EntityManager, SelectQueryBuilder } from 'typeorm';
import { ID_FIELD, ModelScope } from '../access/model-access';
import type { Context } from '../context';
import { conflictOnDuplicate } from '../db/unique-violation';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import type { ModelDefinition, ModelField, ModelRelation } from './define-model';
import { SqlParameters, WhereInput, whereSql } from './filters';
import { Keyset, SortDirection, SortKey } from './keyset';
import { MAX_PAGE_SIZE } from './pagination';

/** The alias every generated query uses for the model's table. */
const ROW = 'm';

export interface ListArgs {
  readonly where?: WhereInput | null;
  readonly orderBy?: readonly { field: string; direction: SortDirection }[] | null;
  readonly first: number;
  readonly after?: string | null;
}

export interface Connection {
  readonly edges: { cursor: string; node: object }[];
  readonly pageInfo: { hasNextPage: boolean; endCursor: string | null };
  /** A getter: counted only when the client selects it. */
  readonly totalCount: Promise<number>;
}

/**
 * Reads and writes a model's rows for one viewer, with the policy applied in SQL: every query is
 * narrowed by the viewer's scope for its action (so a row outside it is NOT_FOUND, exactly like a
 * missing one), every row returned carries its field mask, every write is checked against the
 * grants' fields and re-checked after (WITH CHECK). One transaction per write.
 */
export class ModelStore {
  constructor(private readonly dataSource: DataSource) {}

  async list(model: ModelDefinition, context: Context, args: ListArgs): Promise<Connection> {
    const scope = context.access.scope(model.access, 'read');
    const parameters = new SqlParameters();
    const scoped = scopeSql(model, scope, parameters);
    if (scoped === null) return { edges: [], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: Promise.resolve(0) };
    const query = this.dataSource.getRepository(model.entity).createQueryBuilder(ROW).where(scoped);
    const filtered = whereSql(model, ROW, args.where, parameters, (field) => readableRowsSql(model, scope, field, parameters));
    if (filtered) query.andWhere(filtered);
    query.setParameters(parameters.values);
    const counting = query.clone();

    const keyset = new Keyset(ROW, sortKeysOf(model, scope, args.orderBy ?? [], context));
    if (args.after != null) query.andWhere(keyset.after(args.after, parameters)).setParameters(parameters.values);
    keyset.orderBy().forEach(([expression, direction], index) => (index === 0 ? query.orderBy(expression, direction) : query.addOrderBy(expression, direction)));
    const rows = await query.limit(args.first + 1).getMany();
    const page = rows.slice(0, args.first);
    return {
      // A cursor is encoded only when the client selects it.
      edges: page.map((row) => ({ get cursor() { return keyset.cursorOf(row); }, node: scope.expose(row) })),
      pageInfo: { hasNextPage: rows.length > args.first, endCursor: page.length > 0 ? keyset.cursorOf(page[page.length - 1]) : null },
      get totalCount() {
        return counting.getCount();
      },
    };
  }

  async get(model: ModelDefinition, context: Context, id: string): Promise<object> {
    const scope = context.access.scope(model.access, 'read');
    const row = await this.findScoped(this.dataSource.manager, model, scope, id);
    return scope.expose(row);
  }

  async create(model: ModelDefinition, context: Context, input: Record<string, unknown>): Promise<object> {
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
    return context.access.scope(model.access, 'read').expose(saved);
  }

  async update(model: ModelDefinition, context: Context, id: string, input: Record<string, unknown>): Promise<object> {
    const scope = context.access.scope(model.access, 'update');
    const fields = givenFields(input);
    if (fields.length === 0) throw new AppError('BAD_USER_INPUT', 'Give at least one field to change.', { details: { field: 'input' } });
    const clauses = scope.writableClauses(fields);
    const saved = await conflictOnDuplicate(
      () =>
        this.dataSource.transaction(async (manager) => {
          const row = (await this.findScoped(manager, model, scope, id, clauses, true)) as Record<string, unknown>;
          Object.assign(row, input);
          await validateRow(model, row, fields);
          if (!scope.admits(row, clauses)) throw denied(context, `You may not make this change to the ${model.name}.`);
          await this.checkReferences(manager, model, context, row, fields);
          return manager.save(row);
        }),
      `This change collides with another ${model.name}.`,
    );
    return context.access.scope(model.access, 'read').expose(saved);
  }

  async delete(model: ModelDefinition, context: Context, id: string): Promise<void> {
    const scope = context.access.scope(model.access, 'delete');
    await this.dataSource.transaction(async (manager) => {
      await this.findScoped(manager, model, scope, id, undefined, true);
      await manager.delete(model.entity, { id });
    });
  }

  /** A many-to-one relation's row (null when there is none, or the viewer may not read it), batched per request. */
  one(model: ModelDefinition, relation: ModelRelation, context: Context, row: object): Promise<object | null> {
    const key = (row as Record<string, unknown>)[relation.by];
    if (key == null) return Promise.resolve(null);
    const target = relation.target();
    const loader = context.loaders.get(`${model.name}.${relation.name}`, async (keys: readonly unknown[]) => {
      const scope = context.access.scope(target.access, 'read');
      const rows = await this.related(target, scope, fieldOf(target, relation.to), keys).getMany();
      const byKey = new Map(rows.map((related) => [(related as Record<string, unknown>)[relation.to], scope.expose(related)]));
      return keys.map((candidate) => byKey.get(candidate) ?? null);
    });
    return loader.load(key);
  }

  /** A one-to-many relation's first rows per parent (one statement for the page), in the target's default order. */
  many(model: ModelDefinition, relation: ModelRelation, context: Context, row: object, first: number): Promise<object[]> {
    if (first < 1 || first > MAX_PAGE_SIZE) throw new AppError('BAD_USER_INPUT', `first must be between 1 and ${MAX_PAGE_SIZE}.`, { details: { field: 'first' } });
    const target = relation.target();
    const loader = context.loaders.get(`${model.name}.${relation.name}:${first}`, async (parentIds: readonly unknown[]) => {
      const scope = context.access.scope(target.access, 'read');
      const by = fieldOf(target, relation.by);
      const query = this.related(target, scope, by, parentIds);
      const order = new Keyset(ROW, sortKeysOf(target, scope, [], context)).orderBy();
      // The first `first` rows of each parent, ranked inside the same scoped query.
      const ranked = query.clone().select(`"${ROW}"."id"`).addSelect(`row_number() OVER (PARTITION BY "${ROW}"."${by.column}" ORDER BY ${order.map(([expression, direction]) => `${expression} ${direction}`).join(', ')})`, 'rank');
      query.andWhere(`"${ROW}"."id" IN (SELECT ranked.id FROM (${ranked.getQuery()}) ranked WHERE ranked.rank <= :perParent)`).setParameter('perParent', first);
      order.forEach(([expression, direction], index) => (index === 0 ? query.orderBy(expression, direction) : query.addOrderBy(expression, direction)));
      const rows = await query.getMany();
      const byParent = new Map<unknown, object[]>(parentIds.map((id) => [id, []]));
      for (const related of rows) byParent.get((related as Record<string, unknown>)[relation.by])?.push(scope.expose(related));
      return parentIds.map((id) => byParent.get(id)!);
    });
    return loader.load((row as Record<string, unknown>).id);
  }

  /** How many related rows the viewer may read, per parent (one GROUP BY for the page). */
  count(model: ModelDefinition, relation: ModelRelation, context: Context, row: object): Promise<number> {
    const target = relation.target();
    const loader = context.loaders.get(`${model.name}.${relation.name}:count`, async (parentIds: readonly unknown[]) => {
      const scope = context.access.scope(target.access, 'read');
      const by = fieldOf(target, relation.by);
      const counts: { key: string; count: string }[] = await this.related(target, scope, by, parentIds)
        .select(`"${ROW}"."${by.column}"`, 'key')
        .addSelect('count(*)', 'count')
        .groupBy(`"${ROW}"."${by.column}"`)
        .getRawMany();
      const byParent = new Map(counts.map((entry) => [entry.key, Number(entry.count)]));
      return parentIds.map((id) => byParent.get(id as string) ?? 0);
    });
    return loader.load((row as Record<string, unknown>).id);
  }

  /**
   * A written reference (a comment's postId) must name a row the viewer may read: nobody comments
   * on a draft they cannot see. NOT_FOUND names the field, as for a row that does not exist. The
   * row is share-locked, so it cannot be deleted before this write commits.
   */
  private async checkReferences(manager: EntityManager, model: ModelDefinition, context: Context, row: Record<string, unknown>, fields: readonly string[]): Promise<void> {
    for (const relation of model.relations) {
      if (relation.kind !== 'one' || !fields.includes(relation.by) || row[relation.by] == null) continue;
      const target = relation.target();
      const scope = context.access.scope(target.access, 'read');
      const found = await this.related(target, scope, fieldOf(target, relation.to), [row[relation.by]], manager).select(`"${ROW}"."id"`, 'id').setLock('pessimistic_read').getRawOne();
      if (!found) throw new AppError('NOT_FOUND', `No ${target.name} with this ${relation.by}.`, { details: { field: relation.by } });
    }
  }

  /**
   * Target rows whose `field` is one of `keys`, inside the viewer's read scope, and only where the
   * viewer may read `field` itself: joining on a hidden field would reveal it (a comment's postId).
   */
  private related(target: ModelDefinition, scope: ModelScope, field: ModelField, keys: readonly unknown[], manager: EntityManager = this.dataSource.manager): SelectQueryBuilder<object> {
    const parameters = new SqlParameters();
    const scoped = scopeSql(target, scope, parameters) ?? 'FALSE';
    const readable = readableRowsSql(target, scope, field.name, parameters);
    const usable = field.kind === 'id' ? keys.filter((key) => isUuid(String(key))) : [...keys];
    const matching = usable.length > 0 ? `"${ROW}"."${field.column}" IN ${parameters.addList(usable)}` : 'FALSE';
    const query = manager.createQueryBuilder(target.entity, ROW).where(scoped).andWhere(matching);
    if (readable !== null) query.andWhere(readable);
    return query.setParameters(parameters.values);
  }

  private async findScoped(manager: EntityManager, model: ModelDefinition, scope: ModelScope, id: string, clauses = scope.decision.clauses, forUpdate = false): Promise<object> {
    const parameters = new SqlParameters();
    const scoped = isUuid(id) ? scopeSql(model, scope, parameters, clauses) : null;
    if (scoped === null) throw notFound(model);
    const query = manager.createQueryBuilder(model.entity, ROW).where(scoped).andWhere(`"${ROW}"."id" = ${parameters.add(id)}`).setParameters(parameters.values);
    if (forUpdate) query.setLock('pessimistic_write');
    const row = await query.getOne();
    if (!row) throw notFound(model);
    return row;
  }
}

/** The viewer's scope as SQL: one parenthesised AND per clause, ORed; null when no row can match. */
function scopeSql(model: ModelDefinition, scope: ModelScope, parameters: SqlParameters, clauses = scope.decision.clauses): string | null {
  const conditions = scope.where({}, clauses);
  if (conditions === null) return null;
  const sql = conditions.map((condition) => {
    const parts = Object.entries(condition).map(([property, value]) => `"${ROW}"."${fieldOf(model, property).column}" = ${parameters.add(value)}`);
    return parts.length > 0 ? `(${parts.join(' AND ')})` : 'TRUE';
  });
  return `(${sql.join(' OR ')})`;
}

/** The rows in scope whose `field` the viewer may read, as SQL; null when that is every row in scope. */
function readableRowsSql(model: ModelDefinition, scope: ModelScope, field: string, parameters: SqlParameters): string | null {
  const { clauses, unrestricted } = scope.decision;
  if (unrestricted || field === ID_FIELD) return null;
  const showing = clauses.filter((clause) => clause.fields === null || clause.fields.has(field));
  if (showing.length === clauses.length) return null;
  return scopeSql(model, scope, parameters, showing) ?? 'FALSE';
}

/**
 * The client's orderBy (field names already checked by the schema's enum), then the id as the
 * tie-break; without one, oldest first when createdAt is readable in every row. A sort key must
 * be readable in every row in scope: the order (and the cursor) would reveal it otherwise.
 */
function sortKeysOf(model: ModelDefinition, scope: ModelScope, orderBy: readonly { field: string; direction: SortDirection }[], context: Context): SortKey[] {
  if (orderBy.length > 3) throw new AppError('BAD_USER_INPUT', 'orderBy takes at most 3 fields.', { details: { field: 'orderBy' } });
  const readableEverywhere = (field: string) => readableRowsSql(model, scope, field, new SqlParameters()) === null;
  const keys: SortKey[] = orderBy.map((entry) => {
    if (!readableEverywhere(entry.field)) throw denied(context, `You may not sort ${model.plural} by ${entry.field}.`, 'orderBy');
    return { field: fieldOf(model, entry.field), direction: entry.direction };
  });
  const createdAt = model.fields.find((field) => field.name === 'createdAt' && !field.nullable);
  if (keys.length === 0 && createdAt && readableEverywhere(createdAt.name)) keys.push({ field: createdAt, direction: 'ASC' });
  if (!keys.some((key) => key.field.name === ID_FIELD)) keys.push({ field: fieldOf(model, ID_FIELD), direction: keys.at(-1)?.direction ?? 'ASC' });
  return keys;
}

/** FORBIDDEN for a signed-in viewer, UNAUTHENTICATED for an anonymous one (CONVENTIONS "Auth on every request"). */
function denied(context: Context, message: string, field?: string): AppError {
  return new AppError(context.viewer.userId === null ? 'UNAUTHENTICATED' : 'FORBIDDEN', message, field ? { details: { field } } : {});
}

function fieldOf(model: ModelDefinition, property: string): ModelField {
  const field = model.fields.find((candidate) => candidate.name === property);
  if (!field) throw new Error(`${model.name} has no stored field ${property}`);
  return field;
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
