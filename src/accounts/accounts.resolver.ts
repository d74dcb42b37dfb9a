import { originOf } from '../audit/actor';
import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import { AppError } from '../errors';
import type { AccountsService, PasswordSignIn, SignedIn } from './accounts.service';
import {
  AuthPayload,
  ChangePasswordInput,
  MfaChallenge,
  MfaEnrollmentRequired,
  DeleteAccountInput,
  RefreshSessionInput,
  RequestPasswordResetInput,
  ResetPasswordInput,
  SignInInput,
  SignInResult,
  SignUpInput,
  SignUpResult,
  VerifyEmailInput,
} from './accounts.types';
import type { SessionsService } from './sessions.service';
import { Session } from './session.entity';
import { User } from './user.entity';

/** The AuthPayload of a sign-in; its User may be read in this same response (see isOwnAccount). */
export function payload<T extends AuthPayload = AuthPayload>(context: Context, signedIn: SignedIn, answer: T = new AuthPayload() as T): T {
  context.signedInDuringRequest.add(signedIn.user.id);
  return Object.assign(answer, {
    accessToken: signedIn.accessToken,
    refreshToken: signedIn.refreshToken,
    accessTokenExpiresAt: signedIn.accessTokenExpiresAt,
    user: signedIn.user,
  });
}

function requireUser(context: Context): string {
  if (!context.viewer.userId) throw new AppError('UNAUTHENTICATED', 'Sign in to do this.');
  return context.viewer.userId;
}

@Resolver()
export class AccountsResolver {
  constructor(
    private readonly accounts: AccountsService,
    private readonly sessions: SessionsService,
  ) {}

  @Query(() => User, { nullable: true, description: 'The signed-in account; null when not signed in.' })
  me(@Ctx() context: Context): Promise<User | null> {
    return this.accounts.me(context.viewer);
  }

  @Query(() => [Session], { description: "The signed-in account's live sessions (devices), most recently used first." })
  mySessions(@Ctx() context: Context): Promise<Session[]> {
    return this.sessions.list(requireUser(context));
  }

  @Mutation(() => SignUpResult, {
    description:
      'Creates an account and signs it in: AuthPayload, or MfaEnrollmentRequired where every account needs a second factor ' +
      '(enrol it with enrollTotp and confirmTotp on that session). A verification email is sent.',
  })
  async signUp(@Arg('input') input: SignUpInput, @Ctx() context: Context): Promise<typeof SignUpResult> {
    return this.answer(context, await this.accounts.signUp(input.email, input.password, originOf(context)));
  }

  @Mutation(() => SignInResult, {
    description:
      'Signs in with email and password: AuthPayload; an MfaChallenge (complete it with verifyMfa) when the account has ' +
      'two-factor authentication; or MfaEnrollmentRequired when its roles need a second factor it has not enrolled yet. ' +
      'Wrong email and wrong password give the same INVALID_CREDENTIALS.',
  })
  async signIn(@Arg('input') input: SignInInput, @Ctx() context: Context): Promise<typeof SignInResult> {
    // A valid bearer token sent along is this device's previous session: the new one replaces it (ASVS 7.2.4).
    const result = await this.accounts.signIn(input.email, input.password, originOf(context), context.viewer.sessionId);
    if ('mfaToken' in result) return Object.assign(new MfaChallenge(), result);
    return this.answer(context, result);
  }

  /** Tokens, told apart by what the session may do: everything its roles allow, or first enrol a second factor. */
  private answer(context: Context, signedIn: PasswordSignIn): AuthPayload | MfaEnrollmentRequired {
    if (!signedIn.mfaEnrollment) return payload(context, signedIn);
    return payload(context, signedIn, Object.assign(new MfaEnrollmentRequired(), { methods: [...signedIn.mfaEnrollment.methods] }));
  }

