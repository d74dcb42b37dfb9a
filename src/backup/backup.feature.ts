import { defineFeature } from '../feature';
import { BackupSchedule } from './backup-schedule';
import { registerBackupCommands } from './backup.cli';
import { Backup } from './backup.entity';
import { BackupResolver } from './backup.resolver';
import { backupRules } from './backup.rules';
import { BackupService, backupOptionsOf } from './backup.service';
import { BACKUP_SETTINGS } from './backup.settings';

/** The services this feature provides. */
export interface BackupServices {
  /** Encrypted archives of the database: taken, verified by restoring, pruned. */
  readonly backups: BackupService;
}

declare module '../feature' {
  interface Services extends BackupServices {}
}

/** Backups: encrypted, verified by restoring them, scheduled, with retention; the API and `bastion backup`. */
export const backupFeature = defineFeature<keyof BackupServices>()({
  name: 'backup',
  settings: BACKUP_SETTINGS,
  entities: [Backup],
  needs: ['audit', 'keyring', 'fileContents'],
  provides: {
    backups: ({ dataSource, databaseUrl, keyring, clock, audit, logger, config, fileContents }) =>
      new BackupService(dataSource, databaseUrl, keyring, clock, audit, logger, backupOptionsOf(config, keyring), fileContents),
  },
  start:
    async ({ backups }) =>
    () =>
      backups.stop(),
  schedule: ({ backups, clock, logger, config }) =>
    new BackupSchedule(backups, clock, logger).start(config.backupSchedule, config.backupVerifySchedule),
  resolvers: [BackupResolver],
  rules: backupRules,
  wire: ({ backups }) => [new BackupResolver(backups)],
  commands: registerBackupCommands,
});
