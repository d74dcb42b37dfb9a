import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from './logging';

/** Fixed key of the maintenance job's advisory lock ("bstmaint" in ASCII). */
const MAINTENANCE_LOCK_KEY = '7094141787128212596';

export type PruneTask = (manager: EntityManager) => Promise<number>;

/**
 * Housekeeping that must run somewhere, once: pruning expired throttle rows, challenges and
 * emailed tokens. Every instance schedules it; the one that gets the advisory lock does the work
 * (docs/security.md#ops-9: scheduled jobs take a PostgreSQL advisory lock), never inside a request.
 */
export async function runMaintenance(
  dataSource: DataSource,
  tasks: Readonly<Record<string, PruneTask>>,
  logger: Logger,
): Promise<Record<string, number> | null> {
  return dataSource.transaction(async (manager) => {
    const [{ locked }]: { locked: boolean }[] = await manager.query('SELECT pg_try_advisory_xact_lock($1) AS locked', [
      MAINTENANCE_LOCK_KEY,
    ]);
    if (!locked) return null;
    // Housekeeping is not a request: a large prune must not be cut by the pool's BASTION_DB_STATEMENT_TIMEOUT_MS.
    await manager.query('SET LOCAL statement_timeout = 0');
    const removed: Record<string, number> = {};
    for (const [name, task] of Object.entries(tasks)) removed[name] = await task(manager);
    logger.info({ removed }, 'maintenance done');
    return removed;
  });
}

/**
 * Runs the job every `intervalMs`, the first time a few minutes after start (a start is busy
 * enough, and short-lived processes such as CLI commands need no housekeeping). Returns the
 * function that stops it.
 */
export function scheduleMaintenance(
  dataSource: DataSource,
  tasks: Readonly<Record<string, PruneTask>>,
  logger: Logger,
  intervalMs: number,
): () => void {
  const run = () => {
    void runMaintenance(dataSource, tasks, logger).catch((error: unknown) => logger.warn({ err: error }, 'maintenance failed'));
  };
  let interval: NodeJS.Timeout | undefined;
  const first = setTimeout(
    () => {
      run();
      interval = setInterval(run, intervalMs);
      interval.unref();
    },
    Math.min(intervalMs, 5 * 60 * 1000),
  );
  first.unref();
  return () => {
    clearTimeout(first);
    if (interval) clearInterval(interval);
  };
}
