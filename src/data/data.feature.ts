import type { RuleTree } from '../access/shield';
import { mergeRuleTrees } from '../access/shield';
import { RelationRule, modelRules } from '../access/model-rules';
import { isPublic } from '../access/rules';
import type { Feature } from '../features';
import { ModelDefinition, ModelDefinitionError, ModelHandle, resolveModel } from './define-model';
import { generateModelSchema } from './model-schema';
import { ModelStore } from './model-store';

/**
 * The data API for a list of models: for each, the generated types, resolvers and shield rules,
 * its access spec (default grants seeded on first sight) and its entity. Build it once per
 * process: type-graphql's metadata is global, so a second build would declare every type twice.
 */
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

/** Relations name fields of other models, known only once every model is resolved. */
function checkRelations(model: ModelDefinition): void {
  for (const relation of model.relations) {
    const target = relation.target();
    const key = relation.kind === 'one' ? relation.to : relation.by;
    const field = target.fields.find((candidate) => candidate.name === key);
    if (!field) throw new ModelDefinitionError(model.name, `relation "${relation.name}": ${target.name} has no field "${key}"`);
    if (field.encrypted) throw new ModelDefinitionError(model.name, `relation "${relation.name}": ${target.name}.${key} is encrypted and cannot be joined on`);
  }
}

export function dataFeature(handles: readonly ModelHandle[]): Feature {
  const definitions = new Map<Function, ModelDefinition>();
  const byEntity = (entity: Function): ModelDefinition => {
    const definition = definitions.get(entity);
    if (!definition) throw new ModelDefinitionError(entity.name, 'is named in a relation but not registered in src/models/index.ts');
    return definition;
  };
  for (const handle of handles) definitions.set(handle.entity, resolveModel(handle, byEntity));
  const models = [...definitions.values()];
  for (const model of models) checkRelations(model);
  const generated = models.map((model) => ({ model, schema: generateModelSchema(model) }));

  const rules: RuleTree = mergeRuleTrees(
    generated.map(({ model, schema }): RuleTree => ({
      ...modelRules(model.access, schema.operations, relationRules(model)),
      // Structure only: every node inside is guarded by its own field rules.
      [schema.connectionType]: { edges: isPublic, pageInfo: isPublic, totalCount: isPublic },
      [schema.edgeType]: { cursor: isPublic, node: isPublic },
    })),
  );
  return {
    name: 'data',
    resolvers: generated.map(({ schema }) => schema.resolver),
    rules,
    wire: ({ dataSource }) => {
      const store = new ModelStore(dataSource);
      return generated.map(({ schema }) => new schema.resolver(store));
    },
    models: models.map((model) => model.access),
  };
}
