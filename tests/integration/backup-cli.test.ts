import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { dropDatabase as dropDatabaseOn } from '../../src/db/database';
import { BACKUP_LOCK_KEY } from '../../src/backup/locked-connection';
import { CLI_PATH, cliEnvAgainst, runCliAgainst } from '../support/cli';
import { eventually } from '../support/eventually';
import { makeUser } from '../support/factories';
import { createTestDatabase, databaseUrl, testDatabaseServer, withAdminClient } from '../support/test-database';
import { TEST_KEYS } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * `bastion backup …` as an operator runs it: the compiled CLI in a child process, against a test
 * server's database, with BACKUP_DIR the server's own archive folder (so the server's service and
 * the CLI see the same files).
 */
type CliResult = { code: number; stdout: string; stderr: string };

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const MB = 1024 * 1024;

/** An expected failure as the CLI must report it: exit 1, nothing on stdout, exactly one line on stderr (so no stack). */
function expectOneLineFailure(result: CliResult, message: RegExp): void {
  expect(result).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^bastion: [^\n]+\n$/) });
  expect(result.stderr).toMatch(message);
}

/** Each table's row count and an MD5 of its rows: two equal fingerprints mean the same data. */
async function fingerprintOf(url: string): Promise<Record<string, string>> {
  return withAdminClient(url, async (client) => {
    const { rows: tables } = await client.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    );
    const fingerprint: Record<string, string> = {};
    for (const { name } of tables) {
      const { rows } = await client.query<{ digest: string }>(
        `SELECT count(*) || ' rows, ' || COALESCE(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-') AS digest FROM ${client.escapeIdentifier(name)} t`,
      );
      fingerprint[name] = rows[0].digest;
    }
    return fingerprint;
  });
}

/** A name for a database the test creates (the `bastion_t` prefix lets global setup clear leftovers). */
const scratchDatabaseName = () => `bastion_test_restore_${randomBytes(4).toString('hex')}`;

function dropDatabase(name: string): Promise<void> {
  return withAdminClient(testDatabaseServer().adminUrl, (client) => dropDatabaseOn(client, name));
}

async function databaseExists(name: string): Promise<boolean> {
  return withAdminClient(
    testDatabaseServer().adminUrl,
    async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1,
  );
}

