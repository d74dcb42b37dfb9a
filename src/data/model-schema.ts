import { Allow, ArrayMaxSize, Max, Min, ValidateNested } from 'class-validator';
import { GraphQLBoolean, GraphQLFloat, GraphQLID, GraphQLInt, GraphQLScalarType, GraphQLString } from 'graphql';
import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Args,
  ArgsType,
  Ctx,
  Field,
  FieldResolver,
  ID,
  Info,
  InputType,
  Int,
  Mutation,
  ObjectType,
  Query,
  Resolver,
  Root,
  Subscription,
  registerEnumType,
} from 'type-graphql';
import type { Context } from '../context';
import type { ModelDefinition, ModelField, ModelRelation } from './define-model';
import { WhereInput, filterTypeOf } from './filters';
import { LiveChange, followChanges } from './live-changes';
import { selectionOf } from './selection';
import type { ListArgs, ModelStore } from './model-store';
import { ParameterDecoratorFunction, defineMethod, namedClass } from '../graphql/generated-classes';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageArgs, PageInfo } from '../graphql/pagination';

export enum SortDirectionValue {
  ASC = 'ASC',
  DESC = 'DESC',
}

registerEnumType(SortDirectionValue, {
  name: 'SortDirection',
  description: 'Ascending or descending.',
  valuesConfig: { ASC: { description: 'Smallest, earliest or A first.' }, DESC: { description: 'Largest, latest or Z first.' } },
});

export enum ChangeKindValue {
  CREATED = 'CREATED',
  UPDATED = 'UPDATED',
  DELETED = 'DELETED',
}

registerEnumType(ChangeKindValue, {
  name: 'ChangeKind',
  description: 'What happened to a row, as you see it.',
  valuesConfig: {
    CREATED: { description: 'Created, or changed so that you now see it (it entered your scope or your where).' },
    UPDATED: { description: 'Changed, and you saw it before and still do.' },
    DELETED: { description: 'Deleted, or changed so that you no longer see it; node is null.' },
  },
});

/** The GraphQL types and the resolver class generated for one model. */
export interface GeneratedModel {
  readonly resolver: new (store: ModelStore) => object;
  readonly connectionType: string;
  readonly edgeType: string;
  /** The change type of its subscription (`PostChange`), when it has one. */
  readonly changeType: string | null;
  readonly operations: {
    readonly query: Record<string, 'read'>;
    readonly mutation: Record<string, 'create' | 'update' | 'delete'>;
    readonly subscription: Record<string, 'read'>;
  };
}

function scalarOf(field: ModelField): GraphQLScalarType | DateConstructor {
  if (field.encrypted) return GraphQLString;
  return { id: GraphQLID, string: GraphQLString, int: GraphQLInt, float: GraphQLFloat, boolean: GraphQLBoolean, datetime: Date }[
    field.kind
  ];
}

/** How many conditions one AND or OR list may hold. */
const MAX_BRANCHES = 20;

/** The base of every generated resolver: the store its methods call. */
class StoreResolver {
  constructor(readonly store: ModelStore) {}
}

const upperSnake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** The page arguments of a list: the public ones (first ≤ 100), or, for the bench's own model only, a larger cap. */
function pageArgsCapped(name: string, maxPageSize: number): new () => object {
  if (maxPageSize === MAX_PAGE_SIZE) return PageArgs;
  const args = namedClass(`${name}PageArgs`);
  Field(() => Int, { defaultValue: DEFAULT_PAGE_SIZE, description: `How many items, 1 to ${maxPageSize}.` })(args.prototype, 'first');
  Min(1)(args.prototype, 'first');
  Max(maxPageSize)(args.prototype, 'first');
  Field(() => String, { nullable: true, description: 'Start after this cursor (pageInfo.endCursor of the previous page).' })(
    args.prototype,
    'after',
  );
  Allow()(args.prototype, 'after');
  ArgsType()(args);
  return args;
}

