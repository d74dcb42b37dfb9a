import { createHmac } from 'node:crypto';
import type { Keyring } from './keyring';

/** How a value is made canonical before indexing, so equal meanings give equal indexes. */
export type Normalizer = (value: string) => string;

export const NORMALIZERS = {
  /** Email addresses: trimmed, NFKC, lower-cased (the local part too: mobile users mistype case). */
  email: (value: string) => value.trim().normalize('NFKC').toLowerCase(),
  /** Exact text, only Unicode-normalised. */
  exact: (value: string) => value.normalize('NFKC'),
} satisfies Record<string, Normalizer>;

/**
 * HMAC-SHA-256 of the normalised value under the column's own blind-index key (docs/security.md#enc-7),
 * base64url. It reveals which rows hold equal values, and nothing else.
 */
export function computeBlindIndex(keyring: Keyring, domain: string, value: string, normalize: Normalizer = NORMALIZERS.exact): string {
  return indexUnder(keyring.blindIndexKey(domain), value, normalize);
}

/** Every index a lookup must try: one, or during a blind-index key rotation the new and the old. */
export function computeBlindIndexes(keyring: Keyring, domain: string, value: string, normalize: Normalizer = NORMALIZERS.exact): string[] {
  return keyring.blindIndexLookupKeys(domain).map((key) => indexUnder(key, value, normalize));
}

function indexUnder(key: Buffer, value: string, normalize: Normalizer): string {
  return createHmac('sha256', key).update(normalize(value), 'utf8').digest('base64url');
}
