import type { RuleTree } from '../shield/shield';
import { mergeRuleTrees } from '../shield/shield';
import { RelationRule, RowRule, modelRowRules, modelRules } from '../access/model-rules';
import { RowProjection } from '../shield/rules';
import { isPublic } from '../shield/rules';
import type { Feature } from '../feature';
import { ModelDefinition, ModelDefinitionError, ModelHandle, resolveModel } from './define-model';
import { generateModelSchema } from './model-schema';
import { ModelStore } from './model-store';

declare module '../feature' {
  // Every declaration of Feature names the same type parameters, used or not.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- see above
  interface Feature<N, P> {
    /** The data API's models as it serves them (the realtime feature follows the subscribed ones). */
    readonly dataModels?: readonly ModelDefinition[];
  }
}

/** Each relation's rule: a READ grant on the target, and for a many-to-one its key readable in this row. */
function relationRules(model: ModelDefinition): Record<string, RelationRule> {
  const rules: Record<string, RelationRule> = {};
  for (const relation of model.relations) {
    const target = relation.target().name;
    rules[relation.name] = relation.kind === 'one' ? { target, via: relation.by } : { target };
    if (relation.count) rules[relation.count.name] = { target };
  }
  return rules;
}

/**
 * The fields the data API answers for whole pages (ReadPlan): columns, and to-one relations (a
 * query's rows have them joined, so they hold a row, null or a denial, never a pending load; only
 * a row a mutation returns loads them, and mutations run on graphql-js, which awaits it), as plain
 * values; a count, a pending batched load. A to-many list takes `first`, so it keeps its resolver
 * and shield decides it per row.
 */
function projectionsOf(model: ModelDefinition): Record<string, RowProjection> {
  const projections: Record<string, RowProjection> = Object.fromEntries(model.fields.map((field) => [field.name, 'value' as const]));
  for (const relation of model.relations) {
    if (relation.kind === 'one') projections[relation.name] = 'value';
    if (relation.count) projections[relation.count.name] = 'loaded';
  }
  return projections;
}

/** Relations name fields of other models, known only once every model is resolved. */
function checkRelations(model: ModelDefinition): void {
  for (const relation of model.relations) {
    const target = relation.target();
    const key = relation.kind === 'one' ? relation.to : relation.by;
    const field = target.fields.find((candidate) => candidate.name === key);
    if (!field) throw new ModelDefinitionError(model.name, `relation "${relation.name}": ${target.name} has no field "${key}"`);
    if (field.encrypted)
      throw new ModelDefinitionError(model.name, `relation "${relation.name}": ${target.name}.${key} is encrypted and cannot be joined on`);
  }
}

/**
 * The data API for a list of models: for each, the generated types, resolvers and shield rules,
 * its access spec (default grants seeded on first sight) and its entity. Build it once per
 * process: type-graphql's metadata is global, so a second build would declare every type twice.
 * `maxPageSize`: the public cap (100) unless the bench builds a model of its own with a larger one.
 */
export function dataFeature(handles: readonly ModelHandle[], options: { readonly maxPageSize?: number } = {}): Feature {
  return dataFeatures(handles, options)(handles);
}

/**
 * The data API of these models, for any subset of them: every model's types and resolvers are
 * generated here, once, and the function returned assembles a feature serving the chosen ones (a
 * configuration may leave the sample models out). Every model's entity stays mapped in each: the
 * tables exist whatever is served (migrations are one history), and key rotation must reach them.
 */
export function dataFeatures(
  handles: readonly ModelHandle[],
  options: { readonly maxPageSize?: number } = {},
): (served: readonly ModelHandle[]) => Feature {
  const definitions = new Map<Function, ModelDefinition>();
  const byEntity = (entity: Function): ModelDefinition => {
    const definition = definitions.get(entity);
    if (!definition) throw new ModelDefinitionError(entity.name, 'is named in a relation but not registered in src/models/index.ts');
    return definition;
  };
  for (const handle of handles) definitions.set(handle.entity, resolveModel(handle, byEntity));
  const models = [...definitions.values()];
  for (const model of models) checkRelations(model);
  const generated = models.map((model) => ({ model, schema: generateModelSchema(model, options.maxPageSize) }));

  // The fields' rules, decided by the data API once per distinct mask of a page (projected).
  const rowRules = new Map<string, ReadonlyMap<string, RowRule>>(
    models.map((model) => [model.name, modelRowRules(model.access, relationRules(model), projectionsOf(model))]),
  );
  return (served) => {
    const chosen = generated.filter(({ model }) => served.some((handle) => handle.entity === model.entity));
    const names = new Set(chosen.map(({ model }) => model.name));
    for (const { model } of chosen)
      for (const relation of model.relations)
        if (!names.has(relation.target().name))
          throw new ModelDefinitionError(model.name, `relation "${relation.name}": ${relation.target().name} is not served with it`);
    const rules: RuleTree = mergeRuleTrees(
      chosen.map(({ model, schema }): RuleTree => ({
        ...modelRules(model.access, schema.operations, rowRules.get(model.name)),
        // Structure only: every node inside is guarded by its own field rules.
        [schema.connectionType]: { edges: isPublic, pageInfo: isPublic, totalCount: isPublic },
        [schema.edgeType]: { cursor: isPublic, node: isPublic },
        // The change reached this subscriber because it may read the row; the node's fields are decided like a query's.
        ...(schema.changeType ? { [schema.changeType]: { kind: isPublic, id: isPublic, node: isPublic } } : {}),
      })),
    );
    return {
      name: 'data',
      resolvers: chosen.map(({ schema }) => schema.resolver),
      rules,
      wire: ({ dataSource }) => {
        const store = new ModelStore(dataSource, rowRules);
        return chosen.map(({ schema }) => new schema.resolver(store));
      },
      models: chosen.map(({ model }) => model.access),
      dataModels: chosen.map(({ model }) => model),
      entities: handles.map((handle) => handle.entity),
    };
  };
}
