import type { Clock } from './clock';
import type { AppError } from './errors';
import type { RequestLoaders } from './graphql/request-loaders';
import type { Logger } from './logging';

/**
 * Who is asking. The platform knows only the account id (logs and denials name it); the accounts
 * feature adds the session, the roles and how the session was proven (accounts/viewer.ts).
 */
export interface Viewer {
  readonly userId: string | null;
}

/**
 * What every resolver and rule receives for one request. Features add their own fields by
 * declaration merging (accounts/viewer.ts). The server builds the platform's part; each
 * feature's `context` adds its own.
 */
export interface Context {
  readonly requestId: string;
  /** A child logger that stamps every line with the request id. */
  readonly logger: Logger;
  readonly viewer: Viewer;
  /** The viewer's rights as this request enforces them. */
  readonly access: Access;
  readonly clock: Clock;
  /** Per-request batching of the queries a page of objects needs. */
  readonly loaders: RequestLoaders;
  readonly ipAddress: string | null;
  readonly userAgent: string | null;
}

/**
 * The viewer's rights for one request. The platform's rules only ask about roles; the access
 * feature provides it and adds the per-model decisions (access/access-view.ts).
 */
export interface Access {
  /**
   * true when the viewer acts as `role` now; MFA_REQUIRED when they hold it but it is held back
   * (the role needs a session confirmed with the second factor); false otherwise.
   */
  checkRole(role: string): true | false | AppError;
}
