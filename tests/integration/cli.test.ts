import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { PasswordHasher } from '../../src/accounts/password-hasher';
import { NORMALIZERS, computeBlindIndex } from '../../src/crypto/blind-index';
import { Keyring } from '../../src/crypto/keyring';
import { PROJECT_ROOT } from '../../src/project';
import { TestDatabase, createTestDatabase, withAdminClient } from '../support/test-database';
import { TEST_KEYS } from '../support/test-keys';
import { eventually } from '../support/eventually';

/**
 * The `bastion` command as a user runs it: the compiled CLI (npm test builds it first) in a child
 * process, on an embedded PostgreSQL in a data folder of its own.
 */
const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli.js');

function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // Not the test process's environment: a DATABASE_URL there must not leak into these runs.
  return { PATH: process.env.PATH, HOME: os.tmpdir(), NODE_ENV: 'development', BASTION_LOG_PRETTY: 'false', ...extra };
}

function runCli(args: string[], env: Record<string, string>, input?: string) {
  return spawnSync(process.execPath, [CLI, ...args], { env: cliEnv(env), encoding: 'utf8', timeout: 60_000, input });
}

interface Served {
  child: ChildProcess;
  url: string;
  startupMs: number;
  output: () => string;
  exited: Promise<number | null>;
}

function serve(env: Record<string, string>): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve'], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /"url":"([^"]+)","startupMs":(\d+)/.exec(output);
      if (match) resolve({ child, url: match[1], startupMs: Number(match[2]), output: () => output, exited });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`serve exited (${code}) before serving:\n${output}`)));
  });
}

function postmasterPid(dataDir: string): number | undefined {
  const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'embedded-postgres.json'), 'utf8')) as { clusterDir: string };
  try {
    return Number(fs.readFileSync(path.join(state.clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

function embeddedUrl(dataDir: string): string {
  const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'embedded-postgres.json'), 'utf8')) as { port: number; password: string };
  return `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/bastion`;
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error('dist/ is missing: run the suite with `npm test`, which builds first');
});

describe('bastion --help', () => {
  it('lists the commands', () => {
    const result = runCli(['--help'], {});
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/serve\s/);
    expect(result.stdout).toMatch(/migrate\s/);
  });

  it('the keys summary names every keys subcommand, rotate-signing included', () => {
    const result = runCli(['--help'], {});
    const summary = /^ {2}keys\b[\s\S]*?(?=^ {2}\S)/m.exec(result.stdout)?.[0].replace(/\s+/g, ' ');
    for (const subcommand of ['generate', 'status', 'reencrypt', 'forget', 'rotate-signing']) expect(summary).toContain(subcommand);
    const keysHelp = runCli(['keys', '--help'], {});
    expect(keysHelp.stdout).toMatch(/^ {2}rotate-signing\b/m);
  });
});

describe('bastion keys', () => {
  it('generate prints one fresh kid:key line', () => {
    const first = runCli(['keys', 'generate', '--kid', 'k2'], {});
    const second = runCli(['keys', 'generate', '--kid', 'k2'], {});
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^k2:[A-Za-z0-9+/]{43}=\n$/);
    expect(Buffer.from(first.stdout.trim().slice(3), 'base64')).toHaveLength(32);
    expect(second.stdout).not.toBe(first.stdout);
  });

  it('forget refuses without --force', () => {
    const result = runCli(['keys', 'forget', 'k1'], {});
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      'bastion: refusing to forget key "k1" without --force: values still encrypted under it become unreadable',
    );
  });
});

