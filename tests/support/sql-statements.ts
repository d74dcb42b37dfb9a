import { Client } from 'pg';

/**
 * Counts the SQL statements sent on the connection pool while `work` runs (every pg query of the
 * server in this process: TypeORM's and the data API's own). The LISTEN connection's round trips
 * (Notifications.sync, before every request) are not statements of the request and not counted:
 * pooled clients are the ones the pool gave a `release`.
 */
export async function statementsDuring<T>(work: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
  const statements: string[] = [];
  // Read with Reflect.get: it is put back as it was, never called detached (apply passes its `this`).
  const original = Reflect.get(Client.prototype, 'query');
  Client.prototype.query = function (this: Client & { release?: unknown }, ...args: unknown[]) {
    if (typeof this.release === 'function') {
      const [config] = args;
      const text = typeof config === 'string' ? config : (config as { text?: unknown } | undefined)?.text;
      statements.push(typeof text === 'string' ? text : '');
    }
    return (original as (...inner: unknown[]) => unknown).apply(this, args);
  } as typeof Client.prototype.query;
  try {
    return { result: await work(), statements };
  } finally {
    Client.prototype.query = original;
  }
}
