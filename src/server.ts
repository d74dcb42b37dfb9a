import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { OperationTypeNode } from 'graphql';
import helmet from 'helmet';
import type { Clock } from './clock';
import type { Logger } from './logging';
import type { Context } from './context';
import { AppError, formatClientError } from './errors';
import { errorLoggingPlugin } from './errors/error-logging.plugin';
import type { ContextStep, Feature, GraphQLParts, HttpParts, OperationCheck, UpgradeParts } from './feature';
import { CompiledExecutor, ExecutorComparisonHook, comparingExecutors, executorGateway } from './graphql/executor';
import { RequestLoaders } from './graphql/request-loaders';
import { proxyTrust, resolveClientIp } from './http/client-ip';
import { corsAllowlist } from './http/cors';
import { healthz, readyz } from './http/health';
import { errorHandler, notFound } from './http/http-errors';
import { requestDeadline } from './http/request-deadline';
import { requestIds } from './http/request-id';
import { createHttpServer, strictTransportSecurity } from './http/tls';
import { buildGraphQLSchema, rulesOf } from './schema';
import type { RunningServices } from './services';
import type { Services } from './feature';
import { protectSchema } from './shield/shield';

export interface ServerDeps {
  /** The running services, and each feature's view of them. */
  readonly running: RunningServices;
  /** Every feature this server serves, in order. */
  readonly features: readonly Feature[];
  /** Tests: run every compiled query on graphql-js as well and report where the answers differ. */
  readonly executorComparison?: ExecutorComparisonHook;
}

export interface BastionServer {
  readonly app: express.Express;
  readonly httpServer: http.Server;
  /** Starts listening on config.host:config.port; resolves to the GraphQL URL. */
  listen(): Promise<string>;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), then closes. */
  close(): Promise<void>;
}

const MAX_USER_AGENT = 512;

/** Responses carry tokens and personal data: no cache may keep them (ASVS 14.3.2). */
function noStore(_req: express.Request, res: express.Response, next: express.NextFunction): void {
  res.setHeader('Cache-Control', 'no-store');
  next();
}

/** Holds a request until this instance has heard every cache invalidation committed before it arrived. */
function changesHeard(running: RunningServices) {
  return async (_req: express.Request, _res: express.Response, next: express.NextFunction): Promise<void> => {
    await running.services.notifications.sync();
    next();
  };
}

/**
 * Builds each GraphQL request's Context: the platform's part (request id, logger, clock, loaders,
 * client address), then each feature's in order (accounts finds the viewer, access decides for it).
 */
export function graphqlContext(clock: Clock, steps: readonly ContextStep[]): (integration: { req: express.Request }) => Promise<Context> {
  return async ({ req }) => {
    const context = {
      requestId: req.requestId,
      // The request's child logger, made when something first logs.
      get logger() {
        return req.log;
      },
      clock,
      loaders: new RequestLoaders(),
      ipAddress: req.clientIp || null,
      userAgent: req.get('user-agent')?.slice(0, MAX_USER_AGENT) ?? null,
    } as Context;
    for (const step of steps) Object.assign(context, await step(req, context));
    return context;
  };
}

/** Each feature's context step, in feature order. */
export function contextStepsOf(features: readonly Feature[], servicesFor: (feature: Feature) => Services): ContextStep[] {
  return features.flatMap((feature) => (feature.context ? [feature.context(servicesFor(feature))] : []));
}

/** An upgrade request as the context steps read a request: its headers (the token from connection_init), address, id and logger. */
function upgradeRequest(headers: Readonly<Record<string, string | undefined>>, clientIp: string, logger: Logger): express.Request {
  const requestId = randomUUID();
  let log: Logger | undefined;
  return {
    requestId,
    clientIp,
    get log() {
      return (log ??= logger.child({ requestId }));
    },
    get: (name: string) => headers[name.toLowerCase()],
  } as unknown as express.Request;
}

/**
 * Runs the features' operation checks (cost, allowlist) once Apollo has resolved the operation.
 * A subscription is refused over HTTP: graphql-js would run its root field as a query's.
 */
function operationChecksPlugin(checks: readonly OperationCheck[]): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ source, document, operation, operationName, request, contextValue }) {
          if (operation?.operation === OperationTypeNode.SUBSCRIPTION)
            throw new AppError('BAD_REQUEST', 'Subscriptions run over WebSocket (graphql-transport-ws) at /graphql, not over HTTP.', {
              stopsRequest: true,
            });
          for (const check of checks) check({ source, document, operation, operationName, variables: request.variables }, contextValue);
        },
      };
    },
  };
}

