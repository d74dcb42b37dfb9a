import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock';
import { KID_PATTERN, Keyring } from '../crypto/keyring';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAC = /^[A-Za-z0-9_-]{43}$/;

/** Why a signed download URL was refused (the client sees only 403 either way). */
export type UrlRefusal = 'expired' | 'invalid';

/**
 * Capability URLs for files, HMAC-SHA-256 under a key derived from the keyring (the signing data
 * key's id travels with the URL, so URLs signed before a rotation work until they expire while
 * that key stays in the keyring):
 * - an upload URL names one upload and works for its tus requests until the upload expires;
 * - a download URL names a file, a variant and an expiry, and works without a bearer token, so
 *   image loaders can fetch it.
 * Every part is checked by its shape before any key is touched, and MACs are compared in constant time.
 */
export class FileUrls {
  constructor(
    private readonly keyring: () => Keyring,
    private readonly clock: Clock,
    /** How long a download URL lives. */
    private readonly downloadTtlMs: number,
  ) {}

  /** The last path segment of an upload's URL: `<uploadId>.<kid>.<mac>`. */
  uploadToken(uploadId: string): string {
    const kid = this.keyring().currentKid;
    return `${uploadId}.${kid}.${this.mac(kid, `upload\n${uploadId}`)}`;
  }

  /** The upload a token names, when its MAC holds. */
  uploadIdOf(token: string): string | undefined {
    const [uploadId, kid, mac, ...rest] = token.split('.');
    if (rest.length > 0 || !UUID.test(uploadId ?? '') || !KID_PATTERN.test(kid ?? '') || !MAC.test(mac ?? '')) return undefined;
    return this.verified(kid, `upload\n${uploadId}`, mac) ? uploadId : undefined;
  }

  /**
   * The query of a download URL for a file's variant. Its expiry is rounded up to a fifth of the
   * lifetime, so a list shown twice within a minute gives the same URLs and the app's image cache
   * hits; each URL lives between 4/5 of the lifetime and all of it.
   */
  downloadQuery(fileId: string, variant: string): string {
    const step = Math.max(1_000, Math.floor(this.downloadTtlMs / 5));
    const expires = Math.ceil((this.clock.now().getTime() + this.downloadTtlMs - step) / step) * step;
    const seconds = Math.floor(expires / 1000);
    const kid = this.keyring().currentKid;
    return `expires=${seconds}&kid=${kid}&sig=${this.mac(kid, downloadMessage(fileId, variant, seconds))}`;
  }

  /** Checks a download URL's query for a file's variant. */
  checkDownload(fileId: string, variant: string, query: Readonly<Record<string, unknown>>): UrlRefusal | undefined {
    const { expires, kid, sig } = query;
    if (typeof expires !== 'string' || !/^\d{1,12}$/.test(expires) || typeof kid !== 'string' || !KID_PATTERN.test(kid)) return 'invalid';
    if (typeof sig !== 'string' || !MAC.test(sig) || !UUID.test(fileId)) return 'invalid';
    if (!this.verified(kid, downloadMessage(fileId, variant, Number(expires)), sig)) return 'invalid';
    return Number(expires) * 1000 <= this.clock.now().getTime() ? 'expired' : undefined;
  }

  private mac(kid: string, message: string): string {
    const key = this.keyring().fileUrlKey(kid);
    if (!key) throw new Error(`key "${kid}" is not in the keyring`);
    return createHmac('sha256', key).update(message).digest('base64url');
  }

  private verified(kid: string, message: string, mac: string): boolean {
    if (!this.keyring().has(kid)) return false;
    return timingSafeEqual(Buffer.from(this.mac(kid, message)), Buffer.from(mac));
  }
}

function downloadMessage(fileId: string, variant: string, expiresSeconds: number): string {
  return `download\n${fileId}\n${variant}\n${expiresSeconds}`;
}
