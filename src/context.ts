import type { AccessView } from './access/policy';
import type { Clock } from './clock';
import type { RequestLoaders } from './graphql/request-loaders';
import type { Logger } from './logging';

/** Who is asking. Anonymous until the accounts feature verifies an access token. */
export interface Viewer {
  readonly userId: string | null;
  readonly sessionId: string | null;
  readonly roles: readonly string[];
  /** Authentication assurance level of the session: 0 anonymous, 1 password, 2 second factor. */
  readonly aal: 0 | 1 | 2;
  /** How the session was proven: pwd, totp, recovery_code. */
  readonly amr: readonly string[];
}

export const ANONYMOUS: Viewer = Object.freeze({
  userId: null,
  sessionId: null,
  roles: Object.freeze(['anonymous']),
  aal: 0,
  amr: Object.freeze([]),
});

/** What every resolver and rule receives for one request. */
export interface Context {
  readonly requestId: string;
  /** A child logger that stamps every line with the request id. */
  readonly logger: Logger;
  readonly viewer: Viewer;
  /** The permission policy as this request sees it: the viewer's roles in force and per-model decisions. */
  readonly access: AccessView;
  readonly clock: Clock;
  /** Per-request batching of the queries a page of objects needs. */
  readonly loaders: RequestLoaders;
  readonly ipAddress: string | null;
  readonly userAgent: string | null;
  /**
   * Accounts that proved themselves during this very request (signUp, signIn, refreshSession):
   * the returned AuthPayload may show their own User, though the request came in anonymous.
   */
  readonly signedInDuringRequest: Set<string>;
  /**
   * The request carried an expired (otherwise valid) access token. It runs as anonymous only for
   * the operations that exchange credentials (refreshSession, signIn…); anything else gets 401
   * TOKEN_EXPIRED. Apps that attach the header to every call can still refresh.
   */
  readonly accessTokenExpired: boolean;
}
