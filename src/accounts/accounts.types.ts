import { IsString, MaxLength, MinLength } from 'class-validator';
import { Field, InputType, ObjectType, createUnionType } from 'type-graphql';
import { User } from './user.entity';

/** Strings are bounded before any work: a password's hash cost must not be used against us. */
const MAX_EMAIL = 254;
export const MAX_PASSWORD = 4096;
const MAX_TOKEN = 512;

@ObjectType({
  description:
    'A signed-in session\'s tokens. Send the access token as "Authorization: Bearer <accessToken>"; keep the refresh token in the device\'s secure storage.',
})
export class AuthPayload {
  @Field({ description: 'Short-lived JWT (EdDSA) for the Authorization header.' })
  accessToken!: string;

  @Field({ description: 'Opaque, single-use token for refreshSession. Each use returns a new one.' })
  refreshToken!: string;

  @Field({ description: 'When the access token stops working; refresh shortly before.' })
  accessTokenExpiresAt!: Date;

  @Field(() => User, { description: 'The signed-in account.' })
  user!: User;
}

@ObjectType({ description: 'Sign-in needs a second factor: call verifyMfa with this token and a code.' })
export class MfaChallenge {
  @Field({ description: 'Proves the password step; valid only for verifyMfa, briefly.' })
  mfaToken!: string;

  @Field({ description: 'When the challenge expires.' })
  expiresAt!: Date;

  @Field(() => [String], { description: 'Accepted second factors, e.g. "totp", "recovery_code".' })
  methods!: string[];
}

@ObjectType({
  description:
    'Signed in, but this account must add a second factor first: its roles need a session confirmed with one ' +
    '(BASTION_MFA_REQUIRED_FOR) and it has none. Keep the tokens, call enrollTotp, then confirmTotp; the same session ' +
    'then counts as confirmed. Until then only account basics (me, mySessions, signOut) work; the rest answers MFA_REQUIRED.',
})
export class MfaEnrollmentRequired extends AuthPayload {
  @Field(() => [String], { description: 'Factors the account can enrol, e.g. "totp" (enrollTotp).' })
  methods!: string[];
}

// MfaEnrollmentRequired extends AuthPayload: it must be tested first.
const authAnswer = (value: object) => (value instanceof MfaEnrollmentRequired ? MfaEnrollmentRequired : AuthPayload);

export const SignInResult = createUnionType({
  name: 'SignInResult',
  description:
    'Tokens; a second-factor challenge for accounts with two-factor authentication; or tokens of a session that must ' +
    'enrol a second factor first.',
  types: () => [AuthPayload, MfaChallenge, MfaEnrollmentRequired] as const,
  resolveType: (value) => (value instanceof MfaChallenge ? MfaChallenge : authAnswer(value)),
});

export const SignUpResult = createUnionType({
  name: 'SignUpResult',
  description: 'Tokens of the new account, or, where every account needs a second factor, tokens of a session that must enrol one first.',
  types: () => [AuthPayload, MfaEnrollmentRequired] as const,
  resolveType: authAnswer,
});

@InputType({ description: 'A new account.' })
export class SignUpInput {
  @Field({ description: 'Email address; it becomes the sign-in name.' })
  @IsString()
  @MaxLength(MAX_EMAIL)
  email!: string;

  @Field({ description: 'Password: long (15+ characters by default), not common, not containing the email or app name. No other rules.' })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  password!: string;
}

@InputType({ description: 'Email and password.' })
export class SignInInput {
  @Field({ description: 'Email address of the account.' })
  @IsString()
  @MaxLength(MAX_EMAIL)
  email!: string;

  @Field({ description: "The account's password." })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  password!: string;
}

@InputType({ description: 'The refresh token to exchange.' })
export class RefreshSessionInput {
  @Field({ description: 'The latest refresh token of the session.' })
  @IsString()
  @MinLength(1)
  @MaxLength(MAX_TOKEN)
  refreshToken!: string;
}

@InputType({ description: 'Change the password of the signed-in account.' })
export class ChangePasswordInput {
  @Field({ description: 'The password now.' })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  currentPassword!: string;

  @Field({ description: 'The new password (same rules as at sign-up).' })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  newPassword!: string;
}

@InputType({ description: 'Where to send a password reset link.' })
export class RequestPasswordResetInput {
  @Field({ description: 'Email address of the account. The answer is the same whether or not it exists.' })
  @IsString()
  @MaxLength(MAX_EMAIL)
  email!: string;
}

@InputType({ description: "A reset link's token and the new password." })
export class ResetPasswordInput {
  @Field({ description: 'The token from the emailed link.' })
  @IsString()
  @MaxLength(MAX_TOKEN)
  token!: string;

  @Field({ description: 'The new password (same rules as at sign-up).' })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  newPassword!: string;
}

@InputType({ description: "A verification link's token." })
export class VerifyEmailInput {
  @Field({ description: 'The token from the emailed link.' })
  @IsString()
  @MaxLength(MAX_TOKEN)
  token!: string;
}

@InputType({ description: 'Confirms the deletion of the signed-in account.' })
export class DeleteAccountInput {
  @Field({ description: "The account's password." })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  password!: string;
}
