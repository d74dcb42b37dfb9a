import v8 from 'node:v8';
import vm from 'node:vm';
import { percentile, seededRandom } from '../bench/statistics';
import { REFRESH, SIGN_IN, TestAccount, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * Load: a mobile app's mix of calls (sign-in, refresh, reads, writes) from 50 connections at once,
 * closed loop (each worker sends its next request when the last one answered). 60 s through
 * `npm run test:hardening` (HARDENING_FULL=1), 8 s in CI. Every answer must be a 200 with data and
 * no errors; the process's memory (the server runs in it) must not trend upwards; the server logs
 * no error. Prints one line of figures: requests, req/s, p50/p99, RSS before/after.
 */
const FULL = process.env.HARDENING_FULL === '1';
const DURATION_MS = FULL ? 60_000 : 8_000;
const CONNECTIONS = 50;
const RSS_SAMPLE_MS = 250;
/** Every this many RSS samples (2 s), a full collection, then a "settled" sample of RSS and live heap. */
const SETTLED_EVERY = 8;
const MB = 1024 * 1024;
/** The last third's median settled RSS may exceed the first third's by this much: generous, a leak grows without bound. */
const RSS_GROWTH_BOUND = 64 * MB;
/** Live heap after a full collection: what a leak keeps. It levels off within seconds once caches are warm. */
const HEAP_GROWTH_BOUND = 16 * MB;

/**
 * A full garbage collection. Left alone, V8 grows its heap lazily under load (RSS climbed by
 * ~180 MB in 60 s while the live heap stayed flat), so raw RSS shows a trend that is not a leak.
 */
const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

const ME = '{ me { id email } }';
const POSTS = '{ posts(first: 20) { edges { node { id title authorId } } pageInfo { hasNextPage endCursor } } }';
const CREATE_POST = 'mutation($input: CreatePostInput!) { createPost(input: $input) { id title } }';
const UPDATE_POST = 'mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id title } }';

type OperationName = 'signIn' | 'refresh' | 'me' | 'posts' | 'createPost' | 'updatePost';

/** The mix, by weight: mostly reads, a fair share of writes, sign-ins rare (argon2 is meant to be slow). */
const MIX: readonly [OperationName, number][] = [
  ['me', 30],
  ['posts', 30],
  ['createPost', 15],
  ['updatePost', 15],
  ['refresh', 8],
  ['signIn', 2],
];
const MIX_TOTAL = MIX.reduce((sum, [, weight]) => sum + weight, 0);

function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

interface Unexpected {
  readonly operation: OperationName;
  readonly status: number;
  readonly body: string;
}

describe(`load: ${CONNECTIONS} connections, mixed workload, ${DURATION_MS / 1000} s`, () => {
  let server: TestServer;
  let accounts: TestAccount[];

  beforeAll(async () => {
    // The production pool size, not the test servers' 4: this measures the server as deployed.
    server = await startTestServer({ config: { databasePoolSize: 10 } });
    // One account (so one session, one refresh-token chain) per worker: a worker never races itself.
    accounts = [];
    for (let batch = 0; batch < CONNECTIONS; batch += 10) {
      accounts.push(...(await Promise.all(Array.from({ length: Math.min(10, CONNECTIONS - batch) }, () => makeUser(server)))));
    }
    // Enough published posts that every `posts(first: 20)` reads a full page.
    await server.bastion.database.dataSource.query(
      "INSERT INTO posts (author_id, title, body, published) SELECT $1, 'seed ' || n, repeat(md5(n::text), 4), true FROM generate_series(1, 500) AS n",
      [accounts[0].id],
    );
  }, 60_000);
  afterAll(() => server?.close());

  it(
    'answers every request with 200 and data, holds its memory, and logs no error',
    async () => {
      const latencies: number[] = [];
      const counts = new Map<OperationName, number>(MIX.map(([name]) => [name, 0]));
      const unexpected: Unexpected[] = [];
      let loggedErrors = 0;
      const errorSamples: unknown[] = [];

      /** The collector keeps every line; drained as we go, so the test's own memory is not counted as the server's. */
      const drainLogs = () => {
        for (const line of server.logs.lines) {
          if (line.level < 50) continue;
          loggedErrors += 1;
          if (errorSamples.length < 3) errorSamples.push(line);
        }
        server.logs.lines.length = 0;
      };

      async function send<TData>(
        operation: OperationName,
        accessToken: string | null,
        query: string,
        variables?: Record<string, unknown>,
      ): Promise<TData | null> {
        const started = performance.now();
        let status = 0;
        let text: string;
        try {
          const response = await fetch(server.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}) },
            body: JSON.stringify({ query, variables }),
          });
          status = response.status;
          text = await response.text();
        } catch (error) {
          text = `fetch failed: ${(error as Error).message}`;
        }
        latencies.push(performance.now() - started);
        counts.set(operation, counts.get(operation)! + 1);
        let body: { data?: TData | null; errors?: unknown[] } | undefined;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        if (status !== 200 || !body?.data || body.errors !== undefined) {
          unexpected.push({ operation, status, body: text.slice(0, 500) });
          return null;
        }
        return body.data;
      }

      async function worker(index: number, deadline: number): Promise<void> {
        const account = accounts[index];
        const random = seededRandom(index + 1);
        let accessToken = account.accessToken;
        let refreshToken = account.refreshToken;
        const ownPosts: string[] = [];
        let serial = 0;
        while (Date.now() < deadline) {
          let pick = random() * MIX_TOTAL;
          const [operation] = MIX.find(([, weight]) => (pick -= weight) < 0) ?? MIX[0];
          serial += 1;
          switch (operation) {
            case 'me': {
              const data = await send<{ me: { id: string } | null }>('me', accessToken, ME);
              if (data && data.me?.id !== account.id) unexpected.push({ operation, status: 200, body: JSON.stringify(data).slice(0, 500) });
              break;
            }
            case 'posts': {
              const data = await send<{ posts: { edges: unknown[] } }>('posts', accessToken, POSTS);
              if (data && data.posts.edges.length !== 20)
                unexpected.push({ operation, status: 200, body: JSON.stringify(data).slice(0, 500) });
              break;
            }
            case 'createPost': {
              const data = await send<{ createPost: { id: string } }>('createPost', accessToken, CREATE_POST, {
                input: { title: `load w${index} #${serial}`, body: 'written under load', published: serial % 2 === 0 },
              });
              if (data) {
                ownPosts.push(data.createPost.id);
                if (ownPosts.length > 16) ownPosts.shift();
              }
              break;
            }
            case 'updatePost': {
              if (ownPosts.length === 0) {
                const created = await send<{ createPost: { id: string } }>('createPost', accessToken, CREATE_POST, {
                  input: { title: `load w${index} #${serial}` },
                });
                if (created) ownPosts.push(created.createPost.id);
                break;
              }
              const id = ownPosts[Math.floor(random() * ownPosts.length)];
              const data = await send<{ updatePost: { id: string } }>('updatePost', accessToken, UPDATE_POST, {
                id,
                input: { title: `load w${index} #${serial} (edited)` },
              });
              if (data && data.updatePost.id !== id) unexpected.push({ operation, status: 200, body: JSON.stringify(data).slice(0, 500) });
              break;
            }
            case 'refresh': {
              const data = await send<{ refreshSession: { accessToken: string; refreshToken: string } }>('refresh', null, REFRESH, {
                input: { refreshToken },
              });
              if (data) ({ accessToken, refreshToken } = data.refreshSession);
              break;
            }
            case 'signIn': {
              // A fresh session each time; the worker moves to it (the oldest of 20 sessions ends, never the one in use).
              const data = await send<{ signIn: { __typename: string; accessToken: string; refreshToken: string } }>(
                'signIn',
                null,
                SIGN_IN,
                { input: { email: account.email, password: account.password } },
              );
              if (data?.signIn.__typename === 'AuthPayload') ({ accessToken, refreshToken } = data.signIn);
              else if (data) unexpected.push({ operation, status: 200, body: JSON.stringify(data).slice(0, 500) });
              break;
            }
          }
        }
      }

      const settled = () => {
        collectGarbage();
        const { rss, heapUsed } = process.memoryUsage();
        return { rss, heapUsed };
      };
      drainLogs();
      const before = settled();
      const rssSamples: number[] = [];
      const settledSamples: { rss: number; heapUsed: number }[] = [];
      const sampler = setInterval(() => {
        drainLogs();
        rssSamples.push(process.memoryUsage().rss);
        if (rssSamples.length % SETTLED_EVERY === 0) settledSamples.push(settled());
      }, RSS_SAMPLE_MS);
      const started = Date.now();
      try {
        await Promise.all(Array.from({ length: CONNECTIONS }, (_, index) => worker(index, started + DURATION_MS)));
      } finally {
        clearInterval(sampler);
      }
      const elapsedMs = Date.now() - started;
      drainLogs();
      const after = settled();

      const sorted = [...latencies].sort((a, b) => a - b);
      const thirds = (values: number[]) => {
        const third = Math.floor(values.length / 3);
        return { first: median(values.slice(0, third)), last: median(values.slice(values.length - third)) };
      };
      const rss = thirds(settledSamples.map((sample) => sample.rss));
      const heap = thirds(settledSamples.map((sample) => sample.heapUsed));
      const mb = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;
      const mix = [...counts].map(([name, count]) => `${name}=${count}`).join(' ');
      console.log(
        `load: ${CONNECTIONS} connections for ${(elapsedMs / 1000).toFixed(1)} s: ` +
          `${latencies.length} requests (${((latencies.length / elapsedMs) * 1000).toFixed(0)} req/s), ` +
          `p50 ${percentile(sorted, 0.5).toFixed(1)} ms, p99 ${percentile(sorted, 0.99).toFixed(1)} ms, ` +
          `max ${sorted[sorted.length - 1].toFixed(1)} ms; ${unexpected.length} unexpected; ` +
          `RSS before ${mb(before.rss)}, after ${mb(after.rss)}, peak ${mb(Math.max(...rssSamples))}; ` +
          `settled RSS median first/last third ${mb(rss.first)}/${mb(rss.last)}, ` +
          `live heap ${mb(heap.first)}/${mb(heap.last)} (${settledSamples.length} settled samples); errors logged ${loggedErrors}; mix ${mix}`,
      );

      expect(unexpected.slice(0, 5)).toEqual([]);
      expect(unexpected).toHaveLength(0);
      expect(errorSamples).toEqual([]);
      expect(loggedErrors).toBe(0);
      // Every kind of call was exercised (how often depends on the machine: a busy CI box answers slowly).
      for (const [name, count] of counts) expect({ name, exercised: count > 0 }).toEqual({ name, exercised: true });
      expect(settledSamples.length).toBeGreaterThanOrEqual(3);
      expect(rss.last).toBeLessThanOrEqual(rss.first + RSS_GROWTH_BOUND);
      expect(heap.last).toBeLessThanOrEqual(heap.first + HEAP_GROWTH_BOUND);
    },
    DURATION_MS + 60_000,
  );
});
