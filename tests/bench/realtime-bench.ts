import { ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { UserRole } from '../../src/accounts/user-role.entity';
import { User } from '../../src/accounts/user.entity';
import type { RunningBastion } from '../../src/main';
import { Measurement, combined } from './measure';
import type { ClientCommand, ClientReply, SocketPlan } from './realtime-clients';
import { CostRow, formatColumns, formatCost } from './report';
import { graphql } from './sign-in-bench';
import { percentile } from './statistics';

/**
 * Realtime subscriptions (src/realtime), on a Bastion of its own whose WebSocket limits let one
 * address and one account hold a thousand sockets (the bench's clients all come from 127.0.0.1):
 *
 * 1. fan-out: 1,000 subscribers of postChanged (half anonymous, half signed-in users who are not
 *    the author; half of them with `where: { authorId }`), 100 updatePost over HTTP at 10/s that
 *    alternate between a published post (every subscriber may see it: one delivery each) and a
 *    draft (none may: no delivery). Lag per delivery, from the moment before the mutation is sent
 *    (written into the title) to its arrival; and the change listener's row reads, which must not
 *    grow with the subscribers (≤ one per change).
 * 2. memory: 1,000 signed-in sockets (each its own account and session), one subscription each,
 *    idle. The clients run in a child process, so what this process (the server's) gains after a
 *    full GC is the server's side: V8 heap + external (ArrayBuffers) per socket, with the RSS
 *    growth beside it as an upper bound (it keeps pages the garbage of opening left behind).
 * 3. sustained: 200 changes/s (same alternation: 100 visible/s) to 200 subscribers for 30 s
 *    (BENCH_REALTIME_SECONDS for a shorter run); lag over the first and the last 5 s of sends.
 * 4. HTTP beside idle sockets: the posts-lean scenario's own request and measurement, with the
 *    1,000 idle subscribed sockets open and without, in turn.
 *
 * Every subscriber runs in one child process (realtime-clients.ts); the mutations come from this
 * process, as an app's backend traffic would reach the server.
 */

export const REALTIME_SUBSCRIBERS = 1000;
export const FANOUT_CHANGES = 100;
const FANOUT_CHANGES_PER_SECOND = 10;
export const FANOUT_GOAL_P99_MS = 100;
export const MEMORY_SOCKETS = 1000;
export const MEMORY_GOAL_BYTES = 50 * 1024;
export const SUSTAINED_SUBSCRIBERS = 200;
export const SUSTAINED_CHANGES_PER_SECOND = 200;
/** The windows compared for a growing lag, at the start and the end of the sustained run. */
const SUSTAINED_WINDOW_SECONDS = 5;
/** posts-lean with idle sockets ÷ without: within noise. */
export const IDLE_SOCKETS_GOAL = 1.1;
const COST_ROUNDS = 2;
/** Signed-in sockets of the warm-up (as many anonymous beside them): accounts of their own, so the memory's sessions are all new to the server. */
const WARM_UP_SOCKETS = 50;
/** Changes of the warm-up (even, as the fan-out's: the changes that follow start on a published post). */
const WARM_UP_CHANGES = 20;
const TITLE_PREFIX = 'realtime bench ';
/** A delivery still missing this long after the last one arrived is counted as lost. */
const QUIET_MS = 3000;
/** Mutations in flight at most, should the server answer slower than the rate asks. */
const MAX_IN_FLIGHT = 64;

const SUBSCRIPTION = 'subscription Live($where: PostWhere) { postChanged(where: $where) { kind id node { id title authorId } } }';
const UPDATE_POST = 'mutation Change($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id } }';

/** The system clock at sub-millisecond resolution, the same in the clients' process. */
const now = () => performance.timeOrigin + performance.now();

interface Account {
  readonly id: string;
  readonly accessToken: string;
}

export interface LagStats {
  readonly deliveries: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface FanOutResult {
  readonly subscribers: number;
  readonly changes: number;
  readonly failedChanges: number;
  readonly expectedDeliveries: number;
  readonly lag: LagStats;
  readonly unreadable: number;
  readonly closes: Record<string, number>;
  readonly rowReads: number;
}

export interface MemoryResult {
  readonly sockets: number;
  /** V8 heap + external per socket, after a full GC. */
  readonly bytesPerSocket: number;
  readonly rssPerSocket: number;
  /** What is left per socket once they closed (a leak shows here). */
  readonly bytesPerSocketAfterClose: number;
  readonly gc: 'exposed' | 'flag';
}

export interface SustainedResult {
  readonly subscribers: number;
  readonly seconds: number;
  readonly changes: number;
  readonly failedChanges: number;
  readonly changesPerSecond: number;
  readonly expectedDeliveries: number;
  readonly first: LagStats;
  readonly last: LagStats;
  readonly all: LagStats;
  readonly unreadable: number;
  readonly closes: Record<string, number>;
}

export interface RealtimeBenchResult {
  readonly memory: MemoryResult;
  readonly idleSockets: CostRow;
  readonly fanOut: FanOutResult;
  readonly sustained: SustainedResult;
}

export interface RealtimeBenchOptions {
  /** A Bastion on the bench database with raised WebSocket limits (the caller stops it). */
  readonly bastion: RunningBastion;
  readonly origin: string;
  /** The bench reader (posts-lean's viewer), signed in afresh here: the run's first token may have expired by now. */
  readonly readerId: string;
  /** The posts-lean scenario's measurement on `origin` (its request as `accessToken`, with the harness's warm-up). */
  readonly measurePostsLean: (accessToken: string) => Promise<Measurement | undefined>;
  readonly sustainedSeconds: number;
  readonly signal: AbortSignal;
}

/** The subscribers' child process: commands out, one reply back per command. */
class Subscribers {
  private readonly child: ChildProcess;
  private pending: { resolve: (reply: ClientReply) => void; reject: (error: Error) => void } | null = null;
  private exited = false;

  constructor() {
    this.child = fork(path.join(__dirname, 'realtime-clients.js'), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (reply: ClientReply) => {
      const pending = this.pending;
      this.pending = null;
      pending?.resolve(reply);
    });
    this.child.on('exit', (code) => {
      this.exited = true;
      this.pending?.reject(new Error(`the realtime clients' process exited (${code})`));
      this.pending = null;
    });
  }

  private ask<T extends ClientReply['type']>(command: ClientCommand, expected: T): Promise<Extract<ClientReply, { type: T }>> {
    if (this.exited) return Promise.reject(new Error("the realtime clients' process is gone"));
    return new Promise((resolve, reject) => {
      this.pending = {
        resolve: (reply) =>
          reply.type === expected
            ? resolve(reply as Extract<ClientReply, { type: T }>)
            : reject(new Error(`expected ${expected}, got ${reply.type}`)),
        reject,
      };
      this.child.send(command);
    });
  }

  async open(url: string, sockets: readonly SocketPlan[]): Promise<number> {
    const opened = await this.ask({ type: 'open', url, query: SUBSCRIPTION, sockets }, 'opened');
    if (opened.failed > 0) throw new Error(`${opened.failed} of ${sockets.length} sockets did not open: ${opened.firstFailure}`);
    return opened.connected;
  }

  async received(): Promise<number> {
    return (await this.ask({ type: 'progress' }, 'progress')).received;
  }

  collect(): Promise<Extract<ClientReply, { type: 'collected' }>> {
    return this.ask({ type: 'collect' }, 'collected');
  }

  async close(): Promise<void> {
    await this.ask({ type: 'close' }, 'closed');
  }

  stop(): void {
    if (!this.exited) this.child.kill();
  }
}

/**
 * Accounts with a session each, made the way a sign-in makes them (SessionsService.open, then
 * issue) but without argon2: a thousand signUps would take minutes and measure the hash.
 */
async function createAccounts(bastion: RunningBastion, count: number): Promise<Account[]> {
  const dataSource = bastion.database.dataSource;
  const tag = randomBytes(4).toString('hex');
  const users = await dataSource.getRepository(User).save(
    Array.from({ length: count }, (_unused, index) =>
      Object.assign(new User(), {
        email: `bench-live-${tag}-${index}@example.com`,
        passwordHash: 'not a password: these accounts never sign in',
        status: 'active',
        emailVerifiedAt: null,
      }),
    ),
    { chunk: 200 },
  );
  await dataSource.getRepository(UserRole).insert(users.map((user) => ({ userId: user.id, roleName: 'user' })));
  const accounts: Account[] = new Array<Account>(users.length);
  let next = 0;
  const worker = async () => {
    while (next < users.length) {
      const index = next;
      next += 1;
      accounts[index] = await signIn(bastion, users[index].id);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return accounts;
}

/** A new session of `userId` and its access token, as a password sign-in would open it. */
async function signIn(bastion: RunningBastion, userId: string): Promise<Account> {
  const { sessions } = bastion.services;
  const opened = await bastion.database.dataSource.transaction((manager) =>
    sessions.open(manager, userId, { aal: 1, amr: ['pwd'] }, { ipAddress: null, userAgent: null, requestId: null }),
  );
  return { id: userId, accessToken: (await sessions.issue(opened)).accessToken };
}

/**
 * The author's posts, published and draft in turn, one per change the bench makes: change `n` goes
 * to posts[n], so every other change is seen by every subscriber, and no row changes twice (a row
 * read late would carry a later change's title, and so a later send time).
 */
async function seedPosts(bastion: RunningBastion, authorId: string, count: number): Promise<string[]> {
  const dataSource = bastion.database.dataSource;
  await dataSource.query('DELETE FROM posts WHERE starts_with(title, $1)', [TITLE_PREFIX]);
  // Dated after the posts bench's feed, whose first page the posts-lean measurement here must still list.
  const rows = await dataSource.query<{ id: string }[]>(
    `INSERT INTO posts (author_id, title, body, published, created_at)
     SELECT $1, $2 || 'seed ' || n, '', n % 2 = 0, '2002-01-01'::timestamptz + n * interval '1 second'
     FROM generate_series(0, $3 - 1) AS n
     RETURNING id::text AS id, created_at`,
    [authorId, TITLE_PREFIX, count],
  );
  return (rows as unknown as { id: string; created_at: Date }[])
    .sort((a, b) => a.created_at.getTime() - b.created_at.getTime())
    .map((row) => row.id);
}

/** Half anonymous, half signed in (never the author); every other one follows the author with a `where`. */
function plans(count: number, accounts: readonly Account[], authorId: string): SocketPlan[] {
  return Array.from({ length: count }, (_unused, index) => ({
    token: index % 2 === 0 ? null : accounts[Math.floor(index / 2) % accounts.length].accessToken,
    variables: Math.floor(index / 2) % 2 === 0 ? { where: { authorId: { eq: authorId } } } : {},
  }));
}

/** Until the hub follows `count` connections (subscribe is not acknowledged in graphql-transport-ws; the closing of sockets neither). */
async function following(bastion: RunningBastion, count: number): Promise<void> {
  const hub = bastion.services.subscriptionHub;
  const deadline = Date.now() + 30_000;
  while (hub.connections().length !== count) {
    if (Date.now() > deadline) throw new Error(`${hub.connections().length} connections followed, ${count} expected`);
    await sleep(20);
  }
}

/**
 * `count` updatePost calls at `perSecond`, each sent on its schedule (not after the previous
 * answer), its title carrying the moment before it was sent. Resolves once every one answered.
 */
async function changePosts(
  endpoint: string,
  author: Account,
  posts: readonly string[],
  first: number,
  count: number,
  perSecond: number,
  signal: AbortSignal,
): Promise<{ sent: number; failed: number; seconds: number }> {
  const inFlight = new Set<Promise<void>>();
  let failed = 0;
  let sent = 0;
  const started = now();
  for (let index = 0; index < count && !signal.aborted; index += 1) {
    const due = started + (index * 1000) / perSecond;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    const sentAt = now();
    const request = graphql<{ updatePost: { id: string } }>(
      endpoint,
      UPDATE_POST,
      { id: posts[first + index], input: { title: `${TITLE_PREFIX}${index} ${sentAt.toFixed(3)}` } },
      author.accessToken,
    )
      .then((body) => {
        if (!body.data?.updatePost) failed += 1;
      })
      .catch(() => {
        failed += 1;
      })
      .finally(() => inFlight.delete(request));
    inFlight.add(request);
    sent += 1;
  }
  await Promise.all(inFlight);
  return { sent, failed, seconds: (now() - started) / 1000 };
}

/** Until `expected` deliveries arrived, or none arrived for QUIET_MS. */
async function deliveriesIn(subscribers: Subscribers, expected: number): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const received = await subscribers.received();
    if (received >= expected) return;
    if (received !== last) {
      last = received;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > QUIET_MS) {
      return;
    }
    await sleep(50);
  }
}

function lagStats(lags: readonly number[]): LagStats {
  const sorted = [...lags].sort((a, b) => a - b);
  return {
    deliveries: sorted.length,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1] : 0,
  };
}

/** Changes `n` with an even n go to a published post: those every subscriber receives. */
const visibleChanges = (changes: number) => Math.ceil(changes / 2);

/** A full collection: `global.gc` when node runs with --expose-gc, else the flag set at run time. */
function collector(): { gc: () => void; how: MemoryResult['gc'] } {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return { gc: exposed, how: 'exposed' };
  v8.setFlagsFromString('--expose-gc');
  return { gc: vm.runInNewContext('gc') as () => void, how: 'flag' };
}

async function settledMemory(gc: () => void): Promise<NodeJS.MemoryUsage> {
  // Twice, with a turn of the loop between: weak callbacks and finalizers free more on the second.
  for (let round = 0; round < 3; round += 1) {
    gc();
    await sleep(50);
  }
  return process.memoryUsage();
}

const retained = (usage: NodeJS.MemoryUsage) => usage.heapUsed + usage.external;

export async function runRealtimeBench(options: RealtimeBenchOptions): Promise<RealtimeBenchResult | undefined> {
  const { bastion, origin, signal } = options;
  const endpoint = new URL('/graphql', origin).toString();
  const socketUrl = endpoint.replace(/^http/, 'ws');
  const [author, ...accounts] = await createAccounts(bastion, 1 + MEMORY_SOCKETS + WARM_UP_SOCKETS);
  const reader = await signIn(bastion, options.readerId);
  const seconds = options.sustainedSeconds;
  const posts = await seedPosts(bastion, author.id, WARM_UP_CHANGES + FANOUT_CHANGES + SUSTAINED_CHANGES_PER_SECOND * seconds);
  const subscribers = new Subscribers();
  try {
    // Warm-up: the paths of upgrade, connection_init, subscribe and a delivery compiled before anything is measured.
    const warmUp = plans(2 * WARM_UP_SOCKETS, accounts.slice(MEMORY_SOCKETS), author.id);
    await subscribers.open(socketUrl, warmUp);
    await following(bastion, warmUp.length);
    await changePosts(endpoint, author, posts, 0, WARM_UP_CHANGES, 20, signal);
    await deliveriesIn(subscribers, visibleChanges(WARM_UP_CHANGES) * warmUp.length);
    await subscribers.close();
    await following(bastion, 0);
    await subscribers.collect();
    if (signal.aborted) return undefined;

    // 2. Memory: fresh sessions (none of these accounts was seen by the server yet, so their session entries count).
    process.stderr.write(`  memory: ${MEMORY_SOCKETS} signed-in sockets…\n`);
    const { gc, how } = collector();
    const idlePlans: SocketPlan[] = accounts.slice(0, MEMORY_SOCKETS).map((account) => ({ token: account.accessToken, variables: {} }));
    const before = await settledMemory(gc);
    await subscribers.open(socketUrl, idlePlans);
    await following(bastion, idlePlans.length);
    const opened = await settledMemory(gc);
    const memoryOf = (usage: NodeJS.MemoryUsage) => (retained(usage) - retained(before)) / idlePlans.length;

    // 4. posts-lean beside them, then without, in turn.
    process.stderr.write(`  posts-lean with ${MEMORY_SOCKETS} idle sockets and without…\n`);
    const withSockets: Measurement[] = [];
    const withoutSockets: Measurement[] = [];
    let afterClose: NodeJS.MemoryUsage | undefined;
    for (let round = 0; round < COST_ROUNDS; round += 1) {
      if (round > 0) {
        await subscribers.open(socketUrl, idlePlans);
        await following(bastion, idlePlans.length);
      }
      const loaded = await options.measurePostsLean(reader.accessToken);
      await subscribers.close();
      await following(bastion, 0);
      afterClose ??= await settledMemory(gc);
      const bare = loaded && (await options.measurePostsLean(reader.accessToken));
      if (!loaded || !bare) return undefined;
      withSockets.push(loaded);
      withoutSockets.push(bare);
    }
    const idleClosed = (await subscribers.collect()).closes;
    if (Object.keys(idleClosed).length > 0) throw new Error(`idle sockets were closed by the server: ${JSON.stringify(idleClosed)}`);
    const memory: MemoryResult = {
      sockets: idlePlans.length,
      bytesPerSocket: memoryOf(opened),
      rssPerSocket: (opened.rss - before.rss) / idlePlans.length,
      bytesPerSocketAfterClose: memoryOf(afterClose!),
      gc: how,
    };
    const idleSockets: CostRow = {
      label: '100 posts (posts-lean)',
      base: combined(withoutSockets),
      measured: combined(withSockets),
      goal: IDLE_SOCKETS_GOAL,
    };

    // 1. Fan-out.
    process.stderr.write(`  fan-out: ${REALTIME_SUBSCRIBERS} subscribers, ${FANOUT_CHANGES} changes…\n`);
    const fanOutPlans = plans(REALTIME_SUBSCRIBERS, accounts, author.id);
    await subscribers.open(socketUrl, fanOutPlans);
    await following(bastion, fanOutPlans.length);
    const { changeListener } = bastion.services;
    await changeListener.settled();
    const readsBefore = changeListener.rowReads;
    const fanOutChanges = await changePosts(endpoint, author, posts, WARM_UP_CHANGES, FANOUT_CHANGES, FANOUT_CHANGES_PER_SECOND, signal);
    const fanOutExpected = visibleChanges(fanOutChanges.sent) * fanOutPlans.length;
    await changeListener.settled();
    await deliveriesIn(subscribers, fanOutExpected);
    const fanOutReads = changeListener.rowReads - readsBefore;
    const fanOutCollected = await subscribers.collect();
    await subscribers.close();
    await following(bastion, 0);
    if (signal.aborted) return undefined;
    const fanOut: FanOutResult = {
      subscribers: fanOutPlans.length,
      changes: fanOutChanges.sent,
      failedChanges: fanOutChanges.failed,
      expectedDeliveries: fanOutExpected,
      lag: lagStats([...fanOutCollected.lagMs]),
      unreadable: fanOutCollected.unreadable,
      closes: fanOutCollected.closes,
      rowReads: fanOutReads,
    };

    // 3. Sustained.
    process.stderr.write(
      `  sustained: ${SUSTAINED_CHANGES_PER_SECOND} changes/s to ${SUSTAINED_SUBSCRIBERS} subscribers for ${seconds} s…\n`,
    );
    const sustainedPlans = plans(SUSTAINED_SUBSCRIBERS, accounts, author.id);
    await subscribers.open(socketUrl, sustainedPlans);
    await following(bastion, sustainedPlans.length);
    const sendsFrom = now();
    const sustainedChanges = await changePosts(
      endpoint,
      author,
      posts,
      WARM_UP_CHANGES + FANOUT_CHANGES,
      SUSTAINED_CHANGES_PER_SECOND * seconds,
      SUSTAINED_CHANGES_PER_SECOND,
      signal,
    );
    const sustainedExpected = visibleChanges(sustainedChanges.sent) * sustainedPlans.length;
    await changeListener.settled();
    await deliveriesIn(subscribers, sustainedExpected);
    const sustainedCollected = await subscribers.collect();
    await subscribers.close();
    await following(bastion, 0);
    if (signal.aborted) return undefined;
    const window = Math.min(SUSTAINED_WINDOW_SECONDS, seconds / 2) * 1000;
    const sendsTo = sendsFrom + seconds * 1000;
    const firstLags: number[] = [];
    const lastLags: number[] = [];
    sustainedCollected.sentAt.forEach((sent, index) => {
      if (sent < sendsFrom + window) firstLags.push(sustainedCollected.lagMs[index]);
      if (sent >= sendsTo - window) lastLags.push(sustainedCollected.lagMs[index]);
    });
    const sustained: SustainedResult = {
      subscribers: sustainedPlans.length,
      seconds,
      changes: sustainedChanges.sent,
      failedChanges: sustainedChanges.failed,
      changesPerSecond: sustainedChanges.sent / sustainedChanges.seconds,
      expectedDeliveries: sustainedExpected,
      first: lagStats(firstLags),
      last: lagStats(lastLags),
      all: lagStats([...sustainedCollected.lagMs]),
      unreadable: sustainedCollected.unreadable,
      closes: sustainedCollected.closes,
    };
    return { memory, idleSockets, fanOut, sustained };
  } finally {
    subscribers.stop();
  }
}

/** The last window's lag may exceed the first's by noise, not by a trend: 2× its p99, or 50 ms more. */
function lagGrew(result: SustainedResult): boolean {
  return result.last.p99Ms > Math.max(2 * result.first.p99Ms, result.first.p99Ms + 50);
}

/** Sustained "no growing lag": the rate was kept, every delivery arrived, and the end's p99 is not above the start's beyond noise. */
export function sustainedMet(result: SustainedResult): boolean {
  return (
    result.changesPerSecond >= 0.95 * SUSTAINED_CHANGES_PER_SECOND &&
    result.failedChanges === 0 &&
    result.all.deliveries === result.expectedDeliveries &&
    !lagGrew(result)
  );
}

function closesText(closes: Record<string, number>): string {
  const entries = Object.entries(closes);
  return entries.length === 0 ? 'none' : entries.map(([code, count]) => `${code} ×${count}`).join(', ');
}

const count = (value: number) => Math.round(value).toLocaleString('en-US');
const kilobytes = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/** The section's lines, as run.ts prints them; `problems` lists what makes the run's exit code 1. */
export function formatRealtime(result: RealtimeBenchResult): { lines: string[]; problems: string[] } {
  const { fanOut, sustained, memory } = result;
  const problems: string[] = [];
  const lagCells = (lag: LagStats) => [lag.p50Ms.toFixed(1), lag.p99Ms.toFixed(1), lag.maxMs.toFixed(1)];
  const deliveries = (lag: LagStats, expected?: number) =>
    expected === undefined ? count(lag.deliveries) : `${count(lag.deliveries)} of ${count(expected)}`;
  const sustainedVerdict = `no growing lag: ${sustainedMet(sustained) ? 'met' : 'not met'}`;
  const rows = [
    [
      'fan-out',
      count(fanOut.subscribers),
      `${fanOut.changes} at ${FANOUT_CHANGES_PER_SECOND}/s`,
      deliveries(fanOut.lag, fanOut.expectedDeliveries),
      ...lagCells(fanOut.lag),
      `p99 ≤ ${FANOUT_GOAL_P99_MS} ms: ${fanOut.lag.p99Ms <= FANOUT_GOAL_P99_MS && fanOut.lag.deliveries === fanOut.expectedDeliveries ? 'met' : 'not met'}`,
    ],
    [
      `sustained, first ${Math.min(SUSTAINED_WINDOW_SECONDS, sustained.seconds / 2)} s`,
      count(sustained.subscribers),
      '',
      deliveries(sustained.first),
      ...lagCells(sustained.first),
      '',
    ],
    [
      `sustained, last ${Math.min(SUSTAINED_WINDOW_SECONDS, sustained.seconds / 2)} s`,
      count(sustained.subscribers),
      '',
      deliveries(sustained.last),
      ...lagCells(sustained.last),
      '',
    ],
    [
      `sustained, all ${sustained.seconds} s`,
      count(sustained.subscribers),
      `${count(sustained.changes)} at ${sustained.changesPerSecond.toFixed(1)}/s`,
      deliveries(sustained.all, sustained.expectedDeliveries),
      ...lagCells(sustained.all),
      sustainedVerdict,
    ],
  ];
  const lines = [
    `realtime: postChanged over WebSocket on a Bastion of its own (subscribers in a child process, updatePost over HTTP from this one); ` +
      'every other change is to a published post (delivered to every subscriber), the others to a draft (to none); ' +
      'lag = arrival − the moment before the mutation was sent',
    formatColumns(['scenario', 'subscribers', 'changes', 'deliveries', 'p50 ms', 'p99 ms', 'max ms', 'goal'], rows, 1, [2, 3, 7]),
    `  row reads during the fan-out: ${fanOut.rowReads} for ${fanOut.changes} changes to ${count(fanOut.subscribers)} subscribers ` +
      `(goal ≤ 1 per change: ${fanOut.rowReads <= fanOut.changes ? 'met' : 'not met'})`,
    `  sustained: goal ${SUSTAINED_CHANGES_PER_SECOND} changes/s ` +
      `(half visible: ${count((SUSTAINED_CHANGES_PER_SECOND / 2) * sustained.subscribers)} deliveries/s), ` +
      "met when the rate held, every delivery arrived and the last window p99 ≤ max(2 × the first's, the first's + 50 ms)",
    `  memory per idle signed-in socket with one subscription ` +
      `(${count(memory.sockets)} sockets, each its own account and session; this process after a full GC, ` +
      `${memory.gc === 'exposed' ? '--expose-gc' : 'gc exposed at run time'}): V8 heap + external ${kilobytes(memory.bytesPerSocket)} ` +
      `(goal ≤ ${kilobytes(MEMORY_GOAL_BYTES)}: ${memory.bytesPerSocket <= MEMORY_GOAL_BYTES ? 'met' : 'not met'}); ` +
      `RSS growth ${kilobytes(memory.rssPerSocket)} (an upper bound); left after they closed: ${kilobytes(memory.bytesPerSocketAfterClose)}`,
    `  posts-lean beside ${count(MEMORY_SOCKETS)} idle subscribed sockets and without them, ${COST_ROUNDS} runs each, in turn:`,
    formatCost([result.idleSockets], { column: 'sockets', base: 'none', measured: `${count(MEMORY_SOCKETS)} idle` }).replace(/^/gm, '  '),
  ];
  const failedChanges = fanOut.failedChanges + sustained.failedChanges;
  if (failedChanges > 0) problems.push(`${failedChanges} updatePost calls failed`);
  if (fanOut.unreadable + sustained.unreadable > 0) problems.push(`${fanOut.unreadable + sustained.unreadable} deliveries carried errors`);
  if (Object.keys(fanOut.closes).length > 0) lines.push(`  fan-out sockets closed by the server: ${closesText(fanOut.closes)}`);
  if (Object.keys(sustained.closes).length > 0) lines.push(`  sustained sockets closed by the server: ${closesText(sustained.closes)}`);
  if (result.idleSockets.base.failures + result.idleSockets.measured.failures > 0) problems.push('posts-lean requests failed');
  for (const problem of problems) lines.push(`  PROBLEM: ${problem}`);
  return { lines, problems };
}
