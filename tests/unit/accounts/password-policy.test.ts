import { PasswordPolicy } from '../../../src/accounts/password-policy';

const TOO_SHORT_15 = 'Use at least 15 characters.';
const TOO_LONG = 'Use at most 1024 bytes.';
const CONTROL = 'The password contains a control character (a line break, tab or similar); leave it out.';
const TOO_COMMON = 'This password is too common; choose another.';
const BREACHED = 'This password appears in lists of breached passwords; choose another.';
const CONTEXT_WORD = "Don't use your email address or the app's name in your password.";
const PATTERN = 'This password follows a pattern that is easy to guess (repeats, sequences, keyboard rows or dates); choose another.';

/** 15 characters zxcvbn scores 4 ("random"), so only the length rule can reject its prefix. */
const STRONG_15 = 'Tq8#vLm2pZ!rW4k';

describe('PasswordPolicy', () => {
  // Each instance builds zxcvbn's ranked dictionaries (a few hundred ms): share them.
  const policy = new PasswordPolicy({ minLength: 15, contextWords: ['Bastion'] });
  const shortPolicy = new PasswordPolicy({ minLength: 8, contextWords: ['Bastion'] });

  describe('length (ASVS 6.2.1, 6.2.9; NIST SP 800-63B-4)', () => {
    it('rejects 14 characters and accepts 15', () => {
      expect(policy.check(STRONG_15.slice(0, 14))).toBe(TOO_SHORT_15);
      expect(policy.check(STRONG_15)).toBeNull();
    });

    it('counts code points, not UTF-16 units: 14 emoji are too short, 15 are enough', () => {
      const emoji = [...'🦊🐙🦉🐝🦋🐢🦔🐳🦜🐌🦀🐞🦩🐠🦈'];
      expect(emoji.slice(0, 14).join('')).toHaveLength(28);
      expect(policy.check(emoji.slice(0, 14).join(''))).toBe(TOO_SHORT_15);
      expect(policy.check(emoji.join(''))).toBeNull();
    });

    it('refuses a lone surrogate, which UTF-8 would turn into U+FFFD (two such passwords would hash alike), but not a whole emoji', () => {
      expect(policy.check(`${STRONG_15}\uD83E`)).toMatch(/invalid character/);
      expect(policy.check(`\uDC00${STRONG_15}`)).toMatch(/invalid character/);
      expect(policy.check(`${STRONG_15}\uD83E\uDD8A`)).toBeNull();
    });

    it('treats empty and whitespace-only passwords as too short', () => {
      expect(policy.check('')).toBe(TOO_SHORT_15);
      expect(policy.check(' '.repeat(20))).toBe(TOO_SHORT_15);
      expect(policy.check('\t\u3000 \n'.repeat(5))).toBe(TOO_SHORT_15);
    });

    it('accepts passwords of 64 characters and more', () => {
      const passphrase = 'the quiet lighthouse keeper painted seventeen violet boats at dawn';
      expect([...passphrase].length).toBeGreaterThanOrEqual(64);
      expect(policy.check(passphrase)).toBeNull();
    });

    it('accepts 1024 bytes and rejects 1025, counting UTF-8 bytes rather than characters', () => {
      const kilobyte = 'Tq8#vLm2pZ!rW4kXe9$yNb3uC&hJ6sDa'.repeat(32);
      expect(Buffer.byteLength(kilobyte)).toBe(1024);
      expect(policy.check(kilobyte)).toBeNull();
      expect(policy.check(`${kilobyte}x`)).toBe(TOO_LONG);
      // 513 characters, but 1026 bytes: é is two bytes in UTF-8.
      expect(policy.check('é'.repeat(513))).toBe(TOO_LONG);
    });

    it('refuses control characters (a line break, tab, escape, DEL, C1), which nobody can type at a sign-in prompt', () => {
      for (const control of ['\n', '\r\n', '\t', '\u0000', '\u001b', '\u007f', '\u0085']) {
        expect({ control, reason: policy.check(`${STRONG_15}${control}${STRONG_15}`) }).toEqual({ control, reason: CONTROL });
      }
      // What `printf 'pw\npw\n' | bastion admin create` used to set.
      expect(policy.check(`${STRONG_15}\n${STRONG_15}`)).toBe(CONTROL);
      // Spaces, including a non-breaking one, are fine.
      expect(policy.check(`${STRONG_15} \u00a0${STRONG_15}`)).toBeNull();
    });

    it("refuses a minimum below NIST's 8 characters", () => {
      expect(() => new PasswordPolicy({ minLength: 7, contextWords: [] })).toThrow(RangeError);
    });
  });

  describe('no composition rules (ASVS 6.2.5)', () => {
    it('accepts a 20-character all-lowercase password', () => {
      expect(policy.check('xqvkmzpwtrjdnbhflcsg')).toBeNull();
    });
  });

  describe('blocklists (ASVS 6.2.4, 6.2.11, 6.2.12)', () => {
    it('rejects password123456 as breached, not for its length', () => {
      expect(shortPolicy.check('password123456')).toBe(BREACHED);
    });

    it('refuses breached passwords however they are stretched past the length rule', () => {
      // All three scored 3 or more with zxcvbn alone, and were accepted before the breached-password filter.
      for (const password of ['Password1234567!', 'correcthorsebatterystaple', 'Summer2024!Summer']) {
        expect({ password, reason: policy.check(password) }).toEqual({ password, reason: BREACHED });
      }
    });

    it('accepts passphrases and random passwords that no list holds', () => {
      for (const password of ['sunflower-meadow-kettle-42', 'purplemonkeydishwasher', 'violet-harbor-3fa9c0d1e2b4', STRONG_15]) {
        expect({ password, reason: policy.check(password) }).toEqual({ password, reason: null });
      }
    });

    it('applies NFKC before the lists, so full-width letters do not slip through', () => {
      expect(shortPolicy.check('ｐａｓｓｗｏｒｄ１２３４５６')).toBe(BREACHED);
    });

    it('still rejects dictionary words that no breach list holds, with their own reason', () => {
      expect(policy.check('elephantgiraffe')).toBe(TOO_COMMON);
    });

    it('rejects easily guessed patterns with a reason that names them', () => {
      // Not 'aaaaaaaaaaaaaaaa': that one is in the breached lists, which answer first.
      expect(policy.check('kdkdkdkdkdkdkdkd')).toBe(PATTERN);
    });

    it('rejects the app name as a context word: Bastion2025!', () => {
      expect(shortPolicy.check('Bastion2025!')).toBe(CONTEXT_WORD);
      expect(shortPolicy.check('my-BASTION-vault-Q7#')).toBe(CONTEXT_WORD);
      // An app name no breach list holds: without it as a context word, nothing else refuses the password.
      expect(new PasswordPolicy({ minLength: 8, contextWords: ['Quorvane'] }).check('Quorvane2025!')).toBe(CONTEXT_WORD);
      expect(new PasswordPolicy({ minLength: 8, contextWords: [] }).check('Quorvane2025!')).toBeNull();
    });

    it('rejects the email local part when it is passed as a user word', () => {
      const password = 'zanzibarfox#Q7vLm2';
      expect(shortPolicy.check(password)).toBeNull();
      expect(shortPolicy.check(password, ['zanzibarfox@example.com', 'zanzibarfox'])).toBe(CONTEXT_WORD);
      // The address alone is enough: its local part is derived from it.
      expect(shortPolicy.check(password, ['Zanzibarfox@Example.com'])).toBe(CONTEXT_WORD);
    });

    it('ignores context words shorter than 4 characters for the substring rule', () => {
      const tiny = new PasswordPolicy({ minLength: 15, contextWords: ['kx'] });
      expect(tiny.check(`kx${STRONG_15}`)).toBeNull();
    });
  });
});
