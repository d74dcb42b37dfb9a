import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { to as copyTo } from 'pg-copy-streams';
import type { Actor } from '../../src/audit/actor';
import { Backup, BackupStatus } from '../../src/backup/backup.entity';
import { restoreArchive } from '../../src/backup/restore';
import { prepareCopySession } from '../../src/backup/table-copy';
import { databaseUrlFor, dropDatabase as dropDatabaseOn } from '../../src/db/database';
import type { Config } from '../../src/config';
import type { RunningBastion } from '../../src/main';
import { withClient } from './harness';

/**
 * What backups cost: `services.backups.create`, `verify`, and `restoreArchive` into an empty
 * database, on a database whose data is one 500,000-row posts table, against the floor of any
 * backup: `COPY posts TO STDOUT` read by pg-copy-streams and thrown away, measured in the same run.
 *
 * - The source is a database of its own, fresh each run (migrations, one author, the posts): the
 *   main bench database holds what the sections before left (audit rows, bench items), which
 *   would change what a backup holds, and 500,000 posts there would change what they measure.
 *   Its Bastion has its own temporary BACKUP_DIR and no backup schedule. With DATABASE_URL set,
 *   the role needs CREATEDB (as verify does anyway).
 * - The posts are generated in SQL, the same every run: a body of about 200 characters of words
 *   drawn (by a hash, not random()) from a vocabulary of 192, so deflate meets text that
 *   compresses about as prose does, not one repeated string; ids are random UUIDs as always.
 *   VACUUM ANALYZE afterwards: the first reader does not pay for setting hint bits, and the
 *   planner's row estimate (the backup's progress total) is right.
 * - Each operation is timed as its caller waits for it, whole (locks, catalogue rows, fsync,
 *   audit events; verify's scratch database; restore's migrations of the empty target), and
 *   this process's CPU time meanwhile is taken beside it: wall-clock far above it is time spent
 *   in PostgreSQL (another process) or waiting. Both grow when other work shares the machine.
 *   MB/s is of table data, MB = 10⁶ bytes of COPY text: the archive manifest's bytes, all
 *   tables, for the backup operations (posts is nearly all of it); the floor's own bytes for it,
 *   which must equal the manifest's posts bytes (same session settings, same columns). The
 *   archives of later runs hold a few more rows (the audit events of the runs before); the
 *   rates use the first archive's bytes and rows, a difference of some 10⁻⁶.
 * - BACKUP_RUNS rounds, the best of each operation kept; floor and create alternate, so that
 *   noise on the machine hits both alike. BENCH_DURATION does not apply: these are single
 *   operations, not a rate over a period.
 * - "Flat memory" (the design's other half of the goal) is watched as the growth of this
 *   process's RSS over a create, sampled every 50 ms: it stays far below the table's size or it
 *   is not flat.
 */

/** The design's goal for create, in MB of table data per second (a goal, not a gate). */
export const BACKUP_GOAL_MB_PER_SECOND = 50;
export const BACKUP_BENCH_POSTS = 500_000;
export const BACKUP_RUNS = 2;
/** The source database and the restore target, beside the bench database on the same server. */
const SOURCE_DATABASE = 'bastion_bench_backup';
const TARGET_DATABASE = 'bastion_bench_restore';
const RSS_SAMPLE_MS = 50;
/** Lines of drawn words the posts' text is cut from (a power of 2: a hash picks one with a mask). */
const CORPUS_LINES = 4096;

const ORIGIN = { ipAddress: null, userAgent: 'bench', requestId: null };
const BENCH_ACTOR: Actor = { actorId: null, ...ORIGIN };

/** Enough words that a body is not one phrase over again: about 7.6 bits of choice per word. */
const VOCABULARY = (
  'the a of and to in is it that for on with as was at by this be from or have an not are but they ' +
  'his her we you their which one all were when there can more if will would about out up what so ' +
  'into them time some could other than then now only its over also new after first two way our ' +
  'because any these most people just well should work through where back much before even good ' +
  'day year made between each under great while long right still own place found around same ' +
  'another small last without world during house again life city home school water country hand ' +
  'morning evening street garden market river bridge window letter coffee bicycle mountain travel ' +
  'weekend weather photo recipe dinner friends family music library meeting project release update ' +
  'feature mobile server backup archive journey ticket station harbour village forest winter summer ' +
  'autumn spring holiday birthday concert museum gallery kitchen bakery breakfast lunch quickly ' +
  'slowly finally really probably perhaps certainly together already almost always never often ' +
  'sometimes usually tomorrow yesterday tonight beautiful important different possible available ' +
  'interesting wonderful terrible simple strange quiet'
).split(' ');

/** One run of an operation: its wall-clock time, and the CPU time of this process (main thread and zlib's threads) meanwhile. */
export interface BackupTiming {
  readonly seconds: number;
  /** Well below `seconds` when the time went to PostgreSQL (another process) or to waiting. */
  readonly cpuSeconds: number;
}

