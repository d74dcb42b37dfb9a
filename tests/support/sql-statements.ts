import { Client } from 'pg';

/**
 * Counts the SQL statements sent on the connection pool while `work` runs (every pg query of the
 * server in this process: TypeORM's and the data API's own). The LISTEN connection's round trips
 * (Notifications.sync, before every request) are not statements of the request and not counted:
 * pooled clients are the ones the pool gave a `release`.
 */
export async function statementsDuring<T>(work: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
  const statements: string[] = [];
  const original = Client.prototype.query;
  Client.prototype.query = function (this: Client & { release?: unknown }, ...args: unknown[]) {
    if (typeof this.release === 'function') {
      const [config] = args;
      statements.push(typeof config === 'string' ? config : String((config as { text?: unknown } | undefined)?.text ?? ''));
    }
    return (original as (...inner: unknown[]) => unknown).apply(this, args);
  } as typeof Client.prototype.query;
  try {
    return { result: await work(), statements };
  } finally {
    Client.prototype.query = original;
  }
}
