import type { RequestOrigin } from '../audit/actor';
import { createHash, randomBytes } from 'node:crypto';
import { DataSource, EntityManager, In, IsNull } from 'typeorm';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import { AppError } from '../errors';
import type { AccessTokenClaims, AccessTokens } from './access-tokens';
import { RefreshToken } from './refresh-token.entity';
import type { SessionCache } from './session-cache';
import type { TokenFailures } from './token-failures';
import { AuthenticationMethod, Session } from './session.entity';
import { USER_ROLE } from './roles';
import { UserRole } from './user-role.entity';
import { EntityHydrator } from '../db/entity-hydrator';
import { isUuid } from '../db/uuid';
import type { Viewer } from './viewer';
import { User } from './user.entity';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface SessionPolicy {
  readonly idleDays: number;
  readonly absoluteDays: number;
  readonly graceSeconds: number;
  readonly maxPerUser: number;
}

/**
 * A session opened (or refreshed) inside a transaction, before its access token is signed. The
 * token is signed after commit (`issue`): signing may read the key table, and a second pooled
 * connection taken while a transaction holds one can starve the pool under load.
 */
export interface OpenedSession {
  readonly sessionId: string;
  readonly userId: string;
  readonly refreshToken: string;
  readonly claims: AccessTokenClaims;
  /** The bearer's session this sign-in ended (for the sign-in's audit row), if any. */
  readonly replacedSessionId?: string | null;
}

/** A token pair for the client. */
export interface IssuedTokens {
  readonly accessToken: string;
  readonly accessTokenExpiresAt: Date;
  readonly refreshToken: string;
  readonly sessionId: string;
  readonly userId: string;
}

/** SHA-256 of a 256-bit random token: enough, since the token itself is unguessable (docs/security.md#tok-6). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

export function newOpaqueToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Sessions and their refresh-token families (docs/security.md#tok-6). A refresh rotates
 * the token in one transaction holding the session row's lock, so concurrent refreshes of one
 * family are serialised.
 */
