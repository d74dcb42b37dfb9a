import { PasswordHasher } from '../../../src/accounts/password-hasher';
import { generateRecoveryCodes, matchesRecoveryCode, parseRecoveryCode } from '../../../src/mfa/recovery-codes';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_FORMAT = /^[0-9a-hjkmnp-tv-z]{5}(-[0-9a-hjkmnp-tv-z]{5}){3}$/;
const PHC_ARGON2ID = /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

describe('recovery codes (MFA-7)', () => {
  const hasher = new PasswordHasher({ maxConcurrent: 2, maxQueued: 100 });

  it('generates 10 distinct codes as xxxxx-xxxxx-xxxxx-xxxxx, each with its own lookup and argon2id hash', async () => {
    const { codes, stored } = await generateRecoveryCodes(hasher);
    expect(codes).toHaveLength(10);
    expect(stored).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    expect(new Set(stored.map((row) => row.lookup)).size).toBe(10);
    expect(new Set(stored.map((row) => row.codeHash)).size).toBe(10);
    codes.forEach((code, index) => {
      expect(code).toMatch(CODE_FORMAT);
      const parsed = parseRecoveryCode(code)!;
      const row = stored[index];
      expect(row.lookup).toBe(code.slice(0, 5));
      expect(parsed.lookup).toBe(row.lookup);
      expect(row.codeHash).toMatch(PHC_ARGON2ID);
      expect(row.codeHash).not.toContain(parsed.secret);
      expect(row.codeHash).not.toContain(code);
    });
  });

  it('matches each code against its own row only, and fails a wrong secret', async () => {
    const { codes, stored } = await generateRecoveryCodes(hasher, 3);
    const [first, second] = codes.map((code) => parseRecoveryCode(code)!);
    await expect(matchesRecoveryCode(hasher, stored[0], first.secret)).resolves.toBe(true);
    await expect(matchesRecoveryCode(hasher, stored[1], second.secret)).resolves.toBe(true);
    await expect(matchesRecoveryCode(hasher, stored[0], second.secret)).resolves.toBe(false);
    const lastCharacter = first.secret.at(-1)!;
    const otherCharacter = CROCKFORD[(CROCKFORD.indexOf(lastCharacter) + 1) % 32];
    await expect(matchesRecoveryCode(hasher, stored[0], first.secret.slice(0, -1) + otherCharacter)).resolves.toBe(false);
    await expect(matchesRecoveryCode(hasher, stored[0], `${first.lookup}${first.secret}`)).resolves.toBe(false);
    await expect(matchesRecoveryCode(hasher, stored[0], '')).resolves.toBe(false);
  });

  it('answers false for a corrupt stored hash instead of throwing', async () => {
    await expect(matchesRecoveryCode(hasher, { codeHash: 'not a hash' }, 'abcdefghjkmnpqr')).resolves.toBe(false);
  });

  it('draws every secret character uniformly from all 32 letters: 75 random bits, above the 64-bit floor', async () => {
    const { codes } = await generateRecoveryCodes(hasher, 40);
    const secrets = codes.map((code) => parseRecoveryCode(code)!.secret);
    const lettersSeen = new Set(secrets.join(''));
    // 600 draws from 32 letters: a letter is missing with probability about 2e-7.
    expect(lettersSeen.size).toBe(32);
    const secretBits = secrets[0].length * Math.log2(lettersSeen.size);
    expect(secretBits).toBe(75);
    expect(secretBits).toBeGreaterThanOrEqual(64);
    // No position is fixed: each takes several values across 40 codes.
    for (let position = 0; position < 15; position += 1) {
      expect(new Set(secrets.map((secret) => secret[position])).size).toBeGreaterThan(1);
    }
  });

  it('rejects a count that is not a positive integer', async () => {
    await expect(generateRecoveryCodes(hasher, 0)).rejects.toThrow(RangeError);
    await expect(generateRecoveryCodes(hasher, 2.5)).rejects.toThrow(RangeError);
  });
});

describe('parseRecoveryCode', () => {
  const expected = { lookup: 'a1b0c', secret: 'd1e0fg1h0jk1m0n' };

  it('reads the displayed form and its typed variants', () => {
    for (const typed of [
      'a1b0c-d1e0f-g1h0j-k1m0n',
      'A1B0C-D1E0F-G1H0J-K1M0N',
      'a1b0cd1e0fg1h0jk1m0n',
      'a1b0c d1e0f g1h0j k1m0n',
      '  a1b0c - d1e0f - g1h0j - k1m0n  ',
      'A1B0Cd1e0fG1H0Jk1m0n',
    ]) {
      expect(parseRecoveryCode(typed)).toEqual(expected);
    }
  });

  it('maps the look-alikes i and l to 1 and o to 0, as Crockford decoding does', () => {
    expect(parseRecoveryCode('aIbOc-dle0f-gLhoj-kimOn')).toEqual(expected);
  });

  it('round-trips a generated code', async () => {
    const hasher = new PasswordHasher({ maxConcurrent: 2, maxQueued: 100 });
    const { codes } = await generateRecoveryCodes(hasher, 1);
    const code = codes[0];
    const canonical = code.replaceAll('-', '');
    expect(parseRecoveryCode(code)).toEqual({ lookup: canonical.slice(0, 5), secret: canonical.slice(5) });
    expect(parseRecoveryCode(code.toUpperCase())).toEqual(parseRecoveryCode(code));
    expect(parseRecoveryCode(canonical)).toEqual(parseRecoveryCode(code));
  });

  it('answers null for anything else', () => {
    for (const garbage of [
      '',
      '-----',
      'a1b0c',
      'a1b0c-d1e0f-g1h0j-k1m0',
      'a1b0c-d1e0f-g1h0j-k1m0n0',
      'a1b0c-d1e0f-g1h0j-k1m0u',
      'a1b0c_d1e0f_g1h0j_k1m0n',
      'a1b0c.d1e0f.g1h0j.k1m0n',
      'a1b0c-d1e0f-g1h0j-k1m0!',
      'ä1b0c-d1e0f-g1h0j-k1m0n',
      'ａ1b0c-d1e0f-g1h0j-k1m0n',
      `a1b0c-d1e0f-g1h0j-k1m0n${' '.repeat(100)}`,
      'a'.repeat(10_000),
    ]) {
      expect(parseRecoveryCode(garbage)).toBeNull();
    }
  });
});
