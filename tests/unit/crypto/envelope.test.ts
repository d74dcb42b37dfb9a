import { DecryptionFailedError, envelopeKid, open, seal } from '../../../src/crypto/envelope';
import { testKeyring } from '../../support/test-keys';

const keyring = testKeyring();
const DOMAIN = 'users.email';

/** Flips one bit of one base64url part of an envelope. */
function flipBit(envelope: string, part: 2 | 3, byteIndex = 0): string {
  const parts = envelope.split('.');
  const bytes = Buffer.from(parts[part], 'base64url');
  bytes[byteIndex] ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

const expectGenericFailure = (attempt: () => unknown) => {
  expect(attempt).toThrow(DecryptionFailedError);
  try {
    attempt();
  } catch (error) {
    expect((error as Error).message).toBe('decryption failed');
    expect((error as DecryptionFailedError).code).toBe('DECRYPTION_FAILED');
  }
};

describe('envelope', () => {
  it('round-trips and names its format and key id', () => {
    const envelope = seal(keyring, Buffer.from('ada@example.com'), DOMAIN);
    expect(envelope).toMatch(/^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(envelopeKid(envelope)).toBe('k1');
    expect(open(keyring, envelope, DOMAIN).toString()).toBe('ada@example.com');
  });

  it('uses a fresh IV for every write', () => {
    const first = seal(keyring, Buffer.from('same'), DOMAIN);
    const second = seal(keyring, Buffer.from('same'), DOMAIN);
    expect(first.split('.')[2]).not.toBe(second.split('.')[2]);
    expect(first).not.toBe(second);
  });

  it('decrypts values written under an older key of the ring', () => {
    const old = seal(testKeyring('k2'), Buffer.from('from k2'), DOMAIN);
    expect(open(keyring, old, DOMAIN).toString()).toBe('from k2');
  });

  describe('tampering fails with the one generic error', () => {
    const envelope = seal(keyring, Buffer.from('a secret long enough to span blocks'), DOMAIN);
    it('a flipped IV bit', () => expectGenericFailure(() => open(keyring, flipBit(envelope, 2), DOMAIN)));
    it('a flipped ciphertext bit', () => expectGenericFailure(() => open(keyring, flipBit(envelope, 3, 3), DOMAIN)));
    it('a flipped tag bit', () => {
      const tagByte = Buffer.from(envelope.split('.')[3], 'base64url').length - 1;
      expectGenericFailure(() => open(keyring, flipBit(envelope, 3, tagByte), DOMAIN));
    });
    it('a truncated tag', () => {
      const parts = envelope.split('.');
      parts[3] = Buffer.from(parts[3], 'base64url').subarray(0, -12).toString('base64url');
      expectGenericFailure(() => open(keyring, parts.join('.'), DOMAIN));
    });
    it('a ciphertext moved to another column', () => expectGenericFailure(() => open(keyring, envelope, 'users.phone')));
    it('an unknown key id', () => expectGenericFailure(() => open(keyring, envelope.replace('v1.k1.', 'v1.k9.'), DOMAIN)));
    it('a key id swapped for another known one', () =>
      expectGenericFailure(() => open(keyring, envelope.replace('v1.k1.', 'v1.k2.'), DOMAIN)));
    it('a wrong version or shape', () => {
      expectGenericFailure(() => open(keyring, envelope.replace(/^v1/, 'v2'), DOMAIN));
      expectGenericFailure(() => open(keyring, 'plain text', DOMAIN));
      expectGenericFailure(() => open(keyring, `${envelope}=`, DOMAIN));
    });
  });
});
