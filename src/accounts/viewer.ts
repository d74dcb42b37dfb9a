import type { Viewer } from '../context';
import { syncRule } from '../shield/rules';
import { ANONYMOUS_ROLE } from './roles';

export type { Viewer };

declare module '../context' {
  /** The accounts feature's part of the viewer: the session and how it was proven. */
  interface Viewer {
    readonly sessionId: string | null;
    readonly roles: readonly string[];
    /** Authentication assurance level of the session: 0 anonymous, 1 password, 2 second factor. */
    readonly aal: 0 | 1 | 2;
    /** How the session was proven: pwd, totp, recovery_code. */
    readonly amr: readonly string[];
  }

  /** The accounts feature's part of every request's context. */
  interface Context {
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
}

/** Anonymous until an access token is verified. */
export const ANONYMOUS: Viewer = Object.freeze({
  userId: null,
  sessionId: null,
  roles: Object.freeze([ANONYMOUS_ROLE]),
  aal: 0,
  amr: Object.freeze([]),
});

/** A signed-in viewer. */
export const isAuthenticated = syncRule('isAuthenticated', (_parent, _args, context) => context.viewer.userId !== null);
