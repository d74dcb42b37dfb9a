import { Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { TestServer } from './test-server';

/** What a subscription received, in order, and how its socket ended. */
export interface Received {
  readonly messages: { data?: Record<string, unknown> | null; errors?: readonly { message: string; extensions?: { code?: string } }[] }[];
  /** Resolves with the close code when the socket closes. */
  readonly closed: Promise<number>;
  /** Resolves once `count` messages have arrived (rejects if the socket closes first). */
  next(count?: number): Promise<Received['messages']>;
}

export interface LiveClient {
  readonly client: Client;
  subscribe(query: string, variables?: Record<string, unknown>): Received;
  /** Resolves once the socket acknowledged connection_init. */
  readonly connected: Promise<void>;
  readonly closed: Promise<number>;
  dispose(): Promise<void>;
}

/** A graphql-ws client (the protocol Apollo iOS and Kotlin speak) on the test server's /graphql, signed in with `token` if given. */
export function liveClient(server: Pick<TestServer, 'url'>, token?: string, headers: Record<string, string> = {}): LiveClient {
  let connected!: () => void;
  let closed!: (code: number) => void;
  const connectedPromise = new Promise<void>((resolve) => (connected = resolve));
  const closedPromise = new Promise<number>((resolve) => (closed = resolve));
  class HeaderSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
    }
  }
  const client = createClient({
    url: server.url.replace(/^http/, 'ws'),
    webSocketImpl: HeaderSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    // A closed socket is what several tests wait for (its code is `closed`); graphql-ws would print it as an error.
    onNonLazyError: () => undefined,
    on: {
      connected: () => connected(),
      closed: (event) => closed((event as { code: number }).code),
    },
  });
  return {
    client,
    connected: connectedPromise,
    closed: closedPromise,
    subscribe(query, variables) {
      const messages: Received['messages'][number][] = [];
      const waiters: (() => void)[] = [];
      let resolveClosed!: (code: number) => void;
      const subscriptionClosed = new Promise<number>((resolve) => (resolveClosed = resolve));
      void closedPromise.then((code) => resolveClosed(code));
      client.subscribe(
        { query, variables },
        {
          next: (message) => {
            messages.push(message);
            for (const waiter of waiters.splice(0)) waiter();
          },
          error: (error) => {
            if (Array.isArray(error)) messages.push({ errors: error as never });
            for (const waiter of waiters.splice(0)) waiter();
          },
          complete: () => undefined,
        },
      );
      const received: Received = {
        messages,
        closed: subscriptionClosed,
        next: async (count = messages.length + 1) => {
          while (messages.length < count) {
            const arrived = new Promise<void>((resolve) => waiters.push(resolve));
            const code = await Promise.race([arrived.then(() => null), subscriptionClosed]);
            if (code !== null && messages.length < count) throw new Error(`socket closed with ${code} before message ${count}`);
          }
          return messages;
        },
      };
      return received;
    },
    dispose: async () => {
      await client.dispose();
    },
  };
}
