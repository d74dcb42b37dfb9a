import { DataSource, EntityManager, In, IsNull } from 'typeorm';
import { lockUserRow } from '../accounts/user-lock';
import type { LoginThrottler } from '../accounts/login-throttle';
import type { PasswordHasher } from '../accounts/password-hasher';
import { IssuedTokens, SessionsService, hashToken, newOpaqueToken } from '../accounts/sessions.service';
import { RequestOrigin } from '../audit/actor';
import { User } from '../accounts/user.entity';
import type { AuditLog } from '../audit/audit-log';
import type { OutboxService } from '../mail/outbox.service';
import type { Clock } from '../clock';
import type { Challenge, SecondFactor } from '../accounts/second-factor';
import type { Viewer } from '../accounts/viewer';
import { AppError } from '../errors';
import { MfaChallengeRecord } from './mfa-challenge.entity';
import { MfaFactor } from './mfa-factor.entity';
import { RecoveryCode } from './recovery-code.entity';
import { generateRecoveryCodes, matchesRecoveryCode, parseRecoveryCode } from './recovery-codes';
import { newTotpSecret, otpauthUri, qrCodeSvg, verifyTotp } from './totp';

const CHALLENGE_TTL_MS = 5 * 60 * 1000;
const CHALLENGE_MAX_FAILURES = 5;
export const MFA_METHODS = ['totp', 'recovery_code'] as const;
type MfaMethod = (typeof MFA_METHODS)[number];

export interface Enrollment {
  readonly factorId: string;
  readonly secret: string;
  readonly otpauthUri: string;
  readonly qrCodeSvg: string;
}

/** A code that passed its check, and the one conditional update that spends it. */
interface AcceptedCode {
  readonly method: MfaMethod;
  spend(manager: EntityManager): Promise<boolean>;
}

const factorNotOn = () => new AppError('BAD_USER_INPUT', 'Two-factor authentication is not on for this account.');

const invalidCode = () =>
  new AppError(
    'INVALID_MFA_CODE',
    'The code is wrong or was already used. Enter the current code from your authenticator app, or an unused recovery code.',
  );

/**
 * The second factor, modelled as factor → challenge → session assurance level (supabase/auth).
 * A TOTP step and a recovery code each work once, even when sent twice at the same instant: the
 * spend is one conditional UPDATE that only one transaction can win.
 */
