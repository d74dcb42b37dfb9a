import WebSocket from 'ws';
import type { TestServer } from './test-server';

/** One graphql-transport-ws message as the server sent it (text that is not JSON is kept as `{ type: '<text>' }`). */
export interface WsMessage {
  readonly type: string;
  readonly id?: string;
  readonly payload?: unknown;
}

export interface WsClosed {
  readonly code: number;
  readonly reason: string;
}

/** A WebSocket on /graphql that speaks the protocol only as the test tells it to: for attacks and fuzzing. */
export interface RawSocket {
  readonly ws: WebSocket;
  /** Every text frame the server sent, as sent. */
  readonly texts: string[];
  /** The same, parsed. */
  readonly received: WsMessage[];
  /** 'open', or the HTTP status of a refused upgrade (0 when the connection failed without one). */
  readonly opened: Promise<'open' | number>;
  /** The close code and reason (1006 when the connection was cut without a close frame). */
  readonly closed: Promise<WsClosed>;
  /** Sends `message` as JSON (a string or a Buffer as it is; a Buffer as a binary frame). */
  send(message: unknown): void;
  /** Resolves with the first message (already received or to come) that `matches`; rejects if the socket closes first. */
  waitFor(matches: (message: WsMessage) => boolean, timeoutMs?: number): Promise<WsMessage>;
  /** Sends connection_init (with `authorization: Bearer <token>` when a token is given) and waits for the ack. */
  init(token?: string): Promise<void>;
  /** Closes it (1000) and waits for the close. */
  close(): Promise<WsClosed>;
}

export interface RawSocketOptions {
  readonly headers?: Record<string, string>;
  /** Sent as X-Forwarded-For: the server must trust the loopback proxy for it to count. */
  readonly address?: string;
  readonly protocol?: string | string[];
  readonly path?: string;
}

export function rawSocket(server: Pick<TestServer, 'url'>, options: RawSocketOptions = {}): RawSocket {
  const url = new URL(server.url.replace(/^http/, 'ws'));
  if (options.path !== undefined) url.pathname = options.path;
  const headers = { ...(options.address ? { 'x-forwarded-for': options.address } : {}), ...options.headers };
  const ws = new WebSocket(url, options.protocol ?? 'graphql-transport-ws', { headers, maxPayload: 64 * 1024 * 1024 });
  const texts: string[] = [];
  const received: WsMessage[] = [];
  const listeners = new Set<() => void>();
  let closedWith: WsClosed | null = null;
  let resolveOpened!: (outcome: 'open' | number) => void;
  let resolveClosed!: (closed: WsClosed) => void;
  const opened = new Promise<'open' | number>((resolve) => (resolveOpened = resolve));
  const closed = new Promise<WsClosed>((resolve) => (resolveClosed = resolve));
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  ws.on('open', () => resolveOpened('open'));
  ws.on('unexpected-response', (request, response) => {
    resolveOpened(response.statusCode ?? 0);
    response.resume();
    request.destroy();
  });
  ws.on('error', () => resolveOpened(0));
  ws.on('message', (data, isBinary) => {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
    const text = isBinary ? `<binary ${bytes.length} bytes>` : bytes.toString('utf8');
    texts.push(text);
    let message: WsMessage;
    try {
      const parsed = JSON.parse(text) as unknown;
      message = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as WsMessage) : { type: text };
    } catch {
      message = { type: text };
    }
    received.push(message);
    notify();
  });
  ws.on('close', (code, reason) => {
    closedWith = { code, reason: reason.toString() };
    resolveOpened(0);
    resolveClosed(closedWith);
    notify();
  });

  const waitFor = (matches: (message: WsMessage) => boolean, timeoutMs = 10_000) =>
    new Promise<WsMessage>((resolve, reject) => {
      const check = () => {
        const found = received.find(matches);
        if (found || closedWith) {
          listeners.delete(check);
          clearTimeout(timer);
          if (found) resolve(found);
          else
            reject(
              new Error(`socket closed with ${closedWith!.code} (${closedWith!.reason}) before the message; got ${texts.join(' | ')}`),
            );
        }
      };
      const timer: NodeJS.Timeout = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no such message within ${timeoutMs} ms; got ${texts.join(' | ')}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });

  return {
    ws,
    texts,
    received,
    opened,
    closed,
    send(message) {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (Buffer.isBuffer(message)) ws.send(message, { binary: true });
      else ws.send(typeof message === 'string' ? message : JSON.stringify(message));
    },
    waitFor,
    async init(token) {
      if ((await opened) !== 'open') throw new Error(`the upgrade was refused: ${String(await opened)}`);
      ws.send(JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }));
      await waitFor((message) => message.type === 'connection_ack');
    },
    async close() {
      if (ws.readyState === WebSocket.CONNECTING) await opened;
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      else if (ws.readyState !== WebSocket.CLOSED && ws.readyState !== WebSocket.CLOSING) ws.terminate();
      return closed;
    },
  };
}

/** The GraphQL errors a message carries: an `error` message's payload, or a `next` message's payload.errors. */
export function errorsOf(message: WsMessage): { message: string; extensions?: { code?: string } }[] {
  if (message.type === 'error' && Array.isArray(message.payload)) return message.payload as never;
  const errors = (message.payload as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errors) ? (errors as never) : [];
}
