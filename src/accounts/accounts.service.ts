import { DataSource, EntityManager, In } from 'typeorm';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { Viewer } from './viewer';
import { blindIndexOf, blindIndexesOf } from '../crypto/encrypted-column';
import { DuplicateValueError, conflictOnDuplicate } from '../db/unique-violation';
import { AppError } from '../errors';
import type { Logger } from '../logging';
import type { OutboxService } from '../mail/outbox.service';
import type { Challenge, SecondFactor } from './second-factor';
import type { AssuranceRequirement } from './assurance-requirement';
import { AccountTokens } from './account-tokens';
import type { LoginThrottler } from './login-throttle';
import type { PasswordHasher } from './password-hasher';
import type { PasswordPolicy } from './password-policy';
import type { IssuedTokens, SessionsService } from './sessions.service';
import type { TokenFailures } from './token-failures';
import type { RequestOrigin } from '../audit/actor';
import { keepAnActiveAdmin } from './admins';
import { UserRole } from './user-role.entity';
import { User, UserStatus } from './user.entity';

export interface AccountsOptions {
  /** Base of emailed links (BASTION_PUBLIC_URL); may be an app deep link. */
  readonly publicUrl: string;
  readonly appName: string;
  readonly requireVerifiedEmail: boolean;
}

/** Result of a sign-in or sign-up: the tokens and the account they belong to. */
export interface SignedIn extends IssuedTokens {
  readonly user: User;
}

/** A password sign-in or sign-up that opened a session. */
export interface PasswordSignIn extends SignedIn {
  /** Set when the account's roles need aal2 and it has no factor: what it can enrol, before anything else. */
  readonly mfaEnrollment: { readonly methods: readonly string[] } | null;
}

const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/**
 * Control characters (NUL included), lone surrogates, and format characters (bidi marks,
 * overrides and isolates, soft hyphens, word joiners, tags): none belongs in a real address, and
 * each could disguise one address as another in an admin's list. ZWNJ and ZWJ stay: Persian and
 * Indic scripts need them in internationalised addresses.
 */
const INVISIBLE_OR_BROKEN = /[\p{Cc}\p{Cs}]|(?![\u200C\u200D])\p{Cf}/u;
const WRONG_CREDENTIALS = 'The email or the password is wrong.';
const RESEND_AFTER_MS = 60_000;

/**
 * Accounts: sign-up, sign-in, passwords, email verification, deletion. Every change runs in one
 * transaction together with its audit row; emails go through the outbox of that same transaction.
 */
