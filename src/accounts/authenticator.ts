import { ANONYMOUS, Viewer } from './viewer';
import { AppError, serviceUnavailable } from '../errors';
import { AccessTokenError, AccessTokens } from './access-tokens';
import type { LiveSession, SessionCache } from './session-cache';
import type { TokenFailures } from './token-failures';

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

/**
 * Authorization header → Viewer (docs/security.md#tok-3). No header: anonymous.
 * A header that does not hold a live session's valid token fails the whole request with 401:
 * the app must learn at once that it is signed out, rather than get public data silently.
 */
export class Authenticator {
  constructor(
    private readonly tokens: AccessTokens,
    private readonly sessions: SessionCache,
    private readonly failures: TokenFailures,
  ) {}

  /**
   * `ipAddress` names the client in the audit log's `token_rejected` rows. An expired token is
   * counted there only when the request is refused for it (expired-token.gate.ts): presented with
   * refreshSession, it is the normal way back in, not a failure.
   */
  async viewerFor(authorization: string | undefined, ipAddress: string | null): Promise<{ viewer: Viewer; accessTokenExpired: boolean }> {
    try {
      return { viewer: await this.verify(authorization, ipAddress), accessTokenExpired: false };
    } catch (error) {
      if (error instanceof AppError && error.code === 'TOKEN_EXPIRED') return { viewer: ANONYMOUS, accessTokenExpired: true };
      throw error;
    }
  }

  private async verify(authorization: string | undefined, ipAddress: string | null): Promise<Viewer> {
    if (authorization === undefined || authorization === '') return ANONYMOUS;
    const match = BEARER.exec(authorization.trim());
    if (!match) {
      this.failures.rejected('access_token', 'malformed', ipAddress);
      throw unauthenticated('The Authorization header must be "Bearer <accessToken>".');
    }

    let claims;
    try {
      claims = await this.tokens.verify(match[1]);
    } catch (error) {
      // Anything else (signing keys unreachable: the database is down) is not the token's fault.
      if (!(error instanceof AccessTokenError)) throw serviceUnavailable(error);
      if (error.reason === 'expired') {
        throw new AppError('TOKEN_EXPIRED', 'The access token expired: refresh it with refreshSession.', { stopsRequest: true });
      }
      this.failures.rejected('access_token', error.rejection, ipAddress);
      throw unauthenticated('The access token is not valid: sign in again.');
    }
    const session = await this.sessions.get(claims.sessionId).catch((error: unknown) => {
      throw serviceUnavailable(error);
    });
    if (!session || session.userId !== claims.userId) {
      this.failures.rejected('access_token', 'revoked_session', ipAddress);
      throw unauthenticated('This session has ended: sign in again.');
    }
    return viewerOf(session);
  }
}

/** The viewer a live session stands for: roles and assurance come from the session, never from a token's informational claims. */
export function viewerOf(session: LiveSession): Viewer {
  return {
    userId: session.userId,
    sessionId: session.sessionId,
    roles: ['user', ...session.roles.filter((role) => role !== 'user')],
    aal: session.aal,
    amr: session.amr,
  };
}

function unauthenticated(message: string): AppError {
  return new AppError('UNAUTHENTICATED', message, { stopsRequest: true });
}