/**
 * Generates, for one model: `<plural>(where, orderBy, first, after)`, `<singular>(id)`,
 * `create<Model>`, `update<Model>`, `delete<Model>`, the inputs, the connection types and the
 * relation fields, as type-graphql classes built at run time (decorators are plain functions).
 * `maxPageSize` stays the public 100 but for a model the bench declares for itself.
 */
export function generateModelSchema(model: ModelDefinition, maxPageSize = MAX_PAGE_SIZE): GeneratedModel {
  const { name } = model;

  const whereType = generateWhere(model);
  const orderByType = generateOrderBy(model);

  const edgeType = namedClass(`${name}Edge`);
  Field(() => String, { description: `Pass it as \`after\` to continue after this ${name}.` })(edgeType.prototype, 'cursor');
  Field(() => model.entity, { description: `The ${name}.` })(edgeType.prototype, 'node');
  ObjectType(`${name}Edge`, { description: `One ${name} in a page.` })(edgeType);

  const connectionType = namedClass(`${name}Connection`);
  Field(() => [edgeType], { description: `The ${model.plural} of this page.` })(connectionType.prototype, 'edges');
  Field(() => PageInfo, { description: 'Whether more follow, and where to continue.' })(connectionType.prototype, 'pageInfo');
  Field(() => Int, { description: `How many ${model.plural} match, in all pages (counted only when asked for).` })(
    connectionType.prototype,
    'totalCount',
  );
  ObjectType(`${name}Connection`, { description: `A page of ${model.plural} (Relay cursor connection).` })(connectionType);

  const listArgs = namedClass(`${name}ListArgs`, pageArgsCapped(name, maxPageSize));
  if (whereType) {
    Field(() => whereType, { nullable: true, description: `Conditions on ${model.plural}; leave out for all you may read.` })(
      listArgs.prototype,
      'where',
    );
    ValidateNested()(listArgs.prototype, 'where');
  }
  if (orderByType)
    Field(() => [orderByType], { nullable: true, description: 'Sort order, up to 3 fields; the id always breaks ties.' })(
      listArgs.prototype,
      'orderBy',
    );
  ArgsType()(listArgs);

  const writable = model.fields.filter((field) => field.writable);
  const createInput = generateInput(
    `Create${name}Input`,
    `A new ${name}. The owner, id and timestamps are set by the server.`,
    writable,
    true,
  );
  const updateInput = generateInput(`Update${name}Input`, `Changes to a ${name}: only the fields given change.`, writable, false);

  const operations = {
    query: { [model.plural]: 'read' as const, [model.singular]: 'read' as const },
    mutation: { [`create${name}`]: 'create' as const, [`update${name}`]: 'update' as const, [`delete${name}`]: 'delete' as const },
    subscription: model.subscriptions ? { [`${model.singular}Changed`]: 'read' as const } : {},
  };

  const generated = namedClass(`${name}Resolver`, StoreResolver);
  defineMethod(
    generated,
    model.plural,
    function (this: StoreResolver, args: ListArgs, context: Context, info: GraphQLResolveInfo) {
      return this.store.list(model, context, args, info);
    },
    Query(() => connectionType, {
      description: `${model.plural[0].toUpperCase()}${model.plural.slice(1)} you may read, filtered, sorted and paginated (first ≤ ${maxPageSize}).`,
    }),
    [Args(() => listArgs), Ctx(), Info()],
  );
  defineMethod(
    generated,
    model.singular,
    function (this: StoreResolver, id: string, context: Context, info: GraphQLResolveInfo) {
      return this.store.get(model, context, id, info);
    },
    Query(() => model.entity, {
      nullable: true,
      description: `One ${name} by id: null with NOT_FOUND when it does not exist or you may not read it.`,
    }),
    [Arg('id', () => ID, { description: `The ${name}'s id.` }), Ctx(), Info()],
  );
  defineMethod(
    generated,
    `create${name}`,
    function (this: StoreResolver, input: object, context: Context, info: GraphQLResolveInfo) {
      return this.store.create(model, context, { ...input }, info);
    },
    Mutation(() => model.entity, { description: `Creates a ${name}${model.ownerField ? ' owned by you' : ''}.` }),
    [Arg('input', () => createInput, { description: 'Its fields.' }), Ctx(), Info()],
  );
  defineMethod(
    generated,
    `update${name}`,
    function (this: StoreResolver, id: string, input: object, context: Context, info: GraphQLResolveInfo) {
      return this.store.update(model, context, id, { ...input }, info);
    },
    Mutation(() => model.entity, { description: `Changes a ${name} you may update. NOT_FOUND otherwise.` }),
    [
      Arg('id', () => ID, { description: `The ${name}'s id.` }),
      Arg('input', () => updateInput, { description: 'The fields to change.' }),
      Ctx(),
      Info(),
    ],
  );
  defineMethod(
    generated,
    `delete${name}`,
    async function (this: StoreResolver, id: string, context: Context) {
      await this.store.delete(model, context, id);
      return true;
    },
    Mutation(() => Boolean, { description: `Deletes a ${name} you may delete. NOT_FOUND otherwise.` }),
    [Arg('id', () => ID, { description: `The ${name}'s id.` }), Ctx()],
  );
  for (const relation of model.relations) addRelation(generated, model, relation);
  if (model.subscriptions) addSubscription(generated, model, whereType);
  Resolver(() => model.entity)(generated);

  return {
    resolver: generated,
    connectionType: `${name}Connection`,
    edgeType: `${name}Edge`,
    changeType: model.subscriptions ? `${name}Change` : null,
    operations,
  };
}