export class AccountsService {
  private readonly accountTokens: AccountTokens;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly throttle: LoginThrottler,
    private readonly sessions: SessionsService,
    private readonly audit: AuditLog,
    private readonly outbox: OutboxService,
    private readonly secondFactor: SecondFactor,
    private readonly assurance: AssuranceRequirement,
    private readonly options: AccountsOptions,
    private readonly failures: TokenFailures,
  ) {
    this.accountTokens = new AccountTokens(clock);
  }

  async signUp(email: string, password: string, origin: RequestOrigin): Promise<PasswordSignIn> {
    const address = this.checkEmail(email);
    this.checkPassword(password, address);
    const passwordHash = await this.hasher.hash(password);
    const signedIn = await conflictOnDuplicate(
      () =>
        this.dataSource.transaction(async (manager) => {
          const user = await this.createUser(manager, address, passwordHash, ['user']);
          await this.queueVerification(manager, user);
          // With verification required, the account waits for its link: no session yet.
          const opened = this.options.requireVerifiedEmail
            ? null
            : await this.sessions.open(manager, user.id, { aal: 1, amr: ['pwd'] }, origin);
          // Audit rows last: the chain lock they take is held until commit.
          await this.audit.append(manager, {
            action: 'user_signed_up',
            outcome: 'success',
            actorId: user.id,
            targetType: 'user',
            targetId: user.id,
            ...origin,
          });
          if (opened)
            await this.audit.append(manager, {
              action: 'sign_in_succeeded',
              outcome: 'success',
              actorId: user.id,
              targetType: 'session',
              targetId: opened.sessionId,
              ...origin,
            });
          return opened ? { opened, user } : null;
        }),
      // Uniqueness forces an answer here; it says no more than that (rate limits keep it from being an oracle).
      'This email address cannot be used to sign up. If it is yours, sign in or reset your password.',
    );
    this.outbox.deliverSoon();
    if (!signedIn) throw new AppError('FORBIDDEN', 'Account created. Verify your email address with the link we sent, then sign in.');
    return this.withEnrollment({ ...(await this.sessions.issue(signedIn.opened)), user: signedIn.user });
  }

  /**
   * Password sign-in. Unknown email and wrong password give the same error after the same work
   * (a verify against a dummy hash); each attempt is counted before the password is checked.
   * `replacing`: the session of the bearer token sent along, ended by the new one (ASVS 7.2.4).
   */
  async signIn(
    email: string,
    password: string,
    origin: RequestOrigin,
    replacing: string | null = null,
  ): Promise<PasswordSignIn | Challenge> {
    const emailIndex = blindIndexOf(User, 'email', email);
    const attempt = await this.throttle.reserve(emailIndex, origin.ipAddress);
    const user = await this.dataSource.getRepository(User).findOneBy({ emailIndex: In(blindIndexesOf(User, 'email', email)) });
    const verification = user
      ? await this.hasher.verify(user.passwordHash, password)
      : { valid: await this.hasher.verifyAgainstDummy(password), needsRehash: false };
    if (!user || !verification.valid) {
      await this.dataSource.transaction((manager) =>
        this.audit.append(manager, {
          action: 'sign_in_failed',
          outcome: 'failure',
          actorId: user?.id ?? null,
          targetType: 'user',
          targetId: user?.id ?? null,
          metadata: { reason: user ? 'wrong_password' : 'unknown_account' },
          ...origin,
        }),
      );
      throw new AppError('INVALID_CREDENTIALS', WRONG_CREDENTIALS);
    }
    await attempt.succeeded();
    if (user.status !== UserStatus.ACTIVE) throw new AppError('FORBIDDEN', "This account is suspended. Contact the app's support.");
    if (this.options.requireVerifiedEmail && !user.emailVerified) {
      await this.requestEmailVerification(user.id);
      throw new AppError('FORBIDDEN', 'Verify your email address first: we sent you a new link.');
    }
    const rehash = verification.needsRehash ? await this.hasher.hash(password) : null;
    const outcome = await this.dataSource.transaction(async (manager) => {
      await this.secondFactor.lockAccount(manager, user.id);
      if (rehash) await manager.update(User, { id: user.id }, { passwordHash: rehash });
      // With a second factor the password only opens a challenge; no session, no token.
      if (await this.secondFactor.hasVerifiedFactor(user.id, manager)) {
        const challenge = await this.secondFactor.createChallenge(manager, user.id);
        await this.audit.append(manager, {
          action: 'sign_in_mfa_challenged',
          outcome: 'success',
          actorId: user.id,
          targetType: 'user',
          targetId: user.id,
          ...origin,
        });
        return { challenge, opened: null };
      }
      const opened = await this.sessions.open(manager, user.id, { aal: 1, amr: ['pwd'] }, origin, replacing);
      await this.audit.append(manager, {
        action: 'sign_in_succeeded',
        outcome: 'success',
        actorId: user.id,
        targetType: 'session',
        targetId: opened.sessionId,
        metadata: opened.replacedSessionId ? { replacedSessionId: opened.replacedSessionId } : {},
        ...origin,
      });
      return { challenge: null, opened };
    });
    if (outcome.challenge) return outcome.challenge;
    return this.withEnrollment({ ...(await this.sessions.issue(outcome.opened)), user });
  }

  /**
   * A session opened by the password alone, so the account has no second factor: does one of its
   * roles need one (ASVS 6.3.3)? Then the app is told to enrol now rather than meet MFA_REQUIRED later.
   */
  private async withEnrollment(signedIn: SignedIn): Promise<PasswordSignIn> {
    const [roles] = await this.sessions.rolesOfUsers([signedIn.user.id]);
    const required = await this.assurance.rolesNeedSecondFactor(roles);
    return { ...signedIn, mfaEnrollment: required ? { methods: this.secondFactor.enrollableMethods } : null };
  }

  /** The account behind freshly issued tokens (refresh, second factor), for the AuthPayload. */
  async signedInAs(issued: IssuedTokens): Promise<SignedIn> {
    const user = await this.dataSource.getRepository(User).findOneBy({ id: issued.userId });
    if (!user) throw new AppError('UNAUTHENTICATED', 'This account no longer exists.');
    return { ...issued, user };
  }

  /** The viewer's own account, as read with the session (`me` runs no query of its own). */
  me(viewer: Viewer): Promise<User | null> {
    return this.sessions.currentAccount(viewer);
  }

  /** Keeps the current session and ends every other one (docs/security.md#pwd-8). */
  async changePassword(viewer: Viewer, currentPassword: string, newPassword: string, origin: RequestOrigin): Promise<void> {
    await this.secondFactor.requireStepUp(viewer);
    const user = await this.provePassword(viewer, currentPassword, origin);
    this.checkPassword(newPassword, user.email);
    const passwordHash = await this.hasher.hash(newPassword);
    await this.dataSource.transaction(async (manager) => {
      await manager.update(User, { id: user.id }, { passwordHash });
      await this.accountTokens.revokeAll(manager, user.id, 'password_reset');
      await this.secondFactor.endChallenges(manager, user.id);
      const ended = await this.sessions.endAllFor(manager, user.id, 'password_changed', viewer.sessionId ?? undefined);
      await this.audit.append(manager, {
        action: 'password_changed',
        outcome: 'success',
        actorId: user.id,
        targetType: 'user',
        targetId: user.id,
        metadata: { endedSessions: ended },
        ...origin,
      });
    });
  }

  /**
   * Always succeeds from the caller's view. The work for an existing account happens after the
   * answer, so neither the result nor the response time tells whether the email is registered.
   */
  requestPasswordReset(email: string, origin: RequestOrigin): void {
    void this.issuePasswordReset(email, origin).catch((error: unknown) =>
      this.logger.error({ err: error }, 'password reset request failed'),
    );
  }

  private async issuePasswordReset(email: string, origin: RequestOrigin): Promise<void> {
    const user = await this.dataSource.getRepository(User).findOneBy({ emailIndex: In(blindIndexesOf(User, 'email', email)) });
    if (!user) return;
    await this.dataSource.transaction(async (manager) => {
      if (await this.accountTokens.issuedSince(manager, user.id, 'password_reset', new Date(this.clock.now().getTime() - RESEND_AFTER_MS)))
        return;
      const token = await this.accountTokens.issue(manager, user.id, 'password_reset');
      await this.outbox.enqueue(manager, {
        userId: user.id,
        to: user.email,
        subject: `Reset your ${this.options.appName} password`,
        text:
          `Someone asked to reset the password of your ${this.options.appName} account. If it was you, open this link within 30 ` +
          `minutes:\n\n${this.link('reset-password', token)}\n\nIf it was not you, ignore this email: your password stays as it is.`,
      });
      await this.audit.append(manager, {
        action: 'password_reset_requested',
        outcome: 'success',
        actorId: null,
        targetType: 'user',
        targetId: user.id,
        ...origin,
      });
    });
    this.outbox.deliverSoon();
  }

  /** Spends the token, sets the password, ends every session. */
  async resetPassword(token: string, newPassword: string, origin: RequestOrigin): Promise<void> {
    const invalid = () => {
      this.failures.rejected('reset_link', 'bad_reset_token', origin.ipAddress);
      return new AppError('BAD_USER_INPUT', 'This reset link is invalid or has expired: request a new one.');
    };
    const userId = await this.accountTokens.peek(this.dataSource.manager, token, 'password_reset');
    const user = userId ? await this.dataSource.getRepository(User).findOneBy({ id: userId }) : null;
    if (!user) throw invalid();
    this.checkPassword(newPassword, user.email);
    const passwordHash = await this.hasher.hash(newPassword);
    await this.dataSource.transaction(async (manager) => {
      if ((await this.accountTokens.consume(manager, token, 'password_reset')) !== user.id) throw invalid();
      // Proving control of the mailbox also verifies it.
      await manager.update(User, { id: user.id }, { passwordHash, emailVerifiedAt: user.emailVerifiedAt ?? this.clock.now() });
      await this.sessions.accountChanged(manager, user.id);
      await this.accountTokens.revokeAll(manager, user.id, 'password_reset');
      await this.secondFactor.endChallenges(manager, user.id);
      const ended = await this.sessions.endAllFor(manager, user.id, 'password_reset');
      await this.audit.append(manager, {
        action: 'password_reset',
        outcome: 'success',
        actorId: user.id,
        targetType: 'user',
        targetId: user.id,
        metadata: { endedSessions: ended },
        ...origin,
      });
    });
    // The mailbox owner proved themselves: earlier failed guesses no longer hold them back.
    await this.throttle.clear(user.emailIndex);
  }

  async requestEmailVerification(userId: string): Promise<void> {
    const user = await this.dataSource.getRepository(User).findOneByOrFail({ id: userId });
    if (user.emailVerified) return;
    await this.dataSource.transaction(async (manager) => {
      if (
        await this.accountTokens.issuedSince(manager, user.id, 'email_verification', new Date(this.clock.now().getTime() - RESEND_AFTER_MS))
      )
        return;
      await this.queueVerification(manager, user);
    });
    this.outbox.deliverSoon();
  }

  async verifyEmail(token: string, origin: RequestOrigin): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const userId = await this.accountTokens.consume(manager, token, 'email_verification');
      if (!userId) {
        this.failures.rejected('verification_link', 'bad_verification_token', origin.ipAddress);
        throw new AppError('BAD_USER_INPUT', 'This verification link is invalid or has expired: request a new one.');
      }
      await manager.update(User, { id: userId }, { emailVerifiedAt: this.clock.now() });
      await this.sessions.accountChanged(manager, userId);
      await this.audit.append(manager, {
        action: 'email_verified',
        outcome: 'success',
        actorId: userId,
        targetType: 'user',
        targetId: userId,
        ...origin,
      });
    });
  }

  /**
   * Deletes the account and everything that cascades from it (sessions, tokens, roles). The audit
   * trail keeps the event under the user's id, which no longer leads to any personal data.
   */
  async deleteAccount(viewer: Viewer, password: string, origin: RequestOrigin): Promise<void> {
    await this.secondFactor.requireStepUp(viewer);
    const user = await this.provePassword(viewer, password, origin);
    await this.dataSource.transaction(async (manager) => {
      await keepAnActiveAdmin(manager, user.id);
      await this.sessions.endAllFor(manager, user.id, 'account_deleted');
      await manager.delete(User, { id: user.id });
      // No IP or user agent: the row outlives the account and must not describe its person.
      await this.audit.append(manager, {
        action: 'account_deleted',
        outcome: 'success',
        actorId: user.id,
        targetType: 'user',
        targetId: user.id,
        requestId: origin.requestId,
      });
    });
  }

  /** Creates an account without a session (the `bastion admin create` path). */
  async createAccount(email: string, password: string, roles: readonly string[], origin: RequestOrigin): Promise<User> {
    const address = this.checkEmail(email);
    this.checkPassword(password, address);
    const passwordHash = await this.hasher.hash(password);
    return conflictOnDuplicate(
      () =>
        this.dataSource.transaction(async (manager) => {
          const user = await this.createUser(manager, address, passwordHash, ['user', ...roles]);
          await this.audit.append(manager, {
            action: 'user_created',
            outcome: 'success',
            actorId: null,
            targetType: 'user',
            targetId: user.id,
            metadata: { roles: [...roles] },
            ...origin,
          });
          return user;
        }),
      'An account with this email address already exists.',
    );
  }

  /** Re-proves the signed-in user with their password, throttled like a sign-in. */
  async provePassword(viewer: Viewer, password: string, origin: RequestOrigin): Promise<User> {
    if (!viewer.userId) throw new AppError('UNAUTHENTICATED', 'Sign in to do this.');
    const user = await this.dataSource.getRepository(User).findOneByOrFail({ id: viewer.userId });
    const attempt = await this.throttle.reserve(user.emailIndex, origin.ipAddress);
    if (!(await this.hasher.verify(user.passwordHash, password)).valid) {
      await this.dataSource.transaction((manager) =>
        this.audit.append(manager, {
          action: 'password_check_failed',
          outcome: 'failure',
          actorId: user.id,
          targetType: 'user',
          targetId: user.id,
          ...origin,
        }),
      );
      throw new AppError('INVALID_CREDENTIALS', 'The password is wrong.');
    }
    await attempt.succeeded();
    return user;
  }

  private async createUser(manager: EntityManager, email: string, passwordHash: string, roles: readonly string[]): Promise<User> {
    // The UNIQUE index compares indexes under one key; during a blind-index key rotation an
    // account not yet rewritten carries the old one, so ask under both.
    const indexes = blindIndexesOf(User, 'email', email);
    if (indexes.length > 1 && (await manager.existsBy(User, { emailIndex: In(indexes.slice(1)) })))
      throw new DuplicateValueError('users.email_index (under the blind-index key being replaced)');
    const user = await manager.save(Object.assign(new User(), { email, passwordHash, status: 'active', emailVerifiedAt: null }));
    await manager.insert(
      UserRole,
      [...new Set(roles)].map((roleName) => ({ userId: user.id, roleName })),
    );
    return user;
  }

  private async queueVerification(manager: EntityManager, user: User): Promise<void> {
    const token = await this.accountTokens.issue(manager, user.id, 'email_verification');
    await this.outbox.enqueue(manager, {
      userId: user.id,
      to: user.email,
      subject: `Confirm your email address for ${this.options.appName}`,
      text: `Open this link within 24 hours to confirm your email address:\n\n${this.link('verify-email', token)}`,
    });
  }

  /**
   * The link in an email. To a web page (http/https: Bastion's own account pages, or the app's
   * universal link) the token travels in the fragment, which browsers never send to a server, so
   * no access log, proxy or Referer carries it. To an app's own scheme (myapp://auth) it stays in
   * the query, as apps read it.
   */
  private link(action: string, token: string): string {
    const url = new URL(`${this.options.publicUrl}/${action}`);
    const params = new URLSearchParams({ token });
    if (url.protocol === 'http:' || url.protocol === 'https:') url.hash = params.toString();
    else url.search = params.toString();
    return url.toString();
  }

  private checkEmail(email: string): string {
    const address = email.trim().normalize('NFKC');
    if (address.length > 254 || !EMAIL_SHAPE.test(address) || INVISIBLE_OR_BROKEN.test(address))
      throw new AppError('BAD_USER_INPUT', 'Enter a valid email address.', { details: { field: 'email' } });
    return address;
  }

  private checkPassword(password: string, email: string): void {
    const problem = this.policy.check(password, [email]);
    if (problem) throw new AppError('BAD_USER_INPUT', problem, { details: { field: 'password' } });
  }
}
