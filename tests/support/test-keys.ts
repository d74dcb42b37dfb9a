import { Keyring } from '../../src/crypto/keyring';

/** Fixed, obviously fake keys for tests: deterministic, never used anywhere real. */
export const TEST_KEYS = {
  k1: Buffer.alloc(32, 1),
  k2: Buffer.alloc(32, 2),
  blindIndex: Buffer.alloc(32, 9),
};

export function testKeyring(currentKid: 'k1' | 'k2' = 'k1', kids: ('k1' | 'k2')[] = ['k1', 'k2']): Keyring {
  return new Keyring({ keys: new Map(kids.map((kid) => [kid, TEST_KEYS[kid]])), currentKid, blindIndexKey: TEST_KEYS.blindIndex });
}

/** The same keys as settings, for servers booted from a Config. */
export const TEST_KEY_SETTINGS = {
  encryptionKeys: [
    { kid: 'k1', key: TEST_KEYS.k1 },
    { kid: 'k2', key: TEST_KEYS.k2 },
  ],
  encryptionKeyId: 'k1',
  blindIndexKey: TEST_KEYS.blindIndex,
};
