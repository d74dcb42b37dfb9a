import type { EntityManager } from 'typeorm';
import type { Viewer } from './viewer';

/** What a password sign-in returns for an account with a second factor: a challenge, not a session. */
export interface Challenge {
  readonly mfaToken: string;
  readonly expiresAt: Date;
  readonly methods: string[];
}

/**
 * What signing in and changing credentials need from the second factor. The mfa feature provides
 * it (service `secondFactor`); accounts only asks, so the two folders do not import each other's
 * services.
 */
export interface SecondFactor {
  /** Serialises factor changes and sign-ins of one account (a sign-in must see a factor that was just turned on). */
  lockAccount(manager: EntityManager, userId: string): Promise<void>;
  hasVerifiedFactor(userId: string, manager?: EntityManager): Promise<boolean>;
  /** The password step succeeded for an account with a factor: a short-lived challenge, not a session. */
  createChallenge(manager: EntityManager, userId: string): Promise<Challenge>;
  /** MFA_REQUIRED unless the viewer's session is aal2, for accounts that have a factor. */
  requireStepUp(viewer: Viewer): Promise<void>;
  /** Ends a user's open sign-in challenges (a new password or factor makes them stale). */
  endChallenges(manager: EntityManager, userId: string): Promise<void>;
  /** The factors an account can enrol (MfaEnrollmentRequired.methods), e.g. "totp". */
  readonly enrollableMethods: readonly string[];
}
