import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../../src/files/s3-chunk-store';
import { S3StorageTarget, parseStorageUrl } from '../../src/files/storage-url';
import { RunningBastion, startBastion } from '../../src/main';
import { CLI_PATH, cliEnvAgainst, runCliAgainst } from '../support/cli';
import { eventually } from '../support/eventually';
import { makeUser } from '../support/factories';
import { pdfOf, photoWithGps, pngImage, servedDigests, uploadFile } from '../support/files';
import { TestS3Server, keysUnder, startS3Server } from '../support/s3-server';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { TestServer, secondInstanceConfig, startTestServer } from '../support/test-server';

/**
 * `bastion files migrate`, `bastion keys status|reencrypt` and `bastion backup create|restore`
 * with files, as an operator runs them: the compiled CLI in a child process, against a test
 * server's database and an S3-compatible server on loopback. A migration is killed midway (a proxy
 * in front of the bucket holds one request unanswered) and run again.
 */

const PREFIX = 'm/';

/** A proxy in front of the S3 server that, once told, holds every request past the first `allowed` that matches, unanswered. */
interface StallingProxy {
  readonly endpoint: string;
  /** Requests held so far. */
  readonly held: number;
  stallAfter(method: string, pathPart: string, allowed: number): void;
  close(): Promise<void>;
}

