import { AccessView } from '../access/access-view';
import type { AdminNetworks } from '../access/admin-networks';
import type { PolicyService } from '../access/policy.service';
import { viewerOf } from '../accounts/authenticator';
import type { LiveSession, SessionCache } from '../accounts/session-cache';
import type { Viewer } from '../accounts/viewer';
import type { Clock } from '../clock';
import type { Context } from '../context';
import { FirewallAction } from '../firewall/firewall-rule.entity';
import type { FirewallService } from '../firewall/firewall.service';
import type { HitLog } from '../firewall/hit-log';
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
 * an HTTP request is; then, at every change it may be told about (and whenever a session change is
 * heard), re-derived from the session cache and the policy in force: a role or grant change applies
 * to the next change delivered, a revoked session, a suspended account or a blocked network
 * closes the socket with 4403, an expired access token with 4401.
 */
export class LiveConnection {
  /** The context every subscription of this socket executes with: the connection's current viewer and rights. */
  readonly context: Context;
  subscriptions = 0;
  private session: LiveSession | null = null;
  private currentViewer: Viewer;
  private currentAccess: AccessView;
  private currentLoaders = new RequestLoaders();
  private closed = false;

  constructor(
    initial: Context,
    private readonly tokenExpiresAt: number | null,
    private readonly services: ConnectionServices,
    private readonly closeSocket: (reason: CloseReason) => void,
  ) {
    this.currentViewer = initial.viewer;
    this.currentAccess = initial.access as AccessView;
    this.context = Object.create(initial, {
      viewer: { get: () => this.currentViewer },
      access: { get: () => this.currentAccess },
      loaders: { get: () => this.currentLoaders },
      liveChanges: { value: services.liveChanges },
      connection: { value: this },
    }) as Context;
  }

  get userId(): string | null {
    return this.currentViewer.userId;
  }

  get sessionId(): string | null {
    return this.currentViewer.sessionId;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Brings the viewer and its rights up to date (cheap when nothing changed: the session cache
   * and the policy hand back the same objects). Returns false, having closed the socket, when it
   * may not stay open. Fresh loaders: a delivery must not see another's cached rows.
   */
  async refresh(): Promise<boolean> {
    if (this.closed) return false;
    if (this.tokenExpiresAt !== null && this.services.clock.now().getTime() >= this.tokenExpiresAt) return this.end(CLOSE.tokenExpired);
    const address = this.context.ipAddress ?? '';
    const verdict = await this.services.firewall.check(address);
    if (verdict.action !== FirewallAction.ALLOW) {
      this.services.hits.record('ip_blocked', address, { rule: verdict.rule?.id ?? 'FIREWALL_DEFAULT', path: 'websocket' });
      return this.end(CLOSE.forbidden);
    }
    const sessionId = this.currentViewer.sessionId;
    let viewer = this.currentViewer;
    if (sessionId !== null) {
      const session = await this.services.sessionCache.get(sessionId);
      if (!session || session.userId !== this.currentViewer.userId) return this.end(CLOSE.forbidden);
      if (session !== this.session) {
        this.session = session;
        viewer = viewerOf(session);
      }
    }
    const policy = await this.services.policy.current();
    if (viewer !== this.currentViewer || policy !== this.currentAccess.policy) {
      this.currentViewer = viewer;
      this.currentAccess = new AccessView(policy, viewer, { adminNetwork: this.services.adminNetworks.allows(this.context.ipAddress) });
    }
    this.currentLoaders = new RequestLoaders();
    return !this.closed;
  }

  /** Closes the socket (once). */
  end(reason: CloseReason): false {
    if (!this.closed) {
      this.closed = true;
      this.closeSocket(reason);
    }
    return false;
  }
}