/** One operation's runs, in order; its figure is the fastest of them. */
export interface BackupOperation {
  readonly runs: readonly BackupTiming[];
  /** COPY text bytes it moved (the same every run). */
  readonly bytes: number;
  readonly rows: number;
}

export interface BackupBenchResult {
  /** COPY posts TO STDOUT, read and dropped. */
  readonly floor: BackupOperation;
  readonly create: BackupOperation;
  readonly verify: BackupOperation;
  readonly restore: BackupOperation;
  readonly tables: number;
  /** COPY text bytes of posts in the archive's manifest: the floor must read exactly as many. */
  readonly postsBytes: number;
  /** Size of each archive file (they differ only by their random salts and ids). */
  readonly archiveBytes: number;
  /** Largest growth of this process's RSS over a create, above its RSS when the create began. */
  readonly createRssGrowthBytes: number;
  /** Problems with what the operations produced: a run with any measures a failure, not a backup. */
  readonly problems: readonly string[];
}

export interface BackupBenchOptions {
  /** The bench database: its server gets the source and target databases beside it. */
  readonly adminUrl: string;
  /** Starts a Bastion with the harness's settings and these overrides. */
  readonly startBastion: (overrides: Partial<Config>) => Promise<RunningBastion>;
  /** Cleanup the harness runs at the end, last in first out, even after a failure. */
  readonly teardown: { add(step: () => Promise<void>): void };
  readonly signal: AbortSignal;
}

export function fastestRun(operation: BackupOperation): BackupTiming {
  return operation.runs.reduce((fastest, run) => (run.seconds < fastest.seconds ? run : fastest));
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; timing: BackupTiming }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const value = await work();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { value, timing: { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 } };
}

/** Drops (whatever an interrupted run left) and creates `database` on the server of `adminUrl`. */
async function freshDatabase(adminUrl: string, database: string): Promise<string> {
  await withClient(adminUrl, 'bastion-bench-backup', async (admin) => {
    await dropDatabaseOn(admin, database);
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
  });
  return databaseUrlFor(adminUrl, database);
}

async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  await withClient(adminUrl, 'bastion-bench-backup', (admin) => dropDatabaseOn(admin, database));
}

/**
 * One author (signed up through the service, as any user is), then the posts in one INSERT, on a
 * connection of its own: the 500,000 rows take about 16 s, past the server pool's statement timeout.
 */
async function seedPosts(bastion: RunningBastion): Promise<void> {
  const email = `bench-${randomBytes(6).toString('hex')}@example.com`;
  const { user } = await bastion.services.accounts.signUp(email, randomBytes(18).toString('base64url'), ORIGIN);
  await withClient(bastion.database.url, 'bastion-bench-backup', async (client) => {
    // A body is a window of 190–229 characters (cut to whole words) into one of 4,096 lines of 80
    // drawn words, chosen by a hash of the row: drawing every body's words afresh took 26 s for
    // the 500,000 rows (16 s this way), and rows that deflate's 32 KiB window sees together rarely
    // share a line.
    await client.query(
      `INSERT INTO posts (author_id, title, body, published, created_at, updated_at)
     WITH line AS (
       SELECT l AS id, string_agg(($2::text[])[1 + (hashint4(l * 128 + k) & 2147483647) % cardinality($2::text[])], ' ' ORDER BY k) AS words
         FROM generate_series(0, ${CORPUS_LINES - 1}) AS l, generate_series(1, 80) AS k
        GROUP BY l
     )
     SELECT $1,
            initcap(regexp_replace(substr(title_line.words, 1 + ((hashint4(2 * n + 1) & 2147483647) >> 12) % 200, 22 + n % 30), '^\\S* | \\S*$', '', 'g')),
            regexp_replace(substr(body_line.words, 1 + ((hashint4(2 * n) & 2147483647) >> 12) % 200, 190 + n % 40), '^\\S* | \\S*$', '', 'g'),
            n % 4 <> 0, created.at, created.at + (n % 97) * interval '1 minute'
       FROM generate_series(1, $3::int) AS n
       JOIN line AS body_line ON body_line.id = hashint4(2 * n) & ${CORPUS_LINES - 1}
       JOIN line AS title_line ON title_line.id = hashint4(2 * n + 1) & ${CORPUS_LINES - 1}
      CROSS JOIN LATERAL (SELECT '2024-01-01'::timestamptz + n * interval '37 seconds' + (n % 1000) * interval '1 millisecond' AS at) AS created`,
      [user.id, VOCABULARY, BACKUP_BENCH_POSTS],
    );
    await client.query('VACUUM ANALYZE posts');
  });
}

/** The floor: the posts' COPY text, in the archive's session settings, read and dropped. */
async function copyPostsOut(sourceUrl: string): Promise<{ bytes: number; timing: BackupTiming }> {
  return withClient(sourceUrl, 'bastion-bench-backup', async (client) => {
    await prepareCopySession(client);
    const { value: bytes, timing } = await timed(async () => {
      let read = 0;
      for await (const chunk of client.query(copyTo('COPY posts TO STDOUT')) as AsyncIterable<Buffer>) read += chunk.length;
      return read;
    });
    return { bytes, timing };
  });
}

