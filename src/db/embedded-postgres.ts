import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { ensureDataDir } from '../data-dir';
import type { Logger } from '../logging';
import { RunAs, binariesFor, canTraverse, resolveRunAs, tempHome } from './postgres-binaries';

const run = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /** Bastion's data folder; the cluster lives in `<dataDir>/postgres` when the server account can reach it. */
  readonly dataDir: string;
  readonly logger: Logger;
  /** Trade durability for speed (fsync off). For throwaway test clusters only. */
  readonly disposable?: boolean;
}

/** What we remember between runs, in `<dataDir>/embedded-postgres.json` (mode 0600). */
interface ClusterState {
  clusterDir: string;
  port: number;
  password: string;
  /** The Bastion process that started the running server; a dead owner means a stale server. */
  ownerPid?: number;
  /** Other live Bastion processes using the server; one of them takes over when the owner stops. */
  attachedPids?: number[];
}

const SUPERUSER = 'postgres';

/**
 * A real PostgreSQL server from the npm-shipped binaries, run from Bastion's data folder.
 * It survives restarts, picks a free port (remembered for next time), takes over from a server
 * that a killed parent left running, and runs as `postgres` when we are root.
 */
export class EmbeddedPostgres {
  private constructor(
    private readonly state: ClusterState,
    private readonly stateFile: string,
    private readonly account: RunAs,
    private readonly bin: string,
    private readonly logger: Logger,
    /** False when we attached to a server another live Bastion process owns. */
    private readonly owned: boolean,
  ) {}

  static async start(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
    const { dataDir, logger } = options;
    const account = resolveRunAs();
    ensureDataDir(dataDir);
    const bin = binariesFor(account);
    const stateFile = path.join(dataDir, 'embedded-postgres.json');
    // Detect, start and record under one lock: two processes starting at once must agree on one owner.
    return withStateLock(dataDir, async () => {
      let state = readState(stateFile);
      if (!state) {
        state = newState(dataDir, account, logger);
        await adoptOrRefuseUnknownCluster(bin, account, state, dataDir, logger);
      }
      if (!fs.existsSync(path.join(state.clusterDir, 'PG_VERSION'))) {
        await initialise(bin, account, state, options.disposable ?? false, logger);
      }

      const running = runningServerPid(state.clusterDir);
      if (running !== undefined && state.ownerPid !== undefined && state.ownerPid !== process.pid && isAlive(state.ownerPid)) {
        logger.info({ port: state.port, ownerPid: state.ownerPid }, 'using the embedded PostgreSQL started by another Bastion process');
        state.attachedPids = [...(state.attachedPids ?? []).filter(isAlive), process.pid];
        writeState(stateFile, state);
        return new EmbeddedPostgres(state, stateFile, account, bin, logger, false);
      }
      if (running !== undefined) {
        logger.warn({ pid: running }, 'stopping an embedded PostgreSQL left running by a previous Bastion process');
        await pgCtl(bin, account, ['stop', '-D', state.clusterDir, '-m', 'fast', '-w', '-t', '30']).catch(() => undefined);
      }

      if (!(await isPortFree(state.port))) state.port = await freePort();
      state.ownerPid = process.pid;
      state.attachedPids = [];
      writeState(stateFile, state);
      logger.info({ port: state.port, clusterDir: state.clusterDir }, 'starting embedded PostgreSQL');
      try {
        await pgCtl(bin, account, [
          'start',
          '-D',
          state.clusterDir,
          '-w',
          '-t',
          '60',
          '-l',
          path.join(state.clusterDir, 'server.log'),
          '-o',
          `-p ${state.port}`,
        ]);
      } catch (error) {
        throw new Error(`The embedded PostgreSQL did not start; see ${path.join(state.clusterDir, 'server.log')}`, { cause: error });
      }
      return new EmbeddedPostgres(state, stateFile, account, bin, logger, true);
    });
  }

  /** False when another live Bastion process started this server and will stop it. */
  get ownedByUs(): boolean {
    return this.owned;
  }

  get port(): number {
    return this.state.port;
  }

  /** A connection URL for one database on this server, as its superuser. */
  urlFor(database: string): string {
    return `postgres://${SUPERUSER}:${encodeURIComponent(this.state.password)}@127.0.0.1:${this.state.port}/${encodeURIComponent(database)}`;
  }

  async ensureDatabase(database: string): Promise<void> {
    const client = new Client({ connectionString: this.urlFor('postgres') });
    client.on('error', () => undefined); // surfaces through the query that meets it
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    } finally {
      await client.end();
    }
  }

  /**
   * Stops the server when no other live Bastion process uses it. Otherwise ownership passes to one
   * of them (and it stops the server when it is done), so a short CLI command never pulls the
   * database from under a running server.
   */
  async stop(): Promise<void> {
    const dataDir = path.dirname(this.stateFile);
    await withStateLock(dataDir, async () => {
      const state = readState(this.stateFile) ?? this.state;
      const others = (state.attachedPids ?? []).filter((pid) => pid !== process.pid && isAlive(pid));
      if (state.ownerPid !== process.pid) {
        writeState(this.stateFile, { ...state, attachedPids: others });
        return;
      }
      if (others.length > 0) {
        this.logger.info({ newOwnerPid: others[0] }, 'leaving the embedded PostgreSQL running for another Bastion process');
        writeState(this.stateFile, { ...state, ownerPid: others[0], attachedPids: others.slice(1) });
        return;
      }
      this.logger.info('stopping embedded PostgreSQL');
      await pgCtl(this.bin, this.account, ['stop', '-D', this.state.clusterDir, '-m', 'fast', '-w', '-t', '30']);
      writeState(this.stateFile, { ...state, ownerPid: undefined, attachedPids: [] });
    });
  }
}