describe('bastion backup, through the CLI', () => {
  let server: TestServer;
  let backupDir: string;
  const cli = (args: string[], env: Record<string, string> = {}) => runCliAgainst(server, args, { BACKUP_DIR: backupDir, ...env });
  const archives = () =>
    fs
      .readdirSync(backupDir)
      .filter((name) => name.endsWith('.bbak'))
      .sort();
  const catalogue = async () =>
    await server.bastion.database.dataSource.query<{ id: string; status: string; fileName: string; sizeBytes: string; rows: string }[]>(
      'SELECT id::text AS id, status, file_name AS "fileName", size_bytes::bigint AS "sizeBytes", rows::bigint AS rows FROM backups ORDER BY created_at',
    );
  const postsFingerprint = async (url: string) => (await fingerprintOf(url)).posts;

  beforeAll(async () => {
    server = await startTestServer();
    backupDir = server.config.backupDir!;
    const writer = await makeUser(server);
    await server.bastion.database.dataSource.query(
      "INSERT INTO posts (author_id, title, body) SELECT $1, 'before ' || n, repeat(md5(n::text), 3) FROM generate_series(1, 2000) AS n",
      [writer.id],
    );
  });
  afterAll(() => server?.close());

  describe('create, list, verify, prune', () => {
    let first: string;
    let createdRows: string;
    let progress: string[];

    it('create prints the id and COMPLETE, writes one archive, and reports progress on stderr only', async () => {
      const result = await cli(['backup', 'create']);
      expect(result.code).toBe(0);
      first = /^backup ([0-9a-f-]{36}): COMPLETE$/m.exec(result.stdout)?.[1] as string;
      expect(first).toMatch(new RegExp(`^${UUID}$`));
      expect(archives()).toEqual([expect.stringMatching(new RegExp(`^bastion-\\d{8}T\\d{6}Z-${first}\\.bbak$`))]);
      expect(result.stdout).toContain(`  file: ${path.join(backupDir, archives()[0])}\n`);
      const [entry] = await catalogue();
      expect(entry).toMatchObject({ id: first, status: 'complete' });
      expect(Number(entry.rows)).toBeGreaterThan(2000);
      createdRows = entry.rows;

      expect(result.stdout).not.toMatch(/\[[#-]{24}\]/);
      progress = result.stderr.trimEnd().split('\n');
      for (const line of progress) expect(line).toMatch(/^backup \[[#-]{24}\] \d{1,3}% \(\d+\/\d+\) /);
    });

    it("create's last progress line accounts for every row of the archive", () => {
      expect(progress[progress.length - 1]).toMatch(
        new RegExp(`^backup \\[#{24}\\] 100% \\(${createdRows}/${createdRows}\\) [\\d.]+ MB of table data, [\\d.]+ MB/s$`),
      );
    });

    it("create's progress counts rows out of the snapshot's exact row count, rising, with no jump to the end", () => {
      const counts = progress.map((line) => /\((\d+)\/(\d+)\)/.exec(line)!.slice(1).map(Number));
      for (const [, total] of counts) expect(total).toBe(Number(createdRows));
      const done = counts.map(([rows]) => rows);
      expect(done).toEqual([...done].sort((a, b) => a - b));
      expect(progress.length).toBeGreaterThan(2);
    });

    it('list shows it as a table: id, creation time, age, size, rows, status', async () => {
      const result = await cli(['backup', 'list']);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      const [header, ...rows] = result.stdout.trimEnd().split('\n');
      expect(header).toMatch(/^ID +CREATED \(UTC\) +AGE +SIZE +ROWS +STATUS +VERIFIED$/);
      const [entry] = await catalogue();
      const size = `${(Number(entry.sizeBytes) / MB).toFixed(1)} MB`;
      expect(rows).toEqual([
        expect.stringMatching(
          new RegExp(`^${first}  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d  +[01]m  +${escapeRegExp(size)}  +${entry.rows}  COMPLETE +-$`),
        ),
      ]);
    });

    it('verify, by id and by an 8-character prefix, prints VERIFIED and exits 0', async () => {
      for (const reference of [first, first.slice(0, 8)]) {
        const result = await cli(['backup', 'verify', reference]);
        expect({ reference, code: result.code }).toEqual({ reference, code: 0 });
        // stderr holds the progress bar only.
        const bar = result.stderr.split('\n').filter(Boolean);
        expect(bar.every((line) => line.startsWith('verifying ['))).toBe(true);
        // In rows, as create counts them, ending with every row restored.
        for (const line of bar) expect(line).toMatch(new RegExp(`^verifying \\[[#-]{24}\\] \\d{1,3}% \\(\\d+/${createdRows}\\) `));
        expect(bar[bar.length - 1]).toMatch(new RegExp(`^verifying \\[#{24}\\] 100% \\(${createdRows}/${createdRows}\\) `));
        expect(result.stdout).toMatch(new RegExp(`^backup ${first}: VERIFIED\\n`));
        expect(result.stdout).toMatch(
          /^ {2}verification: restored \d+ tables and \d+ rows into a scratch database; every table's row count and SHA-256 match the manifest$/m,
        );
      }
      expect((await catalogue()).map((entry) => entry.status)).toEqual(['verified']);
    });

    it('prune with BACKUP_KEEP=1 removes older archives and their entries, but keeps the newest and the newest verified one', async () => {
      const ids: string[] = [];
      for (let index = 0; index < 2; index += 1) {
        const result = await cli(['backup', 'create']);
        expect(result.code).toBe(0);
        ids.push(/^backup ([0-9a-f-]{36}): COMPLETE$/m.exec(result.stdout)![1]);
      }
      const [second, third] = ids;
      const fileOf = async (id: string) => (await catalogue()).find((entry) => entry.id === id)!.fileName;
      const [firstFile, secondFile, thirdFile] = [await fileOf(first), await fileOf(second), await fileOf(third)];
      expect(archives()).toEqual([firstFile, secondFile, thirdFile].sort());

      const pruned = await cli(['backup', 'prune'], { BACKUP_KEEP: '1' });
      expect(pruned).toEqual({ code: 0, stdout: `pruned 1 backup(s): ${second}\n`, stderr: '' });
      expect(archives()).toEqual([firstFile, thirdFile].sort());
      expect((await catalogue()).map((entry) => [entry.id, entry.status])).toEqual([
        [first, 'verified'],
        [third, 'complete'],
      ]);
      expect(await cli(['backup', 'prune'], { BACKUP_KEEP: '1' })).toEqual({ code: 0, stdout: 'nothing to prune\n', stderr: '' });
    });
  });

  describe('restore', () => {
    let backupId: string;
    let archiveFile: string;
    let postsAtBackup: string;
    const created: string[] = [];
    const { adminUrl } = testDatabaseServer();
    const adminHost = () => escapeRegExp(`${new URL(adminUrl).hostname}:${new URL(adminUrl).port || 5432}`);

    beforeAll(async () => {
      const result = await cli(['backup', 'create']);
      expect({ code: result.code, stderr: result.stderr.split('\n').filter((line) => !line.startsWith('backup [')) }).toEqual({
        code: 0,
        stderr: [''],
      });
      backupId = /^backup ([0-9a-f-]{36}): COMPLETE$/m.exec(result.stdout)![1];
      archiveFile = path.join(backupDir, (await catalogue()).find((entry) => entry.id === backupId)!.fileName);
      postsAtBackup = await postsFingerprint(server.database.url);
    });
    afterAll(async () => {
      for (const name of created) await dropDatabase(name);
    });

    /** What a restore prints first: the target's host:port/name, and the migrations a new database needed. */
    const restoredInto = (target: string) =>
      new RegExp(
        `^restored \\d+ tables and \\d+ rows at schema \\w+ into ${target}( \\(\\d+ migration\\(s\\) applied\\))?\\n` +
          'point DATABASE_URL at that database to serve it',
      );

    /** The restored database holds the archived posts, and the audit event of the restore. */
    async function expectRestoredInto(url: string, archiveId: string | null): Promise<void> {
      expect(await postsFingerprint(url)).toBe(postsAtBackup);
      const events = await withAdminClient(url, (client) =>
        client.query("SELECT target_id FROM audit_events WHERE action = 'backup_restored'"),
      );
      expect(events.rows).toEqual([{ target_id: archiveId }]);
    }

    it('without flags restores into a new database and names it', async () => {
      const result = await cli(['backup', 'restore', backupId]);
      const name = / into \S+\/(bastion_restore_\d{14}_[0-9a-f]{6})\b/.exec(result.stdout)?.[1];
      if (name) created.push(name);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(restoredInto(`${adminHost()}/bastion_restore_\\d{14}_[0-9a-f]{6}`));
      expect(name).toBeDefined();
      await expectRestoredInto(databaseUrl(adminUrl, name!), backupId);
      await dropDatabase(name!);
      expect(await databaseExists(name!)).toBe(false);
    });

    it('--to a database that does not exist creates and fills it', async () => {
      const name = scratchDatabaseName();
      created.push(name);
      const result = await cli(['backup', 'restore', backupId, '--to', databaseUrl(adminUrl, name)]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(restoredInto(`${adminHost()}/${name}`));
      await expectRestoredInto(databaseUrl(adminUrl, name), backupId);
      // Both bars in rows, each ending with every row of the archive.
      const rows = / and (\d+) rows /.exec(result.stdout)![1];
      const lines = result.stderr.split('\n').filter(Boolean);
      for (const phase of ['checking', 'restoring'])
        expect(lines.filter((line) => line.startsWith(`${phase} [`)).pop()).toMatch(
          new RegExp(`^${phase} \\[#{24}\\] 100% \\(${rows}/${rows}\\) `),
        );
    });

    it('restores an archive named by its file path', async () => {
      const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-restore-file-')), 'x.bbak');
      fs.copyFileSync(archiveFile, copy);
      const name = scratchDatabaseName();
      created.push(name);
      try {
        const result = await cli(['backup', 'restore', copy, '--to', databaseUrl(adminUrl, name)]);
        expect(result.code).toBe(0);
        expect(result.stdout).toMatch(restoredInto(`${adminHost()}/${name}`));
        await expectRestoredInto(databaseUrl(adminUrl, name), null);
      } finally {
        fs.rmSync(path.dirname(copy), { recursive: true, force: true });
      }
    });

    it('--to a database with tables, without --yes, is refused in one line and the target is unchanged', async () => {
      const target = await createTestDatabase();
      try {
        await withAdminClient(target.url, (client) =>
          client.query("INSERT INTO firewall_rules (cidr, action, note) VALUES ('198.51.100.0/24', 'deny', 'must survive')"),
        );
        const before = await fingerprintOf(target.url);
        const result = await cli(['backup', 'restore', backupId, '--to', target.url]);
        expect(await fingerprintOf(target.url)).toEqual(before);
        expectOneLineFailure(result, /^bastion: the target database already holds tables: pass --yes/);
      } finally {
        await target.drop();
      }
    });

    it('a wrong key of the same name is refused in one line, and the current database is unchanged', async () => {
      const before = await fingerprintOf(server.database.url);
      const impostor = `k1:${Buffer.alloc(32, 7).toString('base64')},k2:${TEST_KEYS.k2.toString('base64')}`;
      const result = await cli(['backup', 'restore', backupId, '--yes'], { BASTION_ENCRYPTION_KEYS: impostor });
      expect(await fingerprintOf(server.database.url)).toEqual(before);
      expectOneLineFailure(
        result,
        /^bastion: the archive does not open with this keyring's key "k1": it was written with a different key of that name\n$/,
      );
    });

    it('an unknown id is refused in one line', async () => {
      const unknown = '0badc0de-0000-4000-8000-000000000000';
      const result = await cli(['backup', 'restore', unknown, '--yes']);
      expectOneLineFailure(result, new RegExp(`^bastion: no backup ${unknown} in the catalogue or in ${escapeRegExp(backupDir)}\\n$`));
    });

    it("--yes without --to replaces the current database's data with the archive's", async () => {
      const dataSource = server.bastion.database.dataSource;
      const [{ author_id: author }] = await dataSource.query("SELECT author_id FROM posts WHERE title = 'before 1'");
      await dataSource.query("INSERT INTO posts (author_id, title) VALUES ($1, 'marker after the backup')", [author]);
      await dataSource.query("DELETE FROM posts WHERE title IN ('before 1', 'before 2')");
      expect(await postsFingerprint(server.database.url)).not.toBe(postsAtBackup);

      const result = await cli(['backup', 'restore', backupId, '--yes']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(
        new RegExp(`^restored \\d+ tables and \\d+ rows at schema \\w+ into ${adminHost()}/${server.database.name}\\n$`),
      );
      const titles = await dataSource.query(
        "SELECT title FROM posts WHERE title IN ('marker after the backup', 'before 1', 'before 2') ORDER BY title",
      );
      expect(titles).toEqual([{ title: 'before 1' }, { title: 'before 2' }]);
      expect(await postsFingerprint(server.database.url)).toBe(postsAtBackup);
      // The catalogue is not part of an archive: the current one stays.
      expect((await catalogue()).map((entry) => entry.id)).toContain(backupId);
    });
  });
});

describe('bastion backup on a large table', () => {
  let server: TestServer;
  let backupDir: string;
  let author: string;
  const dataSource = () => server.bastion.database.dataSource;
  const postCount = async () => Number((await dataSource().query('SELECT count(*)::int AS posts FROM posts'))[0].posts);
  /** Adds `count` posts, 50,000 a statement: each well within the pool's statement timeout, however busy the machine. */
  const fillPosts = async (count: number) => {
    for (let done = 0; done < count; done += 50_000)
      await dataSource().query(
        "INSERT INTO posts (author_id, title, body) SELECT $1, 'bulk ' || n, repeat(md5(n::text), 6) FROM generate_series($2::int, $3::int) AS n",
        [author, done + 1, Math.min(count, done + 50_000)],
      );
  };

  beforeAll(async () => {
    server = await startTestServer();
    backupDir = server.config.backupDir!;
    author = (await makeUser(server)).id;
  });
  afterAll(() => server?.close());

  describe('memory', () => {
    // Archives of their own: the server's folder stays empty for the interrupted backup below.
    const measuredDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-backup-rss-'));
    afterAll(() => fs.rmSync(measuredDir, { recursive: true, force: true }));

    /** Peak RSS (KiB) of a `backup create` run in a node of its own, and the posts its archive holds. */
    async function createMeasuringPeakRss(): Promise<{ maxRssKiB: number; posts: number }> {
      const script =
        `require(${JSON.stringify(CLI_PATH)}).runCli(['node', 'bastion', 'backup', 'create'])` +
        ".then(() => process.stderr.write('MAXRSS ' + process.resourceUsage().maxRSS + '\\n'))";
      const { stdout, stderr } = await promisify(execFile)(process.execPath, ['-e', script], {
        encoding: 'utf8',
        timeout: 120_000,
        env: cliEnvAgainst(server, { BACKUP_DIR: measuredDir }),
      });
      const maxRss = /^MAXRSS (\d+)$/m.exec(stderr)?.[1];
      const id = /^backup ([0-9a-f-]{36}): COMPLETE$/m.exec(stdout)?.[1];
      if (!maxRss || !id) throw new Error(`backup create did not complete, or printed no MAXRSS line:\n${stdout}${stderr}`);
      const [{ posts }] = await dataSource().query(
        "SELECT (t->>'rows')::int AS posts FROM backups, jsonb_array_elements(manifest->'tables') t WHERE id = $1 AND t->>'name' = 'posts'",
        [id],
      );
      return { maxRssKiB: Number(maxRss), posts };
    }

    it('stays flat: peak RSS of create for 50k and for 500k rows differs by less than 30 MB', async () => {
      await fillPosts(50_000);
      const small = await createMeasuringPeakRss();
      await fillPosts(450_000);
      const large = await createMeasuringPeakRss();
      expect([small.posts, large.posts]).toEqual([50_000, 500_000]);
      console.log(
        `backup create peak RSS: ${(small.maxRssKiB / 1024).toFixed(1)} MB for 50k rows, ${(large.maxRssKiB / 1024).toFixed(1)} MB for 500k rows`,
      );
      expect(Math.abs(large.maxRssKiB - small.maxRssKiB)).toBeLessThan(30 * 1024);
    }, 120_000);
  });

  describe('killed while creating', () => {
    // Enough rows that writing the archive takes a while (the memory test above leaves 500k).
    beforeAll(async () => {
      const missing = 300_000 - (await postCount());
      if (missing > 0) await fillPosts(missing);
    }, 60_000);

    it('leaves no complete-looking file; the next command marks the entry FAILED and removes the temporary file', async () => {
      expect(fs.readdirSync(backupDir)).toEqual([]);
      const child = spawn(process.execPath, [CLI_PATH, 'backup', 'create'], {
        env: cliEnvAgainst(server, { BACKUP_DIR: backupDir }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      let exitedBy: string | number | null | undefined;
      const exited = new Promise<string | number | null>((resolve) =>
        child.once('exit', (code, signal) => resolve((exitedBy = signal ?? code))),
      );
      const partialFile = () =>
        fs.readdirSync(backupDir).find((name) => {
          if (!/^\.bastion-.*\.bbak\.partial$/.test(name)) return false;
          return (fs.statSync(path.join(backupDir, name), { throwIfNoEntry: false })?.size ?? 0) > 0;
        });
      let partial: string | undefined;
      try {
        await eventually(() => {
          if (exitedBy !== undefined) throw new Error(`backup create ended (${exitedBy}) before it could be killed:\n${output}`);
          partial = partialFile();
          return partial !== undefined;
        }, 30_000);
      } finally {
        child.kill('SIGKILL');
      }
      expect(await exited).toBe('SIGKILL');
      const id = new RegExp(`^\\.bastion-\\d{8}T\\d{6}Z-(${UUID})\\.bbak\\.partial$`).exec(partial!)?.[1];
      expect(id).toBeDefined();

      expect(fs.readdirSync(backupDir).filter((name) => name.endsWith('.bbak'))).toEqual([]);
      expect(fs.readdirSync(backupDir)).toEqual([partial]);
      const statusOf = async () => (await dataSource().query('SELECT status FROM backups WHERE id = $1', [id]))[0]?.status;
      expect(await statusOf()).toBe('creating');

      // PostgreSQL ends the dead client's session, and with it the backup lock; polled, since it notices on its own time.
      const lockHolders = async () =>
        Number(
          (
            await dataSource().query(
              "SELECT count(*)::int AS holders FROM pg_locks WHERE locktype = 'advisory' " +
                'AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ' +
                'AND ((classid::bigint << 32) | objid::bigint) = $1::bigint',
              [BACKUP_LOCK_KEY],
            )
          )[0].holders,
        );
      await eventually(async () => (await lockHolders()) === 0, 15_000);

      const listed = await runCliAgainst(server, ['backup', 'list'], { BACKUP_DIR: backupDir });
      expect(listed).toMatchObject({ code: 0, stderr: '' });
      expect(listed.stdout).toMatch(
        new RegExp(`^${id}  .*  FAILED +-  \\(interrupted: the process writing it stopped before it finished\\)$`, 'm'),
      );
      expect(await statusOf()).toBe('failed');
      expect(fs.readdirSync(backupDir)).toEqual([]);
    });
  });
});