async function startProxy(upstream: string): Promise<StallingProxy> {
  let rule: { method: string; pathPart: string; allowed: number } | undefined;
  let matched = 0;
  let held = 0;
  const server = http.createServer((request, response) => {
    if (rule && request.method === rule.method && request.url?.includes(rule.pathPart)) {
      matched += 1;
      if (matched > rule.allowed) {
        held += 1;
        request.resume();
        return;
      }
    }
    const forward = http.request(new URL(request.url!, upstream), { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(response);
    });
    forward.on('error', () => response.destroy());
    request.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get held() {
      return held;
    },
    stallAfter: (method, pathPart, allowed) => {
      rule = { method, pathPart, allowed };
      matched = 0;
      held = 0;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('bastion files migrate, keys and backup with files, through the CLI', () => {
  let s3: TestS3Server;
  let proxy: StallingProxy;
  let server: TestServer;
  /** A second instance on the same database whose store is the bucket: it serves contents from either store. */
  let both: RunningBastion;
  let bucket: S3Client;
  let original: Record<string, string>;
  let chunks: number;
  const restored: TestDatabase[] = [];
  const savedEnv: Record<string, string | undefined> = {};
  const query = <T>(sql: string, parameters?: unknown[]) => server.bastion.database.dataSource.query<T>(sql, parameters);
  const s3Url = (endpoint: string, prefix = PREFIX) => `s3://${s3.bucket}?endpoint=${endpoint}&prefix=${prefix}`;
  const awsEnv = () => ({ AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey });
  // The AWS SDK warns on stderr, once per process, that it will need Node 22 from 2027: not Bastion's output.
  const quiet = { NODE_NO_WARNINGS: '1', LOG_LEVEL: 'warn' };
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCliAgainst(server, args, { ...awsEnv(), ...quiet, BACKUP_DIR: server.config.backupDir!, ...env });

  const objectKeys = (prefix: string): Promise<string[]> => keysUnder(bucket, s3.bucket, prefix);

  /** Each content's store, and whether that store holds all its chunks and the other none. */
  async function whereContentsAre(): Promise<{ postgres: number; s3: number; misplaced: string[] }> {
    const rows = await query<{ id: string; store: string; chunks: number; in_postgres: number }[]>(
      `SELECT c.id, c.store, greatest(1, ceil(c.byte_size::numeric / c.chunk_bytes))::int AS chunks,
              (SELECT count(*)::int FROM file_chunks k WHERE k.content_id = c.id) AS in_postgres
         FROM file_contents c ORDER BY c.id`,
    );
    const objects = await objectKeys(`${PREFIX}contents/`);
    const inS3 = (id: string) => objects.filter((key) => key.startsWith(`${PREFIX}contents/${id}/`)).length;
    const misplaced = rows
      .filter((row) =>
        row.store === 'postgres' ? row.in_postgres !== row.chunks || inS3(row.id) > 0 : row.in_postgres > 0 || inS3(row.id) !== row.chunks,
      )
      .map((row) => `${row.id} (${row.store})`);
    return {
      postgres: rows.filter((row) => row.store === 'postgres').length,
      s3: rows.filter((row) => row.store === 's3').length,
      misplaced,
    };
  }

  /** Runs a command until the proxy holds one of its requests, then kills it as an operator's Ctrl-\ or an OOM kill would. */
  async function killWhenStalled(args: string[], env: Record<string, string>): Promise<string> {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: cliEnvAgainst(server, { ...awsEnv(), ...quiet, ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let exitedBy: string | number | null | undefined;
    const exited = new Promise<string | number | null>((resolve) =>
      child.once('exit', (code, signal) => resolve((exitedBy = signal ?? code))),
    );
    try {
      await eventually(() => {
        if (exitedBy !== undefined) throw new Error(`${args.join(' ')} ended (${exitedBy}) before it could be killed:\n${output}`);
        return proxy.held > 0;
      }, 30_000);
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');
    return output;
  }

  beforeAll(async () => {
    s3 = await startS3Server();
    proxy = await startProxy(s3.endpoint);
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'])
      savedEnv[name] = process.env[name];
    // The second instance's store takes its credentials from the AWS chain, as in production: here, the environment.
    Object.assign(process.env, awsEnv());
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    server = await startTestServer();
    const storage = parseStorageUrl(s3Url(s3.endpoint)) as S3StorageTarget;
    both = await startBastion(secondInstanceConfig(server, { storage }), { logger: server.logger, clock: server.clock });
    bucket = new S3Client({ ...s3ClientConfig(storage), credentials: s3.credentials });

    const account = await makeUser(server);
    const profile = await account.client.request<{ createProfile: { id: string } }>(
      'mutation { createProfile(input: { displayName: "Ada" }) { id } }',
    );
    const post = await account.client.request<{ createPost: { id: string } }>(
      'mutation { createPost(input: { title: "Files", body: "b" }) { id } }',
    );
    const postId = post.body.data!.createPost.id;
    for (const upload of [
      await uploadFile(account.client, 'startProfileAvatarUpload', profile.body.data!.createProfile.id, await photoWithGps(), 'image/jpeg'),
      await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(1_300_000), 'application/pdf'),
      await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(800_000), 'application/pdf'),
      await uploadFile(account.client, 'startPostAttachmentsUpload', postId, pdfOf(300_000), 'application/pdf'),
      await uploadFile(account.client, 'startPostAttachmentsUpload', postId, await pngImage(), 'image/png'),
    ])
      expect(upload.status).toBe(204);
    original = await servedDigests(server.bastion);
    [{ chunks }] = await query<{ chunks: number }[]>('SELECT count(*)::int AS chunks FROM file_chunks');
  });
  afterAll(async () => {
    bucket?.destroy();
    await both?.stop();
    await server?.close();
    for (const database of restored) await database.drop();
    await proxy?.close();
    await s3?.close();
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('migrate --to s3, killed midway, leaves each content wholly in one store, every file served', async () => {
    expect(Object.keys(original)).toHaveLength(8);
    expect(chunks).toBe(11);
    expect(await whereContentsAre()).toEqual({ postgres: 8, s3: 0, misplaced: [] });
    // The fifth chunk written to the bucket is never answered: the contents before it are moved, the rest not.
    proxy.stallAfter('PUT', `/${PREFIX}contents/`, 4);
    await killWhenStalled(['files', 'migrate', '--to', s3Url(proxy.endpoint)], { STORAGE_URL: s3Url(proxy.endpoint) });
    const midway = await whereContentsAre();
    expect(midway.misplaced.filter((entry) => entry.endsWith('(s3)'))).toEqual([]);
    // The content it was copying when killed has chunks in both stores: still in PostgreSQL, whole there, rewritten by the rerun.
    expect(midway.misplaced.length).toBeLessThanOrEqual(1);
    expect(midway.s3).toBeGreaterThanOrEqual(1);
    expect(midway.s3).toBeLessThanOrEqual(4);
    expect(midway.postgres).toBe(8 - midway.s3);
    expect(await servedDigests(both)).toEqual(original);
  });

  it('migrate --to s3, run again, moves what is left with a progress bar, and a third run has nothing to move', async () => {
    const [{ left }] = await query<{ left: number }[]>("SELECT count(*)::int AS left FROM file_contents WHERE store = 'postgres'");
    const moved = await cli(['files', 'migrate', '--to', s3Url(s3.endpoint)], { STORAGE_URL: s3Url(s3.endpoint) });
    expect(moved.code).toBe(0);
    expect(moved.stdout).toMatch(
      new RegExp(`^moved ${left} file contents \\([\\d.]+ MB\\) to s3://${s3.bucket} \\(.*key prefix "${PREFIX}".*\\)\\n`),
    );
    expect(moved.stdout).not.toContain('now set STORAGE_URL');
    expect(moved.stdout).not.toMatch(/\[[#-]{24}\]/);
    expect(moved.stderr).toMatch(new RegExp(`^migrating \\[#{24}\\] 100% \\(${left}/${left}\\) `, 'm'));
    expect(await whereContentsAre()).toEqual({ postgres: 0, s3: 8, misplaced: [] });
    expect(await objectKeys(`${PREFIX}contents/`)).toHaveLength(chunks);
    expect(await servedDigests(both)).toEqual(original);

    const again = await cli(['files', 'migrate', '--to', s3Url(s3.endpoint)], { STORAGE_URL: s3Url(s3.endpoint) });
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toMatch(new RegExp(`^nothing to move: every stored file is in s3://${s3.bucket} `));
  });

  it('refuses a bucket other than STORAGE_URL names, and a bad --to, each in one line', async () => {
    // Servers on STORAGE_URL=postgres could not read contents moved to a bucket they are not told of.
    const first = await cli(['files', 'migrate', '--to', s3Url(s3.endpoint)]);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/^bastion: set STORAGE_URL to this s3:\/\/ URL on every instance first .*\n$/);
    const other = await cli(['files', 'migrate', '--to', s3Url(s3.endpoint, 'elsewhere/')], { STORAGE_URL: s3Url(s3.endpoint) });
    expect(other).toMatchObject({ code: 1, stdout: '' });
    expect(other.stderr).toMatch(/^bastion: STORAGE_URL names another bucket or prefix \(s3:\/\/.*\): .*aws s3 sync.*\n$/);
    const bad = await cli(['files', 'migrate', '--to', `s3://${s3.bucket}?secret=hunter2`]);
    expect(bad).toMatchObject({ code: 1, stdout: '' });
    expect(bad.stderr).toMatch(/^bastion: --to: credentials do not belong in STORAGE_URL .*\n$/);
    expect(bad.stderr).not.toContain('hunter2');
  });

  it('keys status and reencrypt cover the contents in the bucket', async () => {
    const s3Env = { STORAGE_URL: s3Url(s3.endpoint) };
    const before = await cli(['keys', 'status'], s3Env);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/^other data under the keys \(items per key id\):\n {2}file contents +k1=8\n$/m);
    // Without k1 the services refuse to start; the status still shows what the database alone tells.
    const k2Only = await cli(['keys', 'status'], {
      ...s3Env,
      BASTION_ENCRYPTION_KEYS: `k2:${Buffer.alloc(32, 2).toString('base64')}`,
      BASTION_ENCRYPTION_KEY_ID: 'k2',
    });
    expect(k2Only.code).toBe(0);
    expect(k2Only.stdout).toMatch(/^ {2}k1 +NOT IN KEYRING +in use$/m);
    expect(k2Only.stdout).toContain('other data under the keys (file contents): not counted while "k1" is missing from the keyring\n');

    const contentsBefore = (await query<{ id: string }[]>('SELECT id FROM file_contents')).map((row) => row.id);
    const rotated = await cli(['keys', 'reencrypt'], { ...s3Env, BASTION_ENCRYPTION_KEY_ID: 'k2' });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/^re-encrypted \d+ values; run `bastion keys status` to check\n$/);
    expect(rotated.stderr).toContain('file contents [########################] 100% (8/8)\n');
    expect(await query('SELECT kid, store, count(*)::int AS n FROM file_contents GROUP BY 1, 2')).toEqual([
      { kid: 'k2', store: 's3', n: 8 },
    ]);
    // The old contents' chunks are queued for the maintenance job, which empties the bucket of them.
    expect((await query<{ id: string }[]>('SELECT content_id AS id FROM file_deletions ORDER BY 1')).map((row) => row.id)).toEqual(
      [...contentsBefore].sort(),
    );
    expect(await both.maintenanceTasks.storeDeletions(both.database.dataSource.manager)).toBe(8);
    expect(await whereContentsAre()).toEqual({ postgres: 0, s3: 8, misplaced: [] });
    expect(await servedDigests(both)).toEqual(original);

    // As every instance runs by now: k2 current (an instance started with k1 current records it in use again).
    const after = await cli(['keys', 'status'], { ...s3Env, BASTION_ENCRYPTION_KEY_ID: 'k2' });
    expect(after.stdout).toMatch(/^ {2}file contents +k2=8$/m);
    expect(after.stdout).toMatch(/^ {2}k1 +in keyring +retired /m);
  });

  it('backup create reads the bucket into the archive; restore puts the chunks into the bucket STORAGE_URL names', async () => {
    const created = await cli(['backup', 'create'], { STORAGE_URL: s3Url(s3.endpoint) });
    expect(created.code).toBe(0);
    const id = /^backup ([0-9a-f-]{36}): COMPLETE$/m.exec(created.stdout)![1];
    expect(created.stdout).toMatch(/^ {2}file contents from the object store: 8 \([\d.]+ MB of sealed chunks\)$/m);
    expect(created.stderr).toMatch(/^backup file contents \[#{24}\] 100% \(8\/8\)$/m);

    const verified = await cli(['backup', 'verify', id]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(
      /verification: .*; 8 file content\(s\) decrypted and matched their SHA-256 \(8 from the archive's file chunks\)$/m,
    );

    const target = await createTestDatabase({ migrated: false });
    restored.push(target);
    const restoring = await cli(['backup', 'restore', id, '--to', target.url], { STORAGE_URL: s3Url(s3.endpoint, 'restored/') });
    expect(restoring.code).toBe(0);
    expect(restoring.stdout).toMatch(
      new RegExp(`^put back 8 file content\\(s\\) \\(${chunks} sealed chunks\\) into s3://${s3.bucket} \\(.*key prefix "restored/"`, 'm'),
    );
    expect((await objectKeys('restored/contents/')).map((key) => key.slice('restored/'.length))).toEqual(
      (await objectKeys(`${PREFIX}contents/`)).map((key) => key.slice(PREFIX.length)),
    );
  });

  it('migrate --to postgres, killed midway and run again, brings every content back and empties the bucket', async () => {
    proxy.stallAfter('GET', `/${PREFIX}contents/`, 4);
    await killWhenStalled(['files', 'migrate', '--to', 'postgres'], { STORAGE_URL: s3Url(proxy.endpoint) });
    const midway = await whereContentsAre();
    expect(midway.misplaced.filter((entry) => entry.endsWith('(postgres)'))).toEqual([]);
    expect(midway.postgres).toBeGreaterThanOrEqual(1);
    expect(midway.postgres).toBeLessThanOrEqual(4);
    expect(await servedDigests(both)).toEqual(original);

    const back = await cli(['files', 'migrate', '--to', 'postgres'], { STORAGE_URL: s3Url(s3.endpoint) });
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(
      new RegExp(`^moved ${8 - midway.postgres} file contents \\([\\d.]+ MB\\) to postgres \\(file_chunks table\\)\\n`),
    );
    expect(back.stdout).toContain('now set STORAGE_URL to postgres on every instance');
    expect(await whereContentsAre()).toEqual({ postgres: 8, s3: 0, misplaced: [] });
    expect(await objectKeys(`${PREFIX}contents/`)).toEqual([]);
    expect(await query('SELECT count(*)::int AS n FROM file_deletions')).toEqual([{ n: 0 }]);
    // The first instance's only store is PostgreSQL: it serves them all again.
    expect(await servedDigests(server.bastion)).toEqual(original);
  });

  it('migrate moves the rest past a content with a chunk missing, names it, and exits 1', async () => {
    const [damaged] = await query<{ id: string }[]>(
      "SELECT c.id FROM file_contents c JOIN files f ON f.content_id = c.id WHERE f.content_type = 'application/pdf' ORDER BY c.byte_size DESC LIMIT 1",
    );
    const [{ data }] = await query<{ data: Buffer }[]>('SELECT data FROM file_chunks WHERE content_id = $1 AND chunk_index = 1', [
      damaged.id,
    ]);
    await query('DELETE FROM file_chunks WHERE content_id = $1 AND chunk_index = 1', [damaged.id]);
    try {
      const result = await cli(['files', 'migrate', '--to', s3Url(s3.endpoint)], { STORAGE_URL: s3Url(s3.endpoint) });
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/^moved 7 file contents \([\d.]+ MB\) to s3:\/\//);
      expect(result.stdout).toContain(`  not moved: content ${damaged.id} has a chunk missing from its store\n`);
      expect(result.stderr).toMatch(/^bastion: 1 file content\(s\) have chunks missing from their store and were left there .*\n$/m);
      expect(await query("SELECT id FROM file_contents WHERE store = 'postgres'")).toEqual([{ id: damaged.id }]);
    } finally {
      await query('INSERT INTO file_chunks (content_id, chunk_index, data) VALUES ($1, 1, $2)', [damaged.id, data]);
    }
    expect(await servedDigests(both)).toEqual(original);
  });
});
