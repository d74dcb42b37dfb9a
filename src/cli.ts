import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { AuditLog } from './audit/audit-log';
import { AuditReader } from './audit/audit-reader';
import { systemClock } from './clock';
import { Config, ConfigError, loadProcessConfig } from './config';
import { installKeyring } from './crypto/active-keyring';
import { KeyService } from './crypto/key.service';
import { KID_PATTERN, generateKey } from './crypto/keyring';
import { loadKeyring } from './crypto/load-keyring';
import { Database, MigrationsPendingError, openDatabase, runMigrations } from './db/database';
import { registerBackupCommands } from './backup/backup.cli';
import { generateMigration } from './db/migration-generator';
import { FEATURES } from './features';
import { FirewallAction } from './firewall/firewall-rule.entity';
import { Logger, createLogger } from './logging';
import { startBastion, unruledFieldsOf } from './main';
import { ProgressBar } from './progress-bar';
import { BASTION_VERSION, PROJECT_ROOT } from './project';
import { buildGraphQLSchema, printSDL } from './schema';
import { formatReport, renderReportHtml } from './self-audit/report';
import { Services, createServices } from './services';

/** An expected failure: printed as one line, exit code 1. */
class CliFailure extends Error {}

function bootConfig(): Config {
  return loadProcessConfig();
}

function bootLogger(config: Config): Logger {
  return createLogger({ level: config.logLevel, pretty: config.logPretty });
}

/** Changes made from the CLI: no account, no address (so no lockout check: the CLI is the way back in). */
const CLI_ACTOR = { actorId: null, ipAddress: null, userAgent: 'bastion-cli', requestId: null };

async function serve(): Promise<void> {
  const config = bootConfig();
  const logger = bootLogger(config);
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

async function withDatabase<T>(work: (database: Database, logger: Logger, config: Config) => Promise<T>): Promise<T> {
  const config = bootConfig();
  const logger = bootLogger(config);
  const database = await openDatabase(config, logger, { migrate: false });
  try {
    return await work(database, logger, config);
  } finally {
    await database.close();
  }
}

function withKeys<T>(work: (keys: KeyService) => Promise<T>): Promise<T> {
  return withDatabase(async ({ dataSource }, logger, config) => {
    const keyring = loadKeyring(config, logger);
    installKeyring(keyring);
    return work(new KeyService(dataSource, keyring, systemClock, new AuditLog(systemClock)));
  });
}

/** The full service graph, as the server has it (for commands that act like the API). */
function withServices<T>(work: (services: Services, database: Database) => Promise<T>): Promise<T> {
  return withDatabase(async (database, logger, config) => {
    if (await database.dataSource.showMigrations()) throw new MigrationsPendingError();
    const keyring = loadKeyring(config, logger);
    installKeyring(keyring);
    await new KeyService(database.dataSource, keyring, systemClock).assertKeyringCoversData();
    const services = await createServices({
      config,
      dataSource: database.dataSource,
      databaseUrl: database.url,
      logger,
      clock: systemClock,
      keyring,
      unruledFields: () => unruledFieldsOf(FEATURES),
    });
    try {
      return await work(services, database);
    } finally {
      await services.stop();
    }
  });
}

/**
 * The new admin's password: piped on stdin (scripts), or typed at a hidden prompt. Never an
 * argument: arguments end up in shell history and process listings.
 */
async function readPassword(prompt: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) text += chunk.toString();
    return text.replace(/\r?\n$/, '');
  }
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') {
          input.setRawMode(false);
          input.pause();
          input.off('data', onData);
          process.stderr.write('\n');
          resolve(typed);
          return;
        }
        if (char === '\u0003') {
          input.setRawMode(false);
          reject(new CliFailure('cancelled'));
          return;
        }
        typed = char === '\u007f' ? typed.slice(0, -1) : typed + char;
      }
    };
    input.on('data', onData);
  });
}