/**
 * A lock file beside the state file (created with O_EXCL, holding our pid). A lock whose holder
 * died is taken over; a live holder is waited for, up to two minutes (an initdb can take a while).
 */
async function withStateLock<T>(dataDir: string, work: () => Promise<T>): Promise<T> {
  const lockFile = path.join(dataDir, 'embedded-postgres.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(fs.readFileSync(lockFile, 'utf8').trim());
      if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
        fs.rmSync(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`Another Bastion process (pid ${holder}) holds ${lockFile}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await work();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}

function readState(file: string): ClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

function writeState(file: string, state: ClusterState): void {
  fs.writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
}

function newState(dataDir: string, account: RunAs, logger: Logger): ClusterState {
  let clusterDir = path.join(dataDir, 'postgres');
  if (!canTraverse(account, dataDir)) {
    // The data folder sits under a folder the postgres account cannot enter (a root-only home).
    clusterDir = path.join(tempHome(dataDir), 'postgres');
    logger.warn(
      { clusterDir },
      `the ${account.name} account cannot reach ${dataDir}; keeping the PostgreSQL cluster in the OS temp folder instead`,
    );
  }
  return { clusterDir, port: 0, password: randomBytes(24).toString('base64url') };
}

/**
 * A cluster where a new state file points, whose password we therefore do not know. In the temp
 * fallback it is the leftover of an earlier checkout at the same path (its data folder, with the
 * state file, is gone): it is stopped and replaced. Inside the data folder it may hold data
 * someone cares about: refuse, and say how to start over.
 */
async function adoptOrRefuseUnknownCluster(
  bin: string,
  account: RunAs,
  state: ClusterState,
  dataDir: string,
  logger: Logger,
): Promise<void> {
  if (!fs.existsSync(path.join(state.clusterDir, 'PG_VERSION'))) return;
  if (state.clusterDir === path.join(dataDir, 'postgres')) {
    throw new Error(
      `${state.clusterDir} holds a PostgreSQL cluster but ${path.join(dataDir, 'embedded-postgres.json')} ` +
        `(its password) is missing; restore that file, or remove the folder to start over`,
    );
  }
  logger.warn(
    { clusterDir: state.clusterDir },
    'replacing an orphaned embedded PostgreSQL cluster left by an earlier checkout at this path',
  );
  if (runningServerPid(state.clusterDir) !== undefined) {
    await pgCtl(bin, account, ['stop', '-D', state.clusterDir, '-m', 'immediate', '-w', '-t', '30']).catch(() => undefined);
  }
  fs.rmSync(state.clusterDir, { recursive: true, force: true });
}

async function initialise(bin: string, account: RunAs, state: ClusterState, disposable: boolean, logger: Logger): Promise<void> {
  logger.info({ clusterDir: state.clusterDir }, 'creating the embedded PostgreSQL cluster (first run)');
  fs.rmSync(state.clusterDir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(state.clusterDir), { recursive: true, mode: 0o755 });
  fs.mkdirSync(state.clusterDir, { mode: 0o700 });
  const passwordFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-pw-')), 'password');
  fs.writeFileSync(passwordFile, `${state.password}\n`, { mode: 0o600 });
  if (account.uid !== undefined) {
    fs.chownSync(state.clusterDir, account.uid, account.gid!);
    fs.chownSync(path.dirname(passwordFile), account.uid, account.gid!);
    fs.chownSync(passwordFile, account.uid, account.gid!);
  }
  try {
    await asAccount(bin, account, 'initdb', [
      `--pgdata=${state.clusterDir}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ]);
  } catch (error) {
    fs.rmSync(state.clusterDir, { recursive: true, force: true });
    throw new Error(`Creating the embedded PostgreSQL cluster in ${state.clusterDir} failed: ${describeChildError(error)}`, {
      cause: error,
    });
  } finally {
    fs.rmSync(path.dirname(passwordFile), { recursive: true, force: true });
  }
  const settings = [
    '',
    '# Written by Bastion: local TCP only, no Unix socket (its default folder may not be writable).',
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = ''",
    'max_connections = 200',
    ...(disposable
      ? ['# A throwaway test cluster: speed over durability.', 'fsync = off', 'synchronous_commit = off', 'full_page_writes = off']
      : []),
  ];
  fs.appendFileSync(path.join(state.clusterDir, 'postgresql.conf'), `${settings.join('\n')}\n`);
}

/** The postmaster's pid from `postmaster.pid`, when that process is still alive. */
function runningServerPid(clusterDir: string): number | undefined {
  let contents: string;
  try {
    contents = fs.readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(contents.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function pgCtl(bin: string, account: RunAs, args: string[]): Promise<void> {
  await asAccount(bin, account, 'pg_ctl', args);
}

async function asAccount(bin: string, account: RunAs, program: string, args: string[]): Promise<void> {
  await run(path.join(bin, program), args, {
    uid: account.uid,
    gid: account.gid,
    cwd: os.tmpdir(),
    // A minimal environment: the server must not inherit the app's secrets.
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' },
    timeout: 120_000,
  });
}

function describeChildError(error: unknown): string {
  const { stderr, message } = error as { stderr?: string; message?: string };
  return (stderr || message || String(error)).trim().split('\n').slice(-3).join(' ');
}

async function isPortFree(port: number): Promise<boolean> {
  if (port === 0) return false;
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
