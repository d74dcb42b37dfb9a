import { IsOptional, IsString, MaxLength } from 'class-validator';
import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { MAX_PASSWORD } from '../accounts/accounts.types';

@ObjectType({ description: 'A new authenticator to add: show the QR code (or the secret), then confirm with a code.' })
export class TotpEnrollment {
  @Field(() => ID, { description: 'The pending factor.' })
  factorId!: string;

  @Field({ description: 'Base32 TOTP secret, for manual entry. Shown once; never logged or stored on the device.' })
  secret!: string;

  @Field({ description: 'otpauth:// URI for authenticator apps (issuer = the app name, label = the email).' })
  otpauthUri!: string;

  @Field({ description: 'The URI as an SVG QR code, ready to display.' })
  qrCodeSvg!: string;
}

@ObjectType({ description: 'Ten single-use recovery codes. Shown once: ask the user to store them safely.' })
export class RecoveryCodes {
  @Field(() => [String], { description: 'Codes like "abcde-fghjk-mnpqr-stvwx"; each works once, in place of a TOTP code.' })
  codes!: string[];
}

const MAX_CODE = 64;
const MAX_TOKEN = 512;

@InputType({ description: 'The first code from the new authenticator, and proof that the account owner is asking.' })
export class ConfirmTotpInput {
  @Field({ description: 'The 6-digit code the new authenticator shows now.' })
  @IsString()
  @MaxLength(MAX_CODE)
  code!: string;

  @Field({ description: 'The account password: turning two-factor authentication on, or replacing the authenticator.' })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  currentPassword!: string;

  @Field(() => String, {
    nullable: true,
    description: 'A code from the authenticator being replaced (or a recovery code). Required when replacing one.',
  })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_CODE)
  currentCode?: string;
}

@InputType({ description: 'The second step of a sign-in.' })
export class VerifyMfaInput {
  @Field({ description: 'The mfaToken from the MfaChallenge.' })
  @IsString()
  @MaxLength(MAX_TOKEN)
  mfaToken!: string;

  @Field({ description: 'A 6-digit TOTP code, or an unused recovery code.' })
  @IsString()
  @MaxLength(MAX_CODE)
  code!: string;
}

@InputType({ description: 'Turning two-factor authentication off needs the password and a code.' })
export class DisableTotpInput {
  @Field({ description: 'A 6-digit TOTP code, or an unused recovery code.' })
  @IsString()
  @MaxLength(MAX_CODE)
  code!: string;

  @Field({ description: 'The account password (a wrong one: INVALID_CREDENTIALS, counted like a failed sign-in).' })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  currentPassword!: string;
}

@InputType({ description: 'New recovery codes need the password and a TOTP code.' })
export class RegenerateRecoveryCodesInput {
  @Field({ description: 'The 6-digit code the authenticator shows now.' })
  @IsString()
  @MaxLength(MAX_CODE)
  code!: string;

  @Field({ description: 'The account password (a wrong one: INVALID_CREDENTIALS, counted like a failed sign-in).' })
  @IsString()
  @MaxLength(MAX_PASSWORD)
  currentPassword!: string;
}
