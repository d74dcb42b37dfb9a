import { defineFeature } from '../feature';
import { activeKeyring, installKeyring } from './active-keyring';
import { BlindIndexSubscriber } from './blind-index.subscriber';
import { CRYPTO_SETTINGS } from './crypto.settings';
import { EncryptionKeyRecord } from './encryption-key.entity';
import { KeyService, encryptedColumns } from './key.service';
import type { Keyring } from './keyring';
import { registerCryptoCommands } from './keys.cli';
import { loadKeyring } from './load-keyring';

/** The services this feature provides. */
export interface CryptoServices {
  /** The column keys (BASTION_ENCRYPTION_KEYS, or the development key file). */
  readonly keyring: Keyring;
  /** Key ids in use, re-encryption, forgetting a key. */
  readonly keys: KeyService;
}

declare module '../feature' {
  interface Services extends CryptoServices {}
}

/**
 * Encrypted columns: the keyring (installed before the database opens, since the columns'
 * transformers read it), the blind indexes, key records, and `bastion keys`.
 */
export const cryptoFeature = defineFeature<keyof CryptoServices>()({
  name: 'crypto',
  settings: CRYPTO_SETTINGS,
  entities: [EncryptionKeyRecord],
  subscribers: [BlindIndexSubscriber],
  needs: ['audit'],
  provides: {
    keyring: () => activeKeyring(),
    keys: ({ dataSource, keyring, clock, audit }) => new KeyService(dataSource, keyring, clock, audit),
  },
  boot: (config, logger) => installKeyring(loadKeyring(config, logger)),
  start: async ({ dataSource, keys }) => {
    encryptedColumns(dataSource); // fails fast on an encrypted column whose AAD domain is not its table.column
    await keys.assertKeyringCoversData();
  },
  commands: registerCryptoCommands,
});
