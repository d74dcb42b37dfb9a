import { generate, generateSecret, verify } from 'otplib';
import QRCode from 'qrcode';

/**
 * TOTP (RFC 6238) on otplib's functional API. Every option is passed per call: otplib 13 has no
 * global options, and this module never sets any. Time always comes from the caller's clock.
 */

export type TotpAlgorithm = 'sha1' | 'sha256' | 'sha512';
export type TotpDigits = 6 | 8;

export type TotpVerification = { valid: true; step: number } | { valid: false };

const PERIOD_SECONDS = 30;

/**
 * RFC 6238 §5.2: at most one step back for transmission delay, none ahead (docs/security.md#mfa-2; the deviation is DEV-3). otplib counts the
 * tolerance in seconds and accepts every step overlapping [now − 30 s, now], which is exactly the
 * current and the previous step; a code from two steps ago never overlaps.
 */
const EPOCH_TOLERANCE: [past: number, future: number] = [PERIOD_SECONDS, 0];

/** RFC 4226 §4: 160 bits recommended (docs/security.md#mfa-1). */
const SECRET_BYTES = 20;

const CODE_PATTERNS: Record<TotpDigits, RegExp> = { 6: /^[0-9]{6}$/, 8: /^[0-9]{8}$/ };

/** A fresh 160-bit seed from a CSPRNG, as unpadded base32 (32 characters). */
export function newTotpSecret(): string {
  return generateSecret({ length: SECRET_BYTES });
}

/**
 * Checks a code typed by the user. Accepts the current and the previous time step, and rejects any
 * step ≤ `lastUsedStep` so that a code works once (docs/security.md#mfa-3): the caller stores the returned `step` with
 * `UPDATE … WHERE last_used_step < $step`. A malformed code is simply invalid; a corrupt secret or
 * `lastUsedStep` throws.
 */
export async function verifyTotp(options: {
  secret: string;
  code: string;
  now: Date;
  lastUsedStep: number | null;
  algorithm?: TotpAlgorithm;
  digits?: TotpDigits;
}): Promise<TotpVerification> {
  const { secret, code, now, lastUsedStep, algorithm = 'sha1', digits = 6 } = options;
  // otplib throws on a token of the wrong length or with non-digits; a user's typo is not an error.
  if (typeof code !== 'string' || !CODE_PATTERNS[digits].test(code)) return { valid: false };
  if (lastUsedStep !== null && !(Number.isSafeInteger(lastUsedStep) && lastUsedStep >= 0)) {
    throw new RangeError('lastUsedStep must be null or a non-negative integer');
  }
  const epoch = epochSeconds(now);
  // otplib throws when afterTimeStep lies past the window, as it does after an instance whose clock
  // runs ahead recorded a step. Every step in the window is then spent already.
  if (lastUsedStep !== null && lastUsedStep >= Math.floor(epoch / PERIOD_SECONDS)) return { valid: false };

  const result = await verify({
    secret,
    token: code,
    algorithm,
    digits,
    period: PERIOD_SECONDS,
    epoch,
    epochTolerance: EPOCH_TOLERANCE,
    afterTimeStep: lastUsedStep ?? undefined,
  });
  // docs/security.md#mfa-4: the result is an object, truthy even when the code is wrong. otplib types it as the
  // TOTP-or-HOTP union; only the TOTP variant carries timeStep.
  if (result.valid !== true || !('timeStep' in result)) return { valid: false };
  return { valid: true, step: result.timeStep };
}

/** The code for `now`. For tests, the known-answer test and tooling; sign-in only ever verifies. */
export function totpCode(options: { secret: string; now: Date; algorithm?: TotpAlgorithm; digits?: TotpDigits }): Promise<string> {
  const { secret, now, algorithm = 'sha1', digits = 6 } = options;
  return generate({ secret, algorithm, digits, period: PERIOD_SECONDS, epoch: epochSeconds(now) });
}

/**
 * The Key URI Format authenticator apps scan. Built here rather than with otplib's generateURI,
 * which leaves a colon inside the issuer or account name unencoded, so an app would split the label
 * in the wrong place. The issuer parameter is the authoritative copy for apps that read both.
 */
export function otpauthUri(options: { issuer: string; accountName: string; secret: string }): string {
  const { issuer, accountName, secret } = options;
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(accountName)}`;
  const parameters = [
    `secret=${encodeURIComponent(secret)}`,
    `issuer=${encodeURIComponent(issuer)}`,
    'algorithm=SHA1',
    'digits=6',
    `period=${PERIOD_SECONDS}`,
  ];
  return `otpauth://totp/${label}?${parameters.join('&')}`;
}

/** The otpauth URI as an SVG QR code, for apps to show at enrolment. */
export function qrCodeSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg' });
}

function epochSeconds(now: Date): number {
  const milliseconds = now.getTime();
  if (!Number.isFinite(milliseconds) || milliseconds < 0) throw new RangeError('now must be a valid date after 1970');
  return Math.floor(milliseconds / 1000);
}
