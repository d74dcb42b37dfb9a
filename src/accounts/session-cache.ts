import { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../clock';
import { afterCommit } from '../db/after-commit';
import { Notifications, notify } from '../db/notifications';
import type { AuthenticationMethod } from './session.entity';
import { isUuid } from '../db/uuid';

/** What a request needs to know about its session, read from the database, never from the token. */
export interface LiveSession {
  readonly sessionId: string;
  readonly userId: string;
  readonly roles: readonly string[];
  readonly aal: 1 | 2;
  readonly amr: readonly AuthenticationMethod[];
  /** The earlier of the idle and the absolute end. */
  readonly expiresAt: Date;
  /**
   * The account's own columns as stored (the email still encrypted), read with the session: `me`
   * needs no query of its own. Every change to them announces the user, like a role change.
   */
  readonly account: Readonly<Record<(typeof ACCOUNT_COLUMNS)[number], unknown>>;
}

/** The users columns `me` shows (by column name, for EntityHydrator). */
export const ACCOUNT_COLUMNS = ['id', 'email', 'email_verified_at', 'status', 'created_at', 'updated_at'] as const;

export const SESSION_CHANNEL = 'bastion_sessions';

/** Entries live at most this long even if an invalidation message was lost. */
const MAX_AGE_MS = 60_000;
const MAX_ENTRIES = 50_000;

interface Entry {
  readonly session: LiveSession | null;
  readonly loadedAt: number;
}

interface SessionRow {
  id: string;
  user_id: string;
  aal: number;
  amr: AuthenticationMethod[];
  revoked_at: Date | null;
  last_used_at: Date;
  absolute_expires_at: Date;
  status: string;
  roles: string[];
  email: string;
  email_verified_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/**
 * The per-request session check (ASVS 7.4.1): one cached row per session, so sign-out, a role
 * change or a suspension is in force at the next request. Every instance drops an entry when
 * PostgreSQL NOTIFY says it changed (sent in the changing transaction, so after commit; each
 * request waits until the messages committed before it were heard: Notifications.sync), and the
 * whole cache when messages may have been missed (the listener reconnected or did not answer).
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly sessionsByUser = new Map<string, Set<string>>();
  /** Bumped by every invalidation: a load that started before one must not be cached after it. */
  private generation = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly idleMs: number,
    notifications: Notifications,
  ) {
    notifications.subscribe(SESSION_CHANNEL, (payload) => this.apply(payload));
    notifications.onMissed(() => this.clear());
  }

  /** The live session, or null when it ended, expired, or its user is no longer active. */
  async get(sessionId: string): Promise<LiveSession | null> {
    if (!isUuid(sessionId)) return null;
    const cached = this.entries.get(sessionId);
    const now = this.clock.now().getTime();
    let session: LiveSession | null;
    if (cached && now - cached.loadedAt < MAX_AGE_MS) {
      session = cached.session;
    } else {
      const generation = this.generation;
      session = await this.load(sessionId);
      // A NOTIFY may have arrived while the row was in flight: use the row, but do not keep it.
      if (generation === this.generation) this.remember(sessionId, session, now);
    }
    return session && session.expiresAt.getTime() > now ? session : null;
  }

  /**
   * Tells every instance that these sessions or users changed; call inside the changing
   * transaction. The others hear it through NOTIFY (delivered on commit); this one drops its
   * entries once the transaction has committed, so a request racing the commit cannot keep the
   * old row.
   */
  async announce(manager: EntityManager, change: { sessionIds?: readonly string[]; userIds?: readonly string[] }): Promise<void> {
    for (const id of change.sessionIds ?? []) await notify(manager, SESSION_CHANNEL, `session:${id}`);
    for (const id of change.userIds ?? []) await notify(manager, SESSION_CHANNEL, `user:${id}`);
    afterCommit(manager, () => this.forget(change));
  }

  /** Drops entries at once in this process. */
  forget(change: { sessionIds?: readonly string[]; userIds?: readonly string[] }): void {
    this.generation += 1;
    for (const id of change.sessionIds ?? []) this.entries.delete(id);
    for (const userId of change.userIds ?? []) {
      for (const sessionId of this.sessionsByUser.get(userId) ?? []) this.entries.delete(sessionId);
      this.sessionsByUser.delete(userId);
    }
  }

  clear(): void {
    this.generation += 1;
    this.entries.clear();
    this.sessionsByUser.clear();
  }

  private apply(payload: string): void {
    const [kind, id] = payload.split(':');
    if (kind === 'session' && id) this.forget({ sessionIds: [id] });
    else if (kind === 'user' && id) this.forget({ userIds: [id] });
    else this.clear();
  }

  private remember(sessionId: string, session: LiveSession | null, now: number): void {
    if (this.entries.size >= MAX_ENTRIES) this.clear();
    this.entries.set(sessionId, { session, loadedAt: now });
    if (session) {
      let ids = this.sessionsByUser.get(session.userId);
      if (!ids) this.sessionsByUser.set(session.userId, (ids = new Set()));
      ids.add(sessionId);
    }
  }

  private async load(sessionId: string): Promise<LiveSession | null> {
    const rows: SessionRow[] = await this.dataSource.query(
      `SELECT s.id, s.user_id, s.aal, s.amr, s.revoked_at, s.last_used_at, s.absolute_expires_at, u.status,
              ARRAY(SELECT ur.role_name FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role_name) AS roles,
              u.email, u.email_verified_at, u.created_at, u.updated_at
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = $1`,
      [sessionId],
    );
    const row = rows[0];
    if (!row || row.revoked_at !== null || row.status !== 'active') return null;
    const idleEnd = new Date(row.last_used_at).getTime() + this.idleMs;
    const expiresAt = new Date(Math.min(idleEnd, new Date(row.absolute_expires_at).getTime()));
    const account = {
      id: row.user_id,
      email: row.email,
      email_verified_at: row.email_verified_at,
      status: row.status,
      created_at: row.created_at,
      updated_at: row.updated_at,
    };
    return { sessionId: row.id, userId: row.user_id, roles: row.roles, aal: row.aal === 2 ? 2 : 1, amr: row.amr, expiresAt, account };
  }
}
