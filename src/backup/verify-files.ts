import { createHash, type Hash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { Keyring } from '../crypto/keyring';
import { createDataSource } from '../db/data-source';
import { tableExists } from '../db/database';
import { ChunkMissingError } from '../files/chunk-store';
import { ContentCipher, ContentDamagedError, ContentKeyMissingError, ContentKeying } from '../files/content-cipher';
import { Contents, Stores } from '../files/content-io';
import type { FileContent } from '../files/file-content.entity';
import { PostgresChunkStore } from '../files/postgres-chunk-store';
import type { ArchivedContent } from './archive-records';
import { throwIfInterrupted } from './backup-errors';
import type { FileChunkSink } from './file-chunks';
import { NAMED_BY_A_FILE } from '../files/content-references';

/** Damaged contents named in the verification's text, at most. */
const NAMED_PROBLEMS = 5;
/** Contents listed per query when reading back those restored into file_chunks. */
const CONTENTS_PER_QUERY = 200;

/** The contents the archive's file chunks held, in the restoring session (gone with its transaction). */
const ARCHIVED_TABLE = 'pg_temp.bastion_verified_contents';

interface ContentRow {
  id: string;
  store: string;
  kid: string;
  salt: Buffer;
  nonce_prefix: Buffer;
  chunk_bytes: number;
  byte_size: string;
  sha256: string | null;
}

function keyingOf(row: ContentRow): ContentKeying & Pick<FileContent, 'store' | 'sha256'> {
  return {
    id: row.id,
    store: row.store,
    kid: row.kid,
    salt: row.salt,
    noncePrefix: row.nonce_prefix,
    chunkBytes: row.chunk_bytes,
    byteSize: Number(row.byte_size),
    sha256: row.sha256,
  };
}

/** Why a content cannot be read, as the verification says it; other errors are not the archive's (they stop the verification). */
function unreadable(error: unknown): string | undefined {
  if (error instanceof ContentDamagedError) return `chunk ${error.chunkIndex} does not authenticate`;
  if (error instanceof ChunkMissingError) return `chunk ${error.chunkIndex} is missing`;
  if (error instanceof ContentKeyMissingError) return `its key "${error.kid}" is not in the keyring`;
  return undefined;
}

/**
 * The file contents of an archive restored into a scratch database, each decrypted and compared
 * with its recorded SHA-256: those whose chunks the archive carries (kept outside PostgreSQL) as
 * they stream by during the restore, through `sink`, so they are never stored; the others read
 * back from the scratch database's file_chunks once it is restored (`checkRestored`).
 */
export class FileContentsCheck {
  /** Contents decrypted whole and equal to their SHA-256. */
  matched = 0;
  /** Of `matched`, those whose chunks came with the archive's file chunks. */
  fromArchive = 0;
  /** Deleted while the backup ran, before it read them: their bytes are not in the archive (it says so). */
  vanished = 0;
  private readonly damaged: string[] = [];
  private archivedTableReady = false;

  constructor(private readonly keyring: Keyring) {}

  get problems(): readonly string[] {
    return this.damaged;
  }

  /** What the verification's text says of the file contents: problems first; nothing when there are none. */
  describe(): { ok: boolean; text: string } {
    if (this.damaged.length > 0) {
      const named = this.damaged.slice(0, NAMED_PROBLEMS).join('; ');
      return {
        ok: false,
        text: `${this.damaged.length} file content(s) damaged or missing: ${named}${this.damaged.length > NAMED_PROBLEMS ? '; …' : ''}`,
      };
    }
    if (this.matched === 0 && this.vanished === 0) return { ok: true, text: '' };
    const vanished = this.vanished > 0 ? `; ${this.vanished} deleted while the backup ran are not in it (their files were removed)` : '';
    return {
      ok: true,
      text: `${this.matched} file content(s) decrypted and matched their SHA-256 (${this.fromArchive} from the archive's file chunks)${vanished}`,
    };
  }

  /** Checks the archive's file chunks as the restore reads them, inside its transaction (`manager`). */
  sink(manager: EntityManager): FileChunkSink {
    let current: { cipher: ContentCipher | undefined; hash: Hash; expected: string | null; vanished: boolean } | undefined;
    const fail = (content: ArchivedContent, why: string) => {
      this.damaged.push(`content ${content.id}: ${why}`);
      current = undefined;
    };
    return {
      startContent: async (content) => {
        await this.ensureArchivedTable(manager);
        await manager.query(`INSERT INTO ${ARCHIVED_TABLE} (id) VALUES ($1)`, [content.id]);
        const [row] = await manager.query<ContentRow[]>(
          'SELECT id, store, kid, salt, nonce_prefix, chunk_bytes, byte_size::text AS byte_size, sha256 FROM file_contents WHERE id = $1',
          [content.id],
        );
        if (!row) return fail(content, 'its chunks are in the archive, its file_contents row is not');
        const keying = keyingOf(row);
        let cipher: ContentCipher;
        try {
          cipher = new ContentCipher(this.keyring, keying);
        } catch (error) {
          const why = unreadable(error);
          if (why === undefined) throw error;
          return fail(content, why);
        }
        if (cipher.chunkCount !== content.chunks)
          return fail(content, `the archive holds ${content.chunks} chunks, its size needs ${cipher.chunkCount}`);
        current = { cipher, hash: createHash('sha256'), expected: keying.sha256, vanished: false };
      },
      chunk: async (sealed, content, index) => {
        if (!current?.cipher) return;
        if (sealed === null) {
          current.vanished = true;
          return;
        }
        try {
          current.hash.update(current.cipher.open(index, sealed));
        } catch (error) {
          const why = unreadable(error);
          if (why === undefined) throw error;
          fail(content, why);
        }
      },
      endContent: async (content) => {
        const checked = current;
        current = undefined;
        if (!checked) return;
        if (checked.vanished) {
          this.vanished += 1;
          return;
        }
        const digest = checked.hash.digest('hex');
        if (digest !== checked.expected) return fail(content, 'its decrypted bytes differ from its recorded SHA-256');
        this.matched += 1;
        this.fromArchive += 1;
      },
    };
  }

  /**
   * Before the restore commits: every content files name outside PostgreSQL must have come with
   * the archive's file chunks (an archive written before contents could live elsewhere did not carry them).
   */
  async findUnarchived(manager: EntityManager): Promise<void> {
    if (!(await tableExists(manager, 'file_contents'))) return;
    await this.ensureArchivedTable(manager);
    const missing = await manager.query<{ id: string }[]>(
      `SELECT c.id FROM file_contents c WHERE c.store <> 'postgres' AND ${NAMED_BY_A_FILE}
          AND NOT EXISTS (SELECT 1 FROM ${ARCHIVED_TABLE} a WHERE a.id = c.id) ORDER BY c.id`,
    );
    for (const { id } of missing)
      this.damaged.push(`content ${id}: files use it, but its chunks (in the object store) are not in the archive`);
  }

  /** Reads back every content the restored files name from the scratch database's file_chunks, decrypting it whole. */
  async checkRestored(scratchUrl: string, signal?: AbortSignal): Promise<void> {
    const scratch = createDataSource({ url: scratchUrl, poolSize: 1, entities: [] });
    await scratch.initialize();
    try {
      if (!(await tableExists(scratch, 'file_contents'))) return;
      // The scratch database is dropped afterwards: indexes the schema lacks make each content's lookup cheap.
      await scratch.query('CREATE INDEX ON files (content_id)');
      await scratch.query('CREATE INDEX ON file_variants (content_id)');
      const contents = new Contents(scratch, new Stores(new PostgresChunkStore(scratch)), () => this.keyring);
      let after = '00000000-0000-0000-0000-000000000000';
      for (;;) {
        const rows = await scratch.query<ContentRow[]>(
          `SELECT c.id, c.store, c.kid, c.salt, c.nonce_prefix, c.chunk_bytes, c.byte_size::text AS byte_size,
                  COALESCE(c.sha256, (SELECT f.sha256 FROM files f WHERE f.content_id = c.id LIMIT 1),
                           (SELECT v.sha256 FROM file_variants v WHERE v.content_id = c.id LIMIT 1)) AS sha256
             FROM file_contents c WHERE c.store = 'postgres' AND ${NAMED_BY_A_FILE} AND c.id > $1 ORDER BY c.id LIMIT $2`,
          [after, CONTENTS_PER_QUERY],
        );
        if (rows.length === 0) break;
        for (const row of rows) {
          throwIfInterrupted(signal);
          const content = keyingOf(row) as FileContent;
          try {
            if ((await contents.digest(content)) === row.sha256) this.matched += 1;
            else this.damaged.push(`content ${row.id}: its decrypted bytes differ from its recorded SHA-256`);
          } catch (error) {
            const why = unreadable(error);
            if (why === undefined) throw error;
            this.damaged.push(`content ${row.id}: ${why}`);
          }
        }
        after = rows[rows.length - 1].id;
      }
    } finally {
      await scratch.destroy();
    }
  }

  private async ensureArchivedTable(manager: EntityManager): Promise<void> {
    if (this.archivedTableReady) return;
    this.archivedTableReady = true;
    await manager.query(
      `CREATE TEMPORARY TABLE IF NOT EXISTS ${ARCHIVED_TABLE.slice('pg_temp.'.length)} (id uuid PRIMARY KEY) ON COMMIT DROP`,
    );
  }
}
