import { createHash, randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { Keyring } from '../crypto/keyring';
import type { ChunkStore, StoreKind } from './chunk-store';
import { ContentCipher, ContentKeying, newContentKeying } from './content-cipher';
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

  cipherOf(content: ContentKeying): ContentCipher {
    return new ContentCipher(this.keyring(), content);
  }

  /** A new content row of `byteSize` bytes in the current store, keyed under the current key. */
  async create(manager: EntityManager, byteSize: number): Promise<FileContent> {
    const keying = newContentKeying(this.keyring(), randomUUID(), byteSize);
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

  /** The plaintext of `range` (the whole content by default), a chunk at a time, each authenticated before it is passed on. */
  async *read(content: FileContent, range: ByteRange = { start: 0, end: content.byteSize - 1 }): AsyncIterable<Buffer> {
    if (content.byteSize === 0 || range.end < range.start) return;
    const cipher = this.cipherOf(content);
    const first = Math.floor(range.start / content.chunkBytes);
    const last = Math.floor(range.end / content.chunkBytes);
    let index = first;
    for await (const sealed of this.stores.of(content.store).read(content.id, first, last)) {
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

  /** Moves a content's chunks to another store, unchanged (they stay sealed), then points the row there and removes the old ones. */
  async move(content: FileContent, to: StoreKind): Promise<void> {
    if (content.store === to) return;
    const from = this.stores.of(content.store);
    const target = this.stores.of(to);
    const count = this.cipherOf(content).chunkCount;
    let index = 0;
    for await (const sealed of from.read(content.id, 0, count - 1)) await target.put(content.id, index++, sealed);
    await this.dataSource.manager.update(FileContent, { id: content.id, store: content.store }, { store: to });
    await from.remove([{ contentId: content.id, chunkCount: count }]);
  }
}
