import { AccessView } from '../access/access-view';
import type { AdminNetworks } from '../access/admin-networks';
import type { PolicyService } from '../access/policy.service';
import { viewerOf } from '../accounts/authenticator';
import type { LiveSession, SessionCache } from '../accounts/session-cache';
import type { Viewer } from '../accounts/viewer';
import type { Clock } from '../clock';
import type { Context } from '../context';
import { isBlocked } from '../firewall/firewall.gate';
import type { FirewallService } from '../firewall/firewall.service';
import type { HitLog } from '../firewall/hit-log';
import { FreshCall } from '../db/fresh-call';
import { RequestLoaders } from '../graphql/request-loaders';
import type { LiveChanges } from '../data/live-changes';

/** Why the server closes a socket, as WebSocket close codes (README "Realtime" tells an app what to do on each). */
export const CLOSE = {
  /** The access token expired: refresh it and reconnect. */
  tokenExpired: { code: 4401, reason: 'Access token expired: refresh it and reconnect' },
  /** The session ended, the account is not active, or the network is blocked: sign in again (or give up). */
  forbidden: { code: 4403, reason: 'Forbidden' },
  /** Too many messages per second, or too many sockets for this account. */
  tooMany: { code: 4429, reason: 'Too many requests' },
  /** The client does not read what it is sent fast enough. */
  slowConsumer: { code: 1013, reason: 'Try again later: messages were not read' },
  /** The server is shutting down: reconnect (to another instance). */
  goingAway: { code: 1001, reason: 'Server shutting down' },
  /** This instance may have missed changes (its listening connection was lost): reconnect and refetch. */
  changesMissed: { code: 1012, reason: 'Changes may have been missed: reconnect and refetch' },
  /** The connection's rights could not be checked again (the database is away): reconnect later. */
  unavailable: { code: 1011, reason: 'Server unavailable: reconnect later' },
} as const;

export type CloseReason = (typeof CLOSE)[keyof typeof CLOSE];

/** What a connection needs to re-decide, at each change, who it serves. */
export interface ConnectionServices {
  readonly sessionCache: SessionCache;
  readonly policy: PolicyService;
  readonly firewall: FirewallService;
  readonly hits: HitLog;
  readonly adminNetworks: AdminNetworks;
  readonly clock: Clock;
  readonly liveChanges: LiveChanges;
}

/**
 * One authenticated WebSocket: who it serves now. Authenticated once at connection_init exactly as
 * an HTTP request is; then, at every change it may be told about (every 30 s as well, and whenever
 * a session change is heard), re-derived from the session cache and the policy in force: a role or
 * grant change applies to the next change delivered, a revoked session, a suspended account or a
 * blocked network closes the socket with 4403, an expired access token with 4401.
 */
export class LiveConnection {
  subscriptions = 0;
  /**
   * Re-checks are asked for concurrently (a delivery, a session notification, a subscribe): one runs
   * at a time, and each caller waits for one that started after it asked. Two interleaved would let
   * the one that read the older session write last: a role change could be lost until the next.
   */
  private readonly rechecks = new FreshCall(() => this.recheck());
  private session: LiveSession | null = null;
  /** The viewer of `session`, set with it. */
  private viewer: Viewer;
  private current: Context;
  private closed = false;

  constructor(
    private readonly initial: Context,
    private readonly tokenExpiresAt: number | null,
    private readonly services: ConnectionServices,
    private readonly closeSocket: (reason: CloseReason) => void,
  ) {
    this.viewer = initial.viewer;
    this.current = this.snapshot(initial.viewer, initial.access as AccessView);
  }

  /**
   * The viewer and rights as the last refresh found them, fixed: a subscription starts with them,
   * and a change decided now is executed with them.
   */
  get rights(): Context {
    return this.current;
  }

  get userId(): string | null {
    return this.current.viewer.userId;
  }

  get sessionId(): string | null {
    return this.current.viewer.sessionId;
  }

  /**
   * Brings the viewer and its rights up to date (cheap when nothing changed: the session cache
   * and the policy hand back the same objects), with fresh loaders (a delivery must not see
   * another's cached rows). Returns false, having closed the socket, when it may not stay open,
   * or when its rights cannot be checked now (the database is away: 1011, the app reconnects).
   */
  async refresh(): Promise<boolean> {
    if (this.closed) return false;
    await this.rechecks.run();
    return !this.closed;
  }

  /** Closes the socket with 4401 once its access token has expired (the idle check: no I/O). */
  expireIfDue(): void {
    if (!this.closed && this.tokenExpiresAt !== null && this.services.clock.now().getTime() >= this.tokenExpiresAt)
      this.end(CLOSE.tokenExpired);
  }

  /** Closes the socket (once). */
  end(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeSocket(reason);
  }

  /** One re-check; a failure to reach the database closes the socket (1011). */
  private async recheck(): Promise<void> {
    try {
      await this.rederive();
    } catch (error) {
      this.initial.logger.warn({ err: error }, 'websocket: the connection could not be checked again; closed');
      this.end(CLOSE.unavailable);
    }
  }

  private async rederive(): Promise<void> {
    this.expireIfDue();
    if (this.closed) return;
    if (await isBlocked(this.services.firewall, this.services.hits, this.initial.ipAddress ?? '', 'websocket')) {
      this.end(CLOSE.forbidden);
      return;
    }
    if (this.viewer.sessionId !== null) {
      const session = await this.services.sessionCache.get(this.viewer.sessionId);
      if (!session || session.userId !== this.viewer.userId) {
        this.end(CLOSE.forbidden);
        return;
      }
      if (session !== this.session) {
        this.session = session;
        this.viewer = viewerOf(session);
      }
    }
    const viewer = this.viewer;
    const policy = await this.services.policy.current();
    let access = this.current.access as AccessView;
    if (access.viewer !== viewer || access.policy !== policy)
      access = new AccessView(policy, viewer, { adminNetwork: this.services.adminNetworks.allows(this.initial.ipAddress) });
    this.current = this.snapshot(viewer, access);
  }

  private snapshot(viewer: Viewer, access: AccessView): Context {
    return Object.create(this.initial, {
      viewer: { value: viewer },
      access: { value: access },
      loaders: { value: new RequestLoaders() },
      liveChanges: { value: this.services.liveChanges },
      connection: { value: this },
    }) as Context;
  }
}
