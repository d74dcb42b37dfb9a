import { ZxcvbnFactory, type ZxcvbnResult } from '@zxcvbn-ts/core';
import type * as ZxcvbnCommon from '@zxcvbn-ts/language-common';
import type * as ZxcvbnEnglish from '@zxcvbn-ts/language-en';
import type { BinaryFuseFilter } from './binary-fuse-filter';
import { breachedPasswordFilter, isBreachedPassword } from './breached-passwords';
import { codePointCount } from './code-points';

/** Caps the argon2 input (ASVS 6.2.9: long passwords allowed, but not a hashing DoS). */
const MAX_BYTES = 1024;
/** zxcvbn's 3 is "safely unguessable: moderate protection from offline slow-hash scenario". */
const MIN_SCORE = 3;
/** Shorter context words ("app", "co") would turn up inside too many good passwords. */
const MIN_CONTEXT_WORD_LENGTH = 4;
/**
 * zxcvbn runs on the event loop and its cost climbs steeply with length: with its defaults
 * (256 characters, 100 l33t substitutions) one 1 KB random password took ~2–5 s here; with
 * 64 characters it still took ~0.1–0.3 s, too long on the event loop for an anonymous sign-up.
 * Past 32 characters length is strength enough, and the context-word rule still reads the whole
 * password.
 */
const ZXCVBN_MAX_LENGTH = 32;
const ZXCVBN_MAX_L33T_SUBSTITUTIONS = 20;
/** NIST SP 800-63B-4 §3.1.1.2: verifiers SHALL require at least 8 characters. */
const LOWEST_MIN_LENGTH = 8;

const CONTROL_CHARACTER_REASON = 'The password contains a control character (a line break, tab or similar); leave it out.';

const CONTEXT_WORD_REASON = "Don't use your email address or the app's name in your password.";

const BREACHED_REASON = 'This password appears in lists of breached passwords; choose another.';

/**
 * New-password rules of ASVS 5.0 6.2.x and NIST SP 800-63B-4: a length floor counted in code
 * points, a byte ceiling, blocklists (breached passwords, common passwords, dictionary words,
 * context words) and deliberately no composition rules. Returns one reason the app can show its
 * user as it is.
 */
export class PasswordPolicy {
  private readonly minLength: number;
  private readonly contextWords: readonly string[];
  private readonly breached: BinaryFuseFilter;
  private readonly zxcvbn: ZxcvbnFactory;

  constructor(options: { minLength: number; contextWords: readonly string[] }) {
    if (!Number.isInteger(options.minLength) || options.minLength < LOWEST_MIN_LENGTH) {
      throw new RangeError(`minLength must be an integer of at least ${LOWEST_MIN_LENGTH}`);
    }
    this.minLength = options.minLength;
    this.contextWords = options.contextWords.map(normalizeWord).filter((word) => word !== '');
    // Read here, when the server builds its services, not at the first sign-up: a missing or damaged file stops the start.
    this.breached = breachedPasswordFilter();
    // Building the ranked dictionaries takes a few hundred milliseconds: once per process.
    // Loaded here, not at import: the dictionaries take ~0.4 s, which CLI commands that never
    // check a password should not pay.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use (see above), so not an import
    const zxcvbnCommon = require('@zxcvbn-ts/language-common') as typeof ZxcvbnCommon;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use (see above), so not an import
    const zxcvbnEnglish = require('@zxcvbn-ts/language-en') as typeof ZxcvbnEnglish;
    this.zxcvbn = new ZxcvbnFactory({
      dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEnglish.dictionary },
      graphs: zxcvbnCommon.adjacencyGraphs,
      maxLength: ZXCVBN_MAX_LENGTH,
      l33tMaxSubstitutions: ZXCVBN_MAX_L33T_SUBSTITUTIONS,
    });
  }

  /**
   * `userWords`: what the user told us about themselves, e.g. the email address and its local
   * part. Returns null when the password is acceptable, else the reason it is not.
   */
  check(password: string, userWords: readonly string[] = []): string | null {
    // A lone surrogate is not a character: UTF-8 encodes every one as U+FFFD, so two different
    // such passwords would hash the same.
    if (/\p{Cs}/u.test(password)) return 'The password contains an invalid character (half of a surrogate pair); type it again.';
    // The same normalisation as the hasher, so the rules judge what is actually stored.
    const normalized = password.normalize('NFKC');
    if (Buffer.byteLength(normalized, 'utf8') > MAX_BYTES) return `Use at most ${MAX_BYTES} bytes.`;
    // NIST counts each code point as one character; String.length would count an emoji as two.
    if (normalized.trim() === '' || codePointCount(normalized) < this.minLength) return `Use at least ${this.minLength} characters.`;
    // Nobody can type a line break, tab or escape at a sign-in prompt: it came from a paste or a pipe by mistake.
    if (/\p{Cc}/u.test(normalized)) return CONTROL_CHARACTER_REASON;

    const contextWords = [...this.contextWords, ...userWords.flatMap(expandUserWord)];
    const lowerCased = normalized.toLowerCase();
    if (contextWords.some((word) => codePointCount(word) >= MIN_CONTEXT_WORD_LENGTH && lowerCased.includes(word)))
      return CONTEXT_WORD_REASON;
    // Before zxcvbn: a few microseconds against its milliseconds, and the more useful reason.
    if (isBreachedPassword(normalized, this.breached)) return BREACHED_REASON;

    const result = this.zxcvbn.check(normalized, contextWords);
    return result.score >= MIN_SCORE ? null : weaknessReason(result);
  }
}

/** Names what zxcvbn found, so the user knows whether to drop a word or a pattern. */
function weaknessReason(result: ZxcvbnResult): string {
  const dictionaryNames = result.sequence.map((match) => (match.pattern === 'dictionary' ? String(match.dictionaryName) : null));
  if (dictionaryNames.includes('userInputs')) return CONTEXT_WORD_REASON;
  if (dictionaryNames.some((name) => name !== null)) return 'This password is too common; choose another.';
  return 'This password follows a pattern that is easy to guess (repeats, sequences, keyboard rows or dates); choose another.';
}

function normalizeWord(word: string): string {
  return word.normalize('NFKC').trim().toLowerCase();
}

/** An email address also yields its local part, in case the caller passed only the address. */
function expandUserWord(word: string): string[] {
  const normalized = normalizeWord(word);
  if (normalized === '') return [];
  const at = normalized.lastIndexOf('@');
  return at > 0 ? [normalized, normalized.slice(0, at)] : [normalized];
}
