import { performance } from 'node:perf_hooks';
import type { DataSource, EntityManager } from 'typeorm';
import {
  AuditChainKeys,
  AuditChainPosition,
  AuditChainReport,
  AuditEventInput,
  AuditLog,
  verifyAuditChain,
  verifyAuditChainSince,
} from '../../src/audit/audit-log';
import { percentile } from './statistics';

/**
 * What the audit log costs: hash-chained appends through the server's own AuditLog, each in a
 * transaction of its own as `dataSource.transaction((m) => audit.append(m, input))`, by 10
 * concurrent writers and by 1, for the bench's duration after a warm-up.
 *
 * - The goal of the issue is the 10-writer rate (≥ 1,000 events/s). Every append takes the chain
 *   lock (a transaction-scoped advisory lock) and holds it until its commit, so the writers queue
 *   on it: the 1-writer run shows what one append costs when nobody waits.
 * - Where an append's time goes is timed from outside src: the transaction's manager is handed to
 *   `append` through a thin wrapper that times each of its queries (the lock, the SELECT of the
 *   last hash, the INSERT); the rest is taken around it (BEGIN with the pool's connection, the
 *   checks and the hash in JavaScript, COMMIT). The lock is held from its grant to the end of
 *   COMMIT, so SELECT + hash + INSERT + COMMIT of one uncontended append bound the rate of any
 *   number of writers on one chain.
 * - A sign-in's own append cannot be timed without changing src; its share of a sign-in is
 *   derived from the sign-in section's rate (see auditSignInShare).
 * - Afterwards the whole chain is verified (it must have held under the load) and the bench rows
 *   are counted (every append that returned must be there). Nothing is deleted: the bench
 *   database is fresh per run.
 */

/** The goal of the issue, for the 10-writer run: events per second (a goal, not a gate). */
export const AUDIT_GOAL_EVENTS_PER_SECOND = 1000;
export const AUDIT_CONCURRENT_WRITERS = 10;
const BENCH_ACTION = 'bench_event';

/** Mean milliseconds per append spent in each step, in the order they happen. */
export interface AuditPhases {
  /** From the call until the callback runs: a connection from the pool and BEGIN. */
  readonly beginMs: number;
  /** `pg_advisory_xact_lock`: mostly waiting for the appends ahead. */
  readonly lockMs: number;
  /** `SELECT hash … ORDER BY id DESC LIMIT 1`. */
  readonly selectMs: number;
  /** Input checks, canonical JSON and SHA-256, in JavaScript (the append's time outside its queries). */
  readonly hashMs: number;
  readonly insertMs: number;
  /** From append's return until the transaction resolved: COMMIT and the connection back to the pool. */
  readonly commitMs: number;
}

export interface AuditRun {
  readonly writers: number;
  readonly appended: number;
  readonly eventsPerSecond: number;
  /** Per append: the whole transaction, as its caller waits for it. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failures: ReadonlyMap<string, number>;
  readonly phases: AuditPhases;
}

export interface AuditBenchResult {
  readonly concurrent: AuditRun;
  readonly single: AuditRun;
  /** bench_event rows added by this run (warm-up included), counted in the table. */
  readonly rowsAdded: number;
  /** Appends that returned, warm-up included: rowsAdded must equal it. */
  readonly appendsReturned: number;
  readonly chain: AuditChainReport;
  readonly verifyMs: number;
  /** The self-audit's way: only the events after a recorded position (here, the last INCREMENTAL_EVENTS). */
  readonly incremental: { readonly checked: number; readonly ms: number; readonly ok: boolean };
}

/** Events the incremental verification is measured over: about a day of a busy app's security events. */
const INCREMENTAL_EVENTS = 10_000;

type Phase = 'lock' | 'select' | 'insert' | 'other';

/** Which of append's statements this is (by how it begins, as audit-log.ts writes them). */
function phaseOf(sql: string): Phase {
  const start = sql.trimStart();
  if (start.startsWith('SELECT pg_advisory_xact_lock')) return 'lock';
  if (start.startsWith('SELECT hash FROM audit_events')) return 'select';
  if (start.startsWith('INSERT INTO audit_events')) return 'insert';
  return 'other';
}

class PhaseTotals {
  begin = 0;
  lock = 0;
  select = 0;
  hash = 0;
  insert = 0;
  commit = 0;
  other = 0;

  mean(count: number): AuditPhases {
    const per = (total: number) => (count > 0 ? total / count : 0);
    // A statement append gained after this bench was written is counted with the JavaScript time.
    return {
      beginMs: per(this.begin),
      lockMs: per(this.lock),
      selectMs: per(this.select),
      hashMs: per(this.hash + this.other),
      insertMs: per(this.insert),
      commitMs: per(this.commit),
    };
  }
}

/**
 * The transaction's own manager, but with `query` timed per statement: append sees the same
 * queryRunner (so it knows it is in a transaction) and runs the same SQL on the same connection.
 */
function timedManager(manager: EntityManager, onQuery: (phase: Phase, ms: number) => void): EntityManager {
  const timed = Object.create(manager) as EntityManager;
  const query = async (sql: string, parameters?: unknown[]) => {
    const started = performance.now();
    try {
      return await manager.query(sql, parameters);
    } finally {
      onQuery(phaseOf(sql), performance.now() - started);
    }
  };
  Object.defineProperty(timed, 'query', { value: query });
  return timed;
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 120 ? `${message.slice(0, 117)}…` : message;
}

