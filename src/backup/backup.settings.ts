import path from 'node:path';
import type { SettingValues, SettingsTable } from '../config';
import { cronOrOff, integer, nonEmpty, spec } from '../config/settings';
import { keyId } from '../crypto/crypto.settings';

const specs = {
  backupDir: spec<string | undefined>({
    env: 'BACKUP_DIR',
    description: 'Folder for backup archives (created mode 0700; each archive 0600).',
    fallback: () => undefined,
    defaultText: 'BASTION_DATA_DIR/backups',
    parse: nonEmpty,
  }),
  backupCopyDir: spec<string | undefined>({
    env: 'BACKUP_COPY_DIR',
    description:
      'A second folder every new archive is copied to (another disk, or a mounted remote: the 3-2-1 rule). Retention prunes it too.',
    fallback: () => undefined,
    defaultText: 'unset (one copy; the self-audit warns)',
    parse: nonEmpty,
  }),
  backupSchedule: spec<string | undefined>({
    env: 'BACKUP_SCHEDULE',
    description: 'When a backup is taken by itself (cron, UTC), on one instance, followed by retention; "off" for on-demand only.',
    fallback: () => '7 2 * * *',
    defaultText: '7 2 * * * (daily, 02:07 UTC)',
    parse: cronOrOff,
  }),
  backupVerifySchedule: spec<string | undefined>({
    env: 'BACKUP_VERIFY_SCHEDULE',
    description:
      'When the newest archive is restored into a scratch database and compared with ' +
      'its manifest (cron, UTC), on one instance; "off" to verify on demand only.',
    fallback: () => '47 2 * * *',
    defaultText: '47 2 * * * (daily, after the backup)',
    parse: cronOrOff,
  }),
  backupKeep: spec<number>({
    env: 'BACKUP_KEEP',
    description:
      'Restorable archives retention keeps (newest first); 0 for no count limit. The newest restorable and the newest verified archive are always kept.',
    fallback: () => 14,
    defaultText: '14',
    parse: integer(0, 100_000),
  }),
  backupMaxAgeDays: spec<number | undefined>({
    env: 'BACKUP_MAX_AGE_DAYS',
    description: 'Archives older than this many days are pruned as well (with the same two exceptions).',
    fallback: () => undefined,
    defaultText: 'unset (no age limit)',
    parse: integer(1, 36_500),
  }),
  backupKeyId: spec<string | undefined>({
    env: 'BACKUP_KEY_ID',
    description:
      'The key id in BASTION_ENCRYPTION_KEYS that archives are encrypted with (a key of their ' +
      'own is best). Keep every key that retained archives name: lose the key, lose the backups.',
    fallback: () => undefined,
    defaultText: 'the current column key',
    parse: keyId,
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** Where archives go, when they are taken and verified, how many are kept, and their key. */
export const BACKUP_SETTINGS: SettingsTable = {
  specs,
  // After the platform's: dataDir is absolute by now.
  resolve: (config, cwd) => ({
    backupDir: config.backupDir ? path.resolve(cwd, config.backupDir) : path.join(config.dataDir, 'backups'),
    backupCopyDir: config.backupCopyDir ? path.resolve(cwd, config.backupCopyDir) : undefined,
  }),
  consistency: (config) => {
    const problems: string[] = [];
    if (config.backupKeyId && !config.encryptionKeys)
      problems.push('BACKUP_KEY_ID: set without BASTION_ENCRYPTION_KEYS (the development key file has one key)');
    if (config.backupKeyId && config.encryptionKeys && !config.encryptionKeys.some((entry) => entry.kid === config.backupKeyId)) {
      problems.push(`BACKUP_KEY_ID: "${config.backupKeyId}" is not a key id in BASTION_ENCRYPTION_KEYS`);
    }
    if (config.backupCopyDir && config.backupCopyDir === config.backupDir)
      problems.push('BACKUP_COPY_DIR: must be another folder than BACKUP_DIR (a copy on the same disk is no copy)');
    return problems;
  },
};
