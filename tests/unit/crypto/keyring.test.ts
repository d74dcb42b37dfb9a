import { NORMALIZERS, computeBlindIndex } from '../../../src/crypto/blind-index';
import { Keyring, generateKey } from '../../../src/crypto/keyring';
import { TEST_KEYS, testKeyring } from '../../support/test-keys';

describe('Keyring', () => {
  it('refuses a current key id that is not in the ring, and short keys', () => {
    expect(() => new Keyring({ keys: new Map([['k1', TEST_KEYS.k1]]), currentKid: 'k2', blindIndexKey: TEST_KEYS.blindIndex })).toThrow(
      /not in the keyring/,
    );
    expect(() => new Keyring({ keys: new Map([['k1', Buffer.alloc(16)]]), currentKid: 'k1', blindIndexKey: TEST_KEYS.blindIndex })).toThrow(
      /32 bytes/,
    );
    expect(() => new Keyring({ keys: new Map([['k.1', TEST_KEYS.k1]]), currentKid: 'k.1', blindIndexKey: TEST_KEYS.blindIndex })).toThrow(
      /invalid key id/,
    );
  });

  it('derives a different key per column, per key id, and for blind indexes', () => {
    const keyring = testKeyring();
    const keys = [
      keyring.columnKey('k1', 'users.email'),
      keyring.columnKey('k1', 'users.phone'),
      keyring.columnKey('k2', 'users.email'),
      keyring.blindIndexKey('users.email'),
    ];
    expect(new Set(keys.map((key) => key!.toString('hex'))).size).toBe(4);
    expect(keys.every((key) => key!.length === 32 && !key!.equals(TEST_KEYS.k1))).toBe(true);
  });

  it('never shows key bytes when logged', () => {
    expect(JSON.stringify(testKeyring())).toBe('{"currentKid":"k1","kids":["k1","k2"]}');
  });

  it('generates random 32-byte keys', () => {
    const key = generateKey();
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(generateKey()).not.toBe(key);
  });
});

describe('blind index', () => {
  const keyring = testKeyring();

  it('is equal for equal normalised emails and differs across columns', () => {
    const a = computeBlindIndex(keyring, 'users.email', '  Ada@Example.COM ', NORMALIZERS.email);
    expect(computeBlindIndex(keyring, 'users.email', 'ada@example.com', NORMALIZERS.email)).toBe(a);
    expect(computeBlindIndex(keyring, 'users.email', 'ada@example.org', NORMALIZERS.email)).not.toBe(a);
    expect(computeBlindIndex(keyring, 'contacts.email', 'ada@example.com', NORMALIZERS.email)).not.toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('applies NFKC, so a full-width address matches its ASCII form', () => {
    expect(computeBlindIndex(keyring, 'users.email', 'ａｄａ@example.com', NORMALIZERS.email)).toBe(
      computeBlindIndex(keyring, 'users.email', 'ada@example.com', NORMALIZERS.email),
    );
  });

  it('does not depend on the encryption keys (rotation keeps indexes valid)', () => {
    expect(computeBlindIndex(testKeyring('k2'), 'users.email', 'x')).toBe(computeBlindIndex(testKeyring('k1', ['k1']), 'users.email', 'x'));
  });
});
