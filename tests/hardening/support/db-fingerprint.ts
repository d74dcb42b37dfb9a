import type { DataSource } from 'typeorm';

/** Written by refused requests too (the audit trail, counters): not state an attack may change. */
const BOOKKEEPING_TABLES = ['audit_events', 'rate_limits', 'login_throttles'];

/** md5 of every row of every table but the bookkeeping ones, by table: two equal fingerprints mean nothing changed. */
export async function databaseFingerprint(dataSource: DataSource): Promise<Record<string, string>> {
  const tables: { name: string }[] = await dataSource.query(
    'SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND NOT (tablename = ANY($1)) ORDER BY tablename',
    [BOOKKEEPING_TABLES],
  );
  const fingerprint: Record<string, string> = {};
  for (const { name } of tables) {
    const [{ digest }] = await dataSource.query(
      `SELECT md5(coalesce(string_agg(md5(row_data::text), '' ORDER BY md5(row_data::text)), '')) AS digest FROM "${name}" AS row_data`,
    );
    fingerprint[name] = digest;
  }
  return fingerprint;
}

/** The tables whose rows differ between two fingerprints. */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((table) => before[table] !== after[table]).sort();
}

/**
 * The fingerprint once work started by earlier requests (mail sent from the outbox, say) has
 * finished: two readings in a row agree. Bounded, never a fixed sleep.
 */
export async function settledFingerprint(dataSource: DataSource, timeoutMs = 5_000): Promise<Record<string, string>> {
  const started = Date.now();
  let previous = await databaseFingerprint(dataSource);
  while (Date.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const current = await databaseFingerprint(dataSource);
    if (changedTables(previous, current).length === 0) return current;
    previous = current;
  }
  throw new Error(`the database kept changing for ${timeoutMs} ms`);
}
