import { hkdfSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { KEY_BYTES } from './aes-gcm';

/** A key id: short, plain, safe inside the envelope's dot-separated header. */
export const KID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export interface KeyringMaterial {
  /** Data keys by key id; each exactly 32 bytes. */
  readonly keys: ReadonlyMap<string, Buffer>;
  /** The key new values are written with. */
  readonly currentKid: string;
  /** Root of the blind-index keys; never used to encrypt. */
  readonly blindIndexKey: Buffer;
  /**
   * During a blind-index key rotation: the root that replaces `blindIndexKey`. New indexes are
   * written under it, lookups try both, and `bastion keys rotate-blind-index` rewrites the rest.
   */
  readonly nextBlindIndexKey?: Buffer;
}

/** Domain-separation labels: an encryption key and a blind-index key never coincide. */
const ENCRYPTION_DOMAIN = 'bastion/v1/column-encryption/';
const BLIND_INDEX_DOMAIN = 'bastion/v1/blind-index/';
const BACKUP_ARCHIVE_DOMAIN = 'bastion/v1/backup-archive/';
const FILE_CONTENT_DOMAIN = 'bastion/v1/file-content/';
const FILE_URL_DOMAIN = 'bastion/v1/file-url';
const AUDIT_CHAIN_DOMAIN = 'bastion/v1/audit-chain';

/**
 * The data keys. Column keys are derived per table.column with HKDF-SHA-256 (docs/security.md#enc-4),
 * so no two columns share an AES key and each stays far below GCM's 2^32 random-IV budget.
 */
export class Keyring {
  private readonly derived = new Map<string, Buffer>();
  /** Column keys by domain, then key id: read per encrypted value, so no key string is built per lookup. */
  private readonly columnKeys = new Map<string, Map<string, Buffer>>();

  constructor(private readonly material: KeyringMaterial) {
    if (!material.keys.has(material.currentKid)) throw new Error(`current key id "${material.currentKid}" is not in the keyring`);
    for (const [kid, key] of material.keys) {
      if (!KID_PATTERN.test(kid)) throw new Error(`invalid key id "${kid}"`);
      if (key.length !== KEY_BYTES) throw new Error(`key "${kid}" must be ${KEY_BYTES} bytes`);
    }
    if (material.blindIndexKey.length !== KEY_BYTES) throw new Error(`the blind-index key must be ${KEY_BYTES} bytes`);
    if (material.nextBlindIndexKey && material.nextBlindIndexKey.length !== KEY_BYTES)
      throw new Error(`the next blind-index key must be ${KEY_BYTES} bytes`);
  }

  get currentKid(): string {
    return this.material.currentKid;
  }

  kids(): string[] {
    return [...this.material.keys.keys()];
  }

  has(kid: string): boolean {
    return this.material.keys.has(kid);
  }

  /** The AES key for one column under one key id; undefined for an unknown kid. */
  columnKey(kid: string, domain: string): Buffer | undefined {
    let byKid = this.columnKeys.get(domain);
    if (!byKid) this.columnKeys.set(domain, (byKid = new Map<string, Buffer>()));
    let key = byKid.get(kid);
    if (!key) {
      const dataKey = this.material.keys.get(kid);
      if (!dataKey) return undefined;
      key = this.derive(`e:${kid}:${domain}`, dataKey, ENCRYPTION_DOMAIN + domain);
      byKid.set(kid, key);
    }
    return key;
  }

  /** The HMAC key one column's blind indexes are written with (the next root's, during a rotation). */
  blindIndexKey(domain: string): Buffer {
    const next = this.material.nextBlindIndexKey;
    return next
      ? this.derive(`bn:${domain}`, next, BLIND_INDEX_DOMAIN + domain)
      : this.derive(`b:${domain}`, this.material.blindIndexKey, BLIND_INDEX_DOMAIN + domain);
  }

  /** The HMAC keys a lookup tries: the writing key, then, during a rotation, the one it replaces. */
  blindIndexLookupKeys(domain: string): Buffer[] {
    const writing = this.blindIndexKey(domain);
    return this.rotatingBlindIndexes
      ? [writing, this.derive(`b:${domain}`, this.material.blindIndexKey, BLIND_INDEX_DOMAIN + domain)]
      : [writing];
  }

  /** Whether a blind-index key rotation is under way (a next root is configured). */
  get rotatingBlindIndexes(): boolean {
    return this.material.nextBlindIndexKey !== undefined;
  }

  /** The HMAC key of the audit log's chain under data key `kid`; undefined for an unknown kid. */
  auditChainKey(kid: string): Buffer | undefined {
    const dataKey = this.material.keys.get(kid);
    return dataKey && this.derive(`a:${kid}`, dataKey, AUDIT_CHAIN_DOMAIN);
  }

  /**
   * The keys of one backup archive: derived from data key `kid` with the archive's random salt,
   * so every archive has keys of its own (and GCM nonces can never repeat across archives).
   * `check` is published in the archive header: it tells a wrong key from a damaged archive.
   */
  archiveKeys(kid: string, salt: Buffer): { encryption: Buffer; check: Buffer } | undefined {
    const dataKey = this.material.keys.get(kid);
    if (!dataKey) return undefined;
    return {
      encryption: Buffer.from(hkdfSync('sha256', dataKey, salt, `${BACKUP_ARCHIVE_DOMAIN}encryption`, KEY_BYTES)),
      check: Buffer.from(hkdfSync('sha256', dataKey, salt, `${BACKUP_ARCHIVE_DOMAIN}key-check`, 16)),
    };
  }

  /**
   * The key of one stored file content: derived from data key `kid` with the content's random
   * salt, so every file (and every variant) has a key of its own.
   */
  fileContentKey(kid: string, salt: Buffer): Buffer | undefined {
    const dataKey = this.material.keys.get(kid);
    return dataKey && Buffer.from(hkdfSync('sha256', dataKey, salt, `${FILE_CONTENT_DOMAIN}encryption`, KEY_BYTES));
  }

  /** The HMAC key of signed file URLs under data key `kid`; undefined for an unknown kid. */
  fileUrlKey(kid: string): Buffer | undefined {
    const dataKey = this.material.keys.get(kid);
    return dataKey && this.derive(`f:${kid}`, dataKey, FILE_URL_DOMAIN);
  }

  private derive(cacheKey: string, root: Buffer, info: string): Buffer {
    let key = this.derived.get(cacheKey);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), info, KEY_BYTES));
      this.derived.set(cacheKey, key);
    }
    return key;
  }

  /** A safe description for logs: key ids only, never key bytes. */
  toJSON(): { currentKid: string; kids: string[] } {
    return { currentKid: this.currentKid, kids: this.kids() };
  }

  /** console.log and util.inspect show the same safe description. */
  [inspect.custom](): string {
    return `Keyring ${JSON.stringify(this.toJSON())}`;
  }
}

/** A fresh random 32-byte key, base64 (what `bastion keys generate` prints). */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}
