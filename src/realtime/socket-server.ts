import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import { CloseCode, makeServer } from 'graphql-ws';
import { decodeJwt } from 'jose';
import { RawData, WebSocket, WebSocketServer } from 'ws';
import type { Context } from '../context';
import { AppError, formatClientError, isPublicError } from '../errors';
import type { UpgradeParts } from '../feature';
import { isBlocked } from '../firewall/firewall.gate';
import { addressBucket } from '../net/ip';
import { KeyedCounts } from '../net/keyed-counts';
import type { Logger } from '../logging';
import { CLOSE, CloseReason, ConnectionServices, LiveConnection } from './live-connection';
import { SharedExecution } from './shared-execution';
import { SubscribeRequests } from './subscribe-requests';
import type { SubscriptionHub } from './subscription-hub';

export interface SocketLimits {
  /** wss:// only (ASVS 4.4.1): a plain upgrade is refused with 426. */
  readonly requireTls: boolean;
  readonly corsOrigins: readonly string[];
  readonly maxTokens: number;
  readonly maxSocketsPerAddress: number;
  readonly maxSocketsPerAccount: number;
  readonly maxMessagesPerSecond: number;
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  readonly initTimeoutMs: number;
}

/** A socket that neither answers a ping nor sends anything for this long is gone (a phone that lost its network). */
const PING_INTERVAL_MS = 30_000;
/** How long a close handshake may take before the socket is cut (a client that does not read never answers it). */
const CLOSE_GRACE_MS = 2_000;

interface SocketExtra {
  readonly socket: WebSocket;
  readonly clientIp: string;
  readonly userAgent: string | null;
  connection?: LiveConnection;
}

/**
 * GraphQL over WebSocket (graphql-transport-ws, graphql-ws's own protocol server) on the HTTP
 * server's /graphql: the upgrade passes the firewall (IP rules), the Origin check (CORS_ORIGINS;
 * native apps send no Origin) and the per-address limit; connection_init authenticates as an HTTP
 * request does; each subscribe passes the same validation rules, limits and operation checks as
 * HTTP, and only subscriptions run here (queries and mutations go over HTTP, so every rate limit
 * has one path). Errors are masked by the same formatError.
 */
export class SocketServer {
  private readonly sockets = new WebSocketServer({ noServer: true, maxPayload: this.limits.maxMessageBytes, perMessageDeflate: false });
  private readonly perAddress = new KeyedCounts();
  private readonly perAccount = new KeyedCounts();
  private readonly open = new Set<LiveConnection>();
  private pingTimer: NodeJS.Timeout | undefined;
  /** Sockets pinged and not heard from since. */
  private readonly unanswered = new WeakSet<WebSocket>();
  private stopping = false;

  constructor(
    private readonly parts: UpgradeParts,
    private readonly hub: SubscriptionHub,
    private readonly services: Omit<ConnectionServices, 'liveChanges'>,
    private readonly limits: SocketLimits,
    private readonly logger: Logger,
  ) {
    parts.httpServer.on(
      'upgrade',
      (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(request, socket, head),
    );
    this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS).unref();
  }

  /** Open authenticated connections (for re-checks when a session change is heard). */
  connections(): readonly LiveConnection[] {
    return [...this.open];
  }

  /** Closes every socket (1001: reconnect elsewhere) and stops taking new ones: Apollo's drain at shutdown. */
  plugin(): ApolloServerPlugin<Context> {
    return {
      serverWillStart: async () => ({
        drainServer: async () => {
          this.stopping = true;
          clearInterval(this.pingTimer);
          // Each is cut CLOSE_GRACE_MS after its close frame, so a client that does not read cannot hold the shutdown.
          for (const socket of this.sockets.clients) this.close(socket, CLOSE.goingAway);
          await new Promise<void>((resolve) => this.sockets.close(() => resolve()));
        },
      }),
    };
  }

