import { newTotpSecret, otpauthUri, qrCodeSvg, totpCode, verifyTotp } from '../../../src/mfa/totp';

/** RFC 4648 base32, written out here so the known-answer test does not trust otplib's own codec. */
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function toBase32(bytes: Uint8Array): string {
  let bits = 0;
  let buffer = 0;
  let out = '';
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

function fromBase32(text: string): Uint8Array {
  let bits = 0;
  let buffer = 0;
  const out: number[] = [];
  for (const character of text) {
    const value = BASE32_ALPHABET.indexOf(character);
    if (value < 0) throw new Error(`not base32: ${character}`);
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((buffer >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

const ascii = (text: string) => new TextEncoder().encode(text);
const at = (seconds: number) => new Date(seconds * 1000);

/** RFC 6238 Appendix B; its ASCII seeds (docs/security.md#mfa-1). */
const RFC_SEEDS = {
  sha1: toBase32(ascii('1234567890'.repeat(2))),
  sha256: toBase32(ascii('1234567890'.repeat(3) + '12')),
  sha512: toBase32(ascii('1234567890'.repeat(6) + '1234')),
} as const;

const RFC_VECTORS: Array<[seconds: number, sha1: string, sha256: string, sha512: string]> = [
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
];

const KNOWN_ANSWERS = RFC_VECTORS.flatMap(([seconds, sha1, sha256, sha512]) => [
  { seconds, algorithm: 'sha1' as const, expected: sha1 },
  { seconds, algorithm: 'sha256' as const, expected: sha256 },
  { seconds, algorithm: 'sha512' as const, expected: sha512 },
]);

describe('TOTP known answers: RFC 6238 Appendix B, 8 digits (MFA-1)', () => {
  it('encodes the RFC seeds as the well-known base32 strings and byte lengths', () => {
    expect(RFC_SEEDS.sha1).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(fromBase32(RFC_SEEDS.sha1)).toHaveLength(20);
    expect(fromBase32(RFC_SEEDS.sha256)).toHaveLength(32);
    expect(fromBase32(RFC_SEEDS.sha512)).toHaveLength(64);
  });

  it.each(KNOWN_ANSWERS)(
    '$algorithm at T=$seconds s is $expected, and verifies at its own step',
    async ({ seconds, algorithm, expected }) => {
      const secret = RFC_SEEDS[algorithm];
      const now = at(seconds);
      await expect(totpCode({ secret, now, algorithm, digits: 8 })).resolves.toBe(expected);
      await expect(verifyTotp({ secret, code: expected, now, lastUsedStep: null, algorithm, digits: 8 })).resolves.toEqual({
        valid: true,
        step: Math.floor(seconds / 30),
      });
      const wrongLastDigit = expected.slice(0, 7) + String((Number(expected[7]) + 1) % 10);
      await expect(verifyTotp({ secret, code: wrongLastDigit, now, lastUsedStep: null, algorithm, digits: 8 })).resolves.toEqual({
        valid: false,
      });
    },
  );
});

describe('verifyTotp', () => {
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  // 15 s into a step, so neighbouring steps are a whole period away on either side.
  const now = new Date('2026-03-01T12:00:15.000Z');
  const currentStep = Math.floor(now.getTime() / 30_000);
  const shifted = (seconds: number) => new Date(now.getTime() + seconds * 1000);

  it('accepts the current code and reports its step', async () => {
    const code = await totpCode({ secret, now });
    expect(code).toMatch(/^[0-9]{6}$/);
    await expect(verifyTotp({ secret, code, now, lastUsedStep: null })).resolves.toEqual({ valid: true, step: currentStep });
  });

  it('rejects a wrong code with { valid: false }: callers must read .valid (MFA-4)', async () => {
    const code = await totpCode({ secret, now });
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    await expect(verifyTotp({ secret, code: wrong, now, lastUsedStep: null })).resolves.toEqual({ valid: false });
  });

  it('rejects the same code once its step is recorded (MFA-3, RFC 6238 §5.2)', async () => {
    const code = await totpCode({ secret, now });
    const first = await verifyTotp({ secret, code, now, lastUsedStep: null });
    expect(first).toEqual({ valid: true, step: currentStep });
    await expect(verifyTotp({ secret, code, now, lastUsedStep: currentStep })).resolves.toEqual({ valid: false });
    await expect(verifyTotp({ secret, code, now: shifted(10), lastUsedStep: currentStep })).resolves.toEqual({ valid: false });
    // Only steps up to lastUsedStep are spent: the current code still works after the previous one.
    await expect(verifyTotp({ secret, code, now, lastUsedStep: currentStep - 1 })).resolves.toEqual({ valid: true, step: currentStep });
  });

  it('accepts the previous step, at both ends of the current one (MFA-2, DEV-3)', async () => {
    const previousCode = await totpCode({ secret, now: shifted(-30) });
    expect(previousCode).not.toBe(await totpCode({ secret, now }));
    for (const offset of [-15, 0, 14]) {
      await expect(verifyTotp({ secret, code: previousCode, now: shifted(offset), lastUsedStep: null })).resolves.toEqual({
        valid: true,
        step: currentStep - 1,
      });
    }
  });

  it('rejects a previous-step code once a later step was used', async () => {
    const previousCode = await totpCode({ secret, now: shifted(-30) });
    await expect(verifyTotp({ secret, code: previousCode, now, lastUsedStep: currentStep - 1 })).resolves.toEqual({ valid: false });
    await expect(verifyTotp({ secret, code: previousCode, now, lastUsedStep: currentStep })).resolves.toEqual({ valid: false });
  });

  it('rejects a code from two steps ago, even at the very start of the current step', async () => {
    const olderCode = await totpCode({ secret, now: shifted(-60) });
    for (const offset of [-15, 0, 14]) {
      await expect(verifyTotp({ secret, code: olderCode, now: shifted(offset), lastUsedStep: null })).resolves.toEqual({ valid: false });
    }
  });

  it('rejects the next step: no tolerance into the future', async () => {
    const nextCode = await totpCode({ secret, now: shifted(30) });
    expect(nextCode).not.toBe(await totpCode({ secret, now }));
    await expect(verifyTotp({ secret, code: nextCode, now, lastUsedStep: null })).resolves.toEqual({ valid: false });
    await expect(verifyTotp({ secret, code: nextCode, now: shifted(14), lastUsedStep: null })).resolves.toEqual({ valid: false });
  });

  it('answers invalid, without throwing, when lastUsedStep lies ahead of the clock', async () => {
    const code = await totpCode({ secret, now });
    await expect(verifyTotp({ secret, code, now, lastUsedStep: currentStep + 5 })).resolves.toEqual({ valid: false });
  });

  it('answers invalid, without throwing, for codes that are not exactly `digits` ASCII digits', async () => {
    const code = await totpCode({ secret, now });
    const eight = await totpCode({ secret, now, digits: 8 });
    const malformed = [
      '',
      code.slice(0, 5),
      `${code}0`,
      ` ${code}`,
      `${code}\n`,
      `${code.slice(0, 3)} ${code.slice(3)}`,
      `${code.slice(0, 5)}a`,
      '-12345',
      '１２３４５６',
      code.replace(/[0-9]/g, (digit) => String.fromCharCode(0x0660 + Number(digit))),
      eight,
    ];
    for (const candidate of malformed) {
      await expect(verifyTotp({ secret, code: candidate, now, lastUsedStep: null })).resolves.toEqual({ valid: false });
    }
    await expect(verifyTotp({ secret, code, now, lastUsedStep: null, digits: 8 })).resolves.toEqual({ valid: false });
    await expect(verifyTotp({ secret, code: eight, now, lastUsedStep: null, digits: 8 })).resolves.toEqual({
      valid: true,
      step: currentStep,
    });
  });

  it('throws for a corrupt lastUsedStep or clock, which are server faults rather than user input', async () => {
    const code = await totpCode({ secret, now });
    await expect(verifyTotp({ secret, code, now, lastUsedStep: -1 })).rejects.toThrow(RangeError);
    await expect(verifyTotp({ secret, code, now, lastUsedStep: 1.5 })).rejects.toThrow(RangeError);
    await expect(verifyTotp({ secret, code, now: new Date(Number.NaN), lastUsedStep: null })).rejects.toThrow(RangeError);
  });
});

describe('newTotpSecret', () => {
  it('returns distinct 32-character base32 secrets of 20 bytes (MFA-1)', async () => {
    const secrets = Array.from({ length: 20 }, () => newTotpSecret());
    expect(new Set(secrets).size).toBe(secrets.length);
    for (const secret of secrets) {
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(fromBase32(secret)).toHaveLength(20);
    }
    const now = new Date('2026-03-01T12:00:15.000Z');
    const code = await totpCode({ secret: secrets[0], now });
    await expect(verifyTotp({ secret: secrets[0], code, now, lastUsedStep: null })).resolves.toMatchObject({ valid: true });
  });
});

describe('otpauthUri', () => {
  it('builds the Key URI Format with SHA1, 6 digits and 30 s', () => {
    expect(otpauthUri({ issuer: 'Bastion', accountName: 'alice@example.com', secret: 'JBSWY3DPEHPK3PXP' })).toBe(
      'otpauth://totp/Bastion:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Bastion&algorithm=SHA1&digits=6&period=30',
    );
  });

  it('encodes a space and a colon in the issuer, so the label has one separating colon', () => {
    const issuer = 'ACME Co: Staging';
    const uri = otpauthUri({ issuer, accountName: 'bob+mfa@example.com', secret: 'JBSWY3DPEHPK3PXP' });
    expect(uri).toBe(
      'otpauth://totp/ACME%20Co%3A%20Staging:bob%2Bmfa%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co%3A%20Staging&algorithm=SHA1&digits=6&period=30',
    );
    const parsed = new URL(uri);
    expect(parsed.protocol).toBe('otpauth:');
    expect(parsed.host).toBe('totp');
    const rawLabel = parsed.pathname.slice(1);
    expect(rawLabel.split(':').map(decodeURIComponent)).toEqual([issuer, 'bob+mfa@example.com']);
    expect(parsed.searchParams.get('issuer')).toBe(issuer);
    expect(parsed.searchParams.get('secret')).toBe('JBSWY3DPEHPK3PXP');
  });
});

describe('qrCodeSvg', () => {
  it('renders the URI as an SVG document', async () => {
    const svg = await qrCodeSvg(otpauthUri({ issuer: 'Bastion', accountName: 'alice@example.com', secret: newTotpSecret() }));
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });
});
