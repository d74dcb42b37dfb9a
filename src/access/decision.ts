import { AppError } from '../errors';

/** What the permission layer decides with: actions, grants, and one viewer's decision for one model and action. */

export const ACTIONS = ['read', 'create', 'update', 'delete'] as const;
export type Action = (typeof ACTIONS)[number];
export const SCOPES = ['own', 'all'] as const;
export type Scope = (typeof SCOPES)[number];

export interface RoleDefinition {
  readonly name: string;
  readonly description: string | null;
  readonly builtIn: boolean;
  /** As enforced: the role's own flag, or BASTION_MFA_REQUIRED_FOR. */
  readonly requireMfa: boolean;
}

/** One row of `permission_grants`: a role may do `action` on `model`'s rows in `scope`. */
export interface Grant {
  readonly id: string;
  readonly role: string;
  readonly model: string;
  readonly action: Action;
  readonly scope: Scope;
  /** The fields it covers; null means all of them. */
  readonly fields: readonly string[] | null;
  /** A row filter the model defines in code, narrowing the scope (e.g. "published"). */
  readonly filter: string | null;
}

/** What one grant contributes for one viewer: which rows, which fields. */
export interface AccessClause {
  /** Only rows the viewer owns. */
  readonly own: boolean;
  readonly filter: string | null;
  /** null: every field. */
  readonly fields: ReadonlySet<string> | null;
}

/** The viewer's rights for one action on one model, decided once per request. */
export interface ModelDecision {
  readonly allowed: boolean;
  /** Denied now, but a role the viewer holds would allow it on a session confirmed with the second factor. */
  readonly mfaRequired: boolean;
  readonly clauses: readonly AccessClause[];
  /** One clause covers every row with every field: rows need no per-row work. */
  readonly unrestricted: boolean;
  /**
   * What the roles held back (they require MFA, the session is aal1) would add: they grant nothing,
   * they only turn a refusal they would lift into MFA_REQUIRED (a field of a row, a field of a write).
   */
  readonly heldBack?: readonly AccessClause[];
}

/** The answer to a viewer who holds a role that needs a session confirmed with the second factor. */
export function mfaRequired(): AppError {
  return new AppError(
    'MFA_REQUIRED',
    'This needs a session confirmed with your second factor: sign in again and complete verifyMfa (enroll one with enrollTotp first if you have none).',
  );
}
