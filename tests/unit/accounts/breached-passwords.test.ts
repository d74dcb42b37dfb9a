import fs from 'node:fs';
import path from 'node:path';
import { dictionary } from '@zxcvbn-ts/language-en';
import { BinaryFuseFilter } from '../../../src/accounts/binary-fuse-filter';
import {
  BREACHED_PASSWORDS_FILE,
  breachedPasswordFilter,
  breachedPasswordForms,
  isBreachedPassword,
} from '../../../src/accounts/breached-passwords';
import { FAMOUS_PASSWORDS, breachedPasswordKeys, buildBreachedPasswordFilter } from '../../../src/accounts/breached-passwords.source';
import { PROJECT_ROOT } from '../../../src/project';

/** mulberry32: seeded, so the random passwords (and the rate measured on them) are the same in every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomPrintable(random: () => number, length: number): string {
  return String.fromCharCode(...Array.from({ length }, () => 33 + Math.floor(random() * 94)));
}

function microsecondsEach(count: number, run: (index: number) => void): number {
  const started = process.hrtime.bigint();
  for (let index = 0; index < count; index += 1) run(index);
  return Number(process.hrtime.bigint() - started) / 1000 / count;
}

describe('breached passwords (ASVS 6.2.4, 6.2.12)', () => {
  const filter = breachedPasswordFilter();

  it('refuses breached passwords stretched to a length rule, and famous ones the lists miss', () => {
    for (const password of ['Password1234567!', 'correcthorsebatterystaple', 'Summer2024!Summer']) {
      expect({ password, breached: isBreachedPassword(password) }).toEqual({ password, breached: true });
    }
    for (const password of [...FAMOUS_PASSWORDS, 'Correct Horse Battery Staple', 'PASSWORD', 'iloveyou1234567!', '!!qwerty2024qwerty!!']) {
      expect({ password, breached: isBreachedPassword(password) }).toEqual({ password, breached: true });
    }
  });

  it('normalises as the policy does (NFKC) and ignores case: full-width letters do not slip through', () => {
    expect(isBreachedPassword('ｐａｓｓｗｏｒｄ１２３４５６７８')).toBe(true);
    expect(isBreachedPassword('ＳＵＭＭＥＲ２０２４！ＳＵＭＭＥＲ')).toBe(true);
  });

  it('looks a password up as typed, by its letters alone, and as the word it repeats', () => {
    expect(breachedPasswordForms('Summer2024!Summer')).toEqual(['summer2024!summer', 'summersummer', 'summer']);
    expect(breachedPasswordForms('Password1234567!')).toEqual(['password1234567!', 'password']);
    expect(breachedPasswordForms('xqvkmzpwtrjdnbhflcsg')).toEqual(['xqvkmzpwtrjdnbhflcsg']);
    expect(breachedPasswordForms('PasswordPassword')).toEqual(['passwordpassword', 'password']);
    // Three letters left are too few to refuse a password for: this one is 12 random digits.
    expect(breachedPasswordForms('abc-7731-9902-4418')).toEqual(['abc-7731-9902-4418']);
    expect(isBreachedPassword('abc-7731-9902-4418')).toBe(false);
    // Nor are letters that make less than half of it: 16 random characters whose letters spell "kool".
    expect(breachedPasswordForms('?K8O{o;=.$.l<5*#')).toEqual(['?k8o{o;=.$.l<5*#']);
    expect(isBreachedPassword('?K8O{o;=.$.l<5*#')).toBe(false);
  });

  it('accepts random passphrases and random strong passwords', () => {
    const random = seededRandom(20250601);
    const words = dictionary['commonWords-en'].filter((word) => word.length >= 4);
    const pick = () => words[Math.floor(random() * words.length)];
    let refused = 0;
    for (let index = 0; index < 10_000; index += 1) {
      const passphrase = `${pick()}-${pick()}-${pick()}-${pick()}-${Math.floor(random() * 100)}`;
      if (isBreachedPassword(passphrase)) refused += 1;
      if (isBreachedPassword(randomPrintable(random, 16))) refused += 1;
    }
    // Up to three lookups of 2^-24 each per password: a false refusal in 20,000 has odds of ~1 in 280.
    expect(refused).toBe(0);
  });

  describe('against the lists it is built from', () => {
    let keys: Set<string>;
    beforeAll(() => {
      keys = breachedPasswordKeys();
    });

    it('holds at least the million most common breached passwords, and finds every one', () => {
      expect(keys.size).toBeGreaterThanOrEqual(1_000_000);
      expect(filter.size).toBe(keys.size);
      let missing = 0;
      for (const key of keys) if (!filter.has(key)) missing += 1;
      expect(missing).toBe(0);
    });

    it('is what `npm run breached-passwords:build` writes from the pinned lists, byte for byte', () => {
      const committed = fs.readFileSync(BREACHED_PASSWORDS_FILE);
      expect(buildBreachedPasswordFilter(keys).serialize().equals(committed)).toBe(true);
    });

    it('measures the false-positive rate and the lookup time', () => {
      const random = seededRandom(7);
      const strangers: string[] = [];
      while (strangers.length < 1_000_000) {
        const candidate = randomPrintable(random, 12);
        if (!keys.has(candidate)) strangers.push(candidate);
      }
      let falsePositives = 0;
      const lookupMicroseconds = microsecondsEach(strangers.length, (index) => {
        if (filter.has(strangers[index])) falsePositives += 1;
      });
      // The whole check (its letters and repeat forms too) of the first 100,000: real matches count here.
      let refused = 0;
      const checkMicroseconds = microsecondsEach(100_000, (index) => {
        if (isBreachedPassword(strangers[index])) refused += 1;
      });
      process.stdout.write(
        `breached-password filter: ${filter.size} passwords in ${fs.statSync(BREACHED_PASSWORDS_FILE).size} bytes; ` +
          `false positives ${falsePositives} of ${strangers.length} random strings (2^-24 ≈ 6e-8 expected); ` +
          `${lookupMicroseconds.toFixed(2)} µs a lookup; the whole check refused ${refused} of 100000, ` +
          `${checkMicroseconds.toFixed(2)} µs each\n`,
      );
      // 0.06 expected at 2^-24; three would take odds of 1 in 28,000 (or a broken construction).
      expect(falsePositives).toBeLessThanOrEqual(2);
    });
  });

  describe('the filter format', () => {
    it('answers for every key of a small set, the same bytes whatever the order', () => {
      const members = Array.from({ length: 5_000 }, (_, index) => `member-${index}`);
      const built = BinaryFuseFilter.build(members);
      expect(members.every((member) => built.has(member))).toBe(true);
      expect(
        BinaryFuseFilter.build([...members].reverse())
          .serialize()
          .equals(built.serialize()),
      ).toBe(true);
      const parsed = BinaryFuseFilter.parse(built.serialize());
      expect(members.every((member) => parsed.has(member))).toBe(true);
      expect(parsed.size).toBe(5_000);
    });

    it('refuses a truncated or foreign file rather than answer from garbage', () => {
      const bytes = BinaryFuseFilter.build(['a-member', 'another-member']).serialize();
      expect(() => BinaryFuseFilter.parse(bytes.subarray(0, bytes.length - 2))).toThrow(/truncated or damaged/);
      expect(() => BinaryFuseFilter.parse(Buffer.from('PK\u0003\u0004 a zip file, not a filter'))).toThrow(/not a binary fuse filter/);
    });
  });

  it('ships in the production image, which runs from dist/ and not the sources', () => {
    const dockerfile = fs.readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
    const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const folder = path.relative(PROJECT_ROOT, path.dirname(BREACHED_PASSWORDS_FILE));
    expect(runtimeStage).toMatch(new RegExp(`^COPY ${folder}/ ${folder}/$`, 'm'));
  });
});
