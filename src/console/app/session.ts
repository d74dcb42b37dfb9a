import { ApiError, GraphQLResponse, TRANSIENT_CODES, firstError, post, request } from './api';

/**
 * The signed-in session, in memory only: never localStorage, sessionStorage or a cookie. Closing
 * or reloading the tab loses it, and the page asks the server to end the session as it goes. The
 * access token is refreshed a minute before it expires, so the one the page holds is always valid
 * (also for that last sign-out).
 */

export interface Tokens {
  readonly accessToken: string;
  readonly accessTokenExpiresAt: string;
  readonly refreshToken: string;
}

/** The fields of a sign-in's or a refresh's answer that the console keeps. */
export const TOKEN_FIELDS = 'accessToken accessTokenExpiresAt refreshToken';

/** What the access token says about its holder (the server decides; the console only shows). */
export interface Claims {
  readonly sub: string;
  readonly roles: readonly string[];
  readonly aal: number;
  readonly iat: number;
  readonly exp: number;
}

const REFRESH = `mutation ConsoleRefresh($input: RefreshSessionInput!) { refreshSession(input: $input) { ${TOKEN_FIELDS} } }`;
const SIGN_OUT = 'mutation ConsoleSignOut { signOut }';

/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 60_000;

function claimsOf(token: string): Claims {
  const payload = token.split('.')[1] ?? '';
  const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
  const claims = JSON.parse(json) as Partial<Claims>;
  return { sub: claims.sub ?? '', roles: claims.roles ?? [], aal: claims.aal ?? 1, iat: claims.iat ?? 0, exp: claims.exp ?? 0 };
}

export class Session {
  private tokens!: Tokens;
  /** When the access token expires by this browser's clock: its lifetime (exp − iat) from when it arrived, whatever the clocks' skew. */
  private expiresAt = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<void> | null = null;
  private ended = false;

  constructor(
    tokens: Tokens,
    private readonly onEnd: (reason: string) => void,
  ) {
    this.keep(tokens);
    // Leaving the page ends the session on the server: the tokens live only in this page's memory.
    addEventListener('pagehide', this.endOnLeave);
  }

  get claims(): Claims {
    return claimsOf(this.tokens.accessToken);
  }

  get isAdmin(): boolean {
    return this.claims.roles.includes('admin');
  }

  /** The access token, refreshed first when it is about to expire (a timer late in a background tab). */
  async accessToken(): Promise<string> {
    if (this.expiresAt - Date.now() < REFRESH_MARGIN_MS) await this.refresh();
    return this.tokens.accessToken;
  }

  /** Runs an operation as this session; a session the server has ended sends the console back to sign-in. */
  async run<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    try {
      return await request<T>(query, variables, await this.accessToken());
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // Expired early (a clock ahead of ours): refresh once and try again.
      if (error.code === 'TOKEN_EXPIRED') {
        await this.refresh();
        return request<T>(query, variables, this.tokens.accessToken);
      }
      if (error.code === 'UNAUTHENTICATED') this.end(error.message);
      throw error;
    }
  }

  /** A raw GraphQL request as this session (the explorer shows the answer whole, errors included). */
  async send(body: unknown): Promise<GraphQLResponse<unknown>> {
    let answer = await post(body, await this.accessToken());
    let error = firstError(answer);
    if (error?.code === 'TOKEN_EXPIRED') {
      await this.refresh();
      answer = await post(body, this.tokens.accessToken);
      error = firstError(answer);
    }
    if (error?.code === 'UNAUTHENTICATED') this.end(error.message);
    return answer;
  }

  /** Signs out on the server (with a token made valid first), then forgets the tokens whatever the answer. */
  async signOut(): Promise<void> {
    try {
      await request(SIGN_OUT, {}, await this.accessToken());
    } finally {
      this.end('Signed out.');
    }
  }

  /** Ends the session in this page only, without a request: the server has ended it already (its own session revoked). */
  endHere(reason: string): void {
    this.end(reason);
  }

  /** Fresh tokens now: after the session's assurance changed (a factor confirmed), so the token says so. */
  renew(): Promise<void> {
    return this.refresh();
  }

  private refresh(): Promise<void> {
    this.refreshing ??= request<{ refreshSession: Tokens }>(REFRESH, { input: { refreshToken: this.tokens.refreshToken } })
      .then(({ refreshSession }) => this.keep(refreshSession))
      .catch((error: unknown) => {
        // A network blip or a busy server says nothing about the session: keep it and let the next request try again.
        if (!(error instanceof ApiError) || !TRANSIENT_CODES.has(error.code))
          this.end(error instanceof ApiError ? error.message : 'The session ended.');
        throw error;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private keep(tokens: Tokens): void {
    this.tokens = tokens;
    const { iat, exp } = claimsOf(tokens.accessToken);
    this.expiresAt = Date.now() + (exp - iat) * 1000;
    clearTimeout(this.refreshTimer);
    // Refreshed ahead of time, so the token is valid whenever the page needs it, the sign-out as it closes included.
    this.refreshTimer = setTimeout(
      () => void this.refresh().catch(() => undefined),
      Math.max(0, this.expiresAt - Date.now() - REFRESH_MARGIN_MS),
    );
  }

  private readonly endOnLeave = (): void => {
    if (this.ended) return;
    void post({ query: SIGN_OUT }, this.tokens.accessToken, { keepalive: true }).catch(() => undefined);
    this.forget();
  };

  private end(reason: string): void {
    if (this.ended) return;
    this.forget();
    this.onEnd(reason);
  }

  private forget(): void {
    this.ended = true;
    clearTimeout(this.refreshTimer);
    removeEventListener('pagehide', this.endOnLeave);
  }
}
