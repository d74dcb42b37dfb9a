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
export function modelRules(spec: ModelAccessSpec, operations: ModelOperations, relations: Readonly<Record<string, string>> = {}): RuleTree {
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
  for (const field of spec.readableFields) {
    const readable = (row: unknown) => {
      const mask = fieldMaskOf(row);
      return mask === ALL_FIELDS || (mask !== undefined && mask.has(field));
    };
    const target = relations[field];
    // A relation field shows rows of another model: the viewer also needs a READ grant on it (rows are then scoped by the loader).
    tree[spec.name][field] = target
      ? syncRule(`canReadRelation:${spec.name}.${field}`, (row, _args, context) => readable(row) && context.access.check(target, 'read'))
      : syncRule(`canReadField:${spec.name}.${field}`, readable);
  }
  return tree;
}

function capitalize(word: string): string {
  return word[0].toUpperCase() + word.slice(1);
}
