import type { MfaRequirement } from './access.settings';
import { ADMIN_ROLE, ANONYMOUS_ROLE } from '../accounts/roles';
import type { Action, Grant, RoleDefinition } from './decision';

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
