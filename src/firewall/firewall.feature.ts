import Redis from 'ioredis';
import type { Pool } from 'pg';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { windowMetadata } from '../audit/aggregated-hits';
import { defineFeature } from '../feature';
import { registerFirewallCommands } from './firewall.cli';
import { firewallGate } from './firewall.gate';
import { FirewallRule } from './firewall-rule.entity';
import { FirewallResolver } from './firewall.resolver';
import { firewallRules } from './firewall.rules';
import { FirewallService } from './firewall.service';
import { FIREWALL_SETTINGS, rateLimitsInForce } from './firewall.settings';
import { errorCapPlugin } from '../errors';
import {
  costLimit,
  documentLimitGate,
  documentLimitRules,
  knownOperationTypeRule,
  tokenLimitGate,
  variableDepthGate,
} from './graphql-limits';
import { HitLog } from './hit-log';
import { loadOperationAllowlist, manifestQueryCache, operationAllowlist } from './operation-allowlist';
import { RateLimitCounter } from './rate-limit.entity';
import { RateLimits, rateLimitGate, rateLimitPlugin } from './rate-limits';

/** The services this feature provides. */
export interface FirewallServices {
  /** IP rules: the verdict for an address, and their changes. */
  readonly firewall: FirewallService;
  /** Firewall blocks and rate-limit hits: counted, and logged and audited without flooding. */
  readonly hits: HitLog;
  /** Null when BASTION_RATE_LIMITS is off. */
  readonly rateLimits: RateLimits | null;
  /** The rate-limit counters' Redis (REDIS_URL); null when the counters live in PostgreSQL. */
  readonly rateLimitRedis: Redis | null;
}

declare module '../feature' {
  interface Services extends FirewallServices {}
}

/** Firewall blocks and rate-limit hits are summed up, logged and audited per window of this length. */
const HIT_WINDOW_MS = 60_000;
/** Expired IP rules stay listed (`firewallRules`, `bastion firewall list`) this long, then the maintenance job prunes them. */
const EXPIRED_RULES_KEPT_MS = 24 * 60 * 60 * 1000;

/**
 * The firewall: IP rules (longest prefix wins), rate limits shared by every instance, limits on
 * GraphQL documents (depth, cost, aliases, tokens), the operation allowlist, and `bastion firewall`.
 */
export const firewallFeature = defineFeature<keyof FirewallServices>()({
  name: 'firewall',
  settings: FIREWALL_SETTINGS,
  entities: [FirewallRule, RateLimitCounter],
  needs: ['audit'],
  provides: {
    firewall: ({ dataSource, clock, audit, config, notifications }) =>
      new FirewallService(dataSource, clock, audit, { defaultAction: config.firewallDefault }, notifications),
    // Each minute's blocks and limit hits become one audit row per kind (aggregated: an attack cannot flood the chain).
    hits: ({ logger, clock, audit, dataSource }) =>
      new HitLog(logger, clock, HIT_WINDOW_MS, 1_000, async (window) => {
        await audit.append(dataSource.manager, {
          action: window.kind,
          outcome: 'denied',
          targetType: 'network',
          metadata: windowMetadata(window),
        });
      }),
    rateLimitRedis: ({ config, logger }) => {
      if (!config.rateLimitsEnabled || !config.redisUrl) return null;
      const redis = new Redis(config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
      // An 'error' event without a listener would crash the process; the limiters fall back to memory meanwhile.
      redis.on('error', (error) =>
        logger.warn({ err: error }, "redis: connection problem; rate limits fall back to this instance's memory"),
      );
      return redis;
    },
    rateLimits: ({ config, dataSource, rateLimitRedis, hits, clock, logger }) =>
      config.rateLimitsEnabled
        ? new RateLimits(
            rateLimitRedis
              ? { kind: 'redis', client: rateLimitRedis }
              : { kind: 'postgres', pool: (dataSource.driver as PostgresDriver).master as Pool },
            {
              perIp: config.rateLimitPerIp,
              storeWaitMs: config.rateLimitStoreWaitMs,
              perUser: config.rateLimitPerUser,
              operations: {
                signIn: config.rateLimitSignIn,
                signUp: config.rateLimitSignUp,
                verifyMfa: config.rateLimitVerifyMfa,
                requestPasswordReset: config.rateLimitPasswordReset,
              },
            },
            hits,
            clock,
            logger,
          )
        : null,
  },
  start: async ({ hits, rateLimits, rateLimitRedis, logger }) => {
    // Connected before the first request, so early requests are counted in Redis, not in memory.
    await rateLimitRedis
      ?.connect()
      .catch((error: unknown) =>
        logger.warn({ err: error }, "redis: not reachable at start; rate limits use this instance's memory until it is"),
      );
    const hitTimer = setInterval(() => void hits.flush(), HIT_WINDOW_MS).unref();
    return async () => {
      clearInterval(hitTimer);
      await hits.flush();
      await rateLimits?.stop();
      // disconnect, not quit: quit waits on a server that may be gone, and the process would never exit.
      rateLimitRedis?.disconnect();
    };
  },
  maintenance: ({ clock, firewall }) => ({
    firewallRules: (manager) => firewall.prune(manager, new Date(clock.now().getTime() - EXPIRED_RULES_KEPT_MS)),
    rateLimits: async (manager) =>
      (await manager.createQueryBuilder().delete().from(RateLimitCounter).where('expire < :now', { now: clock.now().getTime() }).execute())
        .affected ?? 0,
  }),
  resolvers: [FirewallResolver],
  rules: firewallRules,
  wire: ({ firewall, config }) => [
    new FirewallResolver(firewall, {
      enabled: config.rateLimitsEnabled,
      // Where rateLimitRedis above puts the counters (or would, with the limits off).
      store: config.redisUrl ? 'redis' : 'postgres',
      limits: rateLimitsInForce(config),
    }),
  ],
  http: ({ firewall, hits, rateLimits, config }) => ({
    gates: [firewallGate(firewall, hits)],
    beforeBody: rateLimits ? [rateLimitGate(rateLimits)] : [],
    // Tokens before the document is parsed, its shape before Apollo validates it: each refusal is one error.
    afterBody: [
      tokenLimitGate(config.graphqlMaxTokens),
      documentLimitGate(documentLimitRules(config), config.graphqlMaxTokens),
      variableDepthGate(),
    ],
  }),
  graphql: ({ config, rateLimits }, schema) => {
    const allowlist = config.operationAllowlistFile ? loadOperationAllowlist(config.operationAllowlistFile) : null;
    return {
      validationRules: [knownOperationTypeRule, ...documentLimitRules(config)],
      plugins: [
        // With the limits, what keeps a response from being a page of errors (graphql-cop's overloading checks).
        errorCapPlugin(),
        ...(rateLimits ? [rateLimitPlugin(rateLimits)] : []),
      ],
      operationChecks: [costLimit(schema, config.graphqlMaxCost), ...(allowlist ? [operationAllowlist(allowlist)] : [])],
      // The manifest's operations may be sent by id alone from the first request (persisted queries).
      ...(allowlist ? { persistedQueries: manifestQueryCache(allowlist) } : {}),
    };
  },
  commands: registerFirewallCommands,
});
