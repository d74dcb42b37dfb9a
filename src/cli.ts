import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { Command, CommanderError } from 'commander';
import { systemClock } from './clock';
import { Config, ConfigError } from './config';
import { Database, MigrationsPendingError, openDatabase, runMigrations } from './db/database';
import { generateMigration } from './db/migration-generator';
import { CommandTools, Feature, tablesOf } from './feature';
import { FEATURES } from './features';
import { Logger, createLogger } from './logging';
import { startBastion } from './main';
import { BASTION_VERSION, PROJECT_ROOT } from './project';
import { buildGraphQLSchema, printSDL } from './schema';
import { startServices } from './services';
import { Services } from './feature';
import { loadProcessConfig } from './settings';

/** An expected failure: printed as one line, exit code 1. */
class CliFailure extends Error {}

/**
 * The server logs to stdout (log collectors read it); every other command logs to stderr, so its
 * stdout holds only its result (`bastion audit --json | jq`).
 */
function bootLogger(config: Config, stream: 'stdout' | 'stderr'): Logger {
  return createLogger({ level: config.logLevel, pretty: config.logPretty, stream });
}

async function serve(): Promise<void> {
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

/** The configuration, each feature's boot (the keyring), and the database, closed afterwards. */
async function withDatabase<T>(work: (database: Database, logger: Logger, config: Config) => Promise<T>): Promise<T> {
  const config = loadProcessConfig();
  const logger = bootLogger(config, 'stderr');
  for (const feature of FEATURES) feature.boot?.(config, logger);
  const database = await openDatabase(config, logger, { migrate: false, tables: tablesOf(FEATURES) });
  try {
    return await work(database, logger, config);
  } finally {
    await database.close();
  }
}

/** The full service graph, as the server has it (for commands that act like the API). */
function withServices<T>(work: (services: Services, database: Database) => Promise<T>): Promise<T> {
  return withDatabase(async (database, logger, config) => {
    if (await database.dataSource.showMigrations()) throw new MigrationsPendingError();
    const running = await startServices(
      { config, dataSource: database.dataSource, databaseUrl: database.url, logger, clock: systemClock, features: FEATURES },
      FEATURES,
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
  const target = path.join(PROJECT_ROOT, 'schema', 'schema.graphql');
  const sdl = printSDL(await buildGraphQLSchema(FEATURES));
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

export function buildCli(features: readonly Feature[] = FEATURES): Command {
  const program = new Command('bastion')
    .description('Bastion: a self-hosted GraphQL backend for mobile apps, with its security measures built in.')
    .version(BASTION_VERSION)
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('serve')
    .description(
      'Start the GraphQL server (embedded PostgreSQL unless DATABASE_URL is set); migrations run first unless BASTION_MIGRATE_ON_START=false',
    )
    .action(serve);

  const migrate = program.command('migrate').description('Database migrations (with no subcommand: apply pending ones)');
  migrate.action(() =>
    withDatabase(async ({ dataSource }, logger) => {
      const pending = await dataSource.showMigrations();
      if (!pending) return say('database is up to date');
      const applied = await runMigrations(dataSource, logger);
      say(`applied ${applied} migration${applied === 1 ? '' : 's'}`);
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
        // Diff against a database with every existing migration applied.
        await runMigrations(dataSource, logger);
        const generated = await generateMigration(dataSource, name, path.join(PROJECT_ROOT, 'migrations'), systemClock);
        if (!generated) return say('no changes: the database already matches the entities');
        say(
          `wrote ${path.relative(process.cwd(), generated.file)} (${generated.statements} statements); run \`npm run migration:run\` or restart to apply it`,
        );
      }),
    );

  const tools = toolsFor(program);
  for (const feature of features) feature.commands?.(program, tools);

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
  return buildCli()
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
