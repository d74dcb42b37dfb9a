import type { Access } from '../context';
import type { Viewer } from '../accounts/viewer';
import type { AppError } from '../errors';
import { ADMIN_ROLE, ANONYMOUS_ROLE, USER_ROLE } from '../accounts/roles';
import { AccessClause, Action, ModelDecision, mfaRequired } from './decision';
import { ModelAccessSpec, ModelScope } from './model-access';
import type { Policy } from './policy';

declare module '../context' {
  /** The access feature's part of a request's rights: the policy in force and its per-model decisions. */
  interface Access {
    readonly policy: Policy;
    actsAs(role: string): boolean;
    decide(model: string, action: Action): ModelDecision;
    check(model: string, action: Action): true | false | AppError;
    scope(spec: ModelAccessSpec, action: Action): ModelScope;
  }
}

const DENIED: ModelDecision = Object.freeze({ allowed: false, mfaRequired: false, clauses: [], unrestricted: false });

/**
 * One request's view of the policy: the roles in force for this viewer (a role that requires MFA
 * grants nothing to an aal1 session: it is held back), and the decisions, made once per model and
 * action however many rows and fields the response has.
 */
export class AccessView implements Access {
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
    const heldBack: AccessClause[] = [];
    for (const grant of grants) {
      if (grant.scope === 'own' && this.viewer.userId === null) continue; // anonymous viewers own nothing
      const clause = { own: grant.scope === 'own', filter: grant.filter, fields: grant.fields ? new Set(grant.fields) : null };
      if (this.rolesInForce.has(grant.role)) clauses.push(clause);
      else if (this.rolesHeldBack.has(grant.role)) heldBack.push(clause);
    }
    if (clauses.length === 0) return { ...DENIED, mfaRequired: heldBack.length > 0 };
    const unrestricted = clauses.some((clause) => !clause.own && clause.filter === null && clause.fields === null);
    // Unrestricted: every row shows every field already, a held-back role adds nothing.
    return { allowed: true, mfaRequired: false, clauses, unrestricted, heldBack: unrestricted ? [] : heldBack };
  }
}
