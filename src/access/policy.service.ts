import { DataSource, EntityManager } from 'typeorm';
import type { AssuranceRequirement } from '../accounts/assurance-requirement';
import type { SessionCache } from '../accounts/session-cache';
import type { Actor } from '../audit/actor';
import { lockUserRow } from '../accounts/user-lock';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { MfaRequirement } from './access.settings';
import type { Notifications } from '../db/notifications';
import { NotifiedCache } from '../db/notified-cache';
import { conflictOnDuplicate } from '../db/unique-violation';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import type { ModelAccessSpec } from './model-access';
import { PermissionGrantRow, PolicySeed } from './permission-grant.entity';
import { keepAnActiveAdmin } from '../accounts/admins';
import { Policy, requiresMfa } from './policy';
import { Action, Grant, RoleDefinition, Scope } from './decision';
import { ADMIN_ROLE, ANONYMOUS_ROLE, USER_ROLE } from '../accounts/roles';
import { Role } from '../accounts/role.entity';
import { UserRole } from '../accounts/user-role.entity';

export const POLICY_CHANNEL = 'bastion_policy';

/** A loaded policy is used at most this long even if an invalidation message was lost. */
const MAX_AGE_MS = 60_000;
const ROLE_NAME = /^[a-z][a-z0-9_-]{1,39}$/;

export interface NewRole {
  readonly name: string;
  readonly description?: string | null;
  readonly requireMfa?: boolean;
}

export interface NewGrant {
  readonly role: string;
  readonly model: string;
  readonly action: Action;
  readonly scope: Scope;
  readonly fields?: readonly string[] | null;
  readonly filter?: string | null;
}

/**
 * Roles, role membership and permission grants: the policy as data. Every
 * change runs in one transaction with its audit row and a NOTIFY, so every instance loads the new
 * policy at its next request; role membership lives in the session cache, which is told too.
 */
export class PolicyService implements AssuranceRequirement {
  private readonly models = new Map<string, ModelAccessSpec>();
  private readonly cache: NotifiedCache<Policy>;

  constructor(
    private readonly dataSource: DataSource,
    clock: Clock,
    private readonly audit: AuditLog,
    private readonly sessionCache: SessionCache,
    private readonly mfaRequiredFor: MfaRequirement,
    notifications: Notifications,
  ) {
    this.cache = new NotifiedCache(POLICY_CHANNEL, () => this.load(), clock, notifications, { maxAgeMs: MAX_AGE_MS });
  }

  /** The policy in force: cached, reloaded after any change on any instance. */
  current(): Promise<Policy> {
    return this.cache.current();
  }

  /** Does any of these roles need an aal2 session, as enforced now (accounts asks after a password sign-in)? */
  async rolesNeedSecondFactor(roles: readonly string[]): Promise<boolean> {
    const policy = await this.current();
    return roles.some((name) => policy.role(name)?.requireMfa === true);
  }

  invalidate(): void {
    this.cache.invalidate();
  }

  /**
   * Registers the models and writes each one's code defaults the first time it is seen (one
   * transaction per model; a concurrent instance waits on the seed row and then skips it).
   */
  async registerModels(specs: readonly ModelAccessSpec[]): Promise<void> {
    for (const spec of specs) {
      if (this.models.has(spec.name)) throw new Error(`Model ${spec.name} is registered twice`);
      this.models.set(spec.name, spec);
    }
    for (const spec of specs) {
      const seeded = await this.dataSource.transaction(async (manager) => {
        const inserted: unknown[] = await manager
          .createQueryBuilder()
          .insert()
          .into(PolicySeed)
          .values({ model: spec.name })
          .orIgnore()
          .returning('model')
          .execute()
          .then((result) => result.raw as unknown[]);
        if (inserted.length === 0) return false;
        for (const grant of spec.defaults) {
          const row = await this.insertGrant(manager, { ...grant, model: spec.name }, null);
          await this.auditGrant(
            manager,
            'grant_added',
            row,
            { actorId: null, ipAddress: null, userAgent: null, requestId: null },
            { source: 'model_defaults' },
          );
        }
        await this.cache.announce(manager);
        return true;
      });
      if (seeded) this.invalidate();
    }
  }

  async createRole(input: NewRole, actor: Actor): Promise<RoleDefinition> {
    const name = input.name.trim();
    if (!ROLE_NAME.test(name))
      throw new AppError(
        'BAD_USER_INPUT',
        'A role name is 2–40 characters: lower-case letters, digits, "-" and "_", starting with a letter.',
        { details: { field: 'name' } },
      );
    const description = input.description?.trim() || null;
    const requireMfa = input.requireMfa ?? false;
    await this.change(async (manager) => {
      await conflictOnDuplicate(
        () => manager.insert(Role, { name, description, builtIn: false, requireMfa }),
        `A role named "${name}" already exists.`,
      );
      await this.audit.append(manager, {
        action: 'role_created',
        outcome: 'success',
        targetType: 'role',
        targetId: name,
        metadata: { requireMfa },
        ...actor,
      });
    });
    return { name, description, builtIn: false, requireMfa: requiresMfa({ name, requireMfa }, this.mfaRequiredFor) };
  }

