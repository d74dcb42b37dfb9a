import { EntityManager } from 'typeorm';
import type { Clock } from '../clock';
import { AccountToken, AccountTokenPurpose } from './account-token.entity';
import { hashToken, newOpaqueToken } from './sessions.service';

/** Lifetimes of emailed tokens: a reset link is a credential, so it lives briefly. */
export const ACCOUNT_TOKEN_TTL_MS: Record<AccountTokenPurpose, number> = {
  password_reset: 30 * 60 * 1000,
  email_verification: 24 * 60 * 60 * 1000,
};

/** Single-use emailed tokens (ASVS 6.4.1): 256 random bits, stored hashed, short-lived. */
export class AccountTokens {
  constructor(private readonly clock: Clock) {}

  async issue(manager: EntityManager, userId: string, purpose: AccountTokenPurpose): Promise<string> {
    const token = newOpaqueToken();
    const now = this.clock.now();
    await manager.insert(AccountToken, {
      userId,
      purpose,
      tokenHash: hashToken(token),
      expiresAt: new Date(now.getTime() + ACCOUNT_TOKEN_TTL_MS[purpose]),
      usedAt: null,
      createdAt: now,
    });
    return token;
  }

  /** The token's user, if it is live; it is then spent (atomically: a second use finds nothing). */
  async consume(manager: EntityManager, token: string, purpose: AccountTokenPurpose): Promise<string | null> {
    const now = this.clock.now();
    const [rows]: [{ user_id: string }[], number] = await manager.query(
      `UPDATE account_tokens SET used_at = $1
        WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
        RETURNING user_id`,
      [now, hashToken(token), purpose],
    );
    return rows[0]?.user_id ?? null;
  }

  /** The user of a live token, without spending it (to check a new password against the account first). */
  async peek(manager: EntityManager, token: string, purpose: AccountTokenPurpose): Promise<string | null> {
    const row = await manager
      .createQueryBuilder(AccountToken, 'token')
      .where('token.token_hash = :hash AND token.purpose = :purpose AND token.used_at IS NULL AND token.expires_at > :now', {
        hash: hashToken(token),
        purpose,
        now: this.clock.now(),
      })
      .getOne();
    return row?.userId ?? null;
  }

  /** Spends every live token of a purpose (a new password makes older reset links worthless). */
  async revokeAll(manager: EntityManager, userId: string, purpose: AccountTokenPurpose): Promise<void> {
    await manager.query('UPDATE account_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL', [
      this.clock.now(),
      userId,
      purpose,
    ]);
  }

  /** Deletes tokens spent or expired more than a week ago (run by the maintenance job). */
  async prune(manager: EntityManager): Promise<number> {
    const [, affected]: [unknown, number] = await manager.query(
      "DELETE FROM account_tokens WHERE expires_at < $1::timestamptz - interval '7 days'",
      [this.clock.now()],
    );
    return affected;
  }

  /** Whether one was issued recently: a cheap brake on mail bombing. */
  async issuedSince(manager: EntityManager, userId: string, purpose: AccountTokenPurpose, since: Date): Promise<boolean> {
    const count = await manager
      .createQueryBuilder(AccountToken, 'token')
      .where('token.user_id = :userId AND token.purpose = :purpose AND token.created_at > :since', { userId, purpose, since })
      .getCount();
    return count > 0;
  }
}
