import type { Command } from 'commander';
import type { DataSource } from 'typeorm';
import type { Config } from '../config';
import { activeKeyring } from '../crypto/active-keyring';
import type { CommandTools } from '../feature';
import { ProgressBar } from '../progress-bar';
import { ChunkMissingError, ChunkStore } from './chunk-store';
import { Contents, SealedContent, Stores } from './content-io';
import { PostgresChunkStore } from './postgres-chunk-store';
import { S3ChunkStore } from './s3-chunk-store';
import { SETTLED, STILL_ARRIVING } from './content-references';
import { StorageTarget, StorageUrlError, describeStorage, parseStorageUrl } from './storage-url';

/** The services the files commands use. */
type FilesCommandServices = { readonly fileContents: Contents; readonly dataSource: DataSource; readonly config: Config };

/** Contents listed per query while migrating: each is then moved on its own. */
const MIGRATE_BATCH = 100;

const MB = 1024 * 1024;
const megabytes = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/**
 * Parsed in the action, not as commander's option parser: commander quotes a refused argument in
 * its error, and a mistyped URL may hold a secret. parseStorageUrl's messages never repeat it.
 */
function storeOption(raw: string, fail: (message: string) => never): StorageTarget {
  try {
    return parseStorageUrl(raw);
  } catch (error) {
    if (error instanceof StorageUrlError) fail(`--to: ${error.message.replace(/^Invalid STORAGE_URL: /, '')}`);
    throw error;
  }
}

function sameTarget(a: StorageTarget, b: StorageTarget): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** `bastion files …`: moving contents between stores. */
export function registerFilesCommands(program: Command, cli: CommandTools<FilesCommandServices>): void {
  const files = program.command('files').description('Stored files: migrate between stores (PostgreSQL, S3)');

  files
    .command('migrate')
    .description(
      'Move every stored file (and its variants) to another store, sealed chunks copied as they are, with a progress bar. ' +
        'Resumable: run it again after an interruption and it moves what is left. To S3: set STORAGE_URL to the bucket ' +
        'everywhere first; back to PostgreSQL: move, then set STORAGE_URL=postgres',
    )
    .requiredOption('--to <store>', '`postgres`, or an s3:// URL written as STORAGE_URL takes it (credentials from the AWS chain)')
    .action((options: { to: string }) => {
      const to = storeOption(options.to, cli.fail);
      return cli.withServices(async ({ fileContents, dataSource, config }) => {
        const configured = config.storage;
        // Servers read a content from STORAGE_URL's store, or from PostgreSQL: one moved to a bucket they
        // are not told of would be unreadable. So the bucket comes first, everywhere; then the move.
        if (to.kind === 's3' && configured.kind === 'postgres')
          cli.fail(
            'set STORAGE_URL to this s3:// URL on every instance first (new files go there, the others stay readable from ' +
              'PostgreSQL meanwhile), and here, then run this again',
          );
        if (to.kind === 's3' && configured.kind === 's3' && !sameTarget(to, configured))
          cli.fail(
            `STORAGE_URL names another bucket or prefix (${describeStorage(configured)}): contents record only that they are in S3, ` +
              'so moving them between buckets is a copy of the bucket (aws s3 sync) and a change of STORAGE_URL, not this command',
          );
        // The target as configured when it is the configured store; otherwise one of its own, closed afterwards.
        const ownTarget: ChunkStore | undefined =
          fileContents.stores.current.kind === to.kind
            ? undefined
            : to.kind === 's3'
              ? new S3ChunkStore(to)
              : new PostgresChunkStore(dataSource);
        const sources = fileContents.stores.all.filter((store) => store.kind !== to.kind);
        try {
          await migrate(cli, dataSource, new Stores(ownTarget ?? fileContents.stores.current, sources), to);
        } finally {
          await ownTarget?.close();
        }
        if (!sameTarget(to, configured))
          cli.say(
            `now set STORAGE_URL to ${to.kind === 'postgres' ? 'postgres' : 'that s3:// URL'} on every instance, so that new files go there too`,
          );
      });
    });
}

