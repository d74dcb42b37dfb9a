import { DataSource } from 'typeorm';
import type { Actor } from '../access/policy.service';
import { USER_ROLE } from '../access/policy';
import type { AuditLog } from '../audit/audit-log';
import { blindIndexOf } from '../crypto/encrypted-column';
import { DEFAULT_PAGE_SIZE, decodeCursor, encodeCursor, invalidCursor } from '../data/pagination';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import type { SessionsService } from './sessions.service';
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

/** The admin side of accounts: finding users and suspending them. */
export class UserDirectory {
  constructor(
    private readonly dataSource: DataSource,
    private readonly sessions: SessionsService,
    private readonly audit: AuditLog,
  ) {}

  /** Newest first, keyset-paginated (a page costs the same however deep it is). */
  async list(query: UserQuery): Promise<UserPage> {
    const first = query.first ?? DEFAULT_PAGE_SIZE;
    const filtered = this.dataSource.getRepository(User).createQueryBuilder('u');
    if (query.email != null) filtered.andWhere('u.email_index = :emailIndex', { emailIndex: blindIndexOf(User, 'email', query.email) });
    if (query.status != null) filtered.andWhere('u.status = :status', { status: query.status });
    // Every account holds "user" implicitly; other roles are rows.
    if (query.role != null && query.role !== USER_ROLE) {
      filtered.andWhere('EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = u.id AND ur.role_name = :role)', { role: query.role });
    }
    const page = filtered.clone().orderBy('u.created_at', 'DESC').addOrderBy('u.id', 'DESC').limit(first + 1);
    if (query.after != null) {
      const [createdAt, id] = decodeCursor(query.after, ['string', 'string']) as [string, string];
      if (Number.isNaN(Date.parse(createdAt)) || !isUuid(id)) throw invalidCursor();
      page.andWhere('(u.created_at, u.id) < (:createdAt, :id)', { createdAt, id });
    }
    const [rows, totalCount] = await Promise.all([page.getMany(), filtered.getCount()]);
    return {
      users: rows.slice(0, first).map((user) => ({ user, cursor: encodeCursor([user.createdAt.toISOString(), user.id]) })),
      hasNextPage: rows.length > first,
      totalCount,
    };
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
    if (userId === actor.actorId && status === 'suspended') throw new AppError('BAD_USER_INPUT', 'You cannot suspend your own account.', { details: { field: 'userId' } });
    return this.dataSource.transaction(async (manager) => {
      const user = isUuid(userId) ? await manager.findOne(User, { where: { id: userId }, lock: { mode: 'pessimistic_write' } }) : null;
      if (!user) throw new AppError('NOT_FOUND', 'No user with this id.');
      if (user.status === status) return user;
      user.status = status;
      await manager.update(User, { id: userId }, { status });
      const endedSessions = status === 'suspended' ? await this.sessions.endAllFor(manager, userId, 'suspended') : 0;
      await this.audit.append(manager, { action: status === 'suspended' ? 'account_suspended' : 'account_reactivated', outcome: 'success', targetType: 'user', targetId: userId, metadata: { endedSessions }, ...actor });
      return user;
    });
  }
}
