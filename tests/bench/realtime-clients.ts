import { performance } from 'node:perf_hooks';
import { Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * The realtime bench's subscribers, in a child process of their own (forked by realtime-bench.ts):
 * their sockets, frames and JSON would otherwise share the server's event loop and heap, and weigh
 * on both its delivery times and its memory per socket. The parent sends commands over IPC; each
 * delivery's lag is taken here, from the send time the mutation wrote into the post's title to the
 * moment graphql-ws hands the message over (both clocks: performance.timeOrigin + now(), the
 * system clock both processes share).
 */

/** One socket to open: signed in with `token` (anonymous when null), subscribed with `variables`. */
export interface SocketPlan {
  readonly token: string | null;
  readonly variables: Record<string, unknown>;
}

export type ClientCommand =
  | { readonly type: 'open'; readonly url: string; readonly query: string; readonly sockets: readonly SocketPlan[] }
  | { readonly type: 'progress' }
  | { readonly type: 'collect' }
  | { readonly type: 'close' };

export type ClientReply =
  | { readonly type: 'opened'; readonly connected: number; readonly failed: number; readonly firstFailure?: string }
  | {
      readonly type: 'collected';
      /** When each delivery's change was sent (epoch ms), and its lag (ms), in the order they arrived. */
      readonly sentAt: Float64Array;
      readonly lagMs: Float64Array;
      /** Messages that carried errors, or a title without a send time. */
      readonly unreadable: number;
      /** Sockets closed by the server since they opened, by close code. */
      readonly closes: Record<string, number>;
    }
  | { readonly type: 'progress'; readonly received: number }
  | { readonly type: 'closed' };

/** What the bench writes into a changed post's title: a prefix, a sequence number and the send time. */
const SENT_AT = / (\d+(?:\.\d+)?)$/;
/** Sockets opened at once: enough to open a thousand in a few seconds, not so many the upgrades time out. */
const OPEN_CONCURRENCY = 50;
/** How long closing every socket may take before the bench goes on regardless. */
const CLOSE_TIMEOUT_MS = 10_000;

const now = () => performance.timeOrigin + performance.now();

interface OpenSocket {
  readonly client: Client;
  /** Resolves once the socket closed, whoever closed it. */
  readonly closed: Promise<void>;
  /** Closed by the bench: not counted as a close by the server. */
  disposed: boolean;
}

let sockets: OpenSocket[] = [];
let sentAt: number[] = [];
let lagMs: number[] = [];
let unreadable = 0;
let closes: Record<string, number> = {};

function reply(message: ClientReply): void {
  process.send!(message);
}

/** Opens one socket and subscribes; resolves once connection_init was acknowledged (rejects if it closes first). */
function open(url: string, query: string, plan: SocketPlan): Promise<OpenSocket> {
  return new Promise((resolve, reject) => {
    let connected = false;
    let closed!: () => void;
    const socket: { client?: Client; closed: Promise<void>; disposed: boolean } = {
      closed: new Promise<void>((resolveClosed) => (closed = resolveClosed)),
      disposed: false,
    };
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: plan.token ? { authorization: `Bearer ${plan.token}` } : {},
      retryAttempts: 0,
      lazy: false,
      // The server pings; the bench's sockets stay quiet otherwise, as idle apps do.
      keepAlive: 0,
      on: {
        connected: () => {
          connected = true;
          resolve(socket as OpenSocket);
        },
        closed: (event) => {
          closed();
          const code = String((event as { code?: number }).code ?? 'unknown');
          if (!connected) reject(new Error(`socket closed with ${code} before connection_ack`));
          else if (!socket.disposed) closes[code] = (closes[code] ?? 0) + 1;
        },
      },
    });
    socket.client = client;
    client.subscribe(
      { query, variables: plan.variables },
      {
        next: (message) => {
          const arrived = now();
          const data = message.data as { postChanged?: { node?: { title?: string } | null } } | null | undefined;
          const match = SENT_AT.exec(data?.postChanged?.node?.title ?? '');
          if (message.errors || !match) {
            unreadable += 1;
            return;
          }
          const sent = Number(match[1]);
          sentAt.push(sent);
          lagMs.push(arrived - sent);
        },
        // A socket closed by the server is counted in closes; an array is the subscribe's own GraphQL errors.
        error: (error) => {
          if (Array.isArray(error)) unreadable += 1;
        },
        complete: () => undefined,
      },
    );
  });
}

async function openAll(url: string, query: string, plans: readonly SocketPlan[]): Promise<ClientReply> {
  let failed = 0;
  let firstFailure: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < plans.length) {
      const plan = plans[next];
      next += 1;
      try {
        sockets.push(await open(url, query, plan));
      } catch (error) {
        failed += 1;
        firstFailure ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker));
  return { type: 'opened', connected: sockets.length, failed, firstFailure };
}

function collect(): ClientReply {
  const collected: ClientReply = {
    type: 'collected',
    sentAt: Float64Array.from(sentAt),
    lagMs: Float64Array.from(lagMs),
    unreadable,
    closes,
  };
  sentAt = [];
  lagMs = [];
  unreadable = 0;
  closes = {};
  return collected;
}

/** Closes every socket and waits until each has closed (dispose only starts the close handshake). */
async function closeAll(): Promise<ClientReply> {
  const closing = sockets;
  sockets = [];
  for (const socket of closing) socket.disposed = true;
  await Promise.all(closing.map((socket) => Promise.resolve(socket.client.dispose())));
  await Promise.race([
    Promise.all(closing.map((socket) => socket.closed)),
    new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS)),
  ]);
  return { type: 'closed' };
}

process.on('message', (command: ClientCommand) => {
  const handled =
    command.type === 'open'
      ? openAll(command.url, command.query, command.sockets)
      : command.type === 'progress'
        ? Promise.resolve<ClientReply>({ type: 'progress', received: lagMs.length })
        : command.type === 'collect'
          ? Promise.resolve(collect())
          : closeAll();
  handled.then(reply, (error: unknown) => {
    process.stderr.write(`realtime clients: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
});
// The parent gone (a crash, Ctrl-C twice): nothing to do here without it.
process.on('disconnect', () => process.exit(0));
