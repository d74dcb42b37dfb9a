import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FrozenClock } from '../../src/clock';
import { configWith } from '../../src/settings';
import { NORMALIZERS, computeBlindIndex } from '../../src/crypto/blind-index';
import { open, seal } from '../../src/crypto/envelope';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { totpCode } from '../../src/mfa/totp';
import { CLI_PATH, cliEnvAgainst, runCliAgainst } from '../support/cli';
import { eventually } from '../support/eventually';
import { FactoryServer, GraphQLClient, SIGN_UP, TestAccount, codesOf, makeClient, makeUser, strongPassword } from '../support/factories';
import { LogCollector } from '../support/log-collector';
import { TestDatabase, createTestDatabase, withAdminClient } from '../support/test-database';
import { TEST_KEY_SETTINGS, testKeyring } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * Faults: the database restarting under load, and kill -9 in the middle of long work. Each must end
 * cleanly: clients get catalogued errors while a dependency is away, the server heals by itself,
 * no acknowledged write is lost, and interrupted work is finished or abandoned, never left corrupt.
 */
const FULL = process.env.HARDENING_FULL === '1';

beforeAll(() => {
  if (!fs.existsSync(CLI_PATH)) throw new Error('dist/ is missing: run `npm run build` first (npm test and npm run test:hardening do)');
});

/** A child process of the compiled CLI, its output kept; `exited` resolves with its signal or exit code. */
function spawnCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<string | number | null>;
  exitedBy: () => string | number | null | undefined;
} {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exitedBy: string | number | null | undefined;
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<string | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve((exitedBy = signal ?? code))),
  );
  return { child, output: () => output, exited, exitedBy: () => exitedBy };
}

/** A folder the postgres account can pass through when we run as root (as global setup does). */
function scratchFolder(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o711);
  return dir;
}

interface Outcome {
  readonly operation: 'createPost' | 'posts';
  readonly startedAt: number;
  readonly endedAt: number;
  readonly status: number;
  /** The error codes of the answer, or ['NETWORK'] when no HTTP answer came. */
  readonly codes: readonly unknown[];
  /** createPost: the id it answered with (the write is acknowledged). */
  readonly id?: string;
}

const CREATE_POST = 'mutation($input: CreatePostInput!) { createPost(input: $input) { id title } }';
const POSTS = '{ posts(first: 20) { edges { node { id } } } }';
/** No request may take longer than this, database or not (the pool gives up connecting after 5 s). */
const REQUEST_BOUND_MS = 10_000;

