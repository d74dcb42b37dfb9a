import { createHash, randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { KEYED_DATA, KeyedData, ReencryptResult, UnreadableValue } from '../crypto/key.service';
import type { Keyring } from '../crypto/keyring';
import { ChunkMissingError, ChunkStore, StoreKind } from './chunk-store';
import {
  ContentCipher,
  ContentDamagedError,
  ContentKeyMissingError,
  ContentKeying,
  FILE_CHUNK_BYTES,
  chunkCountOf,
  newContentKeying,
} from './content-cipher';
import { SETTLED, STILL_ARRIVING, UNREFERENCED } from './content-references';
import { FileContent } from './file-content.entity';

/** The stores contents can be in: new contents go to `current`; a migration between stores reads from either. */
export class Stores {
  constructor(
    readonly current: ChunkStore,
    private readonly others: readonly ChunkStore[] = [],
  ) {}

  of(kind: string): ChunkStore {
    const store = [this.current, ...this.others].find((candidate) => candidate.kind === kind);
    if (!store) throw new Error(`file contents are in the "${kind}" store, which is not configured (STORAGE_URL)`);
    return store;
  }

  get all(): readonly ChunkStore[] {
    return [this.current, ...this.others];
  }
}

/** An inclusive byte range of a content's plaintext. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Where a content's chunks are, and how many there are: enough to copy them sealed, without its key. */
export type SealedContent = Pick<FileContent, 'id' | 'store' | 'byteSize' | 'chunkBytes'>;

/** What became of a content `Contents.reencrypt` was asked to rewrite. */
export type ReencryptOutcome =
  /** Its files and variants now name `replacement`; it is deleted. */
  | { readonly done: true; readonly replacement: FileContent }
  /** Deleted, or taken up by an upload, while it was being rewritten: nothing changed. */
  | { readonly done: false };

/** PostgreSQL's foreign_key_violation: a chunk for a content row deleted meanwhile. */
const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Contents: their rows, and their chunks sealed on the way into a store and opened on the way
 * out. The row is committed before any chunk is written (the PostgreSQL store's chunks reference
 * it), so a process that dies midway leaves a content no file names, which the maintenance job
 * removes.
 */
export class Contents {
  constructor(
    private readonly dataSource: DataSource,
    readonly stores: Stores,
    private readonly keyring: () => Keyring,
  ) {}

  /** The key new contents are written under. */
  get currentKid(): string {
    return this.keyring().currentKid;
  }

  cipherOf(content: ContentKeying): ContentCipher {
    return new ContentCipher(this.keyring(), content);
  }

  /** A new content row of `byteSize` bytes in the current store, keyed under the current key. */
  async create(manager: EntityManager, byteSize: number, chunkBytes = FILE_CHUNK_BYTES): Promise<FileContent> {
    const keying = newContentKeying(this.keyring(), randomUUID(), byteSize, chunkBytes);
    return manager.save(manager.create(FileContent, { ...keying, store: this.stores.current.kind, sha256: null }));
  }

  /** Stores a whole plaintext (a re-encoded image, a variant) as a new content, its SHA-256 recorded. */
  async writeAll(plaintext: Buffer): Promise<FileContent> {
    const content = await this.create(this.dataSource.manager, plaintext.length);
    const cipher = this.cipherOf(content);
    const store = this.stores.of(content.store);
    for (let index = 0; index < cipher.chunkCount; index += 1) {
      const start = index * content.chunkBytes;
      await store.put(content.id, index, cipher.seal(index, plaintext.subarray(start, start + cipher.plainLengthOf(index))));
    }
    content.sha256 = createHash('sha256').update(plaintext).digest('hex');
    await this.dataSource.manager.update(FileContent, { id: content.id }, { sha256: content.sha256 });
    return content;
  }

  /**
   * The sealed chunks first..last (all by default), as stored: nothing is opened, so no key is
   * needed (a backup copies them as they are). From the content's store; a chunk missing there is
   * looked for in the other stores, since a move between stores removes the old chunks once the row
   * points at the new ones, and a reader may have read the row just before.
   */
  async *readSealed(
    content: SealedContent,
    first = 0,
    last = chunkCountOf(content.byteSize, content.chunkBytes) - 1,
  ): AsyncIterable<Buffer> {
    const tried = new Set<string>();
    let store = this.stores.of(content.store);
    let next = first;
    for (;;) {
      try {
        for await (const sealed of store.read(content.id, next, last)) {
          next += 1;
          yield sealed;
        }
        return;
      } catch (error) {
        if (!(error instanceof ChunkMissingError)) throw error;
        tried.add(store.kind);
        const other = this.stores.all.find((candidate) => !tried.has(candidate.kind));
        if (!other) throw error;
        store = other;
      }
    }
  }

  /** The plaintext of `range` (the whole content by default), a chunk at a time, each authenticated before it is passed on. */
  async *read(content: FileContent, range: ByteRange = { start: 0, end: content.byteSize - 1 }): AsyncIterable<Buffer> {
    if (content.byteSize === 0 || range.end < range.start) return;
    const cipher = this.cipherOf(content);
    const first = Math.floor(range.start / content.chunkBytes);
    const last = Math.floor(range.end / content.chunkBytes);
    let index = first;
    for await (const sealed of this.readSealed(content, first, last)) {
      const plaintext = cipher.open(index, sealed);
      const offset = index * content.chunkBytes;
      const from = Math.max(0, range.start - offset);
      const to = Math.min(plaintext.length, range.end - offset + 1);
      yield from === 0 && to === plaintext.length ? plaintext : plaintext.subarray(from, to);
      index += 1;
    }
  }

  /** The whole plaintext in memory: for images, which are decoded whole anyway (and bounded by their field's maxBytes). */
  async readAll(content: FileContent): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.read(content)) parts.push(part);
    return Buffer.concat(parts, content.byteSize);
  }

  /** SHA-256 of a stored plaintext, read back. */
  async digest(content: FileContent): Promise<string> {
    const hash = createHash('sha256');
    for await (const part of this.read(content)) hash.update(part);
    return hash.digest('hex');
  }

  /**
   * Moves a content's chunks to another store, unchanged (they stay sealed): copies them, then in
   * one transaction points the row there and deletes the old chunks (PostgreSQL) or queues them
   * for deletion (an object store, emptied right after, else by the maintenance job). Killed at any
   * point, the content is wholly in one store, and a rerun copies again (a write replaces).
   * Returns whether this call moved it: false when it was there already, another process moved
   * it, or it was deleted meanwhile (whatever was copied for it is removed).
   */
  async move(content: SealedContent, to: StoreKind): Promise<boolean> {
    if (content.store === to) return false;
    const from = this.stores.of(content.store);
    const target = this.stores.of(to);
    const chunkCount = chunkCountOf(content.byteSize, content.chunkBytes);
    // A deletion still queued for the target (a move away from it whose removal has not run yet)
    // would remove the chunks about to be copied there: cancelled first, waiting for a prune under way.
    if (to !== 'postgres') await this.dataSource.query('DELETE FROM file_deletions WHERE content_id = $1 AND store = $2', [content.id, to]);
    let index = 0;
    try {
      for await (const sealed of this.readSealed(content)) await target.put(content.id, index++, sealed);
    } catch (error) {
      // The content row went (a file deleted) while its chunks were being copied into file_chunks; the cascade took those.
      if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION) return false;
      throw error;
    }
    const moved = await this.dataSource.transaction(async (manager) => {
      const { affected } = await manager.update(FileContent, { id: content.id, store: content.store }, { store: to });
      if (!affected) return false;
      if (from.kind === 'postgres') await manager.query('DELETE FROM file_chunks WHERE content_id = $1', [content.id]);
      else
        await manager.query(
          'INSERT INTO file_deletions (content_id, store, chunk_count) VALUES ($1, $2, $3) ON CONFLICT (content_id) DO NOTHING',
          [content.id, from.kind, chunkCount],
        );
      return true;
    });
    if (!moved) {
      const [row] = await this.dataSource.query<{ store: string }[]>('SELECT store FROM file_contents WHERE id = $1', [content.id]);
      // Deleted meanwhile: its deletion knew of the old store only, so what was copied is this call's to remove.
      if (!row) await target.remove([{ contentId: content.id, chunkCount }]);
      return false;
    }
    if (from.kind !== 'postgres') {
      try {
        await from.remove([{ contentId: content.id, chunkCount }]);
        await this.dataSource.query('DELETE FROM file_deletions WHERE content_id = $1 AND store = $2', [content.id, from.kind]);
      } catch {
        // Still queued: the maintenance job removes them. The move itself is done.
      }
    }
    return true;
  }

  /**
   * Rewrites a content under the current key: a new content (new id, salt and key), written chunk
   * by chunk from the old one's opened chunks, then, in one transaction, every file and variant
   * naming the old content names the new one and the old one is deleted (its chunks cascade, or
   * are queued for an object store). Killed before that transaction, the new content is an orphan
   * the maintenance job removes, and the old one is untouched. Throws ContentDamagedError,
   * ChunkMissingError or ContentKeyMissingError for a content that cannot be read.
   */
  async reencrypt(content: FileContent): Promise<ReencryptOutcome> {
    const source = this.cipherOf(content);
    const replacement = await this.create(this.dataSource.manager, content.byteSize, content.chunkBytes);
    let swapped = false;
    try {
      const target = this.cipherOf(replacement);
      const store = this.stores.of(replacement.store);
      const hash = createHash('sha256');
      let index = 0;
      for await (const sealed of this.readSealed(content)) {
        const plaintext = source.open(index, sealed);
        hash.update(plaintext);
        await store.put(replacement.id, index, target.seal(index, plaintext));
        index += 1;
      }
      replacement.sha256 = hash.digest('hex');
      // Every chunk authenticated, yet the whole differs from what was recorded: not something to carry forward.
      if (content.sha256 !== null && replacement.sha256 !== content.sha256)
        throw new ContentDamagedError(content.id, source.chunkCount - 1);
      swapped = await this.dataSource.transaction(async (manager) => {
        // The files naming it first, then the content: the order a removal or a replace locks them in
        // (a file row, then its content through the trigger), so the two never deadlock.
        await manager.query('SELECT 1 FROM files WHERE content_id = $1 FOR UPDATE', [content.id]);
        await manager.query('SELECT 1 FROM file_variants WHERE content_id = $1 FOR UPDATE', [content.id]);
        const [old] = await manager.query<unknown[]>(`SELECT 1 FROM file_contents c WHERE c.id = $1 AND NOT ${STILL_ARRIVING} FOR UPDATE`, [
          content.id,
        ]);
        if (!old) return false;
        await manager.update(FileContent, { id: replacement.id }, { sha256: replacement.sha256 });
        await manager.query('UPDATE files SET content_id = $1 WHERE content_id = $2', [replacement.id, content.id]);
        await manager.query('UPDATE file_variants SET content_id = $1 WHERE content_id = $2', [replacement.id, content.id]);
        await manager.delete(FileContent, { id: content.id });
        return true;
      });
    } finally {
      // Its chunks go with it (cascade, or the deletion queue).
      if (!swapped) await this.dataSource.manager.delete(FileContent, { id: replacement.id }).catch(() => undefined);
    }
    return swapped ? { done: true, replacement } : { done: false };
  }
}

