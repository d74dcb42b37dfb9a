import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { NodeEnv, SETTINGS, SettingKey, SettingProblem, SettingSpec } from './settings';

type ValueOf<S> = S extends SettingSpec<infer T> ? T : never;

/** The parsed, validated and frozen settings. Built once at boot by `loadConfig`. */
export type Config = Readonly<{ [K in SettingKey]: ValueOf<(typeof SETTINGS)[K]> }>;

/** Every problem found in the environment, reported together. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Reads the process environment merged over an optional `.env` file in `cwd`.
 * Real environment variables win over the file, as in every twelve-factor tool.
 */
export function readEnvironment(processEnv: Environment, cwd: string): Environment {
  const file = path.join(cwd, '.env');
  if (!fs.existsSync(file)) return processEnv;
  return { ...parseEnv(fs.readFileSync(file, 'utf8')), ...processEnv };
}

/** Parses and checks every setting; throws one ConfigError listing all problems. */
export function loadConfig(env: Environment, cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const nodeEnv = parseSetting(SETTINGS.nodeEnv, env, 'development', problems) ?? 'development';
  const values: Record<string, unknown> = { nodeEnv };

  for (const [key, setting] of Object.entries(SETTINGS) as [SettingKey, SettingSpec<unknown>][]) {
    if (key === 'nodeEnv') continue;
    values[key] = parseSetting(setting, env, nodeEnv, problems);
  }
  values.dataDir = path.resolve(cwd, values.dataDir as string);
  values.backupDir = values.backupDir ? path.resolve(cwd, values.backupDir as string) : path.join(values.dataDir as string, 'backups');
  if (values.backupCopyDir) values.backupCopyDir = path.resolve(cwd, values.backupCopyDir as string);

  const config = values as Config;
  if (problems.length === 0) problems.push(...inconsistent(config));
  problems.push(...unsafeInProduction(config));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

function parseSetting<T>(setting: SettingSpec<T>, env: Environment, nodeEnv: NodeEnv, problems: string[]): T | undefined {
  const raw = env[setting.env];
  if (raw === undefined || raw === '') return setting.fallback(nodeEnv);
  try {
    return setting.parse(raw);
  } catch (error) {
    if (!(error instanceof SettingProblem)) throw error;
    problems.push(`${setting.env}: ${setting.secret ? error.message.replace(/\(got .*\)$/, '').trim() : error.message}`);
    return undefined;
  }
}

/** Settings that only make sense together. */
function inconsistent(config: Config): string[] {
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
  if (config.backupKeyId && !config.encryptionKeys)
    problems.push('BACKUP_KEY_ID: set without BASTION_ENCRYPTION_KEYS (the development key file has one key)');
  if (config.backupKeyId && config.encryptionKeys && !config.encryptionKeys.some((entry) => entry.kid === config.backupKeyId)) {
    problems.push(`BACKUP_KEY_ID: "${config.backupKeyId}" is not a key id in BASTION_ENCRYPTION_KEYS`);
  }
  if (config.backupCopyDir && config.backupCopyDir === config.backupDir)
    problems.push('BACKUP_COPY_DIR: must be another folder than BACKUP_DIR (a copy on the same disk is no copy)');
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined))
    problems.push('TLS_CERT_FILE and TLS_KEY_FILE: set both or neither');
  return problems;
}

/** Settings that are fine on a laptop and dangerous on a server. */
function unsafeInProduction(config: Config): string[] {
  if (config.nodeEnv !== 'production') return [];
  const problems: string[] = [];

  if (config.databaseUrl === undefined) {
    problems.push('DATABASE_URL: must be set in production (the embedded PostgreSQL is for development and tests)');
  }
  if (config.encryptionKeys === undefined) {
    problems.push('BASTION_ENCRYPTION_KEYS: must be set in production (generate keys with `npx bastion keys generate`)');
  }
  if (config.blindIndexKey === undefined) problems.push('BASTION_BLIND_INDEX_KEY: must be set in production');
  if (config.smtpUrl === undefined)
    problems.push('SMTP_URL: must be set in production (the log transport would write reset links to the log)');
  if (config.logPretty) problems.push('BASTION_LOG_PRETTY: must be false in production (logs are shipped as JSON lines)');
  if (config.introspection === 'everyone') {
    problems.push("BASTION_INTROSPECTION: must be admins in production (the schema is an attacker's map)");
  }
  return problems;
}

/** The process's own configuration: its environment and the `.env` of its working directory. */
export function loadProcessConfig(): Config {
  return loadConfig(readEnvironment(process.env, process.cwd()), process.cwd());
}

/** A config for tests and tools: the defaults of `nodeEnv` with some values replaced. */
export function configWith(overrides: Partial<Config>, env: Environment = { NODE_ENV: 'test' }): Config {
  return Object.freeze({ ...loadConfig(env), ...overrides });
}