/**
 * `<singular>Changed(where)`: every change of a row the subscriber may read, decided per
 * subscriber when the change is heard (LiveChanges), then answered like a query's row.
 */
function addSubscription(generated: { prototype: object }, model: ModelDefinition, whereType: Function | null): void {
  const { name } = model;
  const changeType = namedClass(`${name}Change`);
  Field(() => ChangeKindValue, { description: 'What happened, as you see it.' })(changeType.prototype, 'kind');
  Field(() => ID, { description: `The ${name}'s id.` })(changeType.prototype, 'id');
  Field(() => model.entity, { nullable: true, description: `The ${name} as it is now; null when DELETED.` })(changeType.prototype, 'node');
  ObjectType(`${name}Change`, { description: `A change of a ${name} you may read.` })(changeType);

  const params: ParameterDecoratorFunction[] = [Root(), Ctx(), Info()];
  if (whereType) {
    const args = namedClass(`${name}ChangedArgs`);
    Field(() => whereType, { nullable: true, description: `Only ${model.plural} that match, as in the list query.` })(
      args.prototype,
      'where',
    );
    ValidateNested()(args.prototype, 'where');
    ArgsType()(args);
    params.push(Args(() => args));
  }

  defineMethod(
    generated,
    `${model.singular}Changed`,
    function (this: StoreResolver, change: LiveChange, context: Context, info: GraphQLResolveInfo) {
      return this.store.changed(model, context, change, info);
    },
    Subscription(() => changeType, {
      description:
        `Changes of ${model.plural} you may read (over WebSocket, graphql-transport-ws): created, updated, deleted, ` +
        'or entering and leaving what you may see.',
      subscribe: ({ args, context, info }) =>
        followChanges(
          model,
          context as Context,
          (args as { where?: WhereInput | null }).where,
          selectionOf(info).fields.get('node') ?? { fields: new Map() },
        ),
    }),
    params,
  );
}

/**
 * A to-one relation and a to-many's count are fields of the model's type like its columns: the
 * data API fills them in when it reads the row (a join, or a batched load), and their rules are
 * decided with the row's other fields. A to-many list takes `first`, so it keeps a resolver.
 */