  @Mutation(() => AuthPayload, {
    description:
      'Exchanges the refresh token for a new pair. A used token presented again ends the session (TOKEN_REUSED), except a retry within a few seconds.',
  })
  async refreshSession(@Arg('input') input: RefreshSessionInput, @Ctx() context: Context): Promise<AuthPayload> {
    const issued = await this.sessions.refresh(input.refreshToken, originOf(context));
    return payload(context, await this.accounts.signedInAs(issued));
  }

  @Mutation(() => Boolean, { description: 'Ends this session at once; its tokens stop working.' })
  async signOut(@Ctx() context: Context): Promise<boolean> {
    requireUser(context);
    await this.sessions.endOwn(context.viewer, [context.viewer.sessionId!], 'sign_out', originOf(context));
    return true;
  }

  @Mutation(() => Boolean, { description: 'Ends every session of this account, on every device.' })
  async signOutEverywhere(@Ctx() context: Context): Promise<boolean> {
    requireUser(context);
    await this.sessions.endOwn(context.viewer, 'all', 'sign_out_everywhere', originOf(context));
    return true;
  }

  @Mutation(() => Boolean, { description: "Ends one of this account's sessions (see mySessions). NOT_FOUND for any other id." })
  async revokeSession(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<boolean> {
    requireUser(context);
    await this.sessions.endOwn(context.viewer, [id], 'revoked', originOf(context));
    return true;
  }

  @Mutation(() => Boolean, { description: 'Changes the password; this session stays, every other one ends.' })
  async changePassword(@Arg('input') input: ChangePasswordInput, @Ctx() context: Context): Promise<boolean> {
    await this.accounts.changePassword(context.viewer, input.currentPassword, input.newPassword, originOf(context));
    return true;
  }

  @Mutation(() => Boolean, { description: 'Emails a reset link if the account exists. Always true, so it never tells whether it does.' })
  requestPasswordReset(@Arg('input') input: RequestPasswordResetInput, @Ctx() context: Context): boolean {
    this.accounts.requestPasswordReset(input.email, originOf(context));
    return true;
  }

  @Mutation(() => Boolean, { description: "Sets a new password from a reset link's token and ends every session." })
  async resetPassword(@Arg('input') input: ResetPasswordInput, @Ctx() context: Context): Promise<boolean> {
    await this.accounts.resetPassword(input.token, input.newPassword, originOf(context));
    return true;
  }

  @Mutation(() => Boolean, { description: 'Emails a new verification link (at most one a minute).' })
  async requestEmailVerification(@Ctx() context: Context): Promise<boolean> {
    await this.accounts.requestEmailVerification(requireUser(context));
    return true;
  }

  @Mutation(() => Boolean, { description: "Confirms the email address with a verification link's token." })
  async verifyEmail(@Arg('input') input: VerifyEmailInput, @Ctx() context: Context): Promise<boolean> {
    await this.accounts.verifyEmail(input.token, originOf(context));
    return true;
  }

  @Mutation(() => Boolean, { description: 'Deletes the account and its data after checking the password. Cannot be undone.' })
  async deleteAccount(@Arg('input') input: DeleteAccountInput, @Ctx() context: Context): Promise<boolean> {
    await this.accounts.deleteAccount(context.viewer, input.password, originOf(context));
    return true;
  }
}

@Resolver(() => User)
export class UserResolver {
  constructor(private readonly sessions: SessionsService) {}

  @FieldResolver(() => [String], { description: 'Role names; every account has "user".' })
  async roles(@Root() user: User, @Ctx() context: Context): Promise<string[]> {
    // The viewer's own roles were just read with the session check: no second query.
    if (user.id === context.viewer.userId) return [...context.viewer.roles].sort();
    return context.loaders.get('User.roles', (ids: readonly string[]) => this.sessions.rolesOfUsers(ids)).load(user.id);
  }
}

@Resolver(() => Session)
export class SessionResolver {
  @FieldResolver(() => Boolean, { description: 'True for the session making this request.' })
  current(@Root() session: Session, @Ctx() context: Context): boolean {
    return session.id === context.viewer.sessionId;
  }
}