  /** Deletes a custom role with its grants and memberships; its members lose it at their next request. */
  async deleteRole(name: string, actor: Actor): Promise<void> {
    await this.change(async (manager) => {
      const role = await manager.findOne(Role, { where: { name }, lock: { mode: 'pessimistic_write' } });
      if (!role) throw new AppError('NOT_FOUND', `No role named "${name}".`);
      if (role.builtIn)
        throw new AppError('BAD_USER_INPUT', `"${name}" is a built-in role and cannot be deleted.`, { details: { field: 'name' } });
      const members = await manager.find(UserRole, { where: { roleName: name }, select: { userId: true } });
      const grants = await manager.count(PermissionGrantRow, { where: { roleName: name } });
      await manager.delete(Role, { name });
      await this.announceMembers(
        manager,
        members.map((member) => member.userId),
      );
      await this.audit.append(manager, {
        action: 'role_deleted',
        outcome: 'success',
        targetType: 'role',
        targetId: name,
        metadata: { members: members.length, grants },
        ...actor,
      });
    });
  }

  /** Gives a user a role; in force at their next request. Assigning a role they hold changes nothing. */
  async assignRole(userId: string, roleName: string, actor: Actor): Promise<void> {
    this.assignable(roleName);
    await this.change(async (manager) => {
      await this.lockUser(manager, userId);
      await this.lockRole(manager, roleName);
      const result = await manager
        .createQueryBuilder()
        .insert()
        .into(UserRole)
        .values({ userId, roleName })
        .orIgnore()
        .returning('user_id')
        .execute();
      if ((result.raw as unknown[]).length === 0) return;
      await this.announceMembers(manager, [userId]);
      await this.audit.append(manager, {
        action: 'role_assigned',
        outcome: 'success',
        targetType: 'user',
        targetId: userId,
        metadata: { role: roleName },
        ...actor,
      });
    });
  }

  /** Takes a role away; in force at the user's next request. The last admin keeps theirs. */
  async unassignRole(userId: string, roleName: string, actor: Actor): Promise<void> {
    this.assignable(roleName);
    await this.change(async (manager) => {
      await this.lockUser(manager, userId);
      await this.lockRole(manager, roleName);
      if (roleName === ADMIN_ROLE) await keepAnActiveAdmin(manager, userId);
      const { affected } = await manager.delete(UserRole, { userId, roleName });
      if (!affected) return;
      await this.announceMembers(manager, [userId]);
      await this.audit.append(manager, {
        action: 'role_unassigned',
        outcome: 'success',
        targetType: 'user',
        targetId: userId,
        metadata: { role: roleName },
        ...actor,
      });
    });
  }

  async grantPermission(input: NewGrant, actor: Actor): Promise<Grant> {
    let row: PermissionGrantRow | undefined;
    await this.change(async (manager) => {
      await this.lockRole(manager, input.role);
      row = await this.insertGrant(manager, input, actor.actorId);
      await this.auditGrant(manager, 'grant_added', row, actor, { source: 'admin' });
    });
    return grantOf(row!);
  }

  async revokePermission(id: string, actor: Actor): Promise<void> {
    await this.change(async (manager) => {
      const row = isUuid(id) ? await manager.findOne(PermissionGrantRow, { where: { id }, lock: { mode: 'pessimistic_write' } }) : null;
      if (!row) throw new AppError('NOT_FOUND', 'No permission grant with this id.');
      await manager.delete(PermissionGrantRow, { id });
      await this.auditGrant(manager, 'grant_removed', row, actor, {});
    });
  }

  /** Roles and grants from one snapshot, so a grant is never paired with a role it did not belong to. */
  private async load(): Promise<Policy> {
    const [roles, grants] = await this.dataSource.transaction(
      'REPEATABLE READ',
      async (manager) =>
        [
          await manager.find(Role, { order: { name: 'ASC' } }),
          await manager.find(PermissionGrantRow, { order: { model: 'ASC', action: 'ASC', roleName: 'ASC', createdAt: 'ASC' } }),
        ] as const,
    );
    return new Policy(
      roles.map((role) => ({
        name: role.name,
        description: role.description,
        builtIn: role.builtIn,
        requireMfa: requiresMfa(role, this.mfaRequiredFor),
      })),
      grants.map(grantOf),
    );
  }