function addRelation(generated: { prototype: object }, model: ModelDefinition, relation: ModelRelation): void {
  const target = () => relation.target().entity;
  if (relation.kind === 'one') {
    Field(() => target(), { nullable: true, description: relation.description })(model.entity.prototype as object, relation.name);
    return;
  }
  defineMethod(
    generated,
    relation.name,
    function (this: StoreResolver, row: object, first: number, context: Context, info: GraphQLResolveInfo) {
      return this.store.many(model, relation, context, row, first, info);
    },
    FieldResolver(() => [target()], { nullable: true, description: relation.description }),
    [
      Root(),
      Arg('first', () => Int, { defaultValue: DEFAULT_PAGE_SIZE, description: `How many, 1 to ${MAX_PAGE_SIZE}, in their default order.` }),
      Ctx(),
      Info(),
    ],
  );
  if (relation.count)
    Field(() => Int, { nullable: true, description: relation.count.description })(model.entity.prototype as object, relation.count.name);
}

function generateWhere(model: ModelDefinition): Function | null {
  const filterable = model.fields.filter((field) => field.filterable);
  if (filterable.length === 0) return null;
  const type = namedClass(`${model.name}Where`);
  for (const field of filterable) {
    Field(() => filterTypeOf(field), {
      nullable: true,
      description: field.encrypted ? `${field.description} (encrypted: eq only)` : field.description,
    })(type.prototype, field.name);
    ValidateNested()(type.prototype, field.name);
  }
  Field(() => [type], { nullable: true, description: 'All of these conditions.' })(type.prototype, 'AND');
  Field(() => [type], { nullable: true, description: 'Any of these conditions.' })(type.prototype, 'OR');
  ValidateNested({ each: true })(type.prototype, 'AND');
  ValidateNested({ each: true })(type.prototype, 'OR');
  // Empty children add no condition, so the condition limit alone would not bound a list's length.
  ArrayMaxSize(MAX_BRANCHES)(type.prototype, 'AND');
  ArrayMaxSize(MAX_BRANCHES)(type.prototype, 'OR');
  InputType(`${model.name}Where`, {
    description: `Conditions on ${model.plural}: every field given must match, plus all of AND and any of OR.`,
  })(type);
  return type;
}

function generateOrderBy(model: ModelDefinition): Function | null {
  const sortable = model.fields.filter((field) => field.sortable);
  if (sortable.length === 0) return null;
  const values = Object.fromEntries(sortable.map((field) => [upperSnake(field.name), field.name]));
  registerEnumType(values, {
    name: `${model.name}SortField`,
    description: `Fields ${model.plural} can be sorted by.`,
    valuesConfig: Object.fromEntries(sortable.map((field) => [upperSnake(field.name), { description: field.description }])),
  });
  const type = namedClass(`${model.name}OrderBy`);
  Field(() => values, { description: 'The field.' })(type.prototype, 'field');
  Field(() => SortDirectionValue, { defaultValue: SortDirectionValue.ASC, description: 'ASC (default) or DESC.' })(
    type.prototype,
    'direction',
  );
  // The schema already checks both (enums); class-validator must know the properties exist.
  Allow()(type.prototype, 'field');
  Allow()(type.prototype, 'direction');
  InputType(`${model.name}OrderBy`, { description: `One key of the ${model.plural}' order.` })(type);
  return type;
}

function generateInput(name: string, description: string, fields: readonly ModelField[], creating: boolean): Function {
  const type = namedClass(name);
  for (const field of fields) {
    Field(() => scalarOf(field), { nullable: !(creating && field.requiredOnCreate), description: field.description })(
      type.prototype,
      field.name,
    );
    // The model's own constraints are checked on the row the input makes (ModelStore), with its field names.
    Allow()(type.prototype, field.name);
  }
  InputType(name, { description })(type);
  return type;
}
