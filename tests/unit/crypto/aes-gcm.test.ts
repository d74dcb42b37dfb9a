import { gcmDecrypt, gcmEncrypt } from '../../../src/crypto/aes-gcm';

const hex = (value: string) => Buffer.from(value, 'hex');

describe('AES-256-GCM known answers (ENC-1)', () => {
  it('NIST CAVP gcmEncryptExtIV256, Count 0: empty plaintext and AAD', () => {
    const key = hex('b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4');
    const iv = hex('516c33929df5a3284ff463d7');
    const { ciphertext, tag } = gcmEncrypt(key, iv, Buffer.alloc(0), Buffer.alloc(0));
    expect(ciphertext.length).toBe(0);
    expect(tag.toString('hex')).toBe('bdc1ac884d332457a1d2664f168c76f0');
    expect(gcmDecrypt(key, iv, ciphertext, tag, Buffer.alloc(0)).length).toBe(0);
  });

  it('McGrew–Viega test case 14: zero key, zero IV, one zero block', () => {
    const key = Buffer.alloc(32);
    const iv = Buffer.alloc(12);
    const { ciphertext, tag } = gcmEncrypt(key, iv, Buffer.alloc(16), Buffer.alloc(0));
    expect(ciphertext.toString('hex')).toBe('cea7403d4d606b6e074ec5d3baf39d18');
    expect(tag.toString('hex')).toBe('d0d1c8a799996bf0265b98b5d48ab919');
    expect(gcmDecrypt(key, iv, ciphertext, tag, Buffer.alloc(0))).toEqual(Buffer.alloc(16));
  });

  it('refuses a truncated 4-byte tag (Node 20 would accept it without authTagLength)', () => {
    const key = Buffer.alloc(32);
    const iv = Buffer.alloc(12);
    const { ciphertext, tag } = gcmEncrypt(key, iv, Buffer.from('secret'), Buffer.alloc(0));
    expect(() => gcmDecrypt(key, iv, ciphertext, tag.subarray(0, 4), Buffer.alloc(0))).toThrow();
  });
});
