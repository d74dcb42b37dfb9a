import { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../clock';
import { AppError } from '../errors';
import type { Logger } from '../logging';
import { addressBucket } from '../net/ip';

/** Free attempts, then delays doubling from 1 s, capped, never "account locked" (docs/security.md#pwd-6). */
export interface Ladder {
  readonly freeAttempts: number;
  readonly maxDelaySeconds: number;
}

/** Per (account, IP): the real brake on guessing. */
const ACCOUNT_AND_IP: Ladder = { freeAttempts: 5, maxDelaySeconds: 15 * 60 };

/**
 * Second-factor codes are 6 digits, so guessing is far cheaper than for passwords: a tight
 * per-account ladder with a long cap (docs/security.md#mfa-6).
 */
export const MFA_LADDERS = {
  account: { freeAttempts: 10, maxDelaySeconds: 60 * 60 },
  accountAndAddress: { freeAttempts: 5, maxDelaySeconds: 60 * 60 },
} as const;
/** Per account from anywhere: a softer ceiling, so an attacker cannot lock a user out everywhere cheaply. */
const ACCOUNT: Ladder = { freeAttempts: 50, maxDelaySeconds: 5 * 60 };

/** The wait imposed on the next attempt after `failures` attempts: none until the free ones are used up. */
function delaySeconds(failures: number, ladder: Ladder): number {
  if (failures < ladder.freeAttempts) return 0;
  return Math.min(2 ** Math.min(failures - ladder.freeAttempts, 20), ladder.maxDelaySeconds);
}

export interface AttemptReservation {
  /** Call after a correct password: clears both counters. */
  succeeded(): Promise<void>;
}

/**
 * Brute-force throttling for password checks (ASVS 6.3.1, docs/security.md#pwd-6). Each attempt is counted
 * *before* its password is verified, in one atomic upsert, so a thousand aliased sign-ins in one
 * request, or in parallel, count as a thousand attempts and cannot all slip in before a lock.
 */
export class LoginThrottler {
  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly ladders: { readonly account: Ladder; readonly accountAndAddress: Ladder } = {
      account: ACCOUNT,
      accountAndAddress: ACCOUNT_AND_IP,
    },
    private readonly logger?: Logger,
  ) {}

  /** Forgets counters nobody has touched for a day and that hold no lock (run by the maintenance job). */
  async prune(manager: EntityManager): Promise<number> {
    const [, affected]: [unknown, number] = await manager.query(
      "DELETE FROM login_throttles WHERE updated_at < $1::timestamptz - interval '1 day' AND (locked_until IS NULL OR locked_until < $1)",
      [this.clock.now()],
    );
    return affected;
  }

  /** Forgets every counter of an account (after it proved itself another way, e.g. a reset link). */
  async clear(accountKey: string): Promise<void> {
    await this.dataSource.query('DELETE FROM login_throttles WHERE key = $1 OR key LIKE $2', [
      `account:${accountKey}`,
      `account-ip:${accountKey.replace(/[%_\\]/g, '\\$&')}:%`,
    ]);
  }

  /** Throws RATE_LIMITED (with retryAfterSeconds) while either counter is locked. */
  async reserve(accountKey: string, ipAddress: string | null): Promise<AttemptReservation> {
    const keys: [string, Ladder][] = [
      [`account:${accountKey}`, this.ladders.account],
      [`account-ip:${accountKey}:${addressBucket(ipAddress)}`, this.ladders.accountAndAddress],
    ];
    const now = this.clock.now();
    let retryAfterSeconds = 0;
    // Row locks make concurrent attempts on one key take turns: each sees the lock the previous set.
    // The upsert both creates and locks the row, so a concurrent success cannot delete it between.
    // Both rows are read before either is counted: an attempt refused by the per-address brake
    // must not also count against the account, or one address could lock the account for everyone.
    await this.dataSource.transaction(async (manager) => {
      const rows: { key: string; ladder: Ladder; failures: number }[] = [];
      for (const [key, ladder] of keys) {
        const [row]: { failures: number; locked_until: Date | null }[] = await manager.query(
          `INSERT INTO login_throttles (key, failures, locked_until, updated_at) VALUES ($1, 0, NULL, $2)
           ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
           RETURNING failures, locked_until`,
          [key, now],
        );
        if (row.locked_until && new Date(row.locked_until).getTime() > now.getTime()) {
          retryAfterSeconds = Math.max(retryAfterSeconds, Math.ceil((new Date(row.locked_until).getTime() - now.getTime()) / 1000));
        }
        rows.push({ key, ladder, failures: row.failures });
      }
      if (retryAfterSeconds > 0) return;
      for (const { key, ladder, failures: before } of rows) {
        const failures = before + 1;
        const delay = delaySeconds(failures, ladder);
        await manager.query('UPDATE login_throttles SET failures = $2, locked_until = $3, updated_at = $4 WHERE key = $1', [
          key,
          failures,
          delay > 0 ? new Date(now.getTime() + delay * 1000) : null,
          now,
        ]);
      }
    });
    if (retryAfterSeconds > 0) {
      // ASVS 16.3.3: limit rejections are logged (the key names no email: it holds a blind index).
      this.logger?.warn(
        { throttle: keys[0][0].split(':')[1]?.startsWith('mfa-') ? 'mfa' : 'password', ip: ipAddress, retryAfterSeconds },
        'attempt refused by the brute-force throttle',
      );
      throw new AppError('RATE_LIMITED', `Too many sign-in attempts. Try again in ${retryAfterSeconds} seconds.`, {
        details: { retryAfterSeconds },
      });
    }
    return {
      // One row per statement, in the same order as above: two sign-ins of one account never deadlock.
      succeeded: async () => {
        for (const [key] of keys) await this.dataSource.query('DELETE FROM login_throttles WHERE key = $1', [key]);
      },
    };
  }
}