describe('bastion admin create', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  const keys = {
    BASTION_ENCRYPTION_KEYS: `k1:${TEST_KEYS.k1.toString('base64')}`,
    BASTION_BLIND_INDEX_KEY: TEST_KEYS.blindIndex.toString('base64'),
    LOG_LEVEL: 'silent',
  };

  it('creates an administrator with the password piped on stdin, never as an argument', async () => {
    const env = { ...keys, DATABASE_URL: database.url };
    const created = runCli(['admin', 'create', '--email', 'root@example.com'], env, 'a-long-admin-passphrase-2026\n');
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    expect(created.stdout).toMatch(/^created administrator [0-9a-f-]{36} \(root@example\.com\)$/m);
    const rows = await withAdminClient(database.url, (client) =>
      client.query('SELECT ur.role_name FROM user_roles ur JOIN users u ON u.id = ur.user_id ORDER BY 1'),
    );
    expect(rows.rows.map((row: { role_name: string }) => row.role_name)).toEqual(['admin', 'user']);

    const weak = runCli(['admin', 'create', '--email', 'root2@example.com'], env, 'short\n');
    expect(weak.status).toBe(1);
    expect(weak.stderr.trim()).toBe('bastion: Use at least 15 characters.');
    const asArgument = runCli(['admin', 'create', '--email', 'root3@example.com', '--password', 'x'], env);
    expect(asArgument.status).not.toBe(0);
    expect(asArgument.stderr).toContain("unknown option '--password'");
  });

  /** Whether the administrator created last signs in with `password` (its stored hash, checked as sign-in checks it; emails are stored encrypted). */
  async function lastAdminSignsInWith(password: string): Promise<boolean> {
    const rows = await withAdminClient(database.url, (client) =>
      client.query<{ hash: string }>(
        "SELECT u.password_hash AS hash FROM users u JOIN user_roles r ON r.user_id = u.id AND r.role_name = 'admin' ORDER BY u.created_at",
      ),
    );
    const hashes = rows.rows.map((row) => row.hash);
    const hasher = new PasswordHasher({ maxConcurrent: 1, maxQueued: 8 });
    return (await hasher.verify(hashes[hashes.length - 1], password)).valid;
  }

  it("reads only a pipe's first line, without its line ending, as docker login --password-stdin does", async () => {
    const env = { ...keys, DATABASE_URL: database.url };
    const password = 'violet-harbor-typed-once-2026';
    for (const [email, newline] of [
      ['twice@example.com', '\n'],
      ['crlf@example.com', '\r\n'],
    ]) {
      const created = runCli(['admin', 'create', '--email', email], env, `${password}${newline}${password}${newline}`);
      expect({ email, status: created.status, stderr: created.stderr }).toEqual({ email, status: 0, stderr: '' });
      expect(await lastAdminSignsInWith(password)).toBe(true);
      expect(await lastAdminSignsInWith(`${password}${newline}${password}`)).toBe(false);
    }
    const unterminated = runCli(['admin', 'create', '--email', 'no-newline@example.com'], env, password);
    expect(unterminated.status).toBe(0);
    expect(await lastAdminSignsInWith(password)).toBe(true);
  });

  it('says "no password given" for empty stdin, and refuses a control character', () => {
    const env = { ...keys, DATABASE_URL: database.url };
    for (const input of ['', '\n', '\r\n']) {
      const empty = runCli(['admin', 'create', '--email', 'empty@example.com'], env, input);
      expect({ input, status: empty.status, stderr: empty.stderr }).toEqual({ input, status: 1, stderr: 'bastion: no password given\n' });
    }
    const tab = runCli(['admin', 'create', '--email', 'tab@example.com'], env, 'violet-harbor\ttyped-once-2026\n');
    expect(tab.status).toBe(1);
    expect(tab.stderr).toBe('bastion: The password contains a control character (a line break, tab or similar); leave it out.\n');
  });
});

describe('bastion keys rotate-blind-index', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  const nextRoot = Buffer.alloc(32, 10);
  const env = () => ({
    BASTION_ENCRYPTION_KEYS: `k1:${TEST_KEYS.k1.toString('base64')}`,
    BASTION_BLIND_INDEX_KEY: TEST_KEYS.blindIndex.toString('base64'),
    DATABASE_URL: database.url,
    LOG_LEVEL: 'silent',
  });
  const storedEmailIndex = async () =>
    (await withAdminClient(database.url, (client) => client.query<{ index: string }>('SELECT email_index AS index FROM users'))).rows.map(
      (row) => row.index,
    );
  const indexUnder = (root: Buffer) =>
    computeBlindIndex(
      new Keyring({ keys: new Map([['k1', TEST_KEYS.k1]]), currentKid: 'k1', blindIndexKey: root }),
      'users.email',
      'rotate@example.com',
      NORMALIZERS.email,
    );

  it('refuses without a next key, then rewrites every index under it, and a rerun has nothing left', async () => {
    expect(runCli(['admin', 'create', '--email', 'rotate@example.com'], env(), 'violet-harbor-typed-once-2026\n').status).toBe(0);
    expect(await storedEmailIndex()).toEqual([indexUnder(TEST_KEYS.blindIndex)]);

    const refused = runCli(['keys', 'rotate-blind-index'], env());
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^bastion: No blind-index key rotation is under way: set BASTION_BLIND_INDEX_KEY_NEXT/);
    expect(await storedEmailIndex()).toEqual([indexUnder(TEST_KEYS.blindIndex)]);

    const rotating = { ...env(), BASTION_BLIND_INDEX_KEY_NEXT: nextRoot.toString('base64') };
    const rotated = runCli(['keys', 'rotate-blind-index', '--batch-size', '1'], rotating);
    expect(rotated.status).toBe(0);
    expect(rotated.stderr).toContain('users.email_index [########################] 100% (1/1)\n'); // progress, on stderr
    expect(rotated.stdout).toMatch(/^rewrote 1 blind index under the next key\n/);
    expect(await storedEmailIndex()).toEqual([indexUnder(nextRoot)]);
    expect(runCli(['keys', 'rotate-blind-index'], rotating).stdout).toMatch(/^rewrote 0 blind indexes/);
  });
});

