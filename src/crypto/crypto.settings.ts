import type { SettingValues, SettingsTable } from '../config';
import { SettingProblem, quote, spec } from '../config/settings';

/** One data key of the keyring. */
export interface EncryptionKeySetting {
  readonly kid: string;
  readonly key: Buffer;
}

const KID = /^[A-Za-z0-9_-]{1,32}$/;

function base64Key(raw: string, what: string): Buffer {
  const key = Buffer.from(raw.trim(), 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw.trim())) {
    throw new SettingProblem(`${what} must be exactly 32 bytes, base64-encoded (generate one with \`npx bastion keys generate\`)`);
  }
  return key;
}

function encryptionKeyList(raw: string): readonly EncryptionKeySetting[] {
  const keys: EncryptionKeySetting[] = [];
  for (const entry of raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const separator = entry.indexOf(':');
    const kid = separator > 0 ? entry.slice(0, separator) : '';
    if (!KID.test(kid))
      throw new SettingProblem('must be a comma-separated list of kid:base64key, with key ids of letters, digits, _ and - (at most 32)');
    if (keys.some((known) => known.kid === kid)) throw new SettingProblem(`names key id "${kid}" twice`);
    keys.push({ kid, key: base64Key(entry.slice(separator + 1), `key "${kid}"`) });
  }
  if (keys.length === 0) throw new SettingProblem('must name at least one kid:base64key');
  return Object.freeze(keys);
}

/** A key id: letters, digits, _ and -, at most 32. */
export function keyId(raw: string): string {
  if (!KID.test(raw.trim())) throw new SettingProblem(`must be a key id of letters, digits, _ and - (got ${quote(raw)})`);
  return raw.trim();
}

const specs = {
  encryptionKeys: spec<readonly EncryptionKeySetting[] | undefined>({
    env: 'BASTION_ENCRYPTION_KEYS',
    description:
      'Data keys for encrypted columns, as kid:base64key,kid:base64key (each 32 bytes). Unset ' +
      'in development: generated once into BASTION_DATA_DIR/keys.json. Required in production.',
    fallback: () => undefined,
    defaultText: 'development: generated; production: required',
    parse: encryptionKeyList,
    secret: true,
    inProduction: { mustBeSet: 'generate keys with `npx bastion keys generate`' },
  }),
  encryptionKeyId: spec<string | undefined>({
    env: 'BASTION_ENCRYPTION_KEY_ID',
    description: 'The key id new values are encrypted with. May be omitted when BASTION_ENCRYPTION_KEYS holds one key.',
    fallback: () => undefined,
    defaultText: 'the only key',
    parse: keyId,
  }),
  blindIndexKey: spec<Buffer | undefined>({
    env: 'BASTION_BLIND_INDEX_KEY',
    description:
      'Root key (32 bytes, base64) of the blind indexes that make encrypted columns searchable by equality. ' +
      'To change it, set BASTION_BLIND_INDEX_KEY_NEXT, run bastion keys rotate-blind-index, then make the next key this one.',
    fallback: () => undefined,
    defaultText: 'development: generated; production: required',
    parse: (raw) => base64Key(raw, 'the key'),
    secret: true,
    inProduction: { mustBeSet: '' },
  }),
  blindIndexKeyNext: spec<Buffer | undefined>({
    env: 'BASTION_BLIND_INDEX_KEY_NEXT',
    description:
      'During a blind-index key rotation only: the root key (32 bytes, base64) replacing BASTION_BLIND_INDEX_KEY. ' +
      'New indexes are written under it and lookups try both until bastion keys rotate-blind-index has rewritten every row.',
    fallback: () => undefined,
    defaultText: 'unset',
    parse: (raw) => base64Key(raw, 'the key'),
    secret: true,
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** The keyring of the encrypted columns and the blind indexes. */
export const CRYPTO_SETTINGS: SettingsTable = {
  specs,
  consistency: (config) => {
    const problems: string[] = [];
    if ((config.encryptionKeys === undefined) !== (config.blindIndexKey === undefined)) {
      problems.push('BASTION_ENCRYPTION_KEYS and BASTION_BLIND_INDEX_KEY: set both or neither');
    }
    if (config.encryptionKeys && config.encryptionKeyId && !config.encryptionKeys.some((entry) => entry.kid === config.encryptionKeyId)) {
      problems.push(`BASTION_ENCRYPTION_KEY_ID: "${config.encryptionKeyId}" is not a key id in BASTION_ENCRYPTION_KEYS`);
    }
    if (config.encryptionKeys && config.encryptionKeys.length > 1 && !config.encryptionKeyId) {
      problems.push('BASTION_ENCRYPTION_KEY_ID: must name the current key when BASTION_ENCRYPTION_KEYS holds several');
    }
    if (config.encryptionKeyId && !config.encryptionKeys) problems.push('BASTION_ENCRYPTION_KEY_ID: set without BASTION_ENCRYPTION_KEYS');
    if (config.blindIndexKeyNext && !config.blindIndexKey)
      problems.push('BASTION_BLIND_INDEX_KEY_NEXT: set without BASTION_BLIND_INDEX_KEY');
    if (config.blindIndexKeyNext && config.blindIndexKey?.equals(config.blindIndexKeyNext))
      problems.push('BASTION_BLIND_INDEX_KEY_NEXT: the same key as BASTION_BLIND_INDEX_KEY (generate a new one: bastion keys generate)');
    return problems;
  },
};