export class MfaService implements SecondFactor {
  readonly enrollableMethods: readonly string[] = ['totp'];

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly hasher: PasswordHasher,
    private readonly throttle: LoginThrottler,
    private readonly sessions: SessionsService,
    private readonly audit: AuditLog,
    private readonly outbox: OutboxService,
    private readonly options: { readonly appName: string },
  ) {}

  /** Tells the account owner about a change to their second factor (MFA-CS: notify on use). */
  private async notifyOwner(manager: EntityManager, userId: string, subject: string, text: string): Promise<void> {
    const user = await manager.findOneBy(User, { id: userId });
    if (user)
      await this.outbox.enqueue(manager, {
        userId,
        to: user.email,
        subject: `${this.options.appName}: ${subject}`,
        text: `${text}\n\nIf this was not you, reset your password and contact the app's support.`,
      });
  }

  async hasVerifiedFactor(userId: string, manager: EntityManager = this.dataSource.manager): Promise<boolean> {
    return (await manager.countBy(MfaFactor, { userId, status: 'verified' })) > 0;
  }

  /** For a page of users: which of them have a verified factor (one query). */
  async usersWithVerifiedFactor(userIds: readonly string[]): Promise<Set<string>> {
    const rows = await this.dataSource
      .getRepository(MfaFactor)
      .find({ where: { userId: In([...userIds]), status: 'verified' }, select: { userId: true } });
    return new Set(rows.map((row) => row.userId));
  }

  /** MFA_REQUIRED unless the viewer's session is aal2, for accounts that have a factor. */
  async requireStepUp(viewer: Viewer): Promise<void> {
    if (!viewer.userId) throw new AppError('UNAUTHENTICATED', 'Sign in to do this.');
    if (viewer.aal < 2 && (await this.hasVerifiedFactor(viewer.userId))) {
      throw new AppError('MFA_REQUIRED', 'Confirm with your second factor first: sign in again and complete verifyMfa.');
    }
  }

  /** Before a change to the factor: aal2, and a factor to change (else there is nothing to prove a password for). */
  async requireFactorOn(viewer: Viewer): Promise<void> {
    await this.requireStepUp(viewer);
    if (!(await this.hasVerifiedFactor(viewer.userId!))) throw factorNotOn();
  }

  /** The password step succeeded for an account with a factor: a short-lived challenge, not a session. */
  async createChallenge(manager: EntityManager, userId: string): Promise<Challenge> {
    const mfaToken = newOpaqueToken();
    const expiresAt = new Date(this.clock.now().getTime() + CHALLENGE_TTL_MS);
    await manager.insert(MfaChallengeRecord, { userId, tokenHash: hashToken(mfaToken), failedAttempts: 0, expiresAt, endedAt: null });
    return { mfaToken, expiresAt, methods: [...MFA_METHODS] };
  }

  /** Redeems a challenge with a TOTP or recovery code: an aal2 session, replacing the bearer's (`replacing`, ASVS 7.2.4). */
  async verify(mfaToken: string, code: string, origin: RequestOrigin, replacing: string | null = null): Promise<IssuedTokens> {
    const now = this.clock.now();
    const challenge = await this.dataSource.getRepository(MfaChallengeRecord).findOneBy({ tokenHash: hashToken(mfaToken) });
    const ended = () => new AppError('UNAUTHENTICATED', 'This sign-in attempt expired or ended: sign in with your password again.');
    if (!challenge || challenge.endedAt !== null || challenge.expiresAt.getTime() <= now.getTime()) throw ended();
    const attempt = await this.throttle.reserve(`mfa-${challenge.userId}`, origin.ipAddress);
    const accepted = await this.check(challenge.userId, code);

    const outcome = await this.dataSource.transaction(async (manager) => {
      const locked = await manager.findOne(MfaChallengeRecord, { where: { id: challenge.id }, lock: { mode: 'pessimistic_write' } });
      if (!locked || locked.endedAt !== null || locked.expiresAt.getTime() <= now.getTime()) return 'ended' as const;
      if (!accepted || !(await accepted.spend(manager))) {
        const failedAttempts = locked.failedAttempts + 1;
        await manager.update(
          MfaChallengeRecord,
          { id: locked.id },
          { failedAttempts, endedAt: failedAttempts >= CHALLENGE_MAX_FAILURES ? now : null },
        );
        await this.audit.append(manager, {
          action: 'mfa_verification_failed',
          outcome: 'failure',
          actorId: locked.userId,
          targetType: 'user',
          targetId: locked.userId,
          metadata: { failedAttempts },
          ...origin,
        });
        return 'invalid' as const;
      }
      await manager.update(MfaChallengeRecord, { id: locked.id }, { endedAt: now });
      const opened = await this.sessions.open(manager, locked.userId, { aal: 2, amr: ['pwd', accepted.method] }, origin, replacing);
      if (accepted.method === 'recovery_code') {
        await this.notifyOwner(
          manager,
          locked.userId,
          'a recovery code was used',
          'A recovery code was just used to sign in to your account. Each code works once; create new ones in the app when you run low.',
        );
      }
      await this.audit.append(manager, {
        action: accepted.method === 'totp' ? 'mfa_verified' : 'recovery_code_used',
        outcome: 'success',
        actorId: locked.userId,
        targetType: 'session',
        targetId: opened.sessionId,
        metadata: opened.replacedSessionId ? { replacedSessionId: opened.replacedSessionId } : {},
        ...origin,
      });
      return opened;
    });
    if (outcome === 'ended') throw ended();
    if (outcome === 'invalid') throw invalidCode();
    await attempt.succeeded();
    this.outbox.deliverSoon();
    return this.sessions.issue(outcome);
  }

  /** A new, unverified TOTP factor: the secret is shown now and never again. */
  async enroll(viewer: Viewer, accountName: string): Promise<Enrollment> {
    const userId = viewer.userId!;
    // Replacing a working factor is as sensitive as disabling it.
    await this.requireStepUp(viewer);
    const secret = newTotpSecret();
    const factor = await this.dataSource.transaction(async (manager) => {
      await manager.delete(MfaFactor, { userId, status: 'unverified' });
      return manager.save(Object.assign(new MfaFactor(), { userId, secret, status: 'unverified', lastUsedStep: null, verifiedAt: null }));
    });
    const uri = otpauthUri({ issuer: this.options.appName, accountName, secret });
    return { factorId: factor.id, secret, otpauthUri: uri, qrCodeSvg: await qrCodeSvg(uri) };
  }

  /**
   * Proves the new factor with a code: it becomes the account's factor, this session becomes
   * aal2, every other session ends, and ten fresh recovery codes are returned (shown once).
   * Replacing a working factor also needs a code of the current one (docs/security.md#mfa-9); the caller proves
   * the password first (MfaResolver). The owner is emailed either way.
   */
  async confirm(viewer: Viewer, code: string, currentCode: string | undefined, origin: RequestOrigin): Promise<string[]> {
    const userId = viewer.userId!;
    const pending = await this.dataSource
      .getRepository(MfaFactor)
      .findOne({ where: { userId, status: 'unverified' }, order: { createdAt: 'DESC' } });
    if (!pending) throw new AppError('BAD_USER_INPUT', 'Start with enrollTotp: there is no authenticator waiting for confirmation.');
    const replacing = await this.hasVerifiedFactor(userId);
    if (replacing && !currentCode) {
      throw new AppError(
        'BAD_USER_INPUT',
        'Enter a code from the authenticator you are replacing (currentCode), or one of your recovery codes.',
        { details: { field: 'currentCode' } },
      );
    }
    const attempt = await this.throttle.reserve(`mfa-${userId}`, origin.ipAddress);
    const accepted = await this.checkTotp(pending, code);
    const current = replacing ? await this.check(userId, currentCode!) : null;
    if (!accepted || (replacing && !current)) throw await this.failed(userId, 'confirm_totp', origin);
    const recovery = await generateRecoveryCodes(this.hasher);
    const confirmed = await this.dataSource.transaction(async (manager) => {
      await this.lockAccount(manager, userId);
      if (!(await accepted.spend(manager)) || (current && !(await current.spend(manager)))) return false;
      await manager.delete(MfaFactor, { userId, status: 'verified' });
      await manager.update(MfaFactor, { id: pending.id }, { status: 'verified', verifiedAt: this.clock.now() });
      await this.replaceRecoveryCodes(manager, userId, recovery.stored);
      await this.sessions.setAssurance(manager, viewer.sessionId!, 2, ['pwd', 'totp']);
      await this.sessions.endAllFor(manager, userId, replacing ? 'mfa_replaced' : 'mfa_enabled', viewer.sessionId!);
      await this.endChallenges(manager, userId);
      await this.notifyOwner(
        manager,
        userId,
        replacing ? 'your authenticator app was changed' : 'two-factor authentication was turned on',
        replacing
          ? 'The authenticator app of your account was just replaced by a new one.'
          : 'Two-factor authentication was just turned on for your account.',
      );
      await this.audit.append(manager, {
        action: replacing ? 'mfa_factor_replaced' : 'mfa_enabled',
        outcome: 'success',
        actorId: userId,
        targetType: 'user',
        targetId: userId,
        ...origin,
      });
      return true;
    });
    if (!confirmed) throw await this.failed(userId, 'confirm_totp', origin);
    await attempt.succeeded();
    this.outbox.deliverSoon();
    return recovery.codes;
  }

  /** Deletes challenges that ended or expired more than a day ago (run by the maintenance job). */
  async pruneChallenges(manager: EntityManager): Promise<number> {
    const [, affected]: [unknown, number] = await manager.query(
      "DELETE FROM mfa_challenges WHERE expires_at < $1::timestamptz - interval '1 day'",
      [this.clock.now()],
    );
    return affected;
  }

  /** Ends a user's open sign-in challenges (a new password or factor makes them stale). */
  async endChallenges(manager: EntityManager, userId: string): Promise<void> {
    await manager.update(MfaChallengeRecord, { userId, endedAt: IsNull() }, { endedAt: this.clock.now() });
  }

  /** Removes the factor and its recovery codes (aal2, a valid code, and the password the caller proved); other sessions end. */
  async disable(viewer: Viewer, code: string, origin: RequestOrigin): Promise<void> {
    const userId = viewer.userId!;
    await this.requireStepUp(viewer);
    const attempt = await this.throttle.reserve(`mfa-${userId}`, origin.ipAddress);
    const accepted = await this.check(userId, code);
    if (!accepted) throw await this.failed(userId, 'disable_totp', origin);
    const done = await this.dataSource.transaction(async (manager) => {
      await this.lockAccount(manager, userId);
      if (!(await accepted.spend(manager))) return false;
      if (accepted.method === 'recovery_code')
        await this.audit.append(manager, {
          action: 'recovery_code_used',
          outcome: 'success',
          actorId: userId,
          targetType: 'user',
          targetId: userId,
          metadata: { operation: 'disable_totp' },
          ...origin,
        });
      await this.endChallenges(manager, userId);
      await manager.delete(MfaFactor, { userId });
      await manager.delete(RecoveryCode, { userId });
      await this.sessions.setAssurance(manager, viewer.sessionId!, 1, ['pwd']);
      await this.sessions.endAllFor(manager, userId, 'mfa_disabled', viewer.sessionId!);
      await this.notifyOwner(
        manager,
        userId,
        'two-factor authentication was turned off',
        'Two-factor authentication was just turned off for your account.',
      );
      await this.audit.append(manager, {
        action: 'mfa_disabled',
        outcome: 'success',
        actorId: userId,
        targetType: 'user',
        targetId: userId,
        ...origin,
      });
      return true;
    });
    if (!done) throw await this.failed(userId, 'disable_totp', origin);
    await attempt.succeeded();
    this.outbox.deliverSoon();
  }

  /** A new set of ten recovery codes; the old set stops working at once. */
  async regenerateRecoveryCodes(viewer: Viewer, code: string, origin: RequestOrigin): Promise<string[]> {
    const userId = viewer.userId!;
    await this.requireStepUp(viewer);
    const factor = await this.dataSource.getRepository(MfaFactor).findOneBy({ userId, status: 'verified' });
    if (!factor) throw factorNotOn();
    const attempt = await this.throttle.reserve(`mfa-${userId}`, origin.ipAddress);
    const accepted = await this.checkTotp(factor, code);
    // A wrong code must not cost ten argon2 hashes.
    if (!accepted) throw await this.failed(userId, 'regenerate_recovery_codes', origin);
    const recovery = await generateRecoveryCodes(this.hasher);
    const done = await this.dataSource.transaction(async (manager) => {
      if (!(await accepted.spend(manager))) return false;
      await this.replaceRecoveryCodes(manager, userId, recovery.stored);
      await this.audit.append(manager, {
        action: 'recovery_codes_regenerated',
        outcome: 'success',
        actorId: userId,
        targetType: 'user',
        targetId: userId,
        ...origin,
      });
      return true;
    });
    if (!done) throw await this.failed(userId, 'regenerate_recovery_codes', origin);
    await attempt.succeeded();
    return recovery.codes;
  }

  /** A TOTP code of the verified factor, or one of the recovery codes. */
  private async check(userId: string, code: string): Promise<AcceptedCode | null> {
    const trimmed = code.trim();
    if (/^\d{6}$/.test(trimmed)) {
      const factor = await this.dataSource.getRepository(MfaFactor).findOneBy({ userId, status: 'verified' });
      return factor ? this.checkTotp(factor, trimmed) : null;
    }
    const parsed = parseRecoveryCode(trimmed);
    if (!parsed) return null;
    const candidates = await this.dataSource.getRepository(RecoveryCode).findBy({ userId, lookup: parsed.lookup, usedAt: IsNull() });
    // No candidate still costs one hash, so the time does not tell whether a lookup id exists.
    if (candidates.length === 0) await this.hasher.verifyAgainstDummy(parsed.secret);
    for (const candidate of candidates) {
      if (await matchesRecoveryCode(this.hasher, candidate, parsed.secret)) {
        return {
          method: 'recovery_code',
          spend: async (manager) => {
            const { affected } = await manager.update(RecoveryCode, { id: candidate.id, usedAt: IsNull() }, { usedAt: this.clock.now() });
            return affected === 1;
          },
        };
      }
    }
    return null;
  }

  private async checkTotp(factor: MfaFactor, code: string): Promise<AcceptedCode | null> {
    const result = await verifyTotp({ secret: factor.secret, code: code.trim(), now: this.clock.now(), lastUsedStep: factor.lastUsedStep });
    if (!result.valid) return null;
    return {
      method: 'totp',
      // Replay protection (docs/security.md#mfa-3): only the first request to record this step wins.
      spend: async (manager) => {
        const [, affected]: [unknown, number] = await manager.query(
          'UPDATE mfa_factors SET last_used_step = $2 WHERE id = $1 AND (last_used_step IS NULL OR last_used_step < $2)',
          [factor.id, result.step],
        );
        return affected === 1;
      },
    };
  }

  /** Records a wrong code for a signed-in operation, and returns the error to throw. */
  private async failed(userId: string, operation: string, origin: RequestOrigin): Promise<AppError> {
    await this.dataSource.transaction((manager) =>
      this.audit.append(manager, {
        action: 'mfa_code_failed',
        outcome: 'failure',
        actorId: userId,
        targetType: 'user',
        targetId: userId,
        metadata: { operation },
        ...origin,
      }),
    );
    return invalidCode();
  }

  /** Serialises factor changes and sign-ins of one account (a sign-in must see a factor that was just turned on). */
  async lockAccount(manager: EntityManager, userId: string): Promise<void> {
    await lockUserRow(manager, userId);
  }

  private async replaceRecoveryCodes(
    manager: EntityManager,
    userId: string,
    stored: readonly { lookup: string; codeHash: string }[],
  ): Promise<void> {
    await manager.delete(RecoveryCode, { userId });
    await manager.insert(
      RecoveryCode,
      stored.map(({ lookup, codeHash }) => ({ userId, lookup, codeHash, usedAt: null })),
    );
  }
}