/** Contents re-encrypted per batch read: each is a few queries and its chunks, so the batch only bounds the listing. */
const REENCRYPT_BATCH = 100;

/** A content none of these errors can be fixed by retrying: it is reported, and the rest go on. */
function isUnreadable(error: unknown): boolean {
  return error instanceof ContentDamagedError || error instanceof ChunkMissingError || error instanceof ContentKeyMissingError;
}

/**
 * File contents as data under the keys: counted per key id for `bastion keys status` (and so
 * that a key still used by any content, uploads in progress included, is never marked retired),
 * and re-encrypted by `bastion keys reencrypt`, one content at a time.
 */
export class ContentKeys implements KeyedData {
  readonly [KEYED_DATA] = true as const;
  readonly label = 'file contents';

  constructor(
    private readonly dataSource: DataSource,
    private readonly contents: Contents,
  ) {}

  async countByKid(): Promise<Record<string, number>> {
    const rows = await this.dataSource.query<{ kid: string; count: number }[]>(
      'SELECT kid, count(*)::int AS count FROM file_contents GROUP BY kid ORDER BY kid',
    );
    return Object.fromEntries(rows.map((row) => [row.kid, row.count]));
  }

  /**
   * Every attached content not on `currentKid`, walked by id. Uploads still arriving are left (they
   * finish under the key they started with, or expire), and so are contents nothing names (the
   * maintenance job deletes them): both are said in `left`, and keep their key in use until then.
   */
  async reencrypt(currentKid: string, onProgress: (done: number, total: number) => void): Promise<ReencryptResult> {
    // New contents are written under the active keyring's key: another one would be walked into again and again.
    if (this.contents.currentKid !== currentKid)
      throw new Error(`file contents are written under key "${this.contents.currentKid}", not "${currentKid}": one keyring must be active`);
    const [{ total }] = await this.dataSource.query<{ total: number }[]>(
      `SELECT count(*)::int AS total FROM file_contents c WHERE c.kid <> $1 AND ${SETTLED}`,
      [currentKid],
    );
    let done = 0;
    let rewritten = 0;
    const unreadable: UnreadableValue[] = [];
    let after = '00000000-0000-0000-0000-000000000000';
    onProgress(done, total);
    for (;;) {
      const batch = await this.dataSource
        .getRepository(FileContent)
        .createQueryBuilder('c')
        .where(`c.kid <> :currentKid AND c.id > :after AND ${SETTLED}`, { currentKid, after })
        .orderBy('c.id')
        .limit(REENCRYPT_BATCH)
        .getMany();
      if (batch.length === 0) break;
      for (const content of batch) {
        try {
          if ((await this.contents.reencrypt(content)).done) rewritten += 1;
        } catch (error) {
          if (!isUnreadable(error)) throw error;
          unreadable.push({ table: 'file_contents', column: 'chunks', id: content.id });
        }
        done += 1;
        onProgress(Math.min(done, total), total);
      }
      after = batch[batch.length - 1].id;
    }
    const [{ uploads, orphans }] = await this.dataSource.query<{ uploads: number; orphans: number }[]>(
      `SELECT
         (SELECT count(*)::int FROM file_contents c WHERE c.kid <> $1 AND ${STILL_ARRIVING}) AS uploads,
         (SELECT count(*)::int FROM file_contents c WHERE c.kid <> $1 AND ${UNREFERENCED}) AS orphans`,
      [currentKid],
    );
    const left: string[] = [];
    if (uploads > 0)
      left.push(
        `${uploads} upload${uploads === 1 ? '' : 's'} in progress left on ${uploads === 1 ? 'its' : 'their'} old key: ` +
          'they finish under it or expire (BASTION_FILES_UPLOAD_TTL_HOURS); run `bastion keys reencrypt` again after',
      );
    if (orphans > 0)
      left.push(
        `${orphans} file content${orphans === 1 ? '' : 's'} no file names left on an old key: the maintenance job deletes them within hours`,
      );
    return { rewritten, unreadable, ...(left.length > 0 ? { left } : {}) };
  }
}