/** Builds express + Apollo Server from the features. Used by `bastion serve` and by tests. */
export async function createServer(deps: ServerDeps): Promise<BastionServer> {
  const { running, features } = deps;
  const { config, dataSource, logger } = running.services;
  const viewOf = (feature: Feature) => running.servicesFor(feature);
  const schema = protectSchema(
    await buildGraphQLSchema(
      features,
      features.flatMap((feature) => feature.wire?.(viewOf(feature)) ?? []),
    ),
    rulesOf(features),
  );
  const graphqlParts: GraphQLParts[] = features.map((feature) => feature.graphql?.(viewOf(feature), schema) ?? {});
  const httpParts: HttpParts[] = features.map((feature) => feature.http?.(viewOf(feature)) ?? {});
  const persistedQueryCaches = graphqlParts.flatMap((parts) => (parts.persistedQueries ? [parts.persistedQueries] : []));
  if (persistedQueryCaches.length > 1) throw new Error('Two features provide the persisted-query cache');

  const app = express();
  const httpServer = createHttpServer(config, app);
  const trust = proxyTrust(config.trustProxy, config.tlsCertFile !== undefined);
  const contextOf = graphqlContext(running.services.clock, contextStepsOf(features, viewOf));
  const validationRules = graphqlParts.flatMap((parts) => parts.validationRules ?? []);
  const operationChecks = graphqlParts.flatMap((parts) => parts.operationChecks ?? []);
  const upgradeParts: UpgradeParts = {
    httpServer,
    schema,
    validationRules,
    operationChecks,
    clientIp: (request) => trust.clientIp(request as express.Request),
    isSecure: (request) => trust.isSecure(request as express.Request),
    contextFor: (headers, clientIp) => contextOf({ req: upgradeRequest(headers, clientIp, logger) }),
  };
  graphqlParts.push(...features.flatMap((feature) => (feature.upgrades ? [feature.upgrades(viewOf(feature), upgradeParts)] : [])));
  const compiled = new CompiledExecutor(schema);
  const apollo = new ApolloServer<Context>({
    // Apollo's supported hook for its executor: compiled queries (see CompiledExecutor).
    gateway: executorGateway(
      schema,
      deps.executorComparison ? comparingExecutors(schema, compiled, deps.executorComparison) : (request) => compiled.execute(request),
    ),
    // Compact JSON: the same response, without Apollo's default two-space indentation (a third of a list's bytes).
    stringifyResult: (value) => JSON.stringify(value),
    validationRules,
    // Automatic persisted queries: Apollo's in-memory cache, unless a feature keeps its own.
    persistedQueries: persistedQueryCaches.length > 0 ? { cache: persistedQueryCaches[0] } : undefined,
    logger,
    formatError: formatClientError,
    includeStacktraceInErrorResponses: false,
    hideSchemaDetailsFromClientErrors: true,
    // The gate plugin decides per viewer; Apollo's own switch would be all or nothing.
    introspection: true,
    allowBatchedHttpRequests: false,
    // Fragment fan-out is refused before it can cost anything (docs/security.md#gql-7).
    maxRecursiveSelections: true,
    csrfPrevention: true,
    // The CLI owns SIGTERM/SIGINT: Apollo's own handlers would race ours and re-raise the signal.
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownTimeoutMs }),
      config.sandbox
        ? ApolloServerPluginLandingPageLocalDefault({ embed: { runTelemetry: config.sandboxTelemetry }, includeCookies: false })
        : ApolloServerPluginLandingPageDisabled(),
      ...graphqlParts.flatMap((parts) => parts.plugins ?? []),
      // After the features' own (an expired token is answered TOKEN_EXPIRED before any allowlist decides).
      operationChecksPlugin(operationChecks),
      errorLoggingPlugin(logger),
      // Bastion sends no cache hints (every response is no-store); the plugin would wrap every field resolver for nothing.
      ApolloServerPluginCacheControlDisabled(),
      // No tracing and no reporting to Apollo's cloud, whatever APOLLO_KEY the environment holds:
      // nothing hooks a field, and nothing leaves the server.
      ApolloServerPluginInlineTraceDisabled(),
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
    ],
  });
  await apollo.start();

  app.disable('x-powered-by');
  // Responses are no-store; hashing every body for an ETag would be work for nothing.
  app.set('etag', false);
  app.use(resolveClientIp(trust));
  app.use(requestIds(logger));
  app.get('/healthz', healthz);
  let closing: Promise<void> | undefined;
  // Health probes come from the load balancer, whatever the IP rules say.
  app.get(
    '/readyz',
    readyz(dataSource, () => closing !== undefined),
  );
  // Whatever any instance committed before this request arrived (a sign-out, a grant, an IP rule) is in force for it.
  app.use(changesHeard(running));
  for (const gate of httpParts.flatMap((parts) => parts.gates ?? [])) app.use(gate);
  app.use(strictTransportSecurity(trust));
  // Security headers for an API (HSTS is ours above, no CSP: responses are JSON, and the Sandbox page loads Apollo's scripts).
  app.use(helmet({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false, strictTransportSecurity: false }));
  for (const parts of httpParts) for (const [route, handler] of Object.entries(parts.routes ?? {})) app.get(route, handler);
  for (const parts of httpParts) for (const [path, handlers] of Object.entries(parts.mounts ?? {})) app.use(path, ...handlers);
  app.use(
    '/graphql',
    requestDeadline(config.requestTimeoutMs),
    corsAllowlist(config.corsOrigins),
    noStore,
    ...httpParts.flatMap((parts) => parts.beforeBody ?? []),
    express.json({ limit: config.bodyLimitBytes }),
    ...httpParts.flatMap((parts) => parts.afterBody ?? []),
    expressMiddleware(apollo, { context: contextOf }),
  );
  app.use(notFound);
  app.use(errorHandler);

  return {
    app,
    httpServer,
    listen: () =>
      new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(config.port, config.host, () => {
          httpServer.off('error', reject);
          const { port } = httpServer.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '127.0.0.1' ? 'localhost' : config.host;
          resolve(`${config.tlsCertFile ? 'https' : 'http'}://${host}:${port}/graphql`);
        });
      }),
    // The drain plugin stops accepting, closes idle keep-alive sockets, waits for in-flight
    // requests up to the shutdown timeout, then cuts what remains.
    close: () => {
      closing ??= apollo.stop();
      return closing;
    },
  };
}