let sequence = 0;

async function runWriters(
  dataSource: DataSource,
  audit: AuditLog,
  writers: number,
  seconds: number,
  signal: AbortSignal,
): Promise<AuditRun> {
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  const totals = new PhaseTotals();
  const started = performance.now();
  const deadline = started + seconds * 1000;

  const writer = async (): Promise<void> => {
    while (performance.now() < deadline && !signal.aborted) {
      sequence += 1;
      const input: AuditEventInput = { action: BENCH_ACTION, outcome: 'success', actorId: null, metadata: { n: sequence } };
      const steps = { begin: 0, lock: 0, select: 0, insert: 0, other: 0, append: 0 };
      const called = performance.now();
      let appended = 0;
      try {
        await dataSource.transaction(async (manager) => {
          const entered = performance.now();
          steps.begin = entered - called;
          await audit.append(
            timedManager(manager, (phase, ms) => {
              steps[phase] += ms;
            }),
            input,
          );
          appended = performance.now();
          steps.append = appended - entered;
        });
      } catch (error) {
        const reason = describe(error);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
        continue;
      }
      const done = performance.now();
      latencies.push(done - called);
      totals.begin += steps.begin;
      totals.lock += steps.lock;
      totals.select += steps.select;
      totals.insert += steps.insert;
      totals.other += steps.other;
      totals.hash += steps.append - steps.lock - steps.select - steps.insert - steps.other;
      totals.commit += done - appended;
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));

  // Until the last append returned: those still running at the deadline are counted too.
  const elapsedSeconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    writers,
    appended: latencies.length,
    eventsPerSecond: latencies.length / elapsedSeconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    failures,
    phases: totals.mean(latencies.length),
  };
}

async function countBenchRows(dataSource: DataSource): Promise<number> {
  const [{ rows }] = await dataSource.query<{ rows: number }[]>('SELECT count(*)::int AS rows FROM audit_events WHERE action = $1', [
    BENCH_ACTION,
  ]);
  return rows;
}

/** Undefined when interrupted: a cut-short run measures nothing. */
export async function runAuditBench(
  dataSource: DataSource,
  audit: AuditLog,
  keys: AuditChainKeys,
  options: { readonly seconds: number; readonly warmUpSeconds: number; readonly signal: AbortSignal },
): Promise<AuditBenchResult | undefined> {
  const { signal } = options;
  const rowsBefore = await countBenchRows(dataSource);
  // The pool's connections, the prepared plans and the JIT warm up; the numbers are thrown away (the rows stay).
  const warmUp = await runWriters(dataSource, audit, AUDIT_CONCURRENT_WRITERS, options.warmUpSeconds, signal);
  if (signal.aborted) return undefined;
  const concurrent = await runWriters(dataSource, audit, AUDIT_CONCURRENT_WRITERS, options.seconds, signal);
  if (signal.aborted) return undefined;
  const single = await runWriters(dataSource, audit, 1, options.seconds, signal);
  if (signal.aborted) return undefined;

  const rowsAdded = (await countBenchRows(dataSource)) - rowsBefore;
  const verifyStarted = performance.now();
  const chain = await verifyAuditChain(dataSource.manager, keys);
  const verifyMs = performance.now() - verifyStarted;
  const [from] = await dataSource.query<AuditChainPosition[]>(
    'SELECT id::text AS id, hash FROM audit_events ORDER BY id DESC OFFSET $1 LIMIT 1',
    [INCREMENTAL_EVENTS],
  );
  const incrementalStarted = performance.now();
  const since = await verifyAuditChainSince(dataSource.manager, keys, from ?? null);
  const incremental = { checked: since.report.checked, ms: performance.now() - incrementalStarted, ok: since.report.ok };
  return {
    concurrent,
    single,
    rowsAdded,
    appendsReturned: warmUp.appended + concurrent.appended + single.appended,
    chain,
    verifyMs,
    incremental,
  };
}

/** Critical section of one append: from the lock's grant to the end of COMMIT, when nobody waits. */
export function lockHeldMs(phases: AuditPhases): number {
  return phases.selectMs + phases.hashMs + phases.insertMs + phases.commitMs;
}

export interface AuditSignInShare {
  /** One sign-in's time as the sign-in loop saw it: concurrency ÷ sign-ins per second. */
  readonly signInMs: number;
  /** A whole append transaction, 1 writer, p50: what a sign-in_failed (its own transaction) costs. */
  readonly appendTransactionMs: number;
  /** Lock + SELECT + hash + INSERT, 1 writer, mean: what an append adds inside a transaction that exists anyway (sign_in_succeeded). */
  readonly appendInTransactionMs: number;
}

/** Derived, not measured: the audit write's share of a sign-in, from the sign-in section's rate. */
export function auditSignInShare(single: AuditRun, signInsPerSecond: number, signInConcurrency: number): AuditSignInShare | undefined {
  if (!(signInsPerSecond > 0)) return undefined;
  const { lockMs, selectMs, hashMs, insertMs } = single.phases;
  return {
    signInMs: (signInConcurrency / signInsPerSecond) * 1000,
    appendTransactionMs: single.p50Ms,
    appendInTransactionMs: lockMs + selectMs + hashMs + insertMs,
  };
}
