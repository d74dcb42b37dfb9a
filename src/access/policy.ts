import type { MfaRequirement } from '../config';
import type { Viewer } from '../context';
import type { AppError } from '../errors';
import { ADMIN_ROLE, ANONYMOUS_ROLE, USER_ROLE, mfaRequired } from '../shield/roles';
import { ModelAccessSpec, ModelScope } from './model-access';

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
}

const DENIED: ModelDecision = Object.freeze({ allowed: false, mfaRequired: false, clauses: [], unrestricted: false });

/** Does the role need an aal2 session, as configured? Built-ins follow BASTION_MFA_REQUIRED_FOR. */
export function requiresMfa(role: { name: string; requireMfa: boolean }, requirement: MfaRequirement): boolean {
  if (role.name === ANONYMOUS_ROLE) return false;
  if (requirement === 'all') return true;
  if (requirement === 'admin' && role.name === ADMIN_ROLE) return true;
  return role.requireMfa;
}

/**
 * The whole policy at one moment: roles and grants, indexed for the per-request decisions.
 * Immutable; a change loads a new one (PolicyService).
 */
export class Policy {
  private readonly rolesByName: ReadonlyMap<string, RoleDefinition>;
  private readonly grantsByModelAction = new Map<string, Grant[]>();

  constructor(
    roles: readonly RoleDefinition[],
    readonly grants: readonly Grant[],
  ) {
    this.rolesByName = new Map(roles.map((role) => [role.name, role]));
    for (const grant of grants) {
      const key = `${grant.model}:${grant.action}`;
      const list = this.grantsByModelAction.get(key);
      if (list) list.push(grant);
      else this.grantsByModelAction.set(key, [grant]);
    }
  }

  get roles(): RoleDefinition[] {
    return [...this.rolesByName.values()];
  }

  role(name: string): RoleDefinition | undefined {
    return this.rolesByName.get(name);
  }

  grantsFor(model: string, action: Action): readonly Grant[] {
    return this.grantsByModelAction.get(`${model}:${action}`) ?? [];
  }
}

/**
 * One request's view of the policy: the roles in force for this viewer (a role that requires MFA
 * grants nothing to an aal1 session: it is held back), and the decisions, made once per model and
 * action however many rows and fields the response has.
 */
export class AccessView {
  readonly rolesInForce: ReadonlySet<string>;
  readonly rolesHeldBack: ReadonlySet<string>;
  private readonly decisions = new Map<string, ModelDecision>();

  /**
   * `adminNetwork`: the request comes from a network where the admin role may be used
   * (ADMIN_ALLOWED_CIDRS); from anywhere else an admin acts as a plain user.
   */
  constructor(
    readonly policy: Policy,
    readonly viewer: Viewer,
    options: { adminNetwork?: boolean } = {},
  ) {
    const held = (viewer.userId === null ? [ANONYMOUS_ROLE] : [ANONYMOUS_ROLE, USER_ROLE, ...viewer.roles]).filter(
      (role) => role !== ADMIN_ROLE || options.adminNetwork !== false,
    );
    const inForce = new Set<string>();
    const heldBack = new Set<string>();
    for (const name of held) {
      const role = policy.role(name);
      if (!role) continue; // deleted since the session cache loaded it
      if (role.requireMfa && viewer.aal < 2) heldBack.add(name);
      else inForce.add(name);
    }
    this.rolesInForce = inForce;
    this.rolesHeldBack = heldBack;
  }

  /** The viewer acts with this role now (not merely holds it). */
  actsAs(role: string): boolean {
    return this.rolesInForce.has(role);
  }

  /**
   * true when the viewer acts as `role`; MFA_REQUIRED when they hold it but it is held back;
   * false otherwise. Shaped for a shield rule.
   */
  checkRole(role: string): true | false | AppError {
    if (this.rolesInForce.has(role)) return true;
    if (this.rolesHeldBack.has(role)) return mfaRequired();
    return false;
  }

  decide(model: string, action: Action): ModelDecision {
    const key = `${model}:${action}`;
    let decision = this.decisions.get(key);
    if (!decision) {
      decision = this.compute(model, action);
      this.decisions.set(key, decision);
    }
    return decision;
  }

  /** Shaped for a shield rule: true, MFA_REQUIRED, or false (FORBIDDEN / UNAUTHENTICATED). */
  check(model: string, action: Action): true | false | AppError {
    const decision = this.decide(model, action);
    if (decision.allowed) return true;
    return decision.mfaRequired ? mfaRequired() : false;
  }

  /** Row scoping and field masks for one of the model's actions (see ModelScope). */
  scope(spec: ModelAccessSpec, action: Action): ModelScope {
    return new ModelScope(spec, this.decide(spec.name, action), this.viewer.userId);
  }

  private compute(model: string, action: Action): ModelDecision {
    const grants = this.policy.grantsFor(model, action);
    if (grants.length === 0) return DENIED;
    const clauses: AccessClause[] = [];
    let heldBack = false;
    for (const grant of grants) {
      if (grant.scope === 'own' && this.viewer.userId === null) continue; // anonymous viewers own nothing
      if (this.rolesInForce.has(grant.role)) {
        clauses.push({ own: grant.scope === 'own', filter: grant.filter, fields: grant.fields ? new Set(grant.fields) : null });
      } else if (this.rolesHeldBack.has(grant.role)) {
        heldBack = true;
      }
    }
    if (clauses.length === 0) return { ...DENIED, mfaRequired: heldBack };
    const unrestricted = clauses.some((clause) => !clause.own && clause.filter === null && clause.fields === null);
    return { allowed: true, mfaRequired: false, clauses, unrestricted };
  }
}