  private async upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    // The address's slot is taken before anything is awaited, so concurrent upgrades cannot all pass the count;
    // it is given back when the socket ends, however it ends (refused, a failed handshake, closed later).
    let bucket: string | null = null;
    socket.once('close', () => {
      if (bucket !== null) this.perAddress.add(bucket, -1);
    });
    try {
      if (new URL(request.url ?? '/', 'http://localhost').pathname !== '/graphql') return refuse(404, 'Not Found');
      if (this.stopping) return refuse(503, 'Service Unavailable');
      if (this.limits.requireTls && !this.parts.isSecure(request)) return refuse(426, 'Upgrade Required');
      const clientIp = this.parts.clientIp(request);
      // IPv6 by /64, as the HTTP rate limits count: one subscriber's network, not one of its 2^64 addresses.
      const address = addressBucket(clientIp);
      if (this.perAddress.of(address) >= this.limits.maxSocketsPerAddress) {
        this.services.hits.record('rate_limited', clientIp, { limit: 'websocket_sockets_per_address' });
        return refuse(429, 'Too Many Requests');
      }
      bucket = address;
      this.perAddress.add(bucket, +1);
      if (await isBlocked(this.services.firewall, this.services.hits, clientIp, 'websocket')) return refuse(403, 'Forbidden');
      // Cross-site WebSocket hijacking: a browser page of another site sends its Origin; native apps send none.
      const origin = request.headers.origin;
      if (origin !== undefined && !this.limits.corsOrigins.includes(origin)) {
        this.logger.info({ ip: clientIp }, 'websocket: upgrade from an origin not in CORS_ORIGINS refused');
        return refuse(403, 'Forbidden');
      }
      this.sockets.handleUpgrade(request, socket, head, (webSocket) => this.opened(webSocket, clientIp, request));
    } catch (error) {
      this.logger.error({ err: error }, 'websocket: upgrade failed');
      refuse(500, 'Internal Server Error');
    }
  }

  private opened(socket: WebSocket, clientIp: string, request: http.IncomingMessage): void {
    const extra: SocketExtra = { socket, clientIp, userAgent: request.headers['user-agent']?.slice(0, 512) ?? null };
    let messages = 0;
    let windowStart = Date.now();
    socket.on('pong', () => this.unanswered.delete(socket));
    const closed = this.protocol.opened(
      {
        protocol: socket.protocol,
        send: (data) => {
          if (socket.readyState !== WebSocket.OPEN) return;
          if (socket.bufferedAmount > this.limits.maxBufferedBytes) {
            this.close(socket, CLOSE.slowConsumer);
            return;
          }
          socket.send(data);
        },
        // graphql-ws puts the client's subscription id in some reasons; a close reason may hold 123 bytes (ws throws past them).
        close: (code, reason) => socket.close(code, closeReason(reason)),
        onMessage: (handle) => {
          socket.on('message', (data, isBinary) => {
            // A fixed one-second window: enough against a flood, and it needs no timer.
            const now = Date.now();
            if (now - windowStart >= 1_000) {
              windowStart = now;
              messages = 0;
            }
            messages += 1;
            if (messages > this.limits.maxMessagesPerSecond) {
              this.close(socket, CLOSE.tooMany);
              return;
            }
            if (isBinary) {
              socket.close(CloseCode.BadRequest, 'Messages must be text');
              return;
            }
            handle(textOf(data)).catch((error: unknown) => {
              // A message type only the server sends (next, error, connection_ack…): graphql-ws throws; the client's mistake.
              if (error instanceof Error && /^Unexpected message of type .* received$/.test(error.message)) {
                socket.close(CloseCode.BadRequest, 'Invalid message received');
                return;
              }
              this.logger.warn({ err: error }, 'websocket: a message could not be handled');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          });
        },
      },
      extra,
    );
    socket.once('close', (code, reason) => {
      const connection = extra.connection;
      if (connection) {
        this.open.delete(connection);
        connection.end(CLOSE.goingAway);
        this.hub.closed(connection);
        if (connection.userId) this.perAccount.add(connection.userId, -1);
      }
      void closed(code, reason.toString());
    });
    socket.on('error', (error) => this.logger.info({ err: error }, 'websocket: socket error'));
  }

  private readonly shared = new SharedExecution();
  private readonly requests = new SubscribeRequests(this.parts, this.limits.maxTokens);
  private readonly logged = new WeakSet<GraphQLError>();

  private readonly protocol = makeServer<Record<string, unknown> | undefined, SocketExtra>({
    schema: this.parts.schema,
    subscribe: (args) => this.shared.subscribe(args),
    connectionInitWaitTimeout: this.limits.initTimeoutMs,
    onConnect: async (ctx) => {
      const authorization = typeof ctx.connectionParams?.authorization === 'string' ? ctx.connectionParams.authorization : undefined;
      const { socket, clientIp, userAgent } = ctx.extra;
      let context: Context;
      try {
        context = await this.parts.contextFor({ authorization, 'user-agent': userAgent ?? undefined }, clientIp);
      } catch (error) {
        const code = error instanceof AppError ? error.code : 'INTERNAL_SERVER_ERROR';
        if (code !== 'UNAUTHENTICATED') this.logger.warn({ err: error }, 'websocket: connection_init failed');
        this.close(socket, code === 'SERVICE_UNAVAILABLE' || code === 'INTERNAL_SERVER_ERROR' ? CLOSE.goingAway : CLOSE.forbidden);
        return false;
      }
      if (context.accessTokenExpired) {
        this.close(socket, CLOSE.tokenExpired);
        return false;
      }
      const userId = context.viewer.userId;
      if (userId !== null && this.perAccount.of(userId) >= this.limits.maxSocketsPerAccount) {
        this.services.hits.record('rate_limited', clientIp, { limit: 'websocket_sockets_per_account' });
        this.close(socket, CLOSE.tooMany);
        return false;
      }
      const expiresAt = authorization ? (decodeJwt(authorization.replace(/^Bearer\s+/, '')).exp ?? 0) * 1000 : null;
      // The client may have gone while its token was checked: nothing to register then.
      if (socket.readyState !== WebSocket.OPEN) return false;
      const connection = new LiveConnection(context, expiresAt, { ...this.services, liveChanges: this.hub }, (reason) =>
        this.close(socket, reason),
      );
      ctx.extra.connection = connection;
      this.open.add(connection);
      if (userId !== null) this.perAccount.add(userId, +1);
      return true;
    },
    onSubscribe: async (ctx, _id, payload) => {
      const connection = ctx.extra.connection!;
      if (!(await connection.refresh())) return [new AppError('SERVICE_UNAVAILABLE', 'This connection is closing: reconnect.')];
      return this.requests.prepare(payload, connection.rights);
    },
    onNext: (ctx, _id, payload, _args, result) => ({
      ...result,
      ...(result.errors ? { errors: this.masked(result.errors, ctx.extra.connection, payload.operationName) } : {}),
    }),
    onError: (ctx, _id, payload, errors) => this.masked(errors, ctx.extra.connection, payload.operationName),
  });

  /** Errors as a client may see them (formatError, as over HTTP); the original of every masked one is logged, with the connection's request id. */
  private masked(errors: readonly GraphQLError[], connection: LiveConnection | undefined, operationName: string | null | undefined) {
    for (const error of errors) {
      // An answer shared by many subscribers carries the same error objects: logged once.
      if (isPublicError(error) || this.logged.has(error)) continue;
      this.logged.add(error);
      (connection?.rights.logger ?? this.logger).error(
        { err: error.originalError ?? error, path: error.path, operationName },
        'unexpected error in a subscription (masked for the client)',
      );
    }
    return errors.map((error) => formatClientError(error.toJSON(), error));
  }

  private close(socket: WebSocket, reason: CloseReason): void {
    if (socket.readyState === WebSocket.CLOSED) return;
    socket.close(reason.code, reason.reason);
    // A client that does not read never completes the close handshake.
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  /**
   * Every 30 s: a socket that left the last ping unanswered is cut, and an idle connection whose
   * access token expired is closed (4401) without waiting for a change. Only the clock is read:
   * sessions are re-checked when a change of theirs is heard and at each delivery, so a thousand
   * idle sockets cost no query.
   */
  private ping(): void {
    for (const socket of this.sockets.clients) {
      if (this.unanswered.has(socket)) {
        socket.terminate();
        continue;
      }
      this.unanswered.add(socket);
      socket.ping();
    }
    for (const connection of this.open) connection.expireIfDue();
  }
}

/** A close reason cut to the 123 bytes a close frame may carry, on a character boundary. */
function closeReason(reason: string | undefined): string | undefined {
  if (reason === undefined || Buffer.byteLength(reason) <= 123) return reason;
  let cut = reason.slice(0, 120);
  while (Buffer.byteLength(`${cut}…`) > 123) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** A text frame's content (ws hands it over as one buffer, fragments, or an ArrayBuffer). */
function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8');
}
