import { Config, Environment, SettingSpecs, SettingsTable, loadConfig as parseConfig, readEnvironment } from './config';
import { PLATFORM_SETTINGS } from './config/platform.settings';
import { FEATURES } from './features';

/** Every settings table of this build: the platform's, then each feature's, in list order. */
export const SETTINGS_TABLES: readonly SettingsTable[] = [
  PLATFORM_SETTINGS,
  ...FEATURES.flatMap((feature) => (feature.settings ? [feature.settings] : [])),
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
