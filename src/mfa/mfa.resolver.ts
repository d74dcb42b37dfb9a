import { Arg, Ctx, FieldResolver, Mutation, Resolver, Root } from 'type-graphql';
import { payload } from '../accounts/accounts.resolver';
import { originOf } from '../audit/actor';
import { AuthPayload } from '../accounts/accounts.types';
import type { AccountsService } from '../accounts/accounts.service';
import { User } from '../accounts/user.entity';
import type { Context } from '../context';
import type { Viewer } from '../accounts/viewer';
import { AppError } from '../errors';
import type { MfaService } from './mfa.service';
import {
  ConfirmTotpInput,
  DisableTotpInput,
  RecoveryCodes,
  RegenerateRecoveryCodesInput,
  TotpEnrollment,
  VerifyMfaInput,
} from './mfa.types';

function signedIn(context: Context): Context['viewer'] {
  if (!context.viewer.userId || !context.viewer.sessionId) throw new AppError('UNAUTHENTICATED', 'Sign in to do this.');
  return context.viewer;
}

@Resolver()
export class MfaResolver {
  constructor(
    private readonly mfa: MfaService,
    private readonly accounts: AccountsService,
  ) {}

  /**
   * Changing the second factor needs the password as well as the aal2 session and a code: a thief
   * holding an unlocked phone has those two, not the password (ASVS 7.5.1). `before` (the step-up)
   * comes first, so an aal1 session cannot use these mutations to try passwords.
   */
  private async proveOwner(context: Context, currentPassword: string, before: (viewer: Viewer) => Promise<void>): Promise<Viewer> {
    const viewer = signedIn(context);
    await before(viewer);
    await this.accounts.provePassword(viewer, currentPassword, originOf(context));
    return viewer;
  }

  @Mutation(() => TotpEnrollment, {
    description: 'Starts adding an authenticator app. If one is already on, needs an aal2 session (MFA_REQUIRED otherwise).',
  })
  async enrollTotp(@Ctx() context: Context): Promise<TotpEnrollment> {
    const viewer = signedIn(context);
    const user = await this.accounts.me(viewer);
    if (!user) throw new AppError('UNAUTHENTICATED', 'Sign in to do this.');
    return Object.assign(new TotpEnrollment(), await this.mfa.enroll(viewer, user.email));
  }

  @Mutation(() => RecoveryCodes, {
    description:
      'Confirms the new authenticator with its first code and the password (plus, when replacing one, a code of the old authenticator): ' +
      'two-factor authentication is on, this session becomes aal2, other sessions end, the owner is emailed. Returns 10 recovery codes, shown once.',
  })
  async confirmTotp(@Arg('input') input: ConfirmTotpInput, @Ctx() context: Context): Promise<RecoveryCodes> {
    // The first time, a stolen token alone must not lock the owner out behind an attacker's authenticator.
    const viewer = await this.proveOwner(context, input.currentPassword, (caller) => this.mfa.requireStepUp(caller));
    return Object.assign(new RecoveryCodes(), {
      codes: await this.mfa.confirm(viewer, input.code, input.currentCode ?? undefined, originOf(context)),
    });
  }

  @Mutation(() => AuthPayload, {
    description:
      'Completes a sign-in that returned an MfaChallenge, with a TOTP code or a recovery code. ' +
      'Wrong code: INVALID_MFA_CODE; five wrong codes or an expired challenge: UNAUTHENTICATED.',
  })
  async verifyMfa(@Arg('input') input: VerifyMfaInput, @Ctx() context: Context): Promise<AuthPayload> {
    const tokens = await this.mfa.verify(input.mfaToken, input.code, originOf(context), context.viewer.sessionId);
    return payload(context, await this.accounts.signedInAs(tokens));
  }

  @Mutation(() => Boolean, {
    description: 'Turns two-factor authentication off. Needs an aal2 session, the password and a valid code; other sessions end.',
  })
  async disableTotp(@Arg('input') input: DisableTotpInput, @Ctx() context: Context): Promise<boolean> {
    const viewer = await this.proveOwner(context, input.currentPassword, (caller) => this.mfa.requireFactorOn(caller));
    await this.mfa.disable(viewer, input.code, originOf(context));
    return true;
  }

  @Mutation(() => RecoveryCodes, {
    description: 'Replaces the recovery codes (the old ones stop working). Needs an aal2 session, the password and a TOTP code.',
  })
  async regenerateRecoveryCodes(@Arg('input') input: RegenerateRecoveryCodesInput, @Ctx() context: Context): Promise<RecoveryCodes> {
    const viewer = await this.proveOwner(context, input.currentPassword, (caller) => this.mfa.requireFactorOn(caller));
    return Object.assign(new RecoveryCodes(), { codes: await this.mfa.regenerateRecoveryCodes(viewer, input.code, originOf(context)) });
  }
}

/** The second factor's field on the account. */
@Resolver(() => User)
export class UserMfaResolver {
  constructor(private readonly mfa: MfaService) {}

  @FieldResolver(() => Boolean, {
    description: 'Whether the account has a confirmed second factor (TOTP): sign-in then returns an MfaChallenge.',
  })
  mfaEnabled(@Root() user: User, @Ctx() context: Context): Promise<boolean> {
    return context.loaders
      .get('User.mfaEnabled', async (ids: readonly string[]) => {
        const enabled = await this.mfa.usersWithVerifiedFactor(ids);
        return ids.map((id) => enabled.has(id));
      })
      .load(user.id);
  }
}
