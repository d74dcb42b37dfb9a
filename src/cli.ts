import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { Command, CommanderError } from 'commander';
import { ConfigError } from './config';
import type { Config } from './config';
import type { Tables } from './db/data-source';
import type { Database } from './db/database';
import type { CommandTools, Feature, Services } from './feature';
import type { Logger } from './logging';
import { BASTION_VERSION, PROJECT_ROOT } from './project';

/*
 * This file loads almost nothing up front: `bastion --help` needs only the command tree. Each
 * command imports what it uses when it runs (a feature's commands, the features, the server), so
 * `bastion backup list` loads the database and the backup catalogue, not the GraphQL server.
 */

/** A module, loaded when first asked for: a static import deferred to the command that uses it. */
function lazy<M>(id: string): M {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(id) as M;
}

/** An expected failure: printed as one line, exit code 1. */
class CliFailure extends Error {}

/**
 * The server logs to stdout (log collectors read it); every other command logs to stderr, so its
 * stdout holds only its result (`bastion audit --json | jq`).
 */
function bootLogger(config: Config, stream: 'stdout' | 'stderr'): Logger {
  const { createLogger } = lazy<typeof import('./logging')>('./logging');
  return createLogger({ level: config.logLevel, pretty: config.logPretty, stream });
}

async function serve(): Promise<void> {
  const [{ loadProcessConfig }, { startBastion }, { systemClock }] = [
    lazy<typeof import('./settings')>('./settings'),
    lazy<typeof import('./main')>('./main'),
    lazy<typeof import('./clock')>('./clock'),
  ];
  const config = loadProcessConfig();
  const logger = bootLogger(config, 'stdout');
  const started = Date.now();
  const bastion = await startBastion(config, { logger, clock: systemClock });
  logger.info({ url: bastion.url, startupMs: Date.now() - started }, `Bastion is serving ${bastion.url}`);

  let firstSignalAt: number | undefined;
  const shutdown = (signal: NodeJS.Signals) => {
    if (firstSignalAt !== undefined) {
      // npm and the terminal both deliver one Ctrl-C; only a later, deliberate second one forces.
      if (Date.now() - firstSignalAt < 2_000) return;
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    firstSignalAt = Date.now();
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    bastion.stop().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

/**
 * The configuration, the boots (the keyring), and the database with these tables, closed
 * afterwards. `features` are the ones whose boot runs; the tables default to theirs.
 */
async function openWith<T>(
  features: readonly Feature[],
  tables: Tables,
  work: (database: Database, logger: Logger, config: Config) => Promise<T>,
): Promise<T> {
  const [{ loadProcessConfig }, { openDatabase }] = [
    lazy<typeof import('./settings')>('./settings'),
    lazy<typeof import('./db/database')>('./db/database'),
  ];
  const config = loadProcessConfig();
  const logger = bootLogger(config, 'stderr');
  for (const feature of features) feature.boot?.(config, logger);
  const database = await openDatabase(config, logger, { migrate: false, tables });
  try {
    return await work(database, logger, config);
  } finally {
    await database.close();
  }
}

/** Every feature (loaded on first use: they bring the GraphQL layer with them). */
function allFeatures(): readonly Feature[] {
  return lazy<typeof import('./features')>('./features').FEATURES;
}

/** The configuration, each feature's boot (the keyring), and the database, closed afterwards. */
async function withDatabase<T>(work: (database: Database, logger: Logger, config: Config) => Promise<T>): Promise<T> {
  const [features, { tablesOf }] = [allFeatures(), lazy<typeof import('./feature')>('./feature')];
  return openWith(features, tablesOf(features), work);
}

/** Refuses a database with pending migrations, as the server's services would. */
async function requireMigrated(database: Database): Promise<void> {
  const { MigrationsPendingError } = lazy<typeof import('./db/database')>('./db/database');
  if (await database.dataSource.showMigrations()) throw new MigrationsPendingError();
}

/**
 * Only these tables, without loading the other features: the keyring (crypto's boot, the only
 * boot there is) and a migrated database, as withServices has them.
 */
async function withTables<T>(tables: Tables, work: (database: Database, logger: Logger, config: Config) => Promise<T>): Promise<T> {
  const { cryptoFeature } = lazy<typeof import('./crypto/crypto.feature')>('./crypto/crypto.feature');
  return openWith([cryptoFeature], tables, async (database, logger, config) => {
    await requireMigrated(database);
    return work(database, logger, config);
  });
}

/** The full service graph, as the server has it (for commands that act like the API). */
async function withServices<T>(work: (services: Services, database: Database) => Promise<T>): Promise<T> {
  const [{ featuresFor }, { startServices }, { systemClock }] = [
    lazy<typeof import('./features')>('./features'),
    lazy<typeof import('./services')>('./services'),
    lazy<typeof import('./clock')>('./clock'),
  ];
  return withDatabase(async (database, logger, config) => {
    await requireMigrated(database);
    // As the server runs them: a command must not seed the sample models' grants where the server serves none.
    const features = featuresFor(config);
    const running = await startServices(
      { config, dataSource: database.dataSource, databaseUrl: database.url, logger, clock: systemClock, features },
      features,
    );
    try {
      return await work(running.services, database);
    } finally {
      await running.stop();
    }
  });
}

/**
 * A new password: piped on stdin (scripts), or typed twice at a hidden prompt. Never an argument:
 * arguments end up in shell history and process listings. From a pipe only the first line counts,
 * without its line ending (as `docker login --password-stdin` reads it), so
 * `printf 'pw\npw\n' | bastion admin create …` sets `pw`, not `pw\npw`.
 */
export async function readPassword(
  prompt: string,
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Promise<string> {
  const password = input.isTTY ? await readTypedTwice(prompt, input, output) : await readFirstLine(input);
  if (password === '') throw new CliFailure('no password given');
  return password;
}

/** The first line of a pipe, without \n or \r\n; the rest is left unread. */
async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  const decoder = new StringDecoder('utf8');
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (text.includes('\n')) break;
  }
  text += decoder.end();
  const newline = text.indexOf('\n');
  const line = newline === -1 ? text : text.slice(0, newline);
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

async function readTypedTwice(prompt: string, input: NodeJS.ReadStream, output: NodeJS.WritableStream): Promise<string> {
  const first = await readHidden(prompt, input, output);
  if (first === '') return first;
  const second = await readHidden('Repeat the password: ', input, output);
  if (second !== first) throw new CliFailure('passwords do not match');
  return first;
}

/** One line typed at the terminal, not echoed; Ctrl-C cancels. */
function readHidden(prompt: string, input: NodeJS.ReadStream, output: NodeJS.WritableStream): Promise<string> {
  output.write(prompt);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = () => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
    };
    const onData = (chunk: Buffer | string) => {
      for (const char of chunk.toString()) {
        if (char === '\r' || char === '\n') {
          done();
          output.write('\n');
          resolve(typed);
          return;
        }
        if (char === '\u0003') {
          done();
          output.write('\n');
          reject(new CliFailure('cancelled'));
          return;
        }
        typed = char === '\u007f' ? [...typed].slice(0, -1).join('') : typed + char;
      }
    };
    input.on('data', onData);
  });
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function emitSchema(check: boolean): Promise<void> {
  const [features, { buildGraphQLSchema, printSDL }] = [allFeatures(), lazy<typeof import('./schema')>('./schema')];
  const target = path.join(PROJECT_ROOT, 'schema', 'schema.graphql');
  const sdl = printSDL(await buildGraphQLSchema(features));
  if (check) {
    const committed = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    if (committed !== sdl) throw new CliFailure('schema/schema.graphql is stale: run `npx bastion schema emit` and commit it');
    say('schema/schema.graphql is up to date');
    return;
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, sdl);
  say(`wrote ${path.relative(process.cwd(), target) || target}`);
}

/** The tools each feature's commands get: results on stdout, failures as one line. */
function toolsFor(program: Command): CommandTools<Services> {
  return {
    withServices,
    withDatabase,
    withTables,
    say,
    fail: (message) => {
      throw new CliFailure(message);
    },
    readPassword: (prompt) => readPassword(prompt),
    group: (name, description) => {
      const existing = program.commands.find((command) => command.name() === name);
      if (!existing) return program.command(name).description(description);
      // Each feature names its own part of a shared group, so the summary in --help lists them all.
      if (!existing.description().includes(description)) existing.description(`${existing.description()}; ${description}`);
      return existing;
    },
  };
}

/** A feature's `commands` (its `x.cli.ts` registration). */
export type CommandRegistration = (program: Command, tools: CommandTools<Services>) => void;

/**
 * A top-level command the features add, as `bastion --help` lists it, and the registrations that
 * build its whole tree, imported only when it runs. The features' own `commands` stay the source:
 * tests/unit/cli-commands.test.ts checks that this index builds exactly the tree they build.
 */
export interface FeatureCommand {
  readonly name: string;
  readonly description: string;
  /** The top-level command's own options, so its line in `bastion --help` reads the same (`audit [options]`). */
  readonly options?: readonly (readonly [flags: string, description: string])[];
  readonly load: () => readonly CommandRegistration[];
}

/** In the order the features' list gives them. */
export const FEATURE_COMMANDS: readonly FeatureCommand[] = [
  {
    name: 'keys',
    description: 'Encryption keys: generate, status, reencrypt, rotate-blind-index, forget; token signing key: rotate-signing',
    load: () => [
      lazy<typeof import('./crypto/keys.cli')>('./crypto/keys.cli').registerCryptoCommands,
      lazy<typeof import('./accounts/accounts.cli')>('./accounts/accounts.cli').registerAccountCommands,
    ],
  },
  {
    name: 'admin',
    description: 'Administrator accounts',
    load: () => [lazy<typeof import('./accounts/accounts.cli')>('./accounts/accounts.cli').registerAccountCommands],
  },
  {
    name: 'firewall',
    description: 'IP rules (straight to the database: works even when the API is locked out)',
    load: () => [lazy<typeof import('./firewall/firewall.cli')>('./firewall/firewall.cli').registerFirewallCommands],
  },
  {
    name: 'files',
    description: 'Stored files: migrate between stores (PostgreSQL, S3)',
    load: () => [lazy<typeof import('./files/files.cli')>('./files/files.cli').registerFilesCommands],
  },
  {
    name: 'backup',
    description: 'Encrypted, verified backups: create, list, verify, restore, prune',
    load: () => [lazy<typeof import('./backup/backup.cli')>('./backup/backup.cli').registerBackupCommands],
  },
  {
    name: 'audit',
    description: 'Run the self-audit of the five measures (exit 1 on any FAIL); `audit log …` for the audit log',
    options: [
      ['--json', 'print the report as JSON'],
      ['--html <file>', 'also write a one-page HTML report to this file'],
    ],
    load: () => [lazy<typeof import('./self-audit/self-audit.cli')>('./self-audit/self-audit.cli').registerAuditCommands],
  },
];

function bareProgram(): Command {
  return new Command('bastion')
    .description('Bastion: a self-hosted GraphQL backend for mobile apps, with its security measures built in.')
    .version(BASTION_VERSION)
    .showHelpAfterError('(run with --help for usage)');
}

/** The top-level command an argument list runs (`bastion help X` shows X's help), if any. */
export function commandNameOf(args: readonly string[]): string | undefined {
  const operands = args.filter((arg) => !arg.startsWith('-'));
  return operands[0] === 'help' ? operands[1] : operands[0];
}

/**
 * The `bastion` command tree. The features' commands named in `load` get their whole tree (their
 * `x.cli.ts` is imported); the others only their line in `bastion --help`. `'all'` loads every one.
 */
export function buildCli(load: 'all' | readonly string[] = 'all'): Command {
  const program = bareProgram();

  program
    .command('serve')
    .description(
      'Start the GraphQL server (embedded PostgreSQL unless DATABASE_URL is set); migrations run first unless BASTION_MIGRATE_ON_START=false',
    )
    .action(serve);

  const migrate = program.command('migrate').description('Database migrations (with no subcommand: apply pending ones)');
  migrate.action(() =>
    withDatabase(async ({ url }, logger, config) => {
      // As the migration role when one is set, which then grants the server's role again (even with nothing pending).
      const { migrateDatabase } = lazy<typeof import('./db/database')>('./db/database');
      const applied = await migrateDatabase(config, url, logger);
      say(applied === 0 ? 'database is up to date' : `applied ${applied} migration${applied === 1 ? '' : 's'}`);
    }),
  );
  migrate
    .command('revert')
    .description('Undo the most recent migration')
    .action(() =>
      withDatabase(async ({ dataSource }) => {
        await dataSource.undoLastMigration({ transaction: 'each' });
        say('reverted the most recent migration');
      }),
    );
  migrate
    .command('status')
    .description('Say whether migrations are pending (exit 1 when they are)')
    .action(() =>
      withDatabase(async ({ dataSource }) => {
        if (await dataSource.showMigrations()) throw new CliFailure('migrations are pending: run `bastion migrate`');
        say('database is up to date');
      }),
    );
  migrate
    .command('generate')
    .argument('<Name>', 'PascalCase name, e.g. AddPosts')
    .description('Write a migration that brings the database to the shape of the entities, and register it')
    .action((name: string) =>
      withDatabase(async ({ dataSource }, logger) => {
        const [{ runMigrations }, { generateMigration }, { systemClock }] = [
          lazy<typeof import('./db/database')>('./db/database'),
          lazy<typeof import('./db/migration-generator')>('./db/migration-generator'),
          lazy<typeof import('./clock')>('./clock'),
        ];
        // Diff against a database with every existing migration applied.
        await runMigrations(dataSource, logger);
        const generated = await generateMigration(dataSource, name, path.join(PROJECT_ROOT, 'migrations'), systemClock);
        if (!generated) return say('no changes: the database already matches the entities');
        say(
          `wrote ${path.relative(process.cwd(), generated.file)} (${generated.statements} statements); run \`npm run migration:run\` or restart to apply it`,
        );
      }),
    );

  for (const entry of FEATURE_COMMANDS) {
    if (load === 'all' || load.includes(entry.name)) {
      // Built in a program of its own (a registration may add to other groups too: accounts adds
      // `admin` and `keys rotate-signing`), then moved here, in its place in the list.
      const scratch = bareProgram();
      const tools = toolsFor(scratch);
      for (const register of entry.load()) register(scratch, tools);
      const built = scratch.commands.find((command) => command.name() === entry.name);
      if (!built) throw new Error(`no feature registers the \`${entry.name}\` command`);
      program.addCommand(built);
    } else {
      const stub = program.command(entry.name).description(entry.description);
      for (const [flags, description] of entry.options ?? []) stub.option(flags, description);
    }
  }

  const schema = program.command('schema').description('The GraphQL SDL that mobile clients build from');
  schema
    .command('emit')
    .description('Write schema/schema.graphql from the code')
    .action(() => emitSchema(false));
  schema
    .command('check')
    .description('Fail when schema/schema.graphql differs from the code')
    .action(() => emitSchema(true));

  return program;
}

/** One line and a non-zero exit for every expected failure; the stack only for a bug. */
export function describeFailure(error: unknown): { message: string; exitCode: number } {
  if (error instanceof ConfigError) return { message: error.message, exitCode: 2 };
  if (error instanceof CommanderError) return { message: '', exitCode: error.exitCode };
  if (error instanceof Error) return { message: `bastion: ${error.message.split('\n')[0]}`, exitCode: 1 };
  return { message: `bastion: ${String(error)}`, exitCode: 1 };
}

export function runCli(argv: readonly string[]): Promise<void> {
  const name = commandNameOf(argv.slice(2));
  return buildCli(name === undefined ? [] : [name])
    .exitOverride()
    .parseAsync([...argv])
    .then(
      () => undefined,
      (error: unknown) => {
        const { message, exitCode } = describeFailure(error);
        if (message) process.stderr.write(`${message}\n`);
        process.exitCode = exitCode;
      },
    );
}

if (require.main === module) void runCli(process.argv);
