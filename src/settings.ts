import { Config, Environment, SettingSpecs, SettingsTable, loadConfig as parseConfig, readEnvironment } from './config';
import { ACCESS_SETTINGS } from './access/access.settings';
import { ACCOUNTS_SETTINGS } from './accounts/accounts.settings';
import { AUDIT_SETTINGS } from './audit/audit.settings';
import { BACKUP_SETTINGS } from './backup/backup.settings';
import { CONSOLE_SETTINGS } from './console/console.settings';
import { PLATFORM_SETTINGS } from './config/platform.settings';
import { CRYPTO_SETTINGS } from './crypto/crypto.settings';
import { FILES_SETTINGS } from './files/files.settings';
import { FIREWALL_SETTINGS } from './firewall/firewall.settings';
import { MAIL_SETTINGS } from './mail/mail.settings';
import { MODELS_SETTINGS } from './models/models.settings';
import { REALTIME_SETTINGS } from './realtime/realtime.settings';
import { SELF_AUDIT_SETTINGS } from './self-audit/self-audit.settings';

/**
 * Every settings table of this build: the platform's, then each feature's, in the order of
 * `features.ts`. Imported from the settings files themselves, not through the features, so a CLI
 * command reads its configuration without loading every feature (tests/unit/cli-commands.test.ts
 * checks this list against the features' `settings`).
 */
export const SETTINGS_TABLES: readonly SettingsTable[] = [
  PLATFORM_SETTINGS,
  AUDIT_SETTINGS,
  CRYPTO_SETTINGS,
  MAIL_SETTINGS,
  ACCOUNTS_SETTINGS,
  ACCESS_SETTINGS,
  FIREWALL_SETTINGS,
  MODELS_SETTINGS,
  REALTIME_SETTINGS,
  FILES_SETTINGS,
  BACKUP_SETTINGS,
  SELF_AUDIT_SETTINGS,
  CONSOLE_SETTINGS,
];

/** Every setting by key (the README's configuration table documents each). */
export const SETTINGS: SettingSpecs = Object.freeze(Object.fromEntries(SETTINGS_TABLES.flatMap((table) => Object.entries(table.specs))));

/** Parses and checks every setting of this build; throws one ConfigError listing all problems. */
export function loadConfig(env: Environment, cwd: string = process.cwd()): Config {
  return parseConfig(env, SETTINGS_TABLES, cwd);
}

/** The process's own configuration: its environment and the `.env` of its working directory. */
export function loadProcessConfig(): Config {
  return loadConfig(readEnvironment(process.env, process.cwd()), process.cwd());
}

/** A config for tests and tools: the defaults of `nodeEnv` with some values replaced. */
export function configWith(overrides: Partial<Config>, env: Environment = { NODE_ENV: 'test' }): Config {
  return Object.freeze({ ...loadConfig(env), ...overrides });
}
