import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../project';
import { BinaryFuseFilter } from './binary-fuse-filter';
import { codePointCount } from './code-points';

/**
 * The breached-password filter, committed beside the code rather than built at install: the
 * lists it comes from (breached-passwords.source.ts) are 10 MB of text a server never needs, and
 * a committed file is the same on every machine. `npm run breached-passwords:build` rewrites it.
 */
export const BREACHED_PASSWORDS_FILE = path.join(PROJECT_ROOT, 'assets', 'breached-passwords.bff');

/** Below this a password's letters alone ("abc" of "abc-7731-9902-4418") say too little to refuse it for. */
export const MIN_LETTERS_FORM_LENGTH = 4;

/** Letters in shorter runs than this are scattered among symbols, not a word with decoration. */
const MIN_WORD_LENGTH = 3;

/** The one normalisation of list entries and passwords alike: the policy's NFKC, then lower case. */
export function breachedPasswordKey(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

/**
 * What one password is looked up as. Case is ignored (`PASSWORD` is as breached as `password`),
 * and so are the digits, symbols and spaces wrapped around or between its letters, and a word
 * typed twice: the first variations cracking tools try, and the way people stretch a breached
 * password to a length rule (`Password1234567!`, `Summer2024!Summer`). Only while the letters are
 * words (runs of three or more) and at least half of the password, though: in random characters,
 * the letters that happen to spell `kool` or `helder` between the symbols are not what makes it
 * guessable.
 */
export function breachedPasswordForms(password: string): string[] {
  const key = breachedPasswordKey(password);
  const forms = [key];
  const words = key.match(/\p{L}+/gu) ?? [];
  const letters = words.join('');
  const letterCount = codePointCount(letters);
  if (letterCount < MIN_LETTERS_FORM_LENGTH || 2 * letterCount < codePointCount(key)) return forms;
  if (words.some((word) => codePointCount(word) < MIN_WORD_LENGTH)) return forms;
  if (letters !== key) forms.push(letters);
  const unit = repeatedUnit(letters);
  if (unit !== null && codePointCount(unit) >= MIN_LETTERS_FORM_LENGTH) forms.push(unit);
  return forms;
}

export function isBreachedPassword(password: string, filter: BinaryFuseFilter = breachedPasswordFilter()): boolean {
  return breachedPasswordForms(password).some((form) => filter.has(form));
}

let loaded: BinaryFuseFilter | undefined;

/** Read once per process (4.1 MB, a few ms), on first use: CLI commands that check no password never pay it. */
export function breachedPasswordFilter(): BinaryFuseFilter {
  loaded ??= BinaryFuseFilter.parse(fs.readFileSync(BREACHED_PASSWORDS_FILE));
  return loaded;
}

/** `summersummer` → `summer`; null unless the text is one string repeated. */
function repeatedUnit(text: string): string | null {
  const characters = [...text];
  for (let length = 1; length <= characters.length / 2; length += 1) {
    if (characters.length % length !== 0) continue;
    const unit = characters.slice(0, length).join('');
    if (unit.repeat(characters.length / length) === text) return unit;
  }
  return null;
}
