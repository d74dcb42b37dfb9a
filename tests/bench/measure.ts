import autocannon from 'autocannon';
import { inspect } from 'node:util';
import { statementsDuring } from '../support/sql-statements';
import type { BenchRequest } from './scenarios';

export interface LoadOptions {
  readonly durationSeconds: number;
  readonly connections: number;
  /** Stops the run early (Ctrl-C); the run then resolves to undefined. */
  readonly signal: AbortSignal;
}

export interface Measurement {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Connection errors, timeouts and non-2xx responses: any of them makes the numbers meaningless. */
  readonly failures: number;
}

/**
 * The servers under test share this process's event loop, so the load generator runs in a worker
 * thread; on the same loop it would compete with them and lower every number.
 */
const LOAD_WORKERS = 1;

export function measure(origin: string, request: BenchRequest, options: LoadOptions): Promise<Measurement | undefined> {
  const { signal } = options;
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      instance.stop();
      resolve(undefined);
    };
    const instance = autocannon(
      {
        url: new URL(request.path, origin).toString(),
        method: request.method,
        headers: { ...request.headers },
        body: request.body,
        connections: options.connections,
        duration: options.durationSeconds,
        workers: LOAD_WORKERS,
      },
      (error: unknown, result: autocannon.Result) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return;
        if (error) return reject(error instanceof Error ? error : new Error(inspect(error)));
        resolve({
          requestsPerSecond: result.requests.mean,
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          failures: result.errors + result.non2xx,
        });
      },
    );
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * One request before loading a target: a wrong URL, a missing token or a GraphQL error (which
 * arrives with status 200 and so would pass as a success under load) fails loudly up front.
 * `check` looks further into an answer without errors, e.g. that a list is as long as asked.
 */
export async function probe(
  origin: string,
  request: BenchRequest,
  check?: (body: unknown) => string | undefined,
): Promise<string | undefined> {
  let response: Response;
  try {
    response = await fetch(new URL(request.path, origin), { method: request.method, headers: request.headers, body: request.body });
  } catch (error) {
    return `request failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  const text = await response.text();
  if (!response.ok) return `HTTP ${response.status}: ${text.slice(0, 300)}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `response is not JSON: ${text.slice(0, 300)}`;
  }
  if (typeof body === 'object' && body !== null && 'errors' in body) return `GraphQL errors: ${text.slice(0, 300)}`;
  return check?.(body);
}

/**
 * How many SQL statements one request makes Bastion send on its pool (the server runs in this
 * process). Call it after the probes, so what a warm server caches (the session, the policy) is
 * cached, as under load.
 */
export async function countStatements(origin: string, request: BenchRequest): Promise<number> {
  const { result: problem, statements } = await statementsDuring(() => probe(origin, request));
  if (problem) throw new Error(problem);
  return statements.length;
}

/** Several runs of one request as one row: mean throughput and p50, worst p99, all failures. */
export function combined(runs: readonly Measurement[]): Measurement {
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  return {
    requestsPerSecond: mean(runs.map((run) => run.requestsPerSecond)),
    p50Ms: mean(runs.map((run) => run.p50Ms)),
    p99Ms: Math.max(...runs.map((run) => run.p99Ms)),
    failures: runs.reduce((sum, run) => sum + run.failures, 0),
  };
}

/**
 * Two ways of one request measured in turn (A, B, A, B…), so a drift of the machine during the
 * section weighs on both alike rather than passing for a cost; undefined when cut short.
 */
export async function alternating(
  rounds: number,
  measureA: () => Promise<Measurement | undefined>,
  measureB: () => Promise<Measurement | undefined>,
): Promise<{ a: Measurement; b: Measurement } | undefined> {
  const a: Measurement[] = [];
  const b: Measurement[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const first = await measureA();
    const second = first && (await measureB());
    if (!first || !second) return undefined;
    a.push(first);
    b.push(second);
  }
  return { a: combined(a), b: combined(b) };
}
