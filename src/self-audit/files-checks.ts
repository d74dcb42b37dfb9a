import { In } from 'typeorm';
import { ChunkMissingError } from '../files/chunk-store';
import type { Contents } from '../files/content-io';
import { ContentDamagedError } from '../files/content-cipher';
import { FileContent } from '../files/file-content.entity';
import { UNREFERENCED } from '../files/content-references';
import { CheckContext, CheckDefinition, CheckOutcome, DAY_MS, fail, pass, warn } from './checks';

/** What the files checks read besides the platform's context: the contents' stores and their encryption. */
export interface FileCheckContext extends CheckContext {
  readonly fileContents: Contents;
}

const HOUR_MS = 60 * 60 * 1000;
const GB = 1024 * 1024 * 1024;

/** Contents read back each run: the newest (a broken key or store shows at once) and as many at random (over the daily runs, old ones too). */
const SAMPLE_NEWEST = 10;
const SAMPLE_RANDOM = 10;
/** Content ids named in a finding, at most. */
const NAMED_IDS = 5;

/** An account quota above this lets one account fill the disk or the bill (the default is 1gb). */
const QUOTA_WARN_BYTES = 100 * GB;
/** In-flight uploads above these: each holds up to a chunk (512 KiB) in memory and a database connection while it writes one. */
const UPLOADS_PER_ACCOUNT_WARN = 16;
const UPLOADS_PER_ADDRESS_WARN = 64;
/** Images above this many pixels take 400 MB or more to decode (about 4 bytes a pixel): a few at once exhaust a server. */
const IMAGE_PIXELS_WARN = 100_000_000;
/** A signed download URL is a bearer credential: one that leaks (a log, a shared link) should stop working soon. */
const URL_TTL_WARN_SECONDS = 60 * 60;

/**
 * The maintenance job deletes a content nothing names once it is an hour old, and runs hourly:
 * one older than three hours (an hour's slack) means the job is not running or keeps failing.
 */
const ORPHAN_MAX_AGE_MS = 3 * HOUR_MS;
/** The job removes 500 queued store deletions an hour: a queue row older than a day is stuck (or the backlog is unusually large). */
const DELETION_MAX_AGE_MS = DAY_MS;

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
/** The verb agreeing with a count: verb(1, 'holds', 'hold'). */
const verb = (count: number, one: string, many: string) => (count === 1 ? one : many);
const idList = (ids: readonly string[]) => `${ids.slice(0, NAMED_IDS).join(', ')}${ids.length > NAMED_IDS ? ', …' : ''}`;

/** 1073741824 → "1gb", as BASTION_FILES_ACCOUNT_QUOTA is written (its units are 1024-based). */
function sizeText(bytes: number): string {
  const units: [string, number][] = [
    ['gb', GB],
    ['mb', 1024 * 1024],
    ['kb', 1024],
  ];
  for (const [unit, size] of units) if (bytes >= size) return `${Number((bytes / size).toFixed(1))}${unit}`;
  return `${bytes} bytes`;
}

/** The worst of several findings (FAIL over WARN over PASS). */
function worst(findings: readonly CheckOutcome[]): CheckOutcome['status'] {
  if (findings.some((finding) => finding.status === 'FAIL')) return 'FAIL';
  return findings.some((finding) => finding.status === 'WARN') ? 'WARN' : 'PASS';
}

/**
 * Reads a content's first and last chunks as a download would (from its store, or another one
 * while a move between stores is under way) and opens them: the final flag of the last one proves
 * the content was not cut short.
 */
async function openEnds(fileContents: Contents, content: FileContent): Promise<void> {
  const cipher = fileContents.cipherOf(content);
  for (const index of new Set([0, cipher.chunkCount - 1]))
    for await (const sealed of fileContents.readSealed(content, index, index)) cipher.open(index, sealed);
}

