import type { DataSource } from 'typeorm';

/**
 * Polls (bounded) until `check` passes and returns how long it took. For changes that happen
 * outside the test's control (another process, a database coming back); never a fixed sleep.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/**
 * Waits until `count` connections to the test's database wait on a lock: the racing requests have
 * reached the row or table the test holds, so releasing it lets them go at the same moment.
 */
export function lockWaiters(dataSource: Pick<DataSource, 'query'>, count: number): Promise<number> {
  return eventually(async () => {
    const [{ waiting }] = await dataSource.query<{ waiting: number }[]>(
      "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    return waiting === count;
  });
}
