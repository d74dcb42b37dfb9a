import type { RuleTree, ShieldRule } from './shield';
import { ALL_FIELDS, ModelAccessSpec, fieldMaskOf } from './model-access';
import type { Action } from './policy';
import { syncRule } from './rules';

/** The root fields that expose a model, by the action they need. */
export interface ModelOperations {
  readonly query?: Readonly<Record<string, 'read'>>;
  readonly mutation?: Readonly<Record<string, Exclude<Action, 'read'>>>;
}

/**
 * The shield rules for one model, compiled from its spec (`relations`: relation field → target model): each root field needs a grant for its
 * action (decided once per request), and each field of the type is readable when the row's mask,
 * decided once per row by the loader that scoped it, includes it. A row that reached the client
 * by any other path has no mask and shows nothing (fail closed).
 */
export interface RelationRule {
  /** The related model: the viewer needs a READ grant on it. */
  readonly target: string;
  /** A field of this row the relation follows (a many-to-one's key): it must be readable too, or the relation would reveal it. */
  readonly via?: string;
}

export function modelRules(spec: ModelAccessSpec, operations: ModelOperations, relations: Readonly<Record<string, RelationRule>> = {}): RuleTree {
  // One rule per action (shield refuses two different rules under one name).
  const actionRules = new Map<Action, ShieldRule>();
  const canAct = (action: Action): ShieldRule => {
    let actionRule = actionRules.get(action);
    if (!actionRule) {
      actionRule = syncRule(`can${capitalize(action)}:${spec.name}`, (_parent, _args, context) => context.access.check(spec.name, action));
      actionRules.set(action, actionRule);
    }
    return actionRule;
  };
  const tree: RuleTree = { [spec.name]: {} };
  for (const [section, fields] of [['Query', operations.query], ['Mutation', operations.mutation]] as const) {
    for (const [field, action] of Object.entries(fields ?? {})) (tree[section] ??= {})[field] = canAct(action);
  }
  const readable = (row: unknown, field: string) => {
    const mask = fieldMaskOf(row);
    return mask === ALL_FIELDS || (mask !== undefined && mask.has(field));
  };
  for (const field of spec.readableFields) {
    const relation = relations[field];
    // A relation field shows rows of another model: the viewer also needs a READ grant on it (rows are then scoped by the loader).
    tree[spec.name][field] = relation
      ? syncRule(`canReadRelation:${spec.name}.${field}`, (row, _args, context) => readable(row, field) && (relation.via === undefined || readable(row, relation.via)) && context.access.check(relation.target, 'read'))
      : syncRule(`canReadField:${spec.name}.${field}`, (row) => readable(row, field));
  }
  return tree;
}

function capitalize(word: string): string {
  return word[0].toUpperCase() + word.slice(1);
}
