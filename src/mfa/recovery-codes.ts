import { randomBytes } from 'node:crypto';
import type { PasswordHasher } from '../accounts/password-hasher';

/**
 * Recovery codes (docs/security.md#mfa-7, ASVS 6.5.2–6.5.4), shown as `xxxxx-xxxxx-xxxxx-xxxxx` in Crockford's
 * base32. The first group is a public lookup id stored in clear, so a typed code finds its row
 * without hashing every code of the account; the other 15 characters (75 bits) are the secret,
 * stored only as an argon2id hash because they are short of the 112 bits ASVS 6.5.2 asks of a
 * code stored with a fast hash.
 */

/** Crockford's base32 without i, l, o and u, so a code read aloud or copied by hand survives. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const LOOKUP_LENGTH = 5;
const SECRET_LENGTH = 15;
const CODE_LENGTH = LOOKUP_LENGTH + SECRET_LENGTH;
const GROUP_LENGTH = 5;
/** Generous room for dashes and spaces; anything longer is not a code, and is not worth scanning. */
const MAX_INPUT_LENGTH = 64;

/** Crockford decoding: the look-alikes a person may type for 1 and 0. */
const LOOK_ALIKES: Readonly<Record<string, string>> = { i: '1', l: '1', o: '0' };
const CANONICAL_CODE = new RegExp(`^[${ALPHABET}]{${CODE_LENGTH}}$`);

export interface StoredRecoveryCode {
  lookup: string;
  codeHash: string;
}

export interface ParsedRecoveryCode {
  lookup: string;
  secret: string;
}

/**
 * `codes` are shown to the user once and never stored; `stored` goes to the database. Lookups are
 * unique within the set, so a typed code matches at most one of its rows.
 */
export async function generateRecoveryCodes(
  hasher: PasswordHasher,
  count = 10,
): Promise<{ codes: string[]; stored: StoredRecoveryCode[] }> {
  if (!Number.isInteger(count) || count < 1) throw new RangeError('count must be a positive integer');
  const codes: string[] = [];
  const stored: StoredRecoveryCode[] = [];
  const lookups = new Set<string>();
  while (codes.length < count) {
    const canonical = randomCode();
    const lookup = canonical.slice(0, LOOKUP_LENGTH);
    if (lookups.has(lookup)) continue;
    lookups.add(lookup);
    // One hash at a time: regenerating codes holds a single pool slot and cannot crowd sign-ins out.
    const codeHash = await hasher.hash(canonical.slice(LOOKUP_LENGTH));
    codes.push(format(canonical));
    stored.push({ lookup, codeHash });
  }
  return { codes, stored };
}

/**
 * Reads a code as a person types it: any case, with or without dashes and spaces, with i/l for 1
 * and o for 0. Anything else is null.
 */
export function parseRecoveryCode(input: string): ParsedRecoveryCode | null {
  if (typeof input !== 'string' || input.length > MAX_INPUT_LENGTH) return null;
  const canonical = input
    .replace(/[\s-]/g, '')
    .toLowerCase()
    .replace(/[ilo]/g, (letter) => LOOK_ALIKES[letter] ?? letter);
  if (!CANONICAL_CODE.test(canonical)) return null;
  return { lookup: canonical.slice(0, LOOKUP_LENGTH), secret: canonical.slice(LOOKUP_LENGTH) };
}

/** The secret part against the row found by its lookup. Never throws for a corrupt stored hash. */
export async function matchesRecoveryCode(hasher: PasswordHasher, stored: { codeHash: string }, secret: string): Promise<boolean> {
  const { valid } = await hasher.verify(stored.codeHash, secret);
  return valid;
}

function randomCode(): string {
  // 256 is a multiple of 32, so the low five bits of a random byte are uniform over the alphabet.
  const bytes = randomBytes(CODE_LENGTH);
  let code = '';
  for (const byte of bytes) code += ALPHABET[byte & 0x1f];
  return code;
}

function format(canonical: string): string {
  const groups: string[] = [];
  for (let start = 0; start < canonical.length; start += GROUP_LENGTH) groups.push(canonical.slice(start, start + GROUP_LENGTH));
  return groups.join('-');
}
