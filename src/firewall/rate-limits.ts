import { HeaderMap, type ApolloServerPlugin, type GraphQLResponse } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { DocumentNode, FragmentDefinitionNode, Kind, OperationDefinitionNode, OperationTypeNode, SelectionSetNode } from 'graphql';
import type Redis from 'ioredis';
import type { Pool } from 'pg';
import { RateLimiterAbstract, RateLimiterMemory, RateLimiterPostgres, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { addressBucket } from '../net/ip';
import type { Clock } from '../clock';
import type { RateLimit } from './firewall.settings';
import type { Context } from '../context';
import { AppError, ERROR_CODES } from '../errors';
import { sendError } from '../http/http-errors';
import type { Logger } from '../logging';
import type { HitLog } from './hit-log';
import { RATE_LIMIT_TABLE } from './rate-limit.entity';
import { PostgresCounterStore, RedisCounterStore, SharedWindowCounter } from './shared-counter';

/** Where the counters live: PostgreSQL (the default, nothing else to run) or Redis. */
export type RateLimitStore = { readonly kind: 'postgres'; readonly pool: Pool } | { readonly kind: 'redis'; readonly client: Redis };

export interface RateLimitSettings {
  readonly perIp: RateLimit;
  /** How long the per-address limit waits for the shared store before deciding on this instance's counts. */
  readonly storeWaitMs: number;
  readonly perUser: RateLimit;
  /** Stricter buckets per client address for the operations attackers repeat. */
  readonly operations: Readonly<Record<LimitedOperation, RateLimit>>;
}

export const LIMITED_OPERATIONS = ['signIn', 'signUp', 'verifyMfa', 'requestPasswordReset'] as const;
export type LimitedOperation = (typeof LIMITED_OPERATIONS)[number];

/** A refusal: how long until the client may try again. */
export interface Refusal {
  readonly bucket: string;
  readonly retryAfterSeconds: number;
}

/**
 * Rate limits by client address, by account, and by operation (rate-limiter-flexible), counted
 * in a store every instance shares, so N instances do not multiply the limits. If the store fails,
 * each limiter falls back to a per-process memory limiter with the same numbers (rate-limiter-
 * flexible's insurance): requests go on, limited per instance, rather than failing.
 */
export class RateLimits {
  /** Every request: counted in the shared store before it is decided, one statement for all the requests that arrive together. */
  private readonly perIp: SharedWindowCounter;
  private readonly perUser: RateLimiterAbstract;
  private readonly perOperation: ReadonlyMap<string, RateLimiterAbstract>;

  constructor(
    store: RateLimitStore,
    settings: RateLimitSettings,
    private readonly hits: HitLog,
    clock: Clock,
    logger: Logger,
  ) {
    const limiter = (name: string, limit: RateLimit): RateLimiterAbstract => {
      const options = {
        keyPrefix: name,
        points: limit.points,
        duration: limit.seconds,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix: name, points: limit.points, duration: limit.seconds }),
      };
      if (store.kind === 'redis') return new RateLimiterRedis({ ...options, storeClient: store.client, rejectIfRedisNotReady: true });
      // The table comes from a migration; expired rows are pruned by the maintenance job, not a timer per limiter.
      return new RateLimiterPostgres({
        ...options,
        storeClient: store.pool,
        tableName: RATE_LIMIT_TABLE,
        tableCreated: true,
        clearExpiredByTimeout: false,
      });
    };
    this.perIp = new SharedWindowCounter(
      'ipw',
      store.kind === 'redis' ? new RedisCounterStore(store.client, clock) : new PostgresCounterStore(store.pool),
      settings.perIp,
      clock,
      logger,
      { storeWaitMs: settings.storeWaitMs },
    );
    this.perIp.start();
    this.perUser = limiter('user', settings.perUser);
    this.perOperation = new Map(
      LIMITED_OPERATIONS.map((operation) => [operation, limiter(`op-${operation}`, settings.operations[operation])]),
    );
  }

  /** One request from this address (IPv6 by /64: one subscriber's whole network, not one of its 2^64 addresses). */
  async request(address: string): Promise<Refusal | null> {
    const bucket = addressBucket(address);
    const retryAfterMs = await this.perIp.consume(bucket);
    return retryAfterMs === null ? null : this.refused('ip', bucket, retryAfterMs);
  }

  /** Sends the per-address counts nobody waits for now (tests; the timer does it every 100 ms). */
  flush(): Promise<void> {
    return this.perIp.flush();
  }

  stop(): Promise<void> {
    return this.perIp.stop();
  }

  /**
   * The operations of one GraphQL request: one point per request for the account, and for each
   * limited operation one point per call, aliases included (50 aliased signIn calls are 50 tries).
   */
  async operations(address: string, userId: string | null, calls: ReadonlyMap<string, number>): Promise<Refusal | null> {
    const checks: Promise<Refusal | null>[] = userId ? [this.consume(this.perUser, 'user', userId, 1)] : [];
    for (const [operation, count] of calls) {
      const limiter = this.perOperation.get(operation);
      if (limiter) checks.push(this.consume(limiter, operation, addressBucket(address), count));
    }
    const refusals = (await Promise.all(checks)).filter((refusal): refusal is Refusal => refusal !== null);
    return refusals.sort((a, b) => b.retryAfterSeconds - a.retryAfterSeconds)[0] ?? null;
  }

  private async consume(limiter: RateLimiterAbstract, bucket: string, key: string, points: number): Promise<Refusal | null> {
    try {
      await limiter.consume(key, points);
      return null;
    } catch (rejection) {
      // Not a RateLimiterRes: the store and its insurance both failed; do not block the request for it.
      if (!(rejection instanceof RateLimiterRes)) return null;
      return this.refused(bucket, key, rejection.msBeforeNext);
    }
  }

  private refused(bucket: string, key: string, retryAfterMs: number): Refusal {
    const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    this.hits.record('rate_limited', `${bucket} ${key}`, { bucket, retryAfterSeconds });
    return { bucket, retryAfterSeconds };
  }
}

