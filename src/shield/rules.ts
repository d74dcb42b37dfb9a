import type { GraphQLResolveInfo } from 'graphql';
import { rule } from 'graphql-shield';
import type { Context } from '../context';
import type { AppError } from '../errors';

/** A rule's answer: true allows; an AppError is the field's error (e.g. MFA_REQUIRED); false denies (FORBIDDEN / UNAUTHENTICATED). */
export type Decision = boolean | AppError;
export type Decide<TParent = unknown> = (
  parent: TParent,
  args: Record<string, unknown>,
  context: Context,
  info: GraphQLResolveInfo,
) => Decision;

/**
 * A graphql-shield rule that decides synchronously, from the request's AccessView and the parent
 * object. Bastion's patched shield runs it without turning the field into a promise (see README
 * "Decisions"); unpatched, shield runs the same function on its async path. Never cached
 * (`no_cache`), so a rule reading `parent` or `args` is always safe (docs/security.md#perm-5).
 */
export function syncRule<TParent = unknown>(name: string, decide: Decide<TParent>) {
  const decideAndLog: Decide<TParent> = (parent, args, context, info) => {
    const decision = decide(parent, args, context, info);
    // A denial carrying its own error (MFA_REQUIRED) skips shield's fallbackError, which logs the others.
    if (decision instanceof Error)
      context.logger.info(
        { field: `${info.parentType.name}.${info.fieldName}`, userId: context.viewer.userId, code: decision.code },
        'access denied',
      );
    return decision;
  };
  return Object.assign(rule(name, { cache: 'no_cache' })(decideAndLog as never), { decideSync: decideAndLog });
}

/**
 * Anyone, signed in or not, may read this. Every use is a deliberate decision visible in review
 * (docs/security.md#perm-3: a type-level allow reopens field leaks).
 */
export const isPublic = syncRule('isPublic', () => true);

/** How the data API serves a field it decides for whole pages: a plain property, or one that may hold a pending load. */
export type RowProjection = 'value' | 'loaded';

/**
 * A field rule the data API decides itself, once per distinct field mask of a page (see
 * access/model-rules.ts): `protectSchema` then serves the field without shield's wrapper.
 */
export interface ProjectedFieldRule {
  readonly row: { readonly projection: RowProjection | null };
}

/** How a rule's field is served when the data API decides it; null for every other rule. */
export function projectionOf(rule: unknown): RowProjection | null {
  const row = typeof rule === 'object' && rule !== null ? (rule as Partial<ProjectedFieldRule>).row : undefined;
  return row?.projection ?? null;
}