describe('PostgreSQL stopped and started under load (a dedicated embedded server)', () => {
  const WORKERS = 16;
  const HEALTHY_BEFORE_MS = FULL ? 5_000 : 1_500;
  const DOWN_MS = 2_000;
  const HEALTHY_AFTER_MS = FULL ? 5_000 : 1_500;
  const DATABASE = 'bastion_faults';

  let parent: string;
  let dataDir: string;
  let backupDir: string;
  const logs = new LogCollector();
  const logger = createLogger({ level: 'info', pretty: false, destination: logs });
  const clock = new FrozenClock('2026-03-01T12:00:00.000Z');
  let embedded: EmbeddedPostgres | undefined;
  let bastion: RunningBastion | undefined;
  let accounts: TestAccount[];

  beforeAll(async () => {
    parent = scratchFolder('bastion-faults-pg-');
    dataDir = path.join(parent, 'data');
    backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-faults-backups-'));
    // Durable settings (fsync on), as in production: "acknowledged" must mean "on disk".
    embedded = await EmbeddedPostgres.start({ dataDir, logger: createLogger({ level: 'warn', pretty: false }) });
    await embedded.ensureDatabase(DATABASE);
    bastion = await startBastion(
      configWith({
        databaseUrl: embedded.urlFor(DATABASE),
        port: 0,
        host: '127.0.0.1',
        migrateOnStart: true,
        rateLimitsEnabled: false,
        ...TEST_KEY_SETTINGS,
        backupSchedule: undefined,
        backupVerifySchedule: undefined,
        backupDir,
      }),
      { logger, clock },
    );
    const server: FactoryServer = { url: bastion.url, bastion, clock };
    accounts = await Promise.all(Array.from({ length: WORKERS }, () => makeUser(server)));
  }, 60_000);

  afterAll(async () => {
    await bastion?.stop().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    for (const dir of [parent, backupDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails cleanly while it is down, heals by itself within 5 s of its return, and loses no acknowledged write', async () => {
    const url = bastion!.url;
    const origin = new URL(url).origin;
    const outcomes: Outcome[] = [];

    async function send(
      operation: Outcome['operation'],
      account: TestAccount,
      query: string,
      variables?: Record<string, unknown>,
    ): Promise<Outcome> {
      const startedAt = Date.now();
      let outcome: Outcome;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${account.accessToken}` },
          body: JSON.stringify({ query, variables }),
          signal: AbortSignal.timeout(REQUEST_BOUND_MS + 5_000),
        });
        const body = (await response.json()) as {
          data?: { createPost?: { id: string } } | null;
          errors?: { extensions?: { code?: unknown } }[];
        };
        const codes = body.errors?.map((error) => error.extensions?.code) ?? [];
        outcome = {
          operation,
          startedAt,
          endedAt: Date.now(),
          status: response.status,
          codes,
          id: codes.length === 0 ? body.data?.createPost?.id : undefined,
        };
      } catch {
        outcome = { operation, startedAt, endedAt: Date.now(), status: 0, codes: ['NETWORK'] };
      }
      outcomes.push(outcome);
      return outcome;
    }

    let running = true;
    async function worker(index: number): Promise<void> {
      for (let serial = 1; running; serial += 1) {
        // A unique title per write: the rows found afterwards are exactly the writes that reached the table.
        await send('createPost', accounts[index], CREATE_POST, { input: { title: `fault w${index} #${serial}` } });
        await send('posts', accounts[index], POSTS);
        // While the database is down answers come at once: pace the retries as an app's backoff would.
        const last = outcomes[outcomes.length - 1];
        if (last.status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }

    const readiness = async () => (await fetch(`${origin}/readyz`, { signal: AbortSignal.timeout(REQUEST_BOUND_MS) })).status;
    const workers = Array.from({ length: WORKERS }, (_, index) => worker(index));
    try {
      await new Promise((resolve) => setTimeout(resolve, HEALTHY_BEFORE_MS));
      const portBefore = embedded!.port;
      const stopping = Date.now();
      await embedded!.stop();
      const downAt = Date.now();
      // While it is down, readiness says so (every probe, until the database returns).
      const readyWhileDown: number[] = [];
      while (Date.now() < downAt + DOWN_MS) readyWhileDown.push(await readiness());
      embedded = await EmbeddedPostgres.start({ dataDir, logger: createLogger({ level: 'warn', pretty: false }) });
      const upAt = Date.now();
      const portAfter = embedded.port;

      // Healed: ready again, and a write goes through, polled from the moment the database is back.
      const probe = accounts[0];
      const recoveryMs = await eventually(
        async () =>
          (await readiness()) === 200 &&
          (await send('createPost', probe, CREATE_POST, { input: { title: `fault probe ${Date.now()}` } })).id !== undefined,
        15_000,
      );
      const recoveredAt = Date.now();
      // Cross-instance invalidation heals too: the LISTEN connection is back (it retries with a growing backoff).
      const relistened = () =>
        logs.lines.find((line) => line.msg === 'notifications: reconnected and listening again' && Date.parse(String(line.time)) >= downAt);
      await eventually(() => relistened() !== undefined, 15_000);
      const relistenMs = Date.parse(String(relistened()!.time)) - upAt;
      await new Promise((resolve) => setTimeout(resolve, HEALTHY_AFTER_MS));
      running = false;
      await Promise.all(workers);

      const failures = outcomes.filter((outcome) => outcome.status !== 200 || outcome.codes.length > 0);
      const failureKinds = new Map<string, number>();
      for (const failure of failures) {
        const kind = `${failure.status} ${failure.codes.join(',')}`;
        failureKinds.set(kind, (failureKinds.get(kind) ?? 0) + 1);
      }
      const acknowledged = outcomes.filter((outcome) => outcome.id !== undefined);
      const stored = new Set<string>(
        (await bastion!.database.dataSource.query("SELECT id::text AS id FROM posts WHERE title LIKE 'fault %'")).map(
          (row: { id: string }) => row.id,
        ),
      );
      const lost = acknowledged.filter((outcome) => !stored.has(outcome.id!));
      const slowest = Math.max(...outcomes.map((outcome) => outcome.endedAt - outcome.startedAt));
      console.log(
        `restart: stop took ${downAt - stopping} ms, down ${upAt - downAt} ms (port ${portBefore} → ${portAfter}); ` +
          `recovered ${recoveryMs} ms after the database returned (LISTEN ${relistenMs} ms); ` +
          `${outcomes.length} requests, ${failures.length} failed ` +
          `(${[...failureKinds].map(([kind, count]) => `${kind}: ${count}`).join('; ') || 'none'}); slowest ${slowest} ms; ` +
          `posts written ${stored.size}, acknowledged ${acknowledged.length}, lost ${lost.length}; ` +
          `readyz while down: ${[...new Set(readyWhileDown)].join(',')} (${readyWhileDown.length} probes)`,
      );

      // The manager brings the server back where clients (and DATABASE_URL) expect it.
      expect(portAfter).toBe(portBefore);
      expect(readyWhileDown.length).toBeGreaterThan(0);
      expect(new Set(readyWhileDown)).toEqual(new Set([503]));
      expect(recoveryMs).toBeLessThan(5_000);
      expect(relistenMs).toBeLessThan(5_000);
      // Clean failures only: the catalogue's SERVICE_UNAVAILABLE with its 503, never a masked 500, a dropped connection or a hang.
      expect([...failureKinds.keys()]).toEqual(failures.length > 0 ? ['503 SERVICE_UNAVAILABLE'] : []);
      expect(failures.length).toBeGreaterThan(0);
      expect(slowest).toBeLessThan(REQUEST_BOUND_MS);
      // Nothing failed outside the outage: every request begun once healed succeeded.
      expect(failures.filter((failure) => failure.startedAt >= recoveredAt)).toEqual([]);
      expect(failures.filter((failure) => failure.endedAt < stopping)).toEqual([]);
      expect(acknowledged.length).toBeGreaterThan(WORKERS);
      expect(lost).toEqual([]);
      // The outage is logged as such (warnings), never as an unexpected error.
      expect(logs.lines.filter((line) => line.level >= 50)).toEqual([]);
    } finally {
      running = false;
      await Promise.all(workers);
    }
  }, 90_000);
});

describe('kill -9 during a key re-encryption', () => {
  // Enough rows that the rewrite takes a few seconds at 50 rows a batch, so it can be caught midway.
  const BULK_PROFILES = FULL ? 20_000 : 4_000;
  const PROFILE_QUERY = 'query($id: ID!) { profile(id: $id) { id phone birthDate } }';
  let server: TestServer;
  /** Every encrypted value written, by table.column and row id: what each must still decrypt to. */
  const expected = new Map<string, Map<string, string>>();
  const remember = (domain: string, id: string, value: string) => {
    if (!expected.has(domain)) expected.set(domain, new Map());
    expected.get(domain)!.set(id, value);
  };
  const owners: { account: TestAccount; profileId: string; phone: string; birthDate: string }[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    // A few profiles the way an app writes them (through the API, sealed by the server under k1)…
    for (let index = 0; index < 4; index += 1) {
      const account = await makeUser(server);
      const phone = `+4477009000${10 + index}`;
      const birthDate = `199${index}-0${index + 1}-1${index}`;
      const created = await account.client.request<{ createProfile: { id: string } }>(
        'mutation($input: CreateProfileInput!) { createProfile(input: $input) { id } }',
        { input: { displayName: `Owner ${index}`, phone, birthDate } },
      );
      if (!created.body.data) throw new Error(`createProfile failed: ${JSON.stringify(created.body.errors)}`);
      owners.push({ account, profileId: created.body.data.createProfile.id, phone, birthDate });
      remember('profiles.phone', created.body.data.createProfile.id, phone);
      remember('profiles.birth_date', created.body.data.createProfile.id, birthDate);
    }
    // …and many more sealed here with the same keyring, as the server would (signing up thousands is argon2-bound).
    const keyring = testKeyring('k1');
    const users = { id: [] as string[], email: [] as string[], emailIndex: [] as string[] };
    const profiles = {
      id: [] as string[],
      userId: [] as string[],
      phone: [] as string[],
      phoneIndex: [] as string[],
      birthDate: [] as string[],
    };
    for (let index = 0; index < BULK_PROFILES; index += 1) {
      const userId = randomUUID();
      const profileId = randomUUID();
      const email = `bulk${index}@example.com`;
      const phone = `+1555${String(index).padStart(7, '0')}`;
      const birthDate = `19${50 + (index % 50)}-0${1 + (index % 9)}-1${index % 10}`;
      users.id.push(userId);
      users.email.push(seal(keyring, Buffer.from(email), 'users.email'));
      users.emailIndex.push(computeBlindIndex(keyring, 'users.email', email, NORMALIZERS.email));
      profiles.id.push(profileId);
      profiles.userId.push(userId);
      profiles.phone.push(seal(keyring, Buffer.from(phone), 'profiles.phone'));
      profiles.phoneIndex.push(computeBlindIndex(keyring, 'profiles.phone', phone));
      profiles.birthDate.push(seal(keyring, Buffer.from(birthDate), 'profiles.birth_date'));
      remember('users.email', userId, email);
      remember('profiles.phone', profileId, phone);
      remember('profiles.birth_date', profileId, birthDate);
    }
    const dataSource = server.bastion.database.dataSource;
    await dataSource.query(
      "INSERT INTO users (id, email, email_index, password_hash) SELECT id, email, email_index, 'not a hash: never signs in' " +
        'FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, email, email_index)',
      [users.id, users.email, users.emailIndex],
    );
    await dataSource.query(
      'INSERT INTO profiles (id, user_id, display_name, phone, phone_index, birth_date) ' +
        "SELECT id, user_id, 'Bulk', phone, phone_index, birth_date " +
        'FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) AS t(id, user_id, phone, phone_index, birth_date)',
      [profiles.id, profiles.userId, profiles.phone, profiles.phoneIndex, profiles.birthDate],
    );
  }, 60_000);
  afterAll(() => server?.close());

  /** `keys status`'s rows per key id, by table.column. */
  async function keyStatus(): Promise<{ stdout: string; columns: Map<string, Record<string, number>> }> {
    const result = await runCliAgainst(server, ['keys', 'status'], { BASTION_ENCRYPTION_KEY_ID: 'k2', LOG_LEVEL: 'silent' });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const columns = new Map<string, Record<string, number>>();
    for (const [, column, counts] of result.stdout.matchAll(/^ {2}(\w+\.\w+) +(.+)$/gm)) {
      columns.set(
        column,
        counts === 'no rows'
          ? {}
          : Object.fromEntries(
              counts
                .split(' ')
                .map((pair) => pair.split('='))
                .map(([kid, rows]) => [kid, Number(rows)]),
            ),
      );
    }
    return { stdout: result.stdout, columns };
  }

  it('a rerun finishes the job: every value on k2, every value still decrypts to what was written', async () => {
    const env = cliEnvAgainst(server, { BASTION_ENCRYPTION_KEY_ID: 'k2', LOG_LEVEL: 'warn' });
    const first = spawnCli(['keys', 'reencrypt', '--batch-size', '50'], env);
    // Killed once a column of the bulk rows is between 10 % and 90 % done (progress comes on stderr, a line per tenth).
    const midway = /^(users\.email|profiles\.phone|profiles\.birth_date) \[[#-]+\] ([1-8]\d)% \((\d+)\/(\d+)\)/m;
    let caught: RegExpExecArray | null = null;
    try {
      await eventually(() => {
        if (first.exitedBy() !== undefined)
          throw new Error(`keys reencrypt ended (${first.exitedBy()}) before it could be killed:\n${first.output()}`);
        caught = midway.exec(first.output());
        return caught !== null;
      }, 30_000);
    } finally {
      first.child.kill('SIGKILL');
    }
    expect(await first.exited).toBe('SIGKILL');

    const interrupted = await keyStatus();
    const mixed = [...interrupted.columns].filter(([, counts]) => (counts.k1 ?? 0) > 0 && (counts.k2 ?? 0) > 0).map(([column]) => column);
    // The kill landed midway: some column holds values under both keys, each row whole under one.
    expect(mixed.length).toBeGreaterThan(0);

    const rerun = await runCliAgainst(server, ['keys', 'reencrypt', '--batch-size', '50'], {
      BASTION_ENCRYPTION_KEY_ID: 'k2',
      LOG_LEVEL: 'warn',
    });
    expect(rerun.code).toBe(0);
    const rewritten = Number(/^re-encrypted (\d+) values?;/m.exec(rerun.stdout)?.[1]);

    const finished = await keyStatus();
    for (const [column, counts] of finished.columns)
      expect({ column, kids: Object.keys(counts) }).toEqual({ column, kids: Object.keys(counts).length ? ['k2'] : [] });
    expect(finished.columns.get('profiles.phone')).toEqual({ k2: BULK_PROFILES + owners.length });
    expect(finished.stdout).toMatch(/^ {2}k1 +in keyring +retired /m);

    // Nothing corrupt: with k2 alone, every value opens, under its own column, to what was written.
    const k2Only = testKeyring('k2', ['k2']);
    const dataSource = server.bastion.database.dataSource;
    let checked = 0;
    for (const [domain, values] of expected) {
      const [table, column] = domain.split('.');
      const rows: { id: string; value: string }[] = await dataSource.query(
        `SELECT id::text AS id, ${column} AS value FROM ${table} WHERE id = ANY($1::uuid[])`,
        [[...values.keys()]],
      );
      expect({ domain, rows: rows.length }).toEqual({ domain, rows: values.size });
      const wrong = rows.filter((row) => open(k2Only, row.value, domain).toString('utf8') !== values.get(row.id));
      expect({ domain, wrong: wrong.map((row) => row.id) }).toEqual({ domain, wrong: [] });
      checked += rows.length;
    }
    // And the app still reads them: each owner's profile through the API.
    for (const owner of owners) {
      const { body } = await owner.account.client.request(PROFILE_QUERY, { id: owner.profileId });
      expect(body).toEqual({ data: { profile: { id: owner.profileId, phone: owner.phone, birthDate: owner.birthDate } } });
    }
    console.log(
      `reencrypt: killed at ${caught![1]} ${caught![2]}% (${caught![3]}/${caught![4]}); columns midway on both keys: ${mixed.join(', ')}; ` +
        `the rerun rewrote ${rewritten} values; ${checked} values decrypt under k2 alone, 0 corrupt`,
    );
  }, 90_000);
});

describe('kill -9 of `bastion serve` while it writes a backup', () => {
  // Enough rows that writing the archive takes a moment (it is caught by its temporary file).
  const POSTS = FULL ? 300_000 : 100_000;
  const FIELDS = 'id status error rows verification';
  type ApiBackup = { id: string; status: string; error: string | null; rows: number; verification: string | null };
  let database: TestDatabase;
  let backupDir: string;
  const env = () =>
    cliEnvAgainst(
      { database },
      {
        PORT: '0',
        BACKUP_DIR: backupDir,
        BACKUP_SCHEDULE: 'off',
        BACKUP_VERIFY_SCHEDULE: 'off',
        LOG_LEVEL: 'info',
        BASTION_LOG_PRETTY: 'false',
      },
    );
  const children: ChildProcess[] = [];

  /** `bastion serve` in a child process; resolves once it logs the URL it serves (PORT=0 picks a free port). */
  async function serve(): Promise<ReturnType<typeof spawnCli> & { url: string }> {
    const served = spawnCli(['serve'], env());
    children.push(served.child);
    let url: string | undefined;
    await eventually(() => {
      if (served.exitedBy() !== undefined) throw new Error(`serve exited (${served.exitedBy()}) before serving:\n${served.output()}`);
      url = /"url":"([^"]+)","startupMs"/.exec(served.output())?.[1];
      return url !== undefined;
    }, 30_000);
    return { ...served, url: url! };
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    backupDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-faults-serve-backups-'));
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await database?.drop();
    if (backupDir) fs.rmSync(backupDir, { recursive: true, force: true });
  });

  /** An admin on an aal2 session, made the way an operator would: sign up, grant the role, enroll TOTP. Returns its access token. */
  async function makeAdmin(url: string): Promise<{ id: string; accessToken: string }> {
    const password = strongPassword();
    const signedUp = await makeClient({ url }).request<{ signUp: { accessToken: string; user: { id: string } } }>(SIGN_UP, {
      input: { email: `admin.${randomUUID()}@example.com`, password },
    });
    if (!signedUp.body.data) throw new Error(`signUp failed: ${JSON.stringify(signedUp.body.errors)}`);
    const { accessToken, user } = signedUp.body.data.signUp;
    await withAdminClient(database.url, (client) =>
      client.query("INSERT INTO user_roles (user_id, role_name) VALUES ($1, 'admin')", [user.id]),
    );
    const client = makeClient({ url }, { authorization: `Bearer ${accessToken}` });
    const enrolled = await client.request<{ enrollTotp: { secret: string } }>('mutation { enrollTotp { secret } }');
    const secret = enrolled.body.data!.enrollTotp.secret;
    const confirmed = await client.request('mutation($input: ConfirmTotpInput!) { confirmTotp(input: $input) { codes } }', {
      input: { code: await totpCode({ secret, now: new Date() }), currentPassword: password },
    });
    if (confirmed.body.errors) throw new Error(`confirmTotp failed: ${JSON.stringify(confirmed.body.errors)}`);
    return { id: user.id, accessToken };
  }

  it('leaves the entry FAILED and no complete-looking file; the restarted server backs up and verifies', async () => {
    const first = await serve();
    const admin = await makeAdmin(first.url);
    const asAdmin = (url: string): GraphQLClient => makeClient({ url }, { authorization: `Bearer ${admin.accessToken}` });
    await withAdminClient(database.url, (client) =>
      client.query(
        "INSERT INTO posts (author_id, title, body) SELECT $1, 'row ' || n, repeat(md5(n::text), 4) FROM generate_series(1, $2::int) AS n",
        [admin.id, POSTS],
      ),
    );

    // createBackup answers when the archive is done: it never will be.
    const answer = asAdmin(first.url)
      .request('mutation { createBackup { id } }')
      .catch((error: Error) => error);
    // Killed once table data is flowing into the temporary file (past the first 256 KiB).
    const partialFile = () =>
      fs
        .readdirSync(backupDir)
        .find(
          (name) =>
            /^\.bastion-.*\.bbak\.partial$/.test(name) &&
            (fs.statSync(path.join(backupDir, name), { throwIfNoEntry: false })?.size ?? 0) > 256 * 1024,
        );
    let partial: string | undefined;
    try {
      await eventually(() => {
        if (first.exitedBy() !== undefined)
          throw new Error(`serve ended (${first.exitedBy()}) before it could be killed:\n${first.output()}`);
        if (fs.readdirSync(backupDir).some((name) => name.endsWith('.bbak')))
          throw new Error('the backup finished before it could be killed: add rows');
        partial = partialFile();
        return partial !== undefined;
      }, 30_000);
    } finally {
      first.child.kill('SIGKILL');
    }
    expect(await first.exited).toBe('SIGKILL');
    // The connection died with the server: no answer at all (fetch's error comes from another realm, so no instanceof).
    expect(await answer).toHaveProperty('message', 'fetch failed');
    const id = /^\.bastion-\d{8}T\d{6}Z-([0-9a-f-]{36})\.bbak\.partial$/.exec(partial!)?.[1];
    expect(id).toBeDefined();
    // Nothing that looks like a finished archive: only the temporary file, named as such.
    expect(fs.readdirSync(backupDir)).toEqual([partial]);
    const statusInDatabase = async () =>
      (await withAdminClient(database.url, (client) => client.query('SELECT status FROM backups WHERE id = $1', [id]))).rows[0]?.status;
    expect(await statusInDatabase()).toBe('creating');

    const second = await serve();
    const admin2 = asAdmin(second.url);
    // PostgreSQL ends the dead server's session, and its backup lock with it, on its own time: polled.
    let listed: ApiBackup[] = [];
    const abandonedAfterMs = await eventually(async () => {
      const { body } = await admin2.request<{ backups: ApiBackup[] }>(`{ backups { ${FIELDS} } }`);
      if (body.errors) throw new Error(`backups failed: ${JSON.stringify(body.errors)}`);
      listed = body.data!.backups;
      return listed.find((backup) => backup.id === id)?.status === 'FAILED';
    }, 15_000);
    expect(listed).toEqual([
      expect.objectContaining({
        id,
        status: 'FAILED',
        error: 'interrupted: the process writing it stopped before it finished',
        verification: null,
      }),
    ]);
    expect(fs.readdirSync(backupDir)).toEqual([]);
    expect(codesOf(await admin2.request(`mutation($id: ID!) { verifyBackup(id: $id) { id } }`, { id }))).toEqual(['NOT_FOUND']);

    const created = await admin2.request<{ createBackup: ApiBackup }>(`mutation { createBackup { ${FIELDS} } }`);
    expect(created.body.errors).toBeUndefined();
    const fresh = created.body.data!.createBackup;
    expect(fresh).toMatchObject({ status: 'COMPLETE', error: null });
    expect(fresh.rows).toBeGreaterThan(POSTS);
    expect(fs.readdirSync(backupDir)).toEqual([expect.stringMatching(new RegExp(`^bastion-\\d{8}T\\d{6}Z-${fresh.id}\\.bbak$`))]);
    const verified = await admin2.request<{ verifyBackup: ApiBackup }>(`mutation($id: ID!) { verifyBackup(id: $id) { ${FIELDS} } }`, {
      id: fresh.id,
    });
    expect(verified.body.errors).toBeUndefined();
    expect(verified.body.data!.verifyBackup).toMatchObject({
      id: fresh.id,
      status: 'VERIFIED',
      verification: expect.stringMatching(/match the manifest$/),
    });

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    console.log(
      `backup: serve killed while writing ${partial} (${POSTS} posts); ` +
        `after restart the entry was FAILED within ${abandonedAfterMs} ms, the temporary file gone; ` +
        `a new backup of ${fresh.rows} rows COMPLETE and VERIFIED`,
    );
  }, 120_000);
});