function rateLimited(refusal: Refusal): AppError {
  return new AppError('RATE_LIMITED', `Too many requests: try again in ${refusal.retryAfterSeconds} s.`, {
    stopsRequest: true,
    details: { retryAfterSeconds: refusal.retryAfterSeconds },
  });
}

/** Per-address limit, before any GraphQL work: HTTP 429 with Retry-After. */
export function rateLimitGate(limits: RateLimits) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const refusal = await limits.request(req.clientIp);
    if (!refusal) {
      next();
      return;
    }
    res.setHeader('Retry-After', String(refusal.retryAfterSeconds));
    sendError(res, 'RATE_LIMITED', rateLimited(refusal).message, undefined, { retryAfterSeconds: refusal.retryAfterSeconds });
  };
}

/**
 * Per-account and per-operation limits, once the operation is known (its root fields counted, aliases included).
 * Counted in responseForOperation, which Apollo calls only after every plugin's didResolveOperation has
 * passed: it runs those in parallel, so a point taken there was spent even by a request the cost limit,
 * the operation allowlist or the introspection gate refused. A refused request spends only its
 * per-address point, which every request meets.
 */
export function rateLimitPlugin(limits: RateLimits): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async responseForOperation({ document, operation, contextValue }) {
          // The limited operations are all mutations; a query only costs its account point.
          const calls =
            operation?.operation === OperationTypeNode.MUTATION ? rootFieldCalls(document, operation) : new Map<string, number>();
          const refusal = await limits.operations(contextValue.ipAddress ?? 'unknown', contextValue.viewer.userId, calls);
          return refusal ? rateLimitedResponse(refusal) : null;
        },
      };
    },
  };
}

/**
 * The 429 answered instead of executing. A response from this hook is sent as it is (Apollo's
 * formatError does not see it), so it is written in the shape formatError gives an AppError.
 */
function rateLimitedResponse(refusal: Refusal): GraphQLResponse {
  const error = rateLimited(refusal);
  return {
    http: {
      status: ERROR_CODES[error.code].httpStatus,
      headers: new HeaderMap([['retry-after', String(refusal.retryAfterSeconds)]]),
    },
    body: {
      kind: 'single',
      singleResult: {
        errors: [{ message: error.message, extensions: { code: error.code, retryAfterSeconds: refusal.retryAfterSeconds } }],
      },
    },
  };
}

/**
 * How many times each root field is called by the operation, through aliases and fragments
 * (validation has already refused fragment cycles). Each fragment is counted once and its count
 * reused, so a fan-out of fragments costs linear time; identical aliased calls that GraphQL
 * merges still count each: erring towards the stricter count.
 */
export function rootFieldCalls(document: DocumentNode, operation: OperationDefinitionNode): Map<string, number> {
  const fragments = new Map(
    document.definitions
      .filter((definition): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION)
      .map((fragment) => [fragment.name.value, fragment]),
  );
  const counted = new Map<string, Map<string, number>>();
  const count = (selections: SelectionSetNode): Map<string, number> => {
    const calls = new Map<string, number>();
    const add = (more: ReadonlyMap<string, number>) => {
      for (const [name, times] of more) calls.set(name, (calls.get(name) ?? 0) + times);
    };
    for (const selection of selections.selections) {
      if (selection.kind === Kind.FIELD) add(new Map([[selection.name.value, 1]]));
      else if (selection.kind === Kind.INLINE_FRAGMENT) add(count(selection.selectionSet));
      else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment) continue;
        if (!counted.has(name)) counted.set(name, count(fragment.selectionSet));
        add(counted.get(name)!);
      }
    }
    return calls;
  };
  return count(operation.selectionSet);
}
