import type { RequestHandler } from 'express';
import { defineFeature } from '../feature';
import { AccessTokens } from './access-tokens';
import { AccountToken } from './account-token.entity';
import { AccountTokens } from './account-tokens';
import { registerAccountCommands } from './accounts.cli';
import { AccountsResolver, SessionResolver, UserResolver } from './accounts.resolver';
import { accountsRules } from './accounts.rules';
import { AccountsService } from './accounts.service';
import { ACCOUNTS_SETTINGS } from './accounts.settings';
import { Authenticator } from './authenticator';
import { expiredTokenGate } from './expired-token.gate';
import { LoginThrottle } from './login-throttle.entity';
import { LoginThrottler } from './login-throttle';
import { PasswordHasher } from './password-hasher';
import { PasswordPolicy } from './password-policy';
import { RefreshToken } from './refresh-token.entity';
import { Role } from './role.entity';
import { SessionCache } from './session-cache';
import { Session } from './session.entity';
import { SessionRetention } from './session-retention';
import { SessionsService } from './sessions.service';
import { SigningKey } from './signing-key.entity';
import { JWKS_MAX_AGE_SECONDS, SigningKeysService } from './signing-keys.service';
import { TOKEN_FAILURE_WINDOW_MS, TokenFailures } from './token-failures';
import { UserDirectory } from './user-directory.service';
import { UserRole } from './user-role.entity';
import { User } from './user.entity';

/** The services this feature provides. */
export interface AccountsServices {
  readonly signingKeys: SigningKeysService;
  readonly accessTokens: AccessTokens;
  /** Live sessions and their roles, cached per instance, invalidated across instances. */
  readonly sessionCache: SessionCache;
  /** Who a request's bearer token belongs to. */
  readonly authenticator: Authenticator;
  readonly sessions: SessionsService;
  readonly accounts: AccountsService;
  /** Accounts as admins see them: list, suspend, delete, roles. */
  readonly userDirectory: UserDirectory;
  /** argon2id, with a bounded number of hashes at once (the mfa feature hashes recovery codes with it). */
  readonly passwordHasher: PasswordHasher;
  /** Failed sign-ins per account and per account and address. */
  readonly loginThrottle: LoginThrottler;
  /** Refused access and refresh tokens and emailed links: counted, logged and audited per minute without flooding. */
  readonly tokenFailures: TokenFailures;
}

declare module '../feature' {
  interface Services extends AccountsServices {}
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Accounts and sessions: sign-up and sign-in, access and refresh tokens with their signing keys,
 * roles held by accounts, the viewer of each request, and `bastion admin create`.
 */
export const accountsFeature = defineFeature<keyof AccountsServices>()({
  name: 'accounts',
  settings: ACCOUNTS_SETTINGS,
  entities: [User, Role, UserRole, Session, RefreshToken, AccountToken, LoginThrottle, SigningKey],
  needs: ['audit', 'outbox', 'secondFactor', 'assuranceRequirement'],
  provides: {
    signingKeys: ({ dataSource, clock, config, audit }) =>
      new SigningKeysService(dataSource, clock, { accessTokenTtlSeconds: config.accessTokenTtlSeconds }, audit),
    accessTokens: ({ signingKeys, clock, config }) =>
      new AccessTokens(signingKeys, clock, {
        issuer: config.publicUrl,
        audience: config.tokenAudience,
        ttlSeconds: config.accessTokenTtlSeconds,
      }),
    sessionCache: ({ dataSource, clock, config, notifications }) =>
      new SessionCache(dataSource, clock, config.refreshIdleDays * DAY_MS, notifications),
    tokenFailures: ({ logger, clock, audit, dataSource }) => new TokenFailures(logger, clock, audit, dataSource),
    authenticator: ({ accessTokens, sessionCache, tokenFailures }) => new Authenticator(accessTokens, sessionCache, tokenFailures),
    sessions: ({ dataSource, clock, accessTokens, sessionCache, audit, config, tokenFailures }) =>
      new SessionsService(
        dataSource,
        clock,
        accessTokens,
        sessionCache,
        audit,
        {
          idleDays: config.refreshIdleDays,
          absoluteDays: config.refreshAbsoluteDays,
          graceSeconds: config.refreshGraceSeconds,
          maxPerUser: config.maxSessionsPerUser,
        },
        tokenFailures,
      ),
    passwordHasher: ({ config }) => new PasswordHasher({ maxConcurrent: config.hashConcurrency, maxQueued: config.hashConcurrency * 16 }),
    loginThrottle: ({ dataSource, clock, logger }) => new LoginThrottler(dataSource, clock, undefined, logger),
    accounts: (services) =>
      new AccountsService(
        services.dataSource,
        services.clock,
        services.logger,
        services.passwordHasher,
        new PasswordPolicy({ minLength: services.config.passwordMinLength, contextWords: ['bastion', services.config.appName] }),
        services.loginThrottle,
        services.sessions,
        services.audit,
        services.outbox,
        services.secondFactor,
        services.assuranceRequirement,
        {
          publicUrl: services.config.publicUrl,
          appName: services.config.appName,
          requireVerifiedEmail: services.config.requireVerifiedEmail,
        },
        services.tokenFailures,
      ),
    userDirectory: ({ dataSource, sessions, sessionCache, audit }) => new UserDirectory(dataSource, sessions, sessionCache, audit),
  },
  start: async ({ signingKeys, tokenFailures }) => {
    await signingKeys.ensureCurrentKey();
    await signingKeys.retireExpired();
    const failureTimer = setInterval(() => void tokenFailures.flush(), TOKEN_FAILURE_WINDOW_MS).unref();
    return async () => {
      clearInterval(failureTimer);
      await tokenFailures.flush();
    };
  },
  maintenance: ({ loginThrottle, clock, audit, config }) => {
    const accountTokens = new AccountTokens(clock);
    const sessionRetention = new SessionRetention(clock, audit, {
      retentionDays: config.sessionRetentionDays,
      idleDays: config.refreshIdleDays,
    });
    return {
      loginThrottles: (manager) => loginThrottle.prune(manager),
      accountTokens: (manager) => accountTokens.prune(manager),
      sessions: (manager) => sessionRetention.prune(manager),
    };
  },
  resolvers: [AccountsResolver, UserResolver, SessionResolver],
  rules: accountsRules,
  wire: ({ accounts, sessions }) => [new AccountsResolver(accounts, sessions), new UserResolver(sessions), new SessionResolver()],
  context:
    ({ authenticator }) =>
    async (request, context) => ({
      ...(await authenticator.viewerFor(request.get('authorization'), context.ipAddress)),
      signedInDuringRequest: new Set<string>(),
    }),
  http: ({ signingKeys }) => {
    const jwks: RequestHandler = async (_request, response, next) => {
      try {
        // Verifiers may cache it briefly; rotation keeps old keys published longer than this.
        response.setHeader('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
        response.json(await signingKeys.publicJwks());
      } catch (error) {
        next(error);
      }
    };
    return { routes: { '/.well-known/jwks.json': jwks } };
  },
  graphql: ({ tokenFailures }) => ({ plugins: [expiredTokenGate(tokenFailures)] }),
  commands: registerAccountCommands,
});