describe('bastion firewall list', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it('says there are no rules rather than printing nothing', () => {
    const env = {
      BASTION_ENCRYPTION_KEYS: `k1:${TEST_KEYS.k1.toString('base64')}`,
      BASTION_BLIND_INDEX_KEY: TEST_KEYS.blindIndex.toString('base64'),
      DATABASE_URL: database.url,
    };
    const listed = runCli(['firewall', 'list'], env);
    expect({ status: listed.status, stdout: listed.stdout }).toEqual({ status: 0, stdout: 'No IP rules.\n' });
    const added = runCli(['firewall', 'deny', '198.51.100.0/24'], env);
    expect(added.status).toBe(0);
    const again = runCli(['firewall', 'list'], env);
    expect(again.stdout).toMatch(/^[0-9a-f-]{36} {2}DENY {3}198\.51\.100\.0\/24 +permanent\n$/);
  });
});

describe('machine-readable output: results on stdout, logs on stderr', () => {
  let database: TestDatabase;
  let dataDir: string;
  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-cli-json-'));
  });
  afterAll(async () => {
    await database.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  // Development with the development key file, pretty logs: the keyring's warning is logged on every command.
  const development = () => ({ DATABASE_URL: database.url, BASTION_DATA_DIR: dataDir, BASTION_LOG_PRETTY: 'true', LOG_LEVEL: 'info' });
  const KEY_FILE_WARNING = 'encryption keys come from the development key file';

  it('audit --json prints exactly one JSON document on stdout, and the warning on stderr', () => {
    const result = runCli(['audit', '--json'], development());
    expect(result.stderr).toContain(KEY_FILE_WARNING);
    expect(result.stdout).not.toContain(KEY_FILE_WARNING);
    const report = JSON.parse(result.stdout) as { failures: number };
    expect(typeof report.failures).toBe('number');
  });

  it('audit log export prints JSON lines only, one event per line', () => {
    const result = runCli(['audit', 'log', 'export'], development());
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(KEY_FILE_WARNING);
    const lines = result.stdout.split('\n');
    expect(lines.pop()).toBe('');
    // The audit run above recorded at least one event.
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line)).toEqual(expect.objectContaining({ action: expect.any(String) }));
  });

  it('audit log head prints id:hash to anchor; verify --head proves it later and catches a truncation after it', async () => {
    runCli(['audit', '--json'], development()); // at least one event
    const json = runCli(['audit', 'log', 'head', '--json'], development());
    expect(json.status).toBe(0);
    const head = JSON.parse(json.stdout) as { id: string; hash: string; at: string };
    expect(head).toEqual({ id: expect.stringMatching(/^\d+$/), hash: expect.stringMatching(/^[0-9a-f]{64}$/), at: expect.any(String) });
    expect(runCli(['audit', 'log', 'head'], development()).stdout).toBe(`${head.id}:${head.hash} ${head.at}\n`);

    runCli(['audit', '--json'], development()); // events after the anchored head
    const proven = runCli(['audit', 'log', 'verify', '--head', `${head.id}:${head.hash}`], development());
    expect({ status: proven.status, stdout: proven.stdout }).toEqual({
      status: 0,
      stdout: expect.stringMatching(new RegExp(`^audit log intact: \\d+ events checked, head ${head.id} present and unchanged\n$`)),
    });

    const client = new Client({ connectionString: database.url });
    await client.connect();
    await client.query('DELETE FROM audit_events WHERE id >= $1', [head.id]);
    await client.end();
    expect(runCli(['audit', 'log', 'verify'], development()).status).toBe(0); // the chain alone cannot see it
    const truncated = runCli(['audit', 'log', 'verify', '--head', `${head.id}:${head.hash}`], development());
    expect(truncated.status).toBe(1);
    expect(truncated.stdout).toMatch(new RegExp(`^audit log TRUNCATED: event ${head.id} is gone`));

    const malformed = runCli(['audit', 'log', 'verify', '--head', 'latest'], development());
    expect(malformed.status).toBe(1);
    expect(malformed.stderr).toContain('--head must be id:hash');
  });

  it('every other command that logs keeps its stdout to its result (keys status, migrate status)', () => {
    const keysStatus = runCli(['keys', 'status'], development());
    expect(keysStatus.status).toBe(0);
    expect(keysStatus.stderr).toContain(KEY_FILE_WARNING);
    expect(keysStatus.stdout).toMatch(/^current key: dev1\n/);
    const migrateStatus = runCli(['migrate', 'status'], development());
    expect(migrateStatus.stderr).toContain(KEY_FILE_WARNING);
    expect(migrateStatus.stdout).toBe('database is up to date\n');
  });
});