  /** One transaction that changes the policy: every instance reloads after commit (this one at once). */
  private async change(work: (manager: EntityManager) => Promise<void>): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await work(manager);
      await this.cache.announce(manager);
    });
    this.invalidate();
  }

  private assignable(roleName: string): void {
    if (roleName === ANONYMOUS_ROLE || roleName === USER_ROLE) {
      throw new AppError(
        'BAD_USER_INPUT',
        `"${roleName}" is implicit: ${roleName === USER_ROLE ? 'every signed-in account holds it' : 'it is the role of signed-out viewers'}.`,
        { details: { field: 'role' } },
      );
    }
  }

  private async lockUser(manager: EntityManager, userId: string): Promise<void> {
    if (!(await lockUserRow(manager, userId))) throw new AppError('NOT_FOUND', 'No user with this id.');
  }

  /** Holds the role until commit (a concurrent deleteRole waits), or NOT_FOUND. */
  private async lockRole(manager: EntityManager, name: string): Promise<void> {
    if (!(await manager.findOne(Role, { where: { name }, lock: { mode: 'pessimistic_read' } })))
      throw new AppError('NOT_FOUND', `No role named "${name}".`);
  }

  private async announceMembers(manager: EntityManager, userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.sessionCache.announce(manager, { userIds });
  }

  private async insertGrant(manager: EntityManager, input: NewGrant, createdBy: string | null): Promise<PermissionGrantRow> {
    const grant = this.validGrant(input);
    // Two identical grants sent at once must not both pass the duplicate check: serialise per (role, model, action).
    await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`grant:${grant.role}:${grant.model}:${grant.action}`]);
    const existing = await manager
      .createQueryBuilder(PermissionGrantRow, 'grant')
      .where('grant.role_name = :role AND grant.model = :model AND grant.action = :action AND grant.scope = :scope', grant)
      .andWhere('grant.filter IS NOT DISTINCT FROM :filter AND grant.fields IS NOT DISTINCT FROM :fields', {
        filter: grant.filter,
        fields: grant.fields,
      })
      .getOne();
    if (existing) throw new AppError('CONFLICT', `An identical grant exists (id ${existing.id}).`);
    return manager.save(
      Object.assign(new PermissionGrantRow(), {
        roleName: grant.role,
        model: grant.model,
        action: grant.action,
        scope: grant.scope,
        fields: grant.fields,
        filter: grant.filter,
        createdBy,
      }),
    );
  }

  /** Checks a grant against the model it names; fields are de-duplicated and sorted. */
  private validGrant(input: NewGrant): Omit<Grant, 'id'> {
    const spec = this.models.get(input.model);
    if (!spec) {
      const known = [...this.models.keys()].sort().join(', ') || 'none yet';
      throw new AppError('BAD_USER_INPUT', `Unknown model "${input.model}". Models: ${known}.`, { details: { field: 'model' } });
    }
    if (input.scope === 'own' && spec.ownerField === null)
      throw new AppError('BAD_USER_INPUT', `${spec.name} rows have no owner: use scope ALL.`, { details: { field: 'scope' } });
    if (input.scope === 'own' && input.role === ANONYMOUS_ROLE)
      throw new AppError('BAD_USER_INPUT', 'Signed-out viewers own nothing: use scope ALL for anonymous.', { details: { field: 'scope' } });
    if (input.action === 'create' && input.role === ANONYMOUS_ROLE && spec.ownerField !== null)
      throw new AppError(
        'BAD_USER_INPUT',
        `${spec.name} rows have an owner, and signed-out viewers cannot be one: grant CREATE to signed-in roles.`,
        { details: { field: 'action' } },
      );
    const filter = input.filter ?? null;
    if (filter !== null && !Object.hasOwn(spec.filters, filter)) {
      const known = Object.keys(spec.filters).sort().join(', ') || 'none';
      throw new AppError('BAD_USER_INPUT', `${spec.name} has no row filter "${filter}". Filters: ${known}.`, {
        details: { field: 'filter' },
      });
    }
    let fields: string[] | null = null;
    if (input.fields != null) {
      if (input.action === 'delete')
        throw new AppError('BAD_USER_INPUT', 'A DELETE grant covers whole rows: leave fields out.', { details: { field: 'fields' } });
      if (input.fields.length === 0)
        throw new AppError('BAD_USER_INPUT', 'List at least one field, or leave fields out for all of them.', {
          details: { field: 'fields' },
        });
      const allowed = input.action === 'read' ? spec.readableFields : spec.writableFields;
      const unknown = input.fields.filter((field) => !allowed.includes(field));
      if (unknown.length > 0) {
        throw new AppError(
          'BAD_USER_INPUT',
          `${spec.name} has no ${input.action === 'read' ? 'readable' : 'writable'} ` +
            `field ${unknown.map((field) => `"${field}"`).join(', ')}. Fields: ${allowed.join(', ')}.`,
          { details: { field: 'fields' } },
        );
      }
      fields = [...new Set(input.fields)].sort();
    }
    return { role: input.role, model: spec.name, action: input.action, scope: input.scope, fields, filter };
  }

  private async auditGrant(
    manager: EntityManager,
    action: 'grant_added' | 'grant_removed',
    row: PermissionGrantRow,
    actor: Actor,
    extra: Record<string, string>,
  ): Promise<void> {
    await this.audit.append(manager, {
      action,
      outcome: 'success',
      targetType: 'permission_grant',
      targetId: row.id,
      metadata: {
        role: row.roleName,
        model: row.model,
        grantedAction: row.action,
        scope: row.scope,
        fields: row.fields,
        filter: row.filter,
        ...extra,
      },
      ...actor,
    });
  }
}

function grantOf(row: PermissionGrantRow): Grant {
  return { id: row.id, role: row.roleName, model: row.model, action: row.action, scope: row.scope, fields: row.fields, filter: row.filter };
}