async function keyStatus(): Promise<void> {
  await withKeys(async (keys) => {
    const status = await keys.status();
    say(`current key: ${status.currentKid}`);
    say('keys:');
    for (const key of status.keys) {
      const state = key.retiredAt ? `retired ${key.retiredAt.toISOString()}` : 'in use';
      say(`  ${key.kid.padEnd(20)} ${key.inKeyring ? 'in keyring' : 'NOT IN KEYRING'}  ${state}`);
    }
    say('encrypted columns (rows per key id):');
    if (status.columns.length === 0) say('  (none yet)');
    for (const column of status.columns) {
      const counts =
        Object.entries(column.rowsByKid)
          .map(([kid, rows]) => `${kid}=${rows}`)
          .join(' ') || 'no rows';
      say(`  ${`${column.table}.${column.column}`.padEnd(32)} ${counts}`);
    }
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

function positiveInteger(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new InvalidArgumentError('must be a whole number above 0');
  return Number(raw);
}

function keyIdOption(raw: string): string {
  if (!KID_PATTERN.test(raw)) throw new InvalidArgumentError('must be letters, digits, _ and - (at most 32)');
  return raw;
}

export function buildCli(): Command {
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

  const keys = program.command('keys').description('Encryption keys: generate, status, reencrypt, forget');
  keys
    .command('generate')
    .description(
      'Print a fresh random key line, kid:base64key, for BASTION_ENCRYPTION_KEYS (the part after ":" also serves as BASTION_BLIND_INDEX_KEY)',
    )
    .option(
      '--kid <kid>',
      'key id to print (letters, digits, _ and -, at most 32)',
      keyIdOption,
      `k${systemClock.now().toISOString().slice(0, 10).replace(/-/g, '')}`,
    )
    .action((options: { kid: string }) => say(`${options.kid}:${generateKey()}`));
  keys.command('status').description('Key ids in the keyring and in use, and rows per key id in every encrypted column').action(keyStatus);
  keys
    .command('reencrypt')
    .description('Rewrite every value not on the current key, in batches (resumable; safe while the server runs)')
    .option('--batch-size <rows>', 'rows per transaction', positiveInteger, 500)
    .action((options: { batchSize: number }) =>
      withKeys(async (keyService) => {
        const bars = new Map<string, ProgressBar>();
        const { rewritten, unreadable } = await keyService.reencrypt({
          batchSize: options.batchSize,
          onProgress: ({ table, column, done, total }) => {
            const label = `${table}.${column}`;
            if (!bars.has(label)) bars.set(label, new ProgressBar(label));
            bars.get(label)!.update(done, total);
          },
        });
        say(`re-encrypted ${rewritten} value${rewritten === 1 ? '' : 's'}; run \`bastion keys status\` to check`);
        if (unreadable.length > 0) {
          for (const value of unreadable.slice(0, 20)) say(`  unreadable: ${value.table}.${value.column} row ${value.id}`);
          throw new CliFailure(
            `${unreadable.length} value(s) could not be decrypted with any key of the keyring and were left as they are`,
          );
        }
      }),
    );
  keys
    .command('forget')
    .argument('<kid>', 'the key id to forget')
    .option('--force', 'confirm that values still under this key become unreadable')
    .description('Let the keyring drop a key that rows may still use (those values are lost)')
    .action((kid: string, options: { force?: boolean }) => {
      if (!options.force)
        throw new CliFailure(`refusing to forget key "${kid}" without --force: values still encrypted under it become unreadable`);
      return withKeys(async (keyService) => {
        await keyService.forget(kid);
        say(`forgot key ${kid}`);
      });
    });

  keys
    .command('rotate-signing')
    .description(
      'Publish a new access-token signing key; it starts signing once verifiers have had time to fetch it (~6 min). The old key stays published until its tokens expire',
    )
    .option(
      '--now',
      'make the new key sign at once (suspected compromise; external verifiers may refuse new tokens until they refetch the JWKS)',
    )
    .action((options: { now?: boolean }) =>
      withServices(async ({ signingKeys }) => {
        const retired = await signingKeys.retireExpired();
        const retiredText = retired ? `; retired ${retired} expired key(s)` : '';
        if (options.now) {
          const key = await signingKeys.rotate();
          return say(`signing key ${key.kid} is current now${retiredText}`);
        }
        const next = await signingKeys.publishNext();
        say(`signing key ${next.kid} is published and signs from ${next.signsFrom.toISOString()}${retiredText}`);
      }),
    );

  const admin = program.command('admin').description('Administrator accounts');
  admin
    .command('create')
    .requiredOption('--email <email>', "the administrator's email address")
    .description('Create an administrator account (password from a hidden prompt, or piped on stdin; never an argument)')
    .action((options: { email: string }) =>
      withServices(async ({ accounts }) => {
        const password = await readPassword(`Password for ${options.email}: `);
        const user = await accounts.createAccount(options.email, password, ['admin'], CLI_ACTOR);
        say(`created administrator ${user.id} (${options.email})`);
      }),
    );

  const firewall = program.command('firewall').description('IP rules (straight to the database: works even when the API is locked out)');
  firewall
    .command('list')
    .description('Every IP rule, newest first')
    .action(() =>
      withServices(async ({ firewall: rules, clock }) => {
        const now = clock.now().getTime();
        for (const rule of await rules.list()) {
          const expiry = rule.expiresAt
            ? rule.expiresAt.getTime() <= now
              ? `expired ${rule.expiresAt.toISOString()}`
              : `until ${rule.expiresAt.toISOString()}`
            : 'permanent';
          say(`${rule.id}  ${rule.action.toUpperCase().padEnd(5)}  ${rule.cidr.padEnd(43)}  ${expiry}${rule.note ? `  ${rule.note}` : ''}`);
        }
      }),
    );
  for (const action of [FirewallAction.ALLOW, FirewallAction.DENY]) {
    firewall
      .command(`${action} <cidr>`)
      .description(`${action === FirewallAction.ALLOW ? 'Allow' : 'Deny'} an IP address or network (e.g. 203.0.113.0/24)`)
      .option('--note <text>', 'why')
      .option('--expires <when>', 'an ISO date-time after which the rule stops applying')
      .action((cidr: string, options: { note?: string; expires?: string }) =>
        withServices(async ({ firewall: rules }) => {
          const expiresAt = options.expires === undefined ? null : new Date(options.expires);
          if (expiresAt && Number.isNaN(expiresAt.getTime()))
            throw new Error(`--expires must be an ISO date-time such as 2027-01-31T00:00:00Z (got ${options.expires})`);
          const rule = await rules.add({ cidr, action, note: options.note, expiresAt }, CLI_ACTOR);
          say(`added ${rule.id}: ${rule.action.toUpperCase()} ${rule.cidr}`);
        }),
      );
  }
  firewall
    .command('remove <id>')
    .description('Remove an IP rule by id (see firewall list)')
    .action((id: string) =>
      withServices(async ({ firewall: rules }) => {
        await rules.remove(id, CLI_ACTOR);
        say(`removed ${id}`);
      }),
    );

  const audit = program
    .command('audit')
    .description('Run the self-audit of the five measures (exit 1 on any FAIL); `audit log …` for the audit log')
    .option('--json', 'print the report as JSON')
    .option('--html <file>', 'also write a one-page HTML report to this file')
    .action((options: { json?: boolean; html?: string }) =>
      withServices(async ({ selfAudit }) => {
        const report = await selfAudit.run(CLI_ACTOR);
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
        if (options.html) {
          fs.writeFileSync(options.html, renderReportHtml(report));
          if (!options.json) say(`wrote ${options.html}`);
        }
        if (report.failures > 0) process.exitCode = 1;
      }),
    );
  const log = audit.command('log').description('The hash-chained audit log: verify it, export it');
  log
    .command('verify')
    .description('Re-check the whole hash chain; exit 1 and name the first broken event when it is broken')
    .action(() =>
      withDatabase(async ({ dataSource }) => {
        const report = await new AuditReader(dataSource).verify();
        if (report.ok) {
          say(`audit log intact: ${report.checked} events checked`);
          return;
        }
        say(
          `audit log BROKEN at event ${report.firstBrokenId} (${report.checked} events checked): it was edited, inserted, or follows a deleted event`,
        );
        process.exitCode = 1;
      }),
    );
  log
    .command('export')
    .description('Print events as JSON lines, oldest first')
    .option('--since <when>', 'only events at or after this ISO date-time')
    .action((options: { since?: string }) =>
      withDatabase(async ({ dataSource }) => {
        const since = options.since === undefined ? null : new Date(options.since);
        if (since && Number.isNaN(since.getTime()))
          throw new Error(`--since must be an ISO date-time such as 2027-01-31T00:00:00Z (got ${options.since})`);
        for await (const event of new AuditReader(dataSource).export(since)) process.stdout.write(`${JSON.stringify(event)}\n`);
      }),
    );

  registerBackupCommands(program, {
    actor: CLI_ACTOR,
    withServices,
    withKeyring: (work) =>
      withDatabase((database, logger, config) => {
        const keyring = loadKeyring(config, logger);
        installKeyring(keyring);
        return work(database, keyring, config, logger);
      }),
    say,
  });

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
