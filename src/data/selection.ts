import {
  FieldNode,
  GraphQLIncludeDirective,
  GraphQLResolveInfo,
  GraphQLSkipDirective,
  Kind,
  SelectionSetNode,
  getDirectiveValues,
} from 'graphql';

/**
 * What a query asks of a value: the fields selected on it, by field name (aliases merged), each
 * with its own selection (null for a leaf). The data API reads only these columns, joins only the
 * relations asked for, and decides and decrypts only these fields.
 */
export interface Selection {
  readonly fields: ReadonlyMap<string, Selection | null>;
}

/** Every field, when no query says which (a row a write returns to code, not to a client). */
export const EVERYTHING = Symbol('bastion.everything');
export type Wanted = Selection | typeof EVERYTHING;

export function wants(selection: Wanted, field: string): boolean {
  return selection === EVERYTHING || selection.fields.has(field);
}

export function subSelection(selection: Wanted, field: string): Wanted {
  if (selection === EVERYTHING) return EVERYTHING;
  return selection.fields.get(field) ?? EVERYTHING;
}

interface Collected {
  readonly selection: Selection;
  /** An @skip or @include read a variable: the selection holds for these variables only. */
  readonly variable: boolean;
}

/** Per field node of a parsed document (Apollo keeps documents, so the nodes are the same objects every request). */
const cache = new WeakMap<FieldNode, { nodes: readonly FieldNode[]; selection: Selection }>();

/** The selection under the field being resolved (merged across its field nodes), fragments and directives applied. */
export function selectionOf(info: Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments' | 'variableValues'>): Selection {
  const first = info.fieldNodes[0];
  const cached = cache.get(first);
  if (cached && sameNodes(cached.nodes, info.fieldNodes)) return cached.selection;
  const collected = collect(
    info.fieldNodes.map((node) => node.selectionSet),
    info,
  );
  if (!collected.variable) cache.set(first, { nodes: [...info.fieldNodes], selection: collected.selection });
  return collected.selection;
}

function sameNodes(a: readonly FieldNode[], b: readonly FieldNode[]): boolean {
  return a.length === b.length && a.every((node, index) => node === b[index]);
}

function collect(
  sets: readonly (SelectionSetNode | undefined)[],
  info: Pick<GraphQLResolveInfo, 'fragments' | 'variableValues'>,
): Collected {
  const byField = new Map<string, (SelectionSetNode | undefined)[]>();
  let variable = false;
  const included = (node: { directives?: readonly { arguments?: readonly { value: { kind: Kind } }[] }[] }): boolean => {
    if (!node.directives || node.directives.length === 0) return true;
    if (node.directives.some((directive) => directive.arguments?.some((argument) => argument.value.kind === Kind.VARIABLE)))
      variable = true;
    const skip = getDirectiveValues(GraphQLSkipDirective, node as never, info.variableValues);
    if (skip?.if === true) return false;
    const include = getDirectiveValues(GraphQLIncludeDirective, node as never, info.variableValues);
    return include?.if !== false;
  };
  const visit = (set: SelectionSetNode | undefined, seenFragments: ReadonlySet<string>): void => {
    for (const selection of set?.selections ?? []) {
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (name === '__typename') continue;
        let nested = byField.get(name);
        if (!nested) byField.set(name, (nested = []));
        nested.push(selection.selectionSet);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet, seenFragments);
      } else {
        const name = selection.name.value;
        const fragment = info.fragments[name];
        // Validation refuses cycles; the guard keeps a bug from recursing forever.
        if (fragment && !seenFragments.has(name)) visit(fragment.selectionSet, new Set([...seenFragments, name]));
      }
    }
  };
  for (const set of sets) visit(set, new Set());
  const fields = new Map<string, Selection | null>();
  for (const [name, nested] of byField) {
    if (nested.every((set) => set === undefined)) {
      fields.set(name, null);
      continue;
    }
    const inner = collect(nested, info);
    if (inner.variable) variable = true;
    fields.set(name, inner.selection);
  }
  return { selection: { fields }, variable };
}
