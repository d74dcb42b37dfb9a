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
    super(`Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
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

  const config = values as Config;
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

/** Settings that are fine on a laptop and dangerous on a server. */
function unsafeInProduction(config: Config): string[] {
  if (config.nodeEnv !== 'production') return [];
  const problems: string[] = [];
  if (config.databaseUrl === undefined) {
    problems.push('DATABASE_URL: must be set in production (the embedded PostgreSQL is for development and tests)');
  }
  if (config.logPretty) problems.push('BASTION_LOG_PRETTY: must be false in production (logs are shipped as JSON lines)');
  if (config.introspection === 'everyone') {
    problems.push('BASTION_INTROSPECTION: must be admins in production (the schema is an attacker\'s map)');
  }
  return problems;
}

/** A config for tests and tools: the defaults of `nodeEnv` with some values replaced. */
export function configWith(overrides: Partial<Config>, env: Environment = { NODE_ENV: 'test' }): Config {
  return Object.freeze({ ...loadConfig(env), ...overrides });
}
