import { FrozenClock } from '../../../src/clock';
import { FileUrls } from '../../../src/files/file-urls';
import { testKeyring } from '../../support/test-keys';

const FILE = '0f9e8d7c-6b5a-4c3d-8e2f-1a2b3c4d5e6f';
const UPLOAD = '11111111-2222-4333-8444-555555555555';

function urls(kid: 'k1' | 'k2' = 'k1', clock = new FrozenClock('2026-03-01T12:00:00.000Z')) {
  return { clock, urls: new FileUrls(() => testKeyring(kid), clock, 300_000) };
}

const queryOf = (text: string) => Object.fromEntries(new URLSearchParams(text));

describe('FileUrls: upload tokens', () => {
  it('names the upload it was made for, and nothing else', () => {
    const { urls: signer } = urls();
    const token = signer.uploadToken(UPLOAD);
    expect(signer.uploadIdOf(token)).toBe(UPLOAD);
    const [id, kid, mac] = token.split('.');
    const otherId = '11111111-2222-4333-8444-555555555556';
    expect(signer.uploadIdOf(`${otherId}.${kid}.${mac}`)).toBeUndefined();
    expect(signer.uploadIdOf(`${id}.${kid}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
    expect(signer.uploadIdOf(`${id}.unknown.${mac}`)).toBeUndefined();
    expect(signer.uploadIdOf(`${id}.${kid}.${mac}.extra`)).toBeUndefined();
    expect(signer.uploadIdOf('')).toBeUndefined();
  });

  it('keeps working after a rotation while the old key is in the keyring', () => {
    const token = urls('k1').urls.uploadToken(UPLOAD);
    expect(urls('k2').urls.uploadIdOf(token)).toBe(UPLOAD);
  });
});

describe('FileUrls: download URLs', () => {
  it('verifies for its file and variant until it expires, between 4 and 5 minutes later', () => {
    const { urls: signer, clock } = urls();
    const query = queryOf(signer.downloadQuery(FILE, 'ORIGINAL'));
    expect(signer.checkDownload(FILE, 'ORIGINAL', query)).toBeUndefined();
    expect(signer.checkDownload(FILE, 'THUMB_256', query)).toBe('invalid');
    const lifetime = Number(query.expires) * 1000 - clock.now().getTime();
    expect(lifetime).toBeGreaterThanOrEqual(240_000);
    expect(lifetime).toBeLessThan(300_000);
    clock.advance(lifetime - 1);
    expect(signer.checkDownload(FILE, 'ORIGINAL', query)).toBeUndefined();
    clock.advance(1);
    expect(signer.checkDownload(FILE, 'ORIGINAL', query)).toBe('expired');
  });

  it('gives the same URL within a minute (image caches hit), a new one after', () => {
    const { urls: signer, clock } = urls('k1', new FrozenClock('2026-03-01T12:00:30.000Z'));
    const first = signer.downloadQuery(FILE, 'ORIGINAL');
    clock.advance(10_000);
    expect(signer.downloadQuery(FILE, 'ORIGINAL')).toBe(first);
    clock.advance(30_000);
    expect(signer.downloadQuery(FILE, 'ORIGINAL')).not.toBe(first);
  });

  it('refuses a changed expiry, a forged signature and malformed parts', () => {
    const { urls: signer } = urls();
    const query = queryOf(signer.downloadQuery(FILE, 'ORIGINAL'));
    expect(signer.checkDownload(FILE, 'ORIGINAL', { ...query, expires: String(Number(query.expires) + 3600) })).toBe('invalid');
    expect(signer.checkDownload(FILE, 'ORIGINAL', { ...query, sig: 'A'.repeat(43) })).toBe('invalid');
    expect(signer.checkDownload(FILE, 'ORIGINAL', { ...query, kid: 'nope' })).toBe('invalid');
    expect(signer.checkDownload(FILE, 'ORIGINAL', { ...query, expires: ['1', '2'] })).toBe('invalid');
    expect(signer.checkDownload('not-a-uuid', 'ORIGINAL', query)).toBe('invalid');
    expect(signer.checkDownload(FILE, 'ORIGINAL', {})).toBe('invalid');
  });
});