export class SessionsService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly tokens: AccessTokens,
    private readonly cache: SessionCache,
    private readonly audit: AuditLog,
    private readonly policy: SessionPolicy,
    private readonly failures: TokenFailures,
  ) {
    this.accounts = new EntityHydrator(dataSource);
  }

  private readonly accounts: EntityHydrator;

  /**
   * Opens a session for a proven user, inside the caller's transaction; `issue` it after commit.
   * `replacing` is the session of the bearer token the sign-in came with (ASVS 7.2.4): it ends in
   * this same transaction, so the device holds one live session, whichever account it signs in to.
   */
  async open(
    manager: EntityManager,
    userId: string,
    proof: { aal: 1 | 2; amr: AuthenticationMethod[] },
    origin: RequestOrigin,
    replacing: string | null = null,
  ): Promise<OpenedSession> {
    const now = this.clock.now();
    const session = await manager.save(
      Object.assign(new Session(), {
        userId,
        aal: proof.aal,
        amr: proof.amr,
        createdAt: now,
        lastUsedAt: now,
        absoluteExpiresAt: new Date(now.getTime() + this.policy.absoluteDays * DAY_MS),
        ipAddress: origin.ipAddress,
        userAgent: origin.userAgent,
        revokedAt: null,
        revokedReason: null,
      }),
    );
    // Before the limit is applied: the replaced session must not make the limit end another one.
    const replaced = replacing ? await this.endSessions(manager, [replacing], 'signed_in_again') : 0;
    await this.endOldestBeyondLimit(manager, userId);
    const refreshToken = await this.issueRefreshToken(manager, session.id, null);
    return { ...(await this.opened(manager, session, refreshToken)), replacedSessionId: replaced > 0 ? replacing : null };
  }

  /** Signs the access token of a committed session. */
  async issue(opened: OpenedSession): Promise<IssuedTokens> {
    const access = await this.tokens.sign(opened.claims);
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken: opened.refreshToken,
      sessionId: opened.sessionId,
      userId: opened.userId,
    };
  }

  /** Exchanges a refresh token for a new pair (rotation, grace window, reuse detection). */
  async refresh(refreshToken: string, origin: RequestOrigin): Promise<IssuedTokens> {
    // A reuse ends the session: that must commit, so it is a result of the transaction, not a throw inside it.
    const outcome = await this.dataSource.transaction(async (manager) => this.rotate(manager, refreshToken, origin));
    if (outcome === 'reused') {
      throw new AppError('TOKEN_REUSED', 'This refresh token was already used, so the session was ended for safety. Sign in again.');
    }
    return this.issue(outcome);
  }

  private async rotate(manager: EntityManager, presented: string, origin: RequestOrigin): Promise<OpenedSession | 'reused'> {
    const now = this.clock.now();
    const token = await manager.findOne(RefreshToken, { where: { tokenHash: hashToken(presented) } });
    const invalid = (reason: 'unknown_refresh_token' | 'revoked_session') => {
      this.failures.rejected('refresh_token', reason, origin.ipAddress);
      return new AppError('UNAUTHENTICATED', 'This refresh token is not valid: sign in again.');
    };
    if (!token) throw invalid('unknown_refresh_token');
    // The session row lock serialises every refresh of this family, and a refresh with its
    // revocation (an admin's, a sign-out): whichever takes the lock second sees the other's work.
    const session = await manager.findOne(Session, { where: { id: token.sessionId }, lock: { mode: 'pessimistic_write' } });
    if (!session || session.revokedAt !== null) throw invalid('revoked_session');
    if (this.isExpired(session, now)) {
      this.failures.rejected('refresh_token', 'expired_session', origin.ipAddress);
      throw new AppError('UNAUTHENTICATED', 'This session expired: sign in again.');
    }
    const [account]: { status: string }[] = await manager.query('SELECT status FROM users WHERE id = $1', [session.userId]);
    if (!account || account.status !== 'active') throw invalid('revoked_session');
    const fresh = await manager.findOneOrFail(RefreshToken, { where: { id: token.id } });

    if (fresh.revokedAt !== null) {
      // Superseded by a grace-window retry moments ago: the losing response of a parallel refresh.
      // Refused, but the session lives (docs/security.md#dev-1); presented later, it counts as reuse.
      if (now.getTime() - fresh.revokedAt.getTime() <= this.policy.graceSeconds * 1000) {
        throw new AppError('UNAUTHENTICATED', 'This refresh token was replaced by a newer one: use the latest refresh token.');
      }
      return this.reuse(manager, session, origin, 'superseded');
    }
    if (fresh.usedAt !== null) {
      const withinGrace = now.getTime() - fresh.usedAt.getTime() <= this.policy.graceSeconds * 1000;
      const successors = await manager.find(RefreshToken, { where: { parentId: fresh.id, usedAt: IsNull(), revokedAt: IsNull() } });
      // A retry of the just-rotated token (a mobile app's parallel requests, a lost response):
      // its unused successor is replaced, so exactly one refresh token of the session stays valid.
      if (!withinGrace || successors.length === 0) return this.reuse(manager, session, origin, 'rotated');
      await manager.update(RefreshToken, { id: In(successors.map((successor) => successor.id)) }, { revokedAt: now });
    } else {
      await manager.update(RefreshToken, { id: fresh.id }, { usedAt: now });
    }
    await manager.update(Session, { id: session.id }, { lastUsedAt: now });
    session.lastUsedAt = now;
    const next = await this.issueRefreshToken(manager, session.id, fresh.id);
    const opened = await this.opened(manager, session, next);
    // Audit row last: the chain lock it takes is held until commit.
    await this.audit.append(manager, {
      action: 'session_refreshed',
      outcome: 'success',
      actorId: session.userId,
      targetType: 'session',
      targetId: session.id,
      ...origin,
    });
    return opened;
  }

  /** docs/security.md#tok-7: a rotated token came back, so someone else may hold the family: end the whole session. */
  private async reuse(manager: EntityManager, session: Session, origin: RequestOrigin, kind: 'rotated' | 'superseded'): Promise<'reused'> {
    await this.endSessions(manager, [session.id], 'refresh_token_reused');
    await this.audit.append(manager, {
      action: 'refresh_token_reused',
      outcome: 'denied',
      actorId: session.userId,
      targetType: 'session',
      targetId: session.id,
      metadata: { kind },
      ...origin,
    });
    return 'reused';
  }

  /**
   * Ends sessions of the signed-in user: some of theirs, or all. An id that is not one of their
   * live sessions gets NOT_FOUND, the same answer as a session that does not exist (no IDOR).
   */
  async endOwn(
    viewer: { userId: string | null; sessionId: string | null },
    which: readonly string[] | 'all',
    reason: 'sign_out' | 'sign_out_everywhere' | 'revoked',
    origin: RequestOrigin,
  ): Promise<void> {
    if (!viewer.userId) throw new AppError('UNAUTHENTICATED', 'Sign in to do this.');
    const userId = viewer.userId;
    await this.dataSource.transaction(async (manager) => {
      let ended: number;
      if (which === 'all') {
        ended = await this.endAllFor(manager, userId, reason);
      } else {
        if (!which.every(isUuid)) throw new AppError('NOT_FOUND', 'No such session.');
        const owned = await manager.find(Session, { where: { id: In([...which]), userId, revokedAt: IsNull() }, select: { id: true } });
        if (owned.length !== which.length) throw new AppError('NOT_FOUND', 'No such session.');
        ended = await this.endSessions(manager, which, reason);
      }
      const action = reason === 'sign_out' ? 'signed_out' : reason === 'sign_out_everywhere' ? 'signed_out_everywhere' : 'session_revoked';
      await this.audit.append(manager, {
        action,
        outcome: 'success',
        actorId: userId,
        targetType: 'session',
        targetId: which === 'all' ? null : which.join(','),
        metadata: { endedSessions: ended },
        ...origin,
      });
    });
  }

  /** Role names of each user (one query for a page of users), sorted; "user" is implicit and included. */
  /** The signed-in account, as read with its session (no query of its own while the session is cached). */
  async currentAccount(viewer: Viewer): Promise<User | null> {
    const session = viewer.sessionId ? await this.cache.get(viewer.sessionId) : null;
    return session && session.userId === viewer.userId ? this.accounts.hydrate(User, session.account) : null;
  }

  /** Tells every instance that this account's own columns changed (call inside the changing transaction). */
  async accountChanged(manager: EntityManager, userId: string): Promise<void> {
    await this.cache.announce(manager, { userIds: [userId] });
  }

  async rolesOfUsers(userIds: readonly string[]): Promise<string[][]> {
    const rows = await this.dataSource
      .getRepository(UserRole)
      .find({ where: { userId: In([...userIds]) }, select: { userId: true, roleName: true } });
    const rolesByUser = new Map<string, string[]>(userIds.map((userId) => [userId, [USER_ROLE]]));
    for (const row of rows) if (row.roleName !== USER_ROLE) rolesByUser.get(row.userId)?.push(row.roleName);
    return userIds.map((userId) => rolesByUser.get(userId)!.sort());
  }

  /** Live sessions of a user, most recently used first. */
  async list(userId: string): Promise<Session[]> {
    const now = this.clock.now();
    const sessions = await this.dataSource
      .getRepository(Session)
      .find({ where: { userId, revokedAt: IsNull() }, order: { lastUsedAt: 'DESC' } });
    return sessions.filter((session) => !this.isExpired(session, now));
  }

  /** Raises or lowers a session's assurance (second factor confirmed or removed), in force at its next request. */
  async setAssurance(manager: EntityManager, sessionId: string, aal: 1 | 2, amr: AuthenticationMethod[]): Promise<void> {
    await manager.update(Session, { id: sessionId }, { aal, amr });
    await this.invalidate(manager, [sessionId]);
  }

  /** Ends sessions at once on every instance (in the caller's transaction). */
  async endSessions(manager: EntityManager, sessionIds: readonly string[], reason: string): Promise<number> {
    if (sessionIds.length === 0) return 0;
    const { affected } = await manager.update(
      Session,
      { id: In([...sessionIds]), revokedAt: IsNull() },
      { revokedAt: this.clock.now(), revokedReason: reason },
    );
    await this.invalidate(manager, sessionIds);
    return affected ?? 0;
  }

  /** Ends every session of a user, optionally but one (the caller's own, on a password change). */
  async endAllFor(manager: EntityManager, userId: string, reason: string, keepSessionId?: string): Promise<number> {
    const live = await manager.find(Session, { where: { userId, revokedAt: IsNull() }, select: { id: true } });
    return this.endSessions(
      manager,
      live.map((session) => session.id).filter((id) => id !== keepSessionId),
      reason,
    );
  }

  /** Every instance drops these sessions from its cache once the change commits. */
  private async invalidate(manager: EntityManager, sessionIds: readonly string[]): Promise<void> {
    await this.cache.announce(manager, { sessionIds });
  }

  private isExpired(session: Session, now: Date): boolean {
    return (
      session.absoluteExpiresAt.getTime() <= now.getTime() || session.lastUsedAt.getTime() + this.policy.idleDays * DAY_MS <= now.getTime()
    );
  }

  private async endOldestBeyondLimit(manager: EntityManager, userId: string): Promise<void> {
    const live = await manager.find(Session, {
      where: { userId, revokedAt: IsNull() },
      order: { lastUsedAt: 'DESC', createdAt: 'DESC' },
      select: { id: true },
    });
    const excess = live.slice(this.policy.maxPerUser).map((session) => session.id);
    await this.endSessions(manager, excess, 'session_limit');
  }

  private async issueRefreshToken(manager: EntityManager, sessionId: string, parentId: string | null): Promise<string> {
    const token = newOpaqueToken();
    await manager.insert(RefreshToken, {
      sessionId,
      parentId,
      tokenHash: hashToken(token),
      createdAt: this.clock.now(),
      usedAt: null,
      revokedAt: null,
    });
    return token;
  }

  private async opened(manager: EntityManager, session: Session, refreshToken: string): Promise<OpenedSession> {
    const roles = (await manager.find(UserRole, { where: { userId: session.userId }, select: { roleName: true } })).map(
      (role) => role.roleName,
    );
    return {
      sessionId: session.id,
      userId: session.userId,
      refreshToken,
      claims: { userId: session.userId, sessionId: session.id, roles, aal: session.aal, amr: session.amr },
    };
  }
}
