import type { Access } from '../context';
import { Action, mfaRequired } from './decision';
import type { RuleTree, ShieldRule } from '../shield/shield';
import { ALL_FIELDS, FieldMask, ModelAccessSpec, fieldMaskOf, withheldFrom } from './model-access';
import { Decision, RowProjection, syncRule } from '../shield/rules';

/** The root fields that expose a model, by the action they need. */
export interface ModelOperations {
  readonly query?: Readonly<Record<string, 'read'>>;
  readonly mutation?: Readonly<Record<string, Exclude<Action, 'read'>>>;
  /** Checked when a subscription starts; each change it delivers is decided per row and field like a query's. */
  readonly subscription?: Readonly<Record<string, 'read'>>;
}

/** A relation field of a model: the viewer needs a READ grant on the related model. */
export interface RelationRule {
  /** The related model: the viewer needs a READ grant on it. */
  readonly target: string;
  /** A field of this row the relation follows (a many-to-one's key): it must be readable too, or the relation would reveal it. */
  readonly via?: string;
}

/**
 * The decision of one field of a model's rows, from the row's field mask (decided once per row,
 * when the row was loaded) and the request's Access. It is the shield rule's own decision:
 * graphql-shield runs it per field through `fieldMaskOf(row)`, and the data API, which knows the
 * mask of a whole page at once, runs the very same function once per distinct mask instead.
 */
export interface RowFieldRule {
  readonly model: string;
  readonly field: string;
  /**
   * null: shield decides the field per row, before its resolver runs (a field that takes
   * arguments). Otherwise the data API answers the field for every row itself (its projection asks
   * `decide` once per distinct mask) and the schema serves the answer without shield's wrapper
   * (protectSchema): `value`, a plain property; `loaded`, a property that may hold a pending load.
   */
  readonly projection: RowProjection | null;
  decide(mask: FieldMask | undefined, access: Access): Decision;
}

/** A shield rule that also carries its row decision. */
export type RowRule = ShieldRule & { readonly row: RowFieldRule };

export function isRowRule(rule: unknown): rule is RowRule {
  return typeof rule === 'object' && rule !== null && typeof (rule as { row?: RowFieldRule }).row?.decide === 'function';
}

function readable(mask: FieldMask | undefined, field: string): boolean {
  return mask === ALL_FIELDS || (mask !== undefined && mask.has(field));
}

/** Readable on an aal2 session: in the mask, or withheld from it only because a role that requires MFA is held back. */
function readableWithMfa(mask: FieldMask | undefined, field: string): boolean {
  const withheld = withheldFrom(mask);
  return readable(mask, field) || (withheld !== undefined && readable(withheld, field));
}

/**
 * The rule of each readable field of a model: readable when the row's mask includes it; a relation
 * field also needs a READ grant on the related model (rows are then scoped by the loader) and, for
 * a many-to-one, its key readable in this row. A row that reached a field by any other path has no
 * mask and shows nothing (fail closed). `projections`: the fields the data API decides for whole
 * pages, and how it serves them (see RowFieldRule); the others are decided by shield per row.
 */
export function modelRowRules(
  spec: ModelAccessSpec,
  relations: Readonly<Record<string, RelationRule>> = {},
  projections: Readonly<Record<string, RowProjection>> = {},
): ReadonlyMap<string, RowRule> {
  const rules = new Map<string, RowRule>();
  for (const field of spec.readableFields) {
    const relation = relations[field];
    // Refused, but a held-back role would show it: MFA_REQUIRED (the app asks for the second factor), not FORBIDDEN.
    const decide = relation
      ? (mask: FieldMask | undefined, access: Access): Decision => {
          if (readable(mask, field) && (relation.via === undefined || readable(mask, relation.via)))
            return access.check(relation.target, 'read');
          if (!readableWithMfa(mask, field) || (relation.via !== undefined && !readableWithMfa(mask, relation.via))) return false;
          return access.check(relation.target, 'read') === false ? false : mfaRequired();
        }
      : (mask: FieldMask | undefined): Decision => readable(mask, field) || (readableWithMfa(mask, field) && mfaRequired());
    const name = relation ? `canReadRelation:${spec.name}.${field}` : `canReadField:${spec.name}.${field}`;
    const row: RowFieldRule = {
      model: spec.name,
      field,
      projection: Object.hasOwn(projections, field) ? projections[field] : null,
      decide,
    };
    rules.set(
      field,
      Object.assign(
        syncRule(name, (parent, _args, context) => decide(fieldMaskOf(parent), context.access)),
        { row },
      ),
    );
  }
  return rules;
}

/**
 * The shield rules for one model, compiled from its spec: each root field needs a grant for its
 * action (decided once per request), and each field of the type is decided by its row rule.
 */
export function modelRules(
  spec: ModelAccessSpec,
  operations: ModelOperations,
  rowRules: ReadonlyMap<string, RowRule> = modelRowRules(spec),
): RuleTree {
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
  const tree: RuleTree = { [spec.name]: Object.fromEntries(rowRules) };
  for (const [section, fields] of [
    ['Query', operations.query],
    ['Mutation', operations.mutation],
    ['Subscription', operations.subscription],
  ] as const) {
    for (const [field, action] of Object.entries(fields ?? {})) (tree[section] ??= {})[field] = canAct(action);
  }
  return tree;
}

function capitalize(word: string): string {
  return word[0].toUpperCase() + word.slice(1);
}