/** The largest RSS above the one at the start, while `work` runs. */
async function rssGrowthDuring<T>(work: () => Promise<T>): Promise<{ value: T; growthBytes: number }> {
  const start = process.memoryUsage.rss();
  let peak = start;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, RSS_SAMPLE_MS);
  try {
    const value = await work();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, growthBytes: peak - start };
  } finally {
    clearInterval(sampler);
  }
}

/** Undefined when interrupted: a cut-short run measures nothing. */
export async function runBackupBench(options: BackupBenchOptions): Promise<BackupBenchResult | undefined> {
  const { adminUrl, teardown, signal } = options;
  const sourceUrl = await freshDatabase(adminUrl, SOURCE_DATABASE);
  teardown.add(() => dropDatabase(adminUrl, SOURCE_DATABASE));
  teardown.add(() => dropDatabase(adminUrl, TARGET_DATABASE));
  const backupDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'bastion-bench-backups-'));
  teardown.add(() => fs.promises.rm(backupDir, { recursive: true, force: true }));
  const bastion = await options.startBastion({
    databaseUrl: sourceUrl,
    backupDir,
    backupCopyDir: undefined,
    backupSchedule: undefined,
    backupVerifySchedule: undefined,
  });
  teardown.add(() => bastion.stop());
  const backups = bastion.services.backups;

  await seedPosts(bastion);
  if (signal.aborted) return undefined;

  const problems: string[] = [];
  const floorRuns: { bytes: number; timing: BackupTiming }[] = [];
  const createRuns: { backup: Backup; timing: BackupTiming }[] = [];
  let createRssGrowthBytes = 0;
  for (let round = 0; round < BACKUP_RUNS; round += 1) {
    floorRuns.push(await copyPostsOut(sourceUrl));
    if (signal.aborted) return undefined;
    const { value: run, growthBytes } = await rssGrowthDuring(() => timed(() => backups.create(BENCH_ACTOR, 'cli')));
    createRuns.push({ backup: run.value, timing: run.timing });
    createRssGrowthBytes = Math.max(createRssGrowthBytes, growthBytes);
    if (signal.aborted) return undefined;
  }

  const verifyRuns: BackupTiming[] = [];
  for (const { backup } of createRuns) {
    const { value: verified, timing } = await timed(() => backups.verify(backup.id, BENCH_ACTOR));
    verifyRuns.push(timing);
    if (verified.status !== BackupStatus.VERIFIED)
      problems.push(`verify of ${backup.id}: ${verified.status.toUpperCase()}: ${verified.verification}`);
    if (signal.aborted) return undefined;
  }

  const restoreRuns: BackupTiming[] = [];
  const { keyring } = bastion.services;
  for (const { backup } of createRuns) {
    const targetUrl = await freshDatabase(adminUrl, TARGET_DATABASE);
    const { value: restored, timing } = await timed(() =>
      restoreArchive({ file: backups.fileOf(backup), keyring, targetUrl, replace: false }),
    );
    restoreRuns.push(timing);
    if (restored.rows !== backup.rows)
      problems.push(`restore of ${backup.id}: ${restored.rows} rows restored, the archive holds ${backup.rows}`);
    if (signal.aborted) return undefined;
  }

  const archive = createRuns[0].backup;
  const tables = archive.manifest?.tables ?? [];
  const tableBytes = tables.reduce((sum, table) => sum + table.bytes, 0);
  const postsBytes = tables.find((table) => table.name === 'posts')?.bytes ?? 0;
  const postsRows = tables.find((table) => table.name === 'posts')?.rows ?? 0;
  if (postsRows !== BACKUP_BENCH_POSTS) problems.push(`the archive holds ${postsRows} posts, ${BACKUP_BENCH_POSTS} were generated`);
  for (const run of floorRuns)
    if (run.bytes !== postsBytes) problems.push(`COPY posts read ${run.bytes} bytes, the archive's manifest says ${postsBytes}`);

  const backupOperation = (runs: BackupTiming[]): BackupOperation => ({ runs, bytes: tableBytes, rows: archive.rows });
  return {
    floor: { runs: floorRuns.map((run) => run.timing), bytes: postsBytes, rows: postsRows },
    create: backupOperation(createRuns.map((run) => run.timing)),
    verify: backupOperation(verifyRuns),
    restore: backupOperation(restoreRuns),
    tables: tables.length,
    postsBytes,
    archiveBytes: archive.sizeBytes,
    createRssGrowthBytes,
    problems,
  };
}

/** MB (10⁶ bytes) of table data per second, at the operation's fastest run. */
export function megabytesPerSecond(operation: BackupOperation): number {
  return operation.bytes / 1e6 / fastestRun(operation).seconds;
}

export function rowsPerSecond(operation: BackupOperation): number {
  return operation.rows / fastestRun(operation).seconds;
}