async function migrate(cli: CommandTools<unknown>, dataSource: DataSource, stores: Stores, to: StorageTarget): Promise<void> {
  const target = stores.current;
  // A target that cannot be written and read back fails here, naming why, before any content moves.
  await target.probe();
  const from = await dataSource.query<{ store: string; contents: number; bytes: string }[]>(
    `SELECT c.store, count(*)::int AS contents, sum(c.byte_size)::text AS bytes FROM file_contents c
      WHERE c.store <> $1 AND ${SETTLED} GROUP BY c.store ORDER BY c.store`,
    [target.kind],
  );
  const unreachable = from.filter((row) => !stores.all.some((store) => store.kind === row.store));
  if (unreachable.length > 0)
    cli.fail(
      `${unreachable.map((row) => `${row.contents} file contents are in the "${row.store}" store`).join(', ')}, which STORAGE_URL does not name: ` +
        'set STORAGE_URL to the store they are in, then run this again',
    );
  const contents = new Contents(dataSource, stores, activeKeyring);
  const total = from.reduce((sum, row) => sum + row.contents, 0);
  const totalBytes = from.reduce((sum, row) => sum + Number(row.bytes), 0);
  const bar = new ProgressBar('migrating');
  const startedAt = Date.now();
  let done = 0;
  let moved = 0;
  let movedBytes = 0;
  /** Contents with a chunk missing from their store: left where they are, and named at the end. */
  const damaged: string[] = [];
  let after = '00000000-0000-0000-0000-000000000000';
  try {
    for (;;) {
      const batch = await dataSource.query<{ id: string; store: string; byte_size: string; chunk_bytes: number }[]>(
        `SELECT c.id, c.store, c.byte_size::text, c.chunk_bytes FROM file_contents c
          WHERE c.store <> $1 AND c.id > $2 AND ${SETTLED} ORDER BY c.id LIMIT $3`,
        [target.kind, after, MIGRATE_BATCH],
      );
      if (batch.length === 0) break;
      for (const row of batch) {
        const content: SealedContent = { id: row.id, store: row.store, byteSize: Number(row.byte_size), chunkBytes: row.chunk_bytes };
        try {
          if (await contents.move(content, target.kind)) {
            moved += 1;
            movedBytes += content.byteSize;
          }
        } catch (error) {
          // One damaged content should not hold up the rest; a store that fails (unreachable, refusing) stops the run.
          if (!(error instanceof ChunkMissingError)) throw error;
          damaged.push(content.id);
        }
        // Files attached meanwhile add to the count: the total follows so the bar never passes 100 %.
        done += 1;
        const seconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
        bar.update(
          done,
          Math.max(total, done),
          `${megabytes(movedBytes)} of ${megabytes(totalBytes)}, ${(movedBytes / MB / seconds).toFixed(1)} MB/s`,
        );
      }
      after = batch[batch.length - 1].id;
    }
  } finally {
    bar.abandon();
  }
  const [{ uploads }] = await dataSource.query<{ uploads: number }[]>(
    `SELECT count(*)::int AS uploads FROM file_contents c WHERE c.store <> $1 AND ${STILL_ARRIVING}`,
    [target.kind],
  );
  cli.say(
    moved === 0 && damaged.length === 0
      ? `nothing to move: every stored file is in ${describeStorage(to)}`
      : `moved ${moved} file content${moved === 1 ? '' : 's'} (${megabytes(movedBytes)}) to ${describeStorage(to)}`,
  );
  if (uploads > 0)
    cli.say(
      `${uploads} upload${uploads === 1 ? ' in progress stays where it' : 's in progress stay where they'} started: run this again once they finish`,
    );
  if (damaged.length > 0) {
    for (const id of damaged.slice(0, 20)) cli.say(`  not moved: content ${id} has a chunk missing from its store`);
    cli.fail(
      `${damaged.length} file content(s) have chunks missing from their store and were left there (their files cannot be downloaded): ` +
        'recover the chunks, or delete those files, then run this again',
    );
  }
}
