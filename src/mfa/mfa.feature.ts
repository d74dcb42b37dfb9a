import { LoginThrottler, MFA_LADDERS } from '../accounts/login-throttle';
import type { SecondFactor } from '../accounts/second-factor';
import { defineFeature } from '../feature';
import { MfaChallengeRecord } from './mfa-challenge.entity';
import { MfaFactor } from './mfa-factor.entity';
import { MfaResolver, UserMfaResolver } from './mfa.resolver';
import { mfaRules } from './mfa.rules';
import { MfaService } from './mfa.service';
import { RecoveryCode } from './recovery-code.entity';

/** The services this feature provides. */
export interface MfaServices {
  /** TOTP factors, recovery codes and sign-in challenges. */
  readonly mfa: MfaService;
  /** What accounts asks when a password is proven (accounts/second-factor.ts): this feature answers. */
  readonly secondFactor: SecondFactor;
}

declare module '../feature' {
  interface Services extends MfaServices {}
}

/** The second factor: TOTP enrollment, recovery codes, and the challenge a password sign-in gets. */
export const mfaFeature = defineFeature<keyof MfaServices>()({
  name: 'mfa',
  entities: [MfaFactor, MfaChallengeRecord, RecoveryCode],
  needs: ['sessions', 'passwordHasher', 'audit', 'outbox', 'accounts'],
  provides: {
    mfa: ({ dataSource, clock, logger, passwordHasher, sessions, audit, outbox, config }) =>
      new MfaService(
        dataSource,
        clock,
        passwordHasher,
        new LoginThrottler(dataSource, clock, MFA_LADDERS, logger),
        sessions,
        audit,
        outbox,
        {
          appName: config.appName,
        },
      ),
    secondFactor: ({ mfa }) => mfa,
  },
  maintenance: ({ mfa }) => ({ mfaChallenges: (manager) => mfa.pruneChallenges(manager) }),
  resolvers: [MfaResolver, UserMfaResolver],
  rules: mfaRules,
  wire: ({ mfa, accounts }) => [new MfaResolver(mfa, accounts), new UserMfaResolver(mfa)],
});
