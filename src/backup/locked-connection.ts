import type { Client } from 'pg';
import { severableClient } from '../db/severable-client';

/** Session-level advisory locks ("bstbckup", "bstbkver" in ASCII): one backup, one verification at a time across instances. */
export const BACKUP_LOCK_KEY = '7094141849601717616';
export const VERIFY_LOCK_KEY = '7094141849466799474';
/** How long taking a job's lock waits for a holder that is about to let go (a catalogue listing). */
export const LOCK_WAIT_MS = 2_000;

/**
 * A dedicated connection that holds a session-level advisory lock: the lock lasts exactly as long
 * as the connection, so a process killed mid-job releases it, and whoever takes it next knows the
 * job it guarded is dead. Bastion owns the socket, so a job stuck mid-COPY can be cut off (`sever`):
 * the server then rolls back and releases the lock, where a polite ROLLBACK would wait forever
 * behind the unread COPY data.
 */
export class LockedConnection {
  private constructor(
    readonly client: Client,
    private readonly cut: () => void,
  ) {}

  /**
   * Connects and takes the lock, waiting up to `waitMs` for a holder that is about to let go (a
   * catalogue listing holds it for a moment); null when it is still held after that.
   */
  static async acquire(url: string, applicationName: string, lockKey: string, waitMs: number): Promise<LockedConnection | null> {
    const { client, sever } = severableClient({ connectionString: url, application_name: applicationName });
    // Errors on this connection surface through the query that meets them; unheard, they would crash the process.
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query(`SET lock_timeout = ${Math.max(1, Math.round(waitMs))}`);
      await client.query('SELECT pg_advisory_lock($1)', [lockKey]);
      await client.query('RESET lock_timeout');
      return new LockedConnection(client, sever);
    } catch (error) {
      await client.end().catch(() => undefined);
      if ((error as { code?: string }).code === '55P03') return null; // lock_not_available
      throw error;
    }
  }

  /** Ends the connection (and so the lock) politely. */
  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  /** Cuts the connection: the server rolls back whatever was running and releases the lock. */
  sever(): void {
    this.cut();
  }
}
