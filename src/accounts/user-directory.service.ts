import { DataSource } from 'typeorm';
import { USER_ROLE } from './roles';
import type { AuditLog } from '../audit/audit-log';
import { blindIndexesOf } from '../crypto/encrypted-column';
import { SqlParameters } from '../db/sql-parameters';
import { Keyset } from '../db/keyset';
import { DEFAULT_PAGE_SIZE } from '../graphql/pagination';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import { keepAnActiveAdmin } from './admins';
import type { SessionCache } from './session-cache';
import type { SessionsService } from './sessions.service';
import type { Actor } from '../audit/actor';
import { Session } from './session.entity';
import { User, UserStatus } from './user.entity';

export interface UserQuery {
  /** Exact address (matched through its blind index; case and spacing as at sign-in). */
  readonly email?: string | null;
  readonly status?: UserStatus | null;
  readonly role?: string | null;
  readonly first?: number;
  readonly after?: string | null;
}

export interface UserPage {
  readonly users: readonly { user: User; cursor: string }[];
  readonly hasNextPage: boolean;
  readonly totalCount: number;
}

/**
 * Newest first, the id breaking ties. users.created_at keeps microseconds, so the keyset compares
 * it at the milliseconds a cursor holds: users created within one millisecond are never skipped.
 */
const USERS_NEWEST_FIRST = new Keyset('u', [
  { field: { name: 'createdAt', column: 'created_at', kind: 'datetime' }, direction: 'DESC' },
  { field: { name: 'id', column: 'id', kind: 'id' }, direction: 'DESC' },
]);

/** The admin side of accounts: finding users, suspending them, ending their sessions. */
export class UserDirectory {
  constructor(
    private readonly dataSource: DataSource,
    private readonly sessions: SessionsService,
    private readonly sessionCache: SessionCache,
    private readonly audit: AuditLog,
  ) {}

  /** Newest first, keyset-paginated (a page costs the same however deep it is). */
  async list(query: UserQuery): Promise<UserPage> {
    const first = query.first ?? DEFAULT_PAGE_SIZE;
    const filtered = this.dataSource.getRepository(User).createQueryBuilder('u');
    if (query.email != null)
      filtered.andWhere('u.email_index IN (:...emailIndexes)', { emailIndexes: blindIndexesOf(User, 'email', query.email) });
    if (query.status != null) filtered.andWhere('u.status = :status', { status: query.status });
    // Every account holds "user" implicitly; other roles are rows.
    if (query.role != null && query.role !== USER_ROLE) {
      filtered.andWhere('EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_name = :role)', { role: query.role });
    }
    const page = filtered.clone().limit(first + 1);
    if (query.after != null) {
      const parameters = new SqlParameters();
      page.andWhere(USERS_NEWEST_FIRST.after(query.after, parameters)).setParameters(parameters.values);
    }
    USERS_NEWEST_FIRST.orderBy().forEach(([expression, direction], index) =>
      index === 0 ? page.orderBy(expression, direction) : page.addOrderBy(expression, direction),
    );
    const [rows, totalCount] = await Promise.all([page.getMany(), filtered.getCount()]);
    return {
      users: rows.slice(0, first).map((user) => ({ user, cursor: USERS_NEWEST_FIRST.cursorOf(user) })),
      hasNextPage: rows.length > first,
      totalCount,
    };
  }

  /** A user's live sessions (devices), most recently used first, as mySessions lists them; NOT_FOUND for an unknown user. */
  async sessionsOf(userId: string): Promise<Session[]> {
    if (!isUuid(userId) || !(await this.dataSource.getRepository(User).existsBy({ id: userId })))
      throw new AppError('NOT_FOUND', 'No user with this id.');
    return this.sessions.list(userId);
  }

  async find(userId: string): Promise<User> {
    const user = isUuid(userId) ? await this.dataSource.getRepository(User).findOneBy({ id: userId }) : null;
    if (!user) throw new AppError('NOT_FOUND', 'No user with this id.');
    return user;
  }

  /**
   * Suspends (every session ends at once, on every instance; sign-in and refresh are refused) or
   * reactivates an account. An admin cannot suspend themselves.
   */
  async setStatus(userId: string, status: UserStatus, actor: Actor): Promise<User> {
    if (userId === actor.actorId && status === UserStatus.SUSPENDED)
      throw new AppError('BAD_USER_INPUT', 'You cannot suspend your own account.', { details: { field: 'userId' } });
    return this.dataSource.transaction(async (manager) => {
      const user = isUuid(userId) ? await manager.findOne(User, { where: { id: userId }, lock: { mode: 'pessimistic_write' } }) : null;
      if (!user) throw new AppError('NOT_FOUND', 'No user with this id.');
      if (user.status === status) return user;
      if (status === UserStatus.SUSPENDED) await keepAnActiveAdmin(manager, userId);
      user.status = status;
      await manager.update(User, { id: userId }, { status });
      const endedSessions = status === UserStatus.SUSPENDED ? await this.sessions.endAllFor(manager, userId, 'suspended') : 0;
      // Also by user: a session a concurrent sign-in opens as this commits is dropped too (its load sees the status).
      await this.sessionCache.announce(manager, { userIds: [userId] });
      await this.audit.append(manager, {
        action: status === UserStatus.SUSPENDED ? 'account_suspended' : 'account_reactivated',
        outcome: 'success',
        targetType: 'user',
        targetId: userId,
        metadata: { endedSessions },
        ...actor,
      });
      return user;
    });
  }

  /**
   * Ends one session of a user, or every one (ASVS 7.4.5), at once on every instance, like a
   * sign-out. Returns how many were live and ended now: a session that had already ended gives 0
   * (the admin's intent holds), an id that is not this user's session gives NOT_FOUND. A refresh
   * racing with it is serialised on the session row: it either finishes first and its new tokens
   * die with the session, or runs after and is refused.
   */
  async revokeSessions(userId: string, sessionId: string | null, actor: Actor): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      if (!isUuid(userId) || !(await manager.existsBy(User, { id: userId }))) throw new AppError('NOT_FOUND', 'No user with this id.');
      let endedSessions: number;
      if (sessionId === null) {
        endedSessions = await this.sessions.endAllFor(manager, userId, 'revoked_by_admin');
      } else {
        if (!isUuid(sessionId) || !(await manager.existsBy(Session, { id: sessionId, userId })))
          throw new AppError('NOT_FOUND', 'This user has no session with this id (see the sign-ins in the audit log).');
        endedSessions = await this.sessions.endSessions(manager, [sessionId], 'revoked_by_admin');
      }
      await this.audit.append(manager, {
        action: 'user_sessions_revoked',
        outcome: 'success',
        targetType: 'user',
        targetId: userId,
        metadata: { sessionId, endedSessions },
        ...actor,
      });
      return endedSessions;
    });
  }
}