/** The files feature's checks, each under the measure it belongs to. */
export const FILE_CHECKS: readonly CheckDefinition<FileCheckContext>[] = [
  {
    id: 'encryption.file_contents',
    measure: 'encryption',
    run: async ({ dataSource, keyring, fileContents }) => {
      const byKid = await dataSource.query<{ kid: string; count: number }[]>(
        'SELECT kid, count(*)::int AS count FROM file_contents GROUP BY kid ORDER BY kid',
      );
      const total = byKid.reduce((sum, row) => sum + row.count, 0);
      if (total === 0) return pass('No file contents are stored yet.');
      const lost = byKid.filter((row) => !keyring.has(row.kid));
      const lostCount = lost.reduce((sum, row) => sum + row.count, 0);

      // Complete contents (an upload still arriving has no SHA-256 and only some chunks) in a
      // configured store (the others are backups.file_contents_consistent's finding) under a key we hold.
      const configured: string[] = fileContents.stores.all.map((store) => store.kind);
      const sampleIds = await dataSource.query<{ id: string }[]>(
        `(SELECT id FROM file_contents WHERE sha256 IS NOT NULL AND store = ANY($1) AND kid = ANY($2) ORDER BY created_at DESC LIMIT $3)
         UNION
         (SELECT id FROM file_contents WHERE sha256 IS NOT NULL AND store = ANY($1) AND kid = ANY($2) ORDER BY random() LIMIT $4)`,
        [configured, keyring.kids(), SAMPLE_NEWEST, SAMPLE_RANDOM],
      );
      const sample = sampleIds.length === 0 ? [] : await dataSource.manager.findBy(FileContent, { id: In(sampleIds.map((row) => row.id)) });
      const damaged: string[] = [];
      const missing: string[] = [];
      let unreadable: string | null = null;
      let opened = 0;
      for (const content of sample) {
        try {
          await openEnds(fileContents, content);
          opened += 1;
        } catch (error) {
          if (error instanceof ContentDamagedError) damaged.push(content.id);
          else if (error instanceof ChunkMissingError) missing.push(content.id);
          else {
            // Not the content but what reads it (a store unreachable or refusing): the rest would only fail the same way, slowly.
            unreadable = error instanceof Error ? error.message : String(error);
            break;
          }
        }
      }

      const keys = byKid.map((row) => `${row.kid}: ${row.count}`).join(', ');
      if (lostCount === 0 && damaged.length === 0 && missing.length === 0 && unreadable === null)
        return pass(
          `${plural(total, 'stored content')} (${keys}), all under keys the keyring holds; ` +
            `${plural(opened, 'content')} read back just now (the newest and a random sample) opened and authenticated, first and last chunk.`,
        );
      const problems: string[] = [];
      const remedies: string[] = [];
      if (lostCount > 0) {
        problems.push(
          `${lostCount} of the ${plural(total, 'stored content')} ${verb(lostCount, 'is', 'are')} under ` +
            `${lost.map((row) => `"${row.kid}"`).join(', ')}, which the keyring does not hold: those files cannot be read`,
        );
        remedies.push('Put the missing key back into BASTION_ENCRYPTION_KEYS from escrow (without it those files are lost: delete them).');
      }
      if (damaged.length > 0)
        problems.push(
          `${damaged.length} of the ${sample.length} read back ${verb(damaged.length, 'does', 'do')} not authenticate ` +
            `(changed, moved, cut short or sealed under another key): ${idList(damaged)}`,
        );
      if (missing.length > 0)
        problems.push(
          `${missing.length} of the ${sample.length} read back ${verb(missing.length, 'misses', 'miss')} a chunk in the store: ${idList(missing)}`,
        );
      if (damaged.length > 0 || missing.length > 0)
        remedies.push(
          'Find their files (SELECT table_name, row_id, field FROM files WHERE content_id IN (…)); put the chunks back from a backup ' +
            "of the store (the database's file_chunks, or the bucket's versions) or delete those files so they are uploaded again.",
        );
      if (unreadable !== null) {
        problems.push(`reading contents back stopped: ${unreadable}`);
        remedies.push(
          'Fix what the message names (a store that does not answer: see backups.file_store_reachable), then run the self-audit again.',
        );
      }
      const detail = problems.join('; ');
      return fail(`${detail.charAt(0).toUpperCase()}${detail.slice(1)}.`, remedies.join(' '));
    },
  },
  {
    id: 'firewall.file_limits',
    measure: 'firewall',
    run: async ({ config }) => {
      const quota = config.filesAccountQuotaBytes;
      const perAccount = config.filesMaxUploadsPerAccount;
      const perAddress = config.filesMaxUploadsPerAddress;
      const pixels = config.filesMaxImagePixels;
      const ttl = config.filesUrlTtlSeconds;
      // The settings' parsers bound each of these, but a Config built in code (an app embedding
      // Bastion, a test) is not parsed: an unlimited value would let one account fill the store.
      const unlimited = [
        ['BASTION_FILES_ACCOUNT_QUOTA', quota],
        ['BASTION_FILES_MAX_UPLOADS_PER_ACCOUNT', perAccount],
        ['BASTION_FILES_MAX_UPLOADS_PER_ADDRESS', perAddress],
        ['BASTION_FILES_MAX_IMAGE_PIXELS', pixels],
        ['BASTION_FILES_URL_TTL_SECONDS', ttl],
      ].filter(([, value]) => !Number.isSafeInteger(value) || (value as number) <= 0);
      if (unlimited.length > 0)
        return fail(
          `File limits without a finite value: ${unlimited.map(([name, value]) => `${name} is ${value}`).join(', ')}.`,
          'Set them to positive whole numbers (unset, they default to 1gb, 4 and 8 uploads in flight, 50000000 pixels, 300 s).',
        );
      const limits =
        `${sizeText(quota)} of files per account, ${perAccount} uploads in flight per account and ${perAddress} per address ` +
        `on each instance, images ≤ ${pixels} pixels, download URLs valid ${ttl} s`;
      const loose = [
        quota > QUOTA_WARN_BYTES ? `BASTION_FILES_ACCOUNT_QUOTA ${sizeText(quota)} (> ${sizeText(QUOTA_WARN_BYTES)})` : null,
        perAccount > UPLOADS_PER_ACCOUNT_WARN
          ? `BASTION_FILES_MAX_UPLOADS_PER_ACCOUNT ${perAccount} (> ${UPLOADS_PER_ACCOUNT_WARN})`
          : null,
        perAddress > UPLOADS_PER_ADDRESS_WARN
          ? `BASTION_FILES_MAX_UPLOADS_PER_ADDRESS ${perAddress} (> ${UPLOADS_PER_ADDRESS_WARN})`
          : null,
        pixels > IMAGE_PIXELS_WARN ? `BASTION_FILES_MAX_IMAGE_PIXELS ${pixels} (> ${IMAGE_PIXELS_WARN})` : null,
        ttl > URL_TTL_WARN_SECONDS
          ? `BASTION_FILES_URL_TTL_SECONDS ${ttl} (> ${URL_TTL_WARN_SECONDS}: a leaked download link works that long)`
          : null,
      ].filter((finding): finding is string => finding !== null);
      return loose.length === 0
        ? pass(`Limits: ${limits}.`)
        : warn(
            `Loose file limits: ${loose.join(', ')}. Limits: ${limits}.`,
            'Lower the BASTION_FILES_* settings named towards their defaults (1gb, 4, 8, 50000000 pixels, 300 s).',
          );
    },
  },
  {
    id: 'backups.file_contents_consistent',
    measure: 'backups',
    run: async ({ dataSource, clock, fileContents }) => {
      const now = clock.now().getTime();
      const configured: string[] = fileContents.stores.all.map((store) => store.kind);
      const [{ orphans, headless, incomplete }] = await dataSource.query<{ orphans: number; headless: number; incomplete: number }[]>(
        `SELECT
           (SELECT count(*)::int FROM file_contents c WHERE c.created_at < $1 AND ${UNREFERENCED}) AS orphans,
           (SELECT count(*)::int FROM files f WHERE NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.id = f.content_id))
             + (SELECT count(*)::int FROM file_variants v WHERE NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.id = v.content_id))
             AS headless,
           (SELECT count(*)::int FROM file_contents c WHERE c.store = 'postgres' AND c.sha256 IS NOT NULL
               AND (SELECT count(*) FROM file_chunks k WHERE k.content_id = c.id)
                   <> greatest(1, ceil(c.byte_size::numeric / c.chunk_bytes))) AS incomplete`,
        [new Date(now - ORPHAN_MAX_AGE_MS)],
      );
      const elsewhere = await dataSource.query<{ store: string; count: number }[]>(
        'SELECT store, count(*)::int AS count FROM file_contents WHERE store <> ALL($1) GROUP BY store ORDER BY store',
        [configured],
      );
      const queued = await dataSource.query<{ store: string; count: number; stale: number }[]>(
        'SELECT store, count(*)::int AS count, count(*) FILTER (WHERE queued_at < $1)::int AS stale FROM file_deletions GROUP BY store ORDER BY store',
        [new Date(now - DELETION_MAX_AGE_MS)],
      );
      const unconfiguredQueue = queued.filter((row) => !configured.includes(row.store));
      const stale = queued.filter((row) => configured.includes(row.store) && row.stale > 0);

      const findings: CheckOutcome[] = [];
      if (headless > 0)
        findings.push(
          fail(
            `${plural(headless, 'file or variant', 'files or variants')} ${verb(headless, 'names', 'name')} a content row ` +
              `that does not exist: ${verb(headless, 'it', 'they')} cannot be downloaded`,
            'Restore file_contents (and its chunks) from a backup, or delete those files ' +
              '(SELECT id FROM files f WHERE NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.id = f.content_id); file_variants likewise).',
          ),
        );
      if (incomplete > 0)
        findings.push(
          fail(
            `${plural(incomplete, 'content')} in PostgreSQL ${verb(incomplete, 'holds', 'hold')} more or fewer chunks ` +
              `than ${verb(incomplete, 'its', 'their')} size needs: unreadable whole`,
            'Restore a backup into a scratch database (bastion backup restore <id> --to postgres://…) and copy ' +
              "those contents' file_chunks back, or delete their files.",
          ),
        );
      if (elsewhere.length > 0)
        findings.push(
          fail(
            `${elsewhere.map((row) => `${plural(row.count, 'content')} in the "${row.store}" store`).join(', ')}, ` +
              'which STORAGE_URL does not configure: unreadable',
            'Set STORAGE_URL back to that store (contents in PostgreSQL stay readable after a move to S3, not the other way round).',
          ),
        );
      if (unconfiguredQueue.length > 0)
        findings.push(
          fail(
            `${unconfiguredQueue.map((row) => `${plural(row.count, 'deleted content')} queued for the "${row.store}" store`).join(', ')}, ` +
              'which STORAGE_URL does not configure: the maintenance job fails on them, and with them every other prune of its run',
            'Set STORAGE_URL back to that store until the queue is empty, or remove the objects from it yourself ' +
              'and then those rows from file_deletions.',
          ),
        );
      if (orphans > 0)
        findings.push(
          warn(
            `${plural(orphans, 'content')} older than ${ORPHAN_MAX_AGE_MS / HOUR_MS} hours that no file, variant or upload names ` +
              '(left by a process that stopped midway)',
            'The hourly maintenance job deletes them: check that a server is running and its log shows no "maintenance failed".',
          ),
        );
      if (stale.length > 0)
        findings.push(
          warn(
            `${stale.map((row) => `${plural(row.stale, 'deleted content')} in the "${row.store}" store`).join(', ')} queued for more than a day: ` +
              'the encrypted chunks of deleted files are still there',
            'The hourly maintenance job removes them (500 a run): check that the store answers (backups.file_store_reachable) ' +
              'and the server log shows no "maintenance failed".',
          ),
        );
      if (findings.length === 0) {
        const pending = queued.reduce((sum, row) => sum + row.count, 0);
        return pass(
          'Every file and variant has its content, every content in PostgreSQL all its chunks; ' +
            `no content left over; ${pending === 0 ? 'no store deletion pending' : `${plural(pending, 'store deletion')} pending, all from the last day`}.`,
        );
      }
      return {
        status: worst(findings),
        detail: `${findings.map((finding) => finding.detail).join('; ')}.`,
        remedy: findings.map((finding) => finding.remedy).join(' '),
      };
    },
  },
  {
    id: 'backups.file_store_reachable',
    measure: 'backups',
    run: async ({ fileContents }) => {
      const store = fileContents.stores.current;
      try {
        await store.probe();
      } catch (error) {
        return fail(
          error instanceof Error ? error.message : String(error),
          store.kind === 'postgres'
            ? "Run bastion migrate, so file_chunks exists and the server's role may use it; until then uploads and downloads fail."
            : 'Fix what it names in STORAGE_URL (bucket, endpoint, region) or the AWS credentials (they need s3:PutObject, ' +
                's3:GetObject and s3:DeleteObject on the prefix); until then uploads and downloads fail.',
        );
      }
      return store.kind === 'postgres'
        ? pass('File contents are stored in PostgreSQL (file_chunks), so the backups carry them.')
        : pass(
            'The S3 store answered: a probe object was written, read back and deleted. Bastion backups hold the database only: ' +
              "keep the bucket's own versioning or replication for its chunks.",
          );
    },
  },
];
