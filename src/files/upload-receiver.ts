import { Hash, createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { DataSource } from 'typeorm';
import type { Keyring } from '../crypto/keyring';
import { open, seal } from '../crypto/envelope';
import type { Contents } from './content-io';
import { FileContent } from './file-content.entity';
import { PostgresChunkStore } from './postgres-chunk-store';
import type { StoreWrites } from './store-writes';
import { Upload } from './upload.entity';
import { UploadRefusal } from './upload-refusal';

/** The envelope domain of an upload's sealed tail. */
const TAIL_DOMAIN = 'uploads.tail';
/** In-progress SHA-256 states kept at most (the oldest go first; a dropped one is recomputed from the store). */
const MAX_HASH_STATES = 10_000;

/** What a request left an upload with. */
export interface Received {
  readonly upload: Upload;
  readonly content: FileContent;
  /** SHA-256 of all its bytes, when this process saw every chunk go by; otherwise the store is read back. */
  readonly sha256: string | undefined;
}

/**
 * Takes an upload's bytes as they arrive and puts them into its content's chunks. Each chunk is
 * claimed in a transaction that moves `received_bytes` from exactly where this request found it
 * and writes the chunk (inside it, for the PostgreSQL store): a second request for the same
 * upload, on any instance, finds the offset moved and stops, so no chunk index is ever sealed
 * twice. Bytes past the last whole chunk are kept sealed in `tail` when the request ends, however
 * it ends (a phone going into a tunnel), so the next request resumes exactly there.
 */
export class UploadReceiver {
  private readonly hashes = new Map<string, { hash: Hash; chunks: number }>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly contents: Contents,
    private readonly keyring: () => Keyring,
    private readonly storeWrites: StoreWrites,
  ) {}

  /**
   * Appends the body's bytes at `offset`. `checkHead` sees the first chunk's plaintext before it is
   * kept (the type is read from it: a refused file stops at its first chunk). Returns the upload as
   * it now stands.
   */
  async receive(uploadId: string, offset: number, body: Readable, checkHead: (head: Buffer) => void): Promise<Received> {
    const upload = await this.dataSource.manager.findOneBy(Upload, { id: uploadId });
    if (!upload) throw new UploadRefusal('NOT_FOUND', 'This upload does not exist any more: start a new one.');
    if (upload.receivedBytes !== offset)
      throw new UploadRefusal('CONFLICT', `The upload is at byte ${upload.receivedBytes}, not ${offset}.`, {}, 409);
    const content = await this.dataSource.manager.findOneByOrFail(FileContent, { id: upload.contentId });
    const cipher = this.contents.cipherOf(content);
    const store = this.contents.stores.of(content.store);
    const tail = upload.tail === null ? Buffer.alloc(0) : open(this.keyring(), upload.tail, TAIL_DOMAIN);
    // Every byte in (a completion that failed, asked again): nothing to cut, the upload is complete.
    let chunkIndex = offset === content.byteSize ? cipher.chunkCount : (offset - tail.length) / content.chunkBytes;
    let pending: Buffer[] = tail.length > 0 ? [tail] : [];
    let pendingBytes = tail.length;
    let persisted = offset;
    const hashState = this.hashes.get(uploadId);
    let hash = hashState && hashState.chunks === chunkIndex ? hashState.hash : undefined;
    if (chunkIndex === 0) hash = createHash('sha256');

    const take = (bytes: number): Buffer => {
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
      const taken = all.subarray(0, bytes);
      const rest = all.subarray(bytes);
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
      return taken;
    };
    const conflict = () =>
      new UploadRefusal('CONFLICT', 'Another request is writing this upload: send HEAD for its offset, then resume.', {}, 409);
    /** Claims one chunk, after the one before it: the offset moves from exactly where it stands. */
    const claim = async (index: number, plaintext: Buffer, sealed: Buffer): Promise<void> => {
      const end = index * content.chunkBytes + plaintext.length;
      if (store instanceof PostgresChunkStore) {
        // One round trip: the claim and the chunk in one statement.
        if (!(await store.putClaimingUpload({ uploadId, from: persisted, to: end }, content.id, index, sealed))) throw conflict();
      } else {
        let sent = false;
        try {
          await this.storeWrites.run(() =>
            this.dataSource.transaction(async (manager) => {
              const [, moved]: [unknown, number] = await manager.query(
                'UPDATE uploads SET received_bytes = $3, tail = NULL WHERE id = $1 AND received_bytes = $2',
                [uploadId, persisted, end],
              );
              if (moved !== 1) throw conflict();
              // The row stays locked until the chunk is in the store: a second writer waits, then finds the offset moved.
              sent = true;
              await store.put(content.id, index, sealed, manager);
            }),
          );
        } catch (error) {
          if (!sent) throw error;
          // The object may be in the bucket while its claim rolled back (a PUT that timed out after
          // landing, a failed COMMIT): this position must never be sealed again with other bytes (one
          // nonce, two plaintexts). The upload ends here; the app starts a new one.
          await this.dataSource.manager.delete(Upload, { id: uploadId }).catch(() => undefined);
          throw new UploadRefusal('NOT_FOUND', 'Storing this upload failed and it was discarded: start a new upload.');
        }
      }
      hash?.update(plaintext);
      persisted = end;
      chunkIndex = index + 1;
    };

    // Two stages: while one chunk is written, the next arrives and is sealed. `cut` counts the
    // chunks taken from the body, `chunkIndex` those written; a write starts once the one before it
    // is done, so chunks are claimed in order.
    let cut = chunkIndex;
    let writing: Promise<void> | undefined;
    let writeFailed = false;
    const cutChunk = async (bytes: number): Promise<void> => {
      const index = cut;
      const plaintext = take(bytes);
      cut += 1;
      if (index === 0) checkHead(plaintext);
      const sealed = cipher.seal(index, plaintext);
      await writing;
      writing = claim(index, plaintext, sealed);
      writing.catch(() => (writeFailed = true));
    };

    // Errors of the body are the client's (a cut connection): what arrived is kept and the client
    // resumes from it. Errors of our own (the database, the store, a refusal) are raised after the
    // write under way ends, and then nothing past the last written chunk is kept.
    let ours: Error | undefined;
    const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    let bodyEnded = false;
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch {
        break;
      }
      if (next.done) {
        bodyEnded = true;
        break;
      }
      pending.push(next.value);
      pendingBytes += next.value.length;
      try {
        if (cut * content.chunkBytes + pendingBytes > content.byteSize)
          throw new UploadRefusal('BAD_REQUEST', `The upload is ${content.byteSize} bytes; more were sent.`, {}, 413);
        while (cut < cipher.chunkCount && pendingBytes >= cipher.plainLengthOf(cut)) await cutChunk(cipher.plainLengthOf(cut));
      } catch (error) {
        ours = error as Error;
        break;
      }
    }
    try {
      // An empty file, or one whose last chunk is short: it is complete once every byte is here.
      if (ours === undefined && bodyEnded && cut === cipher.chunkCount - 1 && pendingBytes === cipher.plainLengthOf(cut))
        await cutChunk(pendingBytes);
      await writing;
    } catch (error) {
      ours ??= error as Error;
    }
    if (ours instanceof UploadRefusal && ours.code === 'FILE_REJECTED') throw ours;
    const received = cut * content.chunkBytes + pendingBytes;
    if (ours === undefined && !writeFailed && cut < cipher.chunkCount && received !== persisted)
      await this.keepTail(uploadId, persisted, received, take(pendingBytes));
    if (ours instanceof Error) throw ours;

    this.remember(uploadId, hash, chunkIndex);
    const done = chunkIndex === cipher.chunkCount;
    const sha256 = done && hash ? hash.digest('hex') : undefined;
    if (done) this.hashes.delete(uploadId);
    return {
      upload: Object.assign(upload, { receivedBytes: done ? content.byteSize : writeFailed ? persisted : received }),
      content,
      sha256,
    };
  }

  /** Forgets an upload's in-progress state (done, terminated, expired). */
  forget(uploadId: string): void {
    this.hashes.delete(uploadId);
  }

  private async keepTail(uploadId: string, persisted: number, received: number, tail: Buffer): Promise<void> {
    const [, moved]: [unknown, number] = await this.dataSource.query(
      'UPDATE uploads SET received_bytes = $3, tail = $4 WHERE id = $1 AND received_bytes = $2',
      [uploadId, persisted, received, seal(this.keyring(), tail, TAIL_DOMAIN)],
    );
    if (moved !== 1)
      throw new UploadRefusal('CONFLICT', 'Another request is writing this upload: send HEAD for its offset, then resume.', {}, 409);
  }

  private remember(uploadId: string, hash: Hash | undefined, chunks: number): void {
    this.hashes.delete(uploadId);
    if (!hash) return;
    if (this.hashes.size >= MAX_HASH_STATES) this.hashes.delete(this.hashes.keys().next().value!);
    this.hashes.set(uploadId, { hash, chunks });
  }
}
