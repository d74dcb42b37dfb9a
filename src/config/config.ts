import fs from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { NodeEnv, SettingProblem, SettingSpec, oneOf, spec } from './settings';

/**
 * The parsed, validated and frozen settings, built once at boot by `loadConfig`. The platform's
 * settings (platform.settings.ts) and each feature's (its `x.settings.ts`) add their values by
 * declaration merging, so a feature's code sees exactly the settings that exist.
 */
export interface Config {
  readonly nodeEnv: NodeEnv;
}

/** A setting's spec, by key. */
export type SettingSpecs = Readonly<Record<string, SettingSpec<unknown>>>;

/** The values a table of specs parses to: what a settings file adds to Config. */
export type SettingValues<S extends SettingSpecs> = { readonly [K in keyof S]: S[K] extends SettingSpec<infer T> ? T : never };

/** The settings one part of Bastion reads, and the checks that need several of them at once. */
export interface SettingsTable<S extends SettingSpecs = SettingSpecs> {
  readonly specs: S;
  /** Final values that depend on others or on the working directory (folders made absolute). */
  readonly resolve?: (config: Config, cwd: string) => Partial<Config>;
  /** Problems of settings that only make sense together, checked once every value parsed. */
  readonly consistency?: (config: Config) => readonly string[];
  /** What production refuses in settings read together (a value alone is `inProduction`'s), reported with the refused values. */
  readonly production?: (config: Config) => readonly string[];
}

/** NODE_ENV, read first: every other default depends on it. */
export const NODE_ENV = spec<NodeEnv>({
  env: 'NODE_ENV',
  description: 'development, test or production. production switches every default below to its safe value and refuses unsafe settings.',
  fallback: () => 'development',
  defaultText: 'development',
  parse: oneOf(['development', 'production', 'test'] as const),
});

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

/**
 * Parses and checks every setting of the tables; throws one ConfigError listing all problems:
 * unreadable values first, then settings that contradict each other, then what production
 * refuses (settings it needs that are missing, then values it does not allow).
 */
export function loadConfig(env: Environment, tables: readonly SettingsTable[], cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const nodeEnv = parseSetting(NODE_ENV, env, 'development', problems) ?? 'development';
  const values: Record<string, unknown> = { nodeEnv };
  const specs = tables.flatMap((table) => Object.entries(table.specs));
  for (const [key, setting] of specs) {
    if (setting !== NODE_ENV) values[key] = parseSetting(setting, env, nodeEnv, problems);
  }
  for (const table of tables) Object.assign(values, table.resolve?.(values as unknown as Config, cwd));

  const config = values as unknown as Config;
  if (problems.length === 0) problems.push(...tables.flatMap((table) => table.consistency?.(config) ?? []));
  if (nodeEnv === 'production') {
    problems.push(...unsafeInProduction(specs, values));
    // Values that did not parse are undefined here: their own problem is reported already.
    problems.push(...tables.flatMap((table) => table.production?.(config) ?? []));
  }
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

/** Settings that are fine on a laptop and dangerous on a server: the missing ones, then the refused values. */
function unsafeInProduction(specs: readonly [string, SettingSpec<unknown>][], values: Record<string, unknown>): string[] {
  const missing: string[] = [];
  const refused: string[] = [];
  for (const [key, { env, inProduction }] of specs) {
    if (!inProduction) continue;
    if ('mustBeSet' in inProduction) {
      if (values[key] === undefined)
        missing.push(`${env}: must be set in production${inProduction.mustBeSet ? ` (${inProduction.mustBeSet})` : ''}`);
    } else if (values[key] !== undefined) {
      const problem = inProduction.refuse(values[key]);
      if (problem) refused.push(`${env}: ${problem}`);
    }
  }
  return [...missing, ...refused];
}