describe('bastion serve, failing to start', () => {
  it('lists every bad setting in one message, exits non-zero, starts nothing', () => {
    const dataDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-cli-')), 'data');
    const result = runCli(['serve'], { PORT: 'eighty', LOG_LEVEL: 'loud', BASTION_DATA_DIR: dataDir });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('Invalid configuration (2 problems)');
    expect(result.stderr).toContain('PORT: must be a whole number');
    expect(result.stderr).toContain('LOG_LEVEL: must be one of');
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('says in one line that the database is down, and exits non-zero', () => {
    const result = runCli(['serve'], { DATABASE_URL: 'postgres://app:pw-never-shown@127.0.0.1:1/app', LOG_LEVEL: 'silent' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      'bastion: Cannot connect to PostgreSQL at 127.0.0.1:1/app: connection refused (is the server running?)',
    );
    expect(result.stdout + result.stderr).not.toContain('pw-never-shown');
  });
});

describe('bastion serve on the embedded PostgreSQL', () => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-cli-'));
  fs.chmodSync(parent, 0o755); // like a project folder: as root, postgres may pass through
  const dataDir = path.join(parent, 'data');
  const env = { PORT: '0', BASTION_DATA_DIR: dataDir };
  afterAll(() => fs.rmSync(path.dirname(dataDir), { recursive: true, force: true }));

  it('starts, keeps data across a crash and a restart, takes over the orphaned server, and stops cleanly', async () => {
    const first = await serve(env);
    expect((await fetch(first.url.replace('/graphql', '/healthz'))).status).toBe(200);
    const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'embedded-postgres.json'), 'utf8')) as { clusterDir: string };
    expect(state.clusterDir).toBe(path.join(dataDir, 'postgres'));
    const keyFile = path.join(dataDir, 'keys.json');
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(first.output()).toContain(`encryption keys come from the development key file ${keyFile}`);
    const landing = await fetch(first.url, { headers: { accept: 'text/html' } });
    expect(await landing.text()).toMatch(/<!DOCTYPE html>/i);

    const client = new Client({ connectionString: embeddedUrl(dataDir) });
    await client.connect();
    await client.query("CREATE TABLE survivor (note text); INSERT INTO survivor VALUES ('still here')");
    await client.end();

    // A killed parent leaves its PostgreSQL running.
    first.child.kill('SIGKILL');
    await first.exited;
    const orphan = postmasterPid(dataDir)!;
    expect(isRunning(orphan)).toBe(true);

    const second = await serve(env);
    expect(second.output()).toContain('stopping an embedded PostgreSQL left running by a previous Bastion process');
    const response = await fetch(second.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ serverInfo { name } }' }),
    });
    expect(await response.json()).toEqual({ data: { serverInfo: { name: 'Bastion' } } });
    const again = new Client({ connectionString: embeddedUrl(dataDir) });
    await again.connect();
    expect((await again.query('SELECT note FROM survivor')).rows).toEqual([{ note: 'still here' }]);
    await again.end();

    // A short CLI command attaches to the running server and, leaving, does not stop it.
    const attached = runCli(['migrate', 'status'], { ...env, LOG_LEVEL: 'info' });
    expect(attached.stderr).toContain('using the embedded PostgreSQL started by another Bastion process');
    expect(attached.stdout).toBe('database is up to date\n');
    const stillServing = await fetch(second.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ serverInfo { name } }' }),
    });
    expect(stillServing.status).toBe(200);

    const running = postmasterPid(dataDir)!;
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.output()).toContain('"msg":"stopped"');
    await eventually(() => !isRunning(running));
    expect(postmasterPid(dataDir)).toBeUndefined();

    const status = runCli(['migrate', 'status'], { ...env, LOG_LEVEL: 'silent' });
    expect(status.stdout.trim()).toBe('database is up to date');
    expect(status.status).toBe(0);
    const keys = runCli(['keys', 'status'], { ...env, LOG_LEVEL: 'silent' });
    expect(keys.status).toBe(0);
    expect(keys.stdout).toMatch(/^current key: dev1$/m);
    expect(keys.stdout).toMatch(/^ {2}dev1 +in keyring +in use$/m);
    process.stdout.write(`embedded start times: first run ${first.startupMs} ms, after a crash ${second.startupMs} ms\n`);
  });
});
