import type { Readable } from 'node:stream';
import { type DataSource, type EntityManager, IsNull } from 'typeorm';
import type { Clock } from '../clock';
import type { Context } from '../context';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import type { Logger } from '../logging';
import type { Contents } from './content-io';
import { sniffContentType } from './content-sniffer';
import { FileContent } from './file-content.entity';
import type { FileField, FileFields } from './file-fields';
import type { FileRefusals } from './file-refusals';
import type { FileUrls } from './file-urls';
import { FileVariant } from './file-variant.entity';
import { ImageRejectedError, canDecode, makeVariant, reencodeImage } from './image-processor';
import { StoredFile } from './stored-file.entity';
import { StoreWrites } from './store-writes';
import { UploadReceiver } from './upload-receiver';
import { UploadRefusal, fileRejected } from './upload-refusal';
import { Upload } from './upload.entity';

export interface UploadLimits {
  /** Bytes of files and unfinished uploads one account may hold. */
  readonly accountQuotaBytes: number;
  /** How long an upload may take from startUpload to its last byte. */
  readonly uploadTtlMs: number;
  /** Largest image, in pixels, that is decoded at all (decompression bombs). */
  readonly maxImagePixels: number;
  /** Chunk writes to an object store at once (each holds a pooled connection while its PUT runs). */
  readonly storeWrites: number;
}

export interface StartUploadInput {
  readonly rowId: string;
  readonly byteSize: number;
  readonly contentType: string;
}

export interface StartedUpload {
  readonly id: string;
  /** The path of its tus URL (`/files/uploads/<token>`). */
  readonly path: string;
  readonly expiresAt: Date;
}

/** A freshly attached file. */
export interface AttachedFile {
  readonly file: StoredFile;
}

/**
 * Uploads, from `startUpload` (checks of the field, the row, the viewer's rights and quota) to the
 * last byte: the type is read from the bytes, images are re-encoded without their metadata and
 * their variants made, and the file is attached to its row in one transaction that also removes the
 * file it replaces. A refused file leaves nothing behind.
 */
export class UploadsService {
  readonly receiver: UploadReceiver;

  constructor(
    private readonly dataSource: DataSource,
    private readonly contents: Contents,
    private readonly fields: FileFields,
    private readonly urls: FileUrls,
    private readonly refusals: FileRefusals,
    private readonly clock: Clock,
    private readonly limits: UploadLimits,
    private readonly logger: Logger,
    keyring: ConstructorParameters<typeof UploadReceiver>[2],
  ) {
    this.receiver = new UploadReceiver(dataSource, contents, keyring, new StoreWrites(limits.storeWrites));
  }

  async start(context: Context, entry: Pick<FileField, 'model' | 'field'>, input: StartUploadInput): Promise<StartedUpload> {
    const userId = context.viewer.userId;
    if (userId === null) throw new AppError('UNAUTHENTICATED', 'Sign in to upload files.');
    const { model, field } = entry;
    if (!Number.isSafeInteger(input.byteSize) || input.byteSize < 0)
      throw new AppError('BAD_USER_INPUT', 'byteSize must be the file size in bytes.', { details: { field: 'byteSize' } });
    const scope = context.access.scope(model.access, 'update');
    const clauses = scope.writableClauses([field.name]);
    const expiresAt = new Date(this.clock.now().getTime() + this.limits.uploadTtlMs);
    const upload = await this.dataSource.transaction(async (manager) => {
      // Not a uuid: no row has it (and PostgreSQL would refuse the comparison).
      const where = isUuid(input.rowId) ? scope.where({ id: input.rowId }, clauses) : null;
      const row = where && (await manager.findOne(model.entity, { where, select: { id: true } }));
      if (!row) throw new AppError('NOT_FOUND', `No ${model.name} with this id that you may change.`, { details: { field: 'rowId' } });
      // The rights first (FORBIDDEN, NOT_FOUND), as an update does; then what is declared of the file.
      this.checkDeclared(context, entry, input);
      await this.reserve(manager, context, entry, input, userId);
      const content = await this.contents.create(manager, input.byteSize);
      return manager.save(
        manager.create(Upload, {
          tableName: model.table,
          rowId: input.rowId,
          field: field.name,
          userId,
          byteSize: input.byteSize,
          declaredType: input.contentType,
          contentId: content.id,
          receivedBytes: 0,
          tail: null,
          createdByClientAt: null,
          expiresAt,
        }),
      );
    });
    return { id: upload.id, path: `/files/uploads/${this.urls.uploadToken(upload.id)}`, expiresAt };
  }

  /** The declared size and type against the field's limits (the bytes are checked again as they arrive). */
  private checkDeclared(context: Context, { model, field }: Pick<FileField, 'model' | 'field'>, input: StartUploadInput): void {
    if (input.byteSize > field.maxBytes) {
      this.refusals.refused('size', context.ipAddress);
      throw new AppError(
        'BAD_USER_INPUT',
        `${model.name}.${field.name} takes files up to ${field.maxBytes} bytes; this one is ${input.byteSize}.`,
        {
          details: { field: 'byteSize', maxBytes: field.maxBytes },
        },
      );
    }
    if (!field.types.includes(input.contentType)) {
      this.refusals.refused('type', context.ipAddress);
      throw new AppError('BAD_USER_INPUT', `${model.name}.${field.name} takes ${field.types.join(', ')}.`, {
        details: { field: 'contentType' },
      });
    }
  }

  /**
   * The account's quota and the field's number of files, counted under a per-account lock, so
   * uploads started at the same time cannot together pass a limit each passes alone.
   */
  private async reserve(
    manager: EntityManager,
    context: Context,
    entry: Pick<FileField, 'model' | 'field'>,
    input: StartUploadInput,
    userId: string,
  ): Promise<void> {
    await manager.query("SELECT pg_advisory_xact_lock(hashtextextended('bastion.files.quota:' || $1, 0))", [userId]);
    const now = this.clock.now();
    const [{ used }]: { used: string }[] = await manager.query(
      'SELECT (SELECT coalesce(sum(byte_size), 0) FROM files WHERE uploaded_by = $1) + ' +
        '(SELECT coalesce(sum(byte_size), 0) FROM uploads WHERE user_id = $1 AND expires_at > $2) AS used',
      [userId, now],
    );
    if (Number(used) + input.byteSize > this.limits.accountQuotaBytes) {
      this.refusals.refused('quota', context.ipAddress);
      throw new AppError('QUOTA_EXCEEDED', `Your files would take more than ${this.limits.accountQuotaBytes} bytes: remove some first.`, {
        details: { usedBytes: Number(used), quotaBytes: this.limits.accountQuotaBytes },
      });
    }
    if (!entry.field.multiple) return;
    await manager.query("SELECT pg_advisory_xact_lock(hashtextextended('bastion.files.field:' || $1 || ':' || $2, 0))", [
      input.rowId,
      entry.field.name,
    ]);
    const [{ held }]: { held: string }[] = await manager.query(
      'SELECT (SELECT count(*) FROM files WHERE table_name = $1 AND row_id = $2 AND field = $3) + ' +
        '(SELECT count(*) FROM uploads WHERE table_name = $1 AND row_id = $2 AND field = $3 AND expires_at > $4) AS held',
      [entry.model.table, input.rowId, entry.field.name, now],
    );
    if (Number(held) >= entry.field.maxFiles) {
      this.refusals.refused('quota', context.ipAddress);
      throw new AppError(
        'QUOTA_EXCEEDED',
        `${entry.model.name}.${entry.field.name} holds at most ${entry.field.maxFiles} files: remove one first.`,
        {
          details: { maxFiles: entry.field.maxFiles },
        },
      );
    }
  }

  /** The upload a tus request names, unless it is gone or expired. */
  async find(uploadId: string): Promise<Upload | null> {
    const upload = await this.dataSource.manager.findOneBy(Upload, { id: uploadId });
    return upload && upload.expiresAt.getTime() > this.clock.now().getTime() ? upload : null;
  }

  /** The tus creation request: once per upload, with the declared length. */
  async createdByClient(uploadId: string, length: number | undefined): Promise<void> {
    const upload = await this.find(uploadId);
    if (!upload) throw new UploadRefusal('NOT_FOUND', 'This upload does not exist any more: start a new one.');
    if (length !== upload.byteSize)
      throw new UploadRefusal('BAD_REQUEST', `Upload-Length must be ${upload.byteSize}, the byteSize given to startUpload.`, {}, 400);
    const { affected } = await this.dataSource.manager.update(
      Upload,
      { id: uploadId, createdByClientAt: IsNull() },
      { createdByClientAt: this.clock.now() },
    );
    if (affected !== 1)
      throw new UploadRefusal('CONFLICT', 'This upload was created already: send HEAD to its URL for the offset, then PATCH.', {}, 409);
  }

  /** Appends a request's bytes; attaches the file when the last one arrives. */
  async receive(uploadId: string, offset: number, body: Readable, clientIp: string | null): Promise<number> {
    const upload = await this.find(uploadId);
    if (!upload) throw new UploadRefusal('NOT_FOUND', 'This upload does not exist any more: start a new one.');
    const entry = this.entryOf(upload);
    return this.refusing(uploadId, clientIp, async () => {
      const received = await this.receiver.receive(uploadId, offset, body, (head) => this.checkType(entry, head));
      if (received.upload.receivedBytes === received.content.byteSize)
        await this.complete(entry, received.upload, received.content, received.sha256);
      return received.upload.receivedBytes;
    });
  }

  /**
   * Attaches an upload whose every byte arrived but whose completion failed (the process stopped
   * while re-encoding, the database was away): asked before its offset is reported, so a client
   * never hears "all bytes in" of a file that is not on its row. True when it attached it now.
   */
  async finish(uploadId: string, clientIp: string | null): Promise<boolean> {
    const upload = await this.find(uploadId);
    if (!upload || upload.receivedBytes !== upload.byteSize || upload.createdByClientAt === null) return false;
    const content = await this.dataSource.manager.findOneByOrFail(FileContent, { id: upload.contentId });
    await this.refusing(uploadId, clientIp, () => this.complete(this.entryOf(upload), upload, content, undefined));
    return true;
  }

  /** A refused file is counted, and its upload deleted with what it stored. */
  private async refusing<T>(uploadId: string, clientIp: string | null, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof UploadRefusal && error.code === 'FILE_REJECTED') {
        this.refusals.refused(error.reason === 'TYPE_NOT_ALLOWED' ? 'type' : 'image', clientIp);
        await this.discard(uploadId);
      }
      throw error;
    }
  }

  /** Deletes an upload and whatever it stored (termination, refusal, expiry). */
  async discard(uploadId: string): Promise<void> {
    this.receiver.forget(uploadId);
    await this.dataSource.manager.delete(Upload, { id: uploadId });
  }

  /** Uploads past their expiry, deleted with what they stored; returns how many. */
  async deleteExpired(manager: EntityManager): Promise<number> {
    // TypeORM answers a DELETE on PostgreSQL with [rows, affected count].
    const [expired]: [{ id: string }[], number] = await manager.query('DELETE FROM uploads WHERE expires_at <= $1 RETURNING id', [
      this.clock.now(),
    ]);
    for (const { id } of expired) this.receiver.forget(id);
    return expired.length;
  }

  private entryOf(upload: Upload): FileField {
    const entry = this.fields.of(upload.tableName, upload.field);
    if (!entry) throw new UploadRefusal('NOT_FOUND', 'This upload is for a field that no longer takes files.');
    return entry;
  }

  /** The type is read from the bytes: one the field does not take is refused at the first chunk. */
  private checkType(entry: FileField, head: Buffer): void {
    const sniffed = sniffContentType(head);
    // An image type this server cannot decode (HEIC) is only ever listed with keepMetadata (checked at start): stored as sent.
    if (sniffed && entry.field.types.includes(sniffed.mime)) return;
    throw fileRejected(
      'TYPE_NOT_ALLOWED',
      `${entry.model.name}.${entry.field.name} takes ${entry.field.types.join(', ')}; this file's bytes are ${sniffed?.mime ?? 'of no type it takes'}.`,
    );
  }

  /**
   * The last byte is here: images are re-encoded (orientation applied, metadata stripped unless
   * the field keeps it, pixel bombs refused) and their variants made, each a content of its own;
   * then, in one transaction, the file replaces the field's file (or joins its files) and the upload goes.
   */
  private async complete(entry: FileField, upload: Upload, uploaded: FileContent, sha256: string | undefined): Promise<void> {
    const head = await this.headOf(uploaded);
    const sniffed = sniffContentType(head)!;
    const made: { variant: string; content: FileContent; mime: string }[] = [];
    let stored = uploaded;
    let mime = sniffed.mime;
    try {
      if (sniffed.image && canDecode(sniffed.mime)) {
        const image = await reencodeImage(await this.contents.readAll(uploaded), sniffed.mime, {
          keepMetadata: entry.field.keepMetadata,
          maxPixels: this.limits.maxImagePixels,
        });
        mime = image.mime;
        stored = await this.contents.writeAll(image.data);
        for (const variant of entry.field.variants) {
          const rendition = await makeVariant(image.data, image.mime, variant as never, this.limits.maxImagePixels);
          made.push({ variant, content: await this.contents.writeAll(rendition.data), mime: rendition.mime });
        }
      } else {
        stored.sha256 = sha256 ?? (await this.contents.digest(uploaded));
        await this.dataSource.manager.update(FileContent, { id: stored.id }, { sha256: stored.sha256 });
      }
      await this.attach(entry, upload, stored, mime, made);
    } catch (error) {
      const written = [...made.map((entry) => entry.content), ...(stored === uploaded ? [] : [stored])];
      if (written.length > 0)
        await this.dataSource.manager
          .delete(
            FileContent,
            written.map((content) => content.id),
          )
          .catch(() => undefined);
      if (error instanceof ImageRejectedError)
        throw fileRejected(error.reason === 'PIXEL_LIMIT' ? 'PIXEL_LIMIT' : 'UNDECODABLE', error.message);
      throw error;
    }
  }

  private async attach(
    entry: FileField,
    upload: Upload,
    content: FileContent,
    mime: string,
    variants: readonly { variant: string; content: FileContent; mime: string }[],
  ): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      // The row first (a delete of it waits, then its trigger sees this file), then the upload (a second completion waits, then finds none).
      const row: unknown[] = await manager.query(`SELECT 1 FROM "${entry.model.table}" WHERE id = $1 FOR KEY SHARE`, [upload.rowId]);
      const locked: unknown[] = await manager.query('SELECT 1 FROM uploads WHERE id = $1 FOR UPDATE', [upload.id]);
      if (row.length === 0 || locked.length === 0)
        throw new UploadRefusal('NOT_FOUND', 'The row this upload was for, or the upload itself, is gone.');
      if (!entry.field.multiple) {
        // Two uploads for the field finishing at once would each delete the file it had and keep its own: one at a time,
        // so the second's delete (a statement after the first's commit) sees, and removes, the first's file.
        await manager.query("SELECT pg_advisory_xact_lock(hashtextextended('bastion.files.field:' || $1 || ':' || $2, 0))", [
          upload.rowId,
          entry.field.name,
        ]);
        await manager.delete(StoredFile, { tableName: entry.model.table, rowId: upload.rowId, field: entry.field.name });
      }
      const file = await manager.save(
        manager.create(StoredFile, {
          tableName: entry.model.table,
          rowId: upload.rowId,
          field: entry.field.name,
          contentId: content.id,
          uploadedBy: upload.userId,
          contentType: mime,
          byteSize: content.byteSize,
          sha256: content.sha256!,
        }),
      );
      for (const variant of variants)
        await manager.insert(FileVariant, {
          fileId: file.id,
          variant: variant.variant,
          contentId: variant.content.id,
          contentType: variant.mime,
          byteSize: variant.content.byteSize,
          sha256: variant.content.sha256!,
        });
      await manager.delete(Upload, { id: upload.id });
    });
    this.logger.debug({ uploadId: upload.id, table: entry.model.table, field: entry.field.name }, 'files: upload attached');
  }

  private async headOf(content: FileContent): Promise<Buffer> {
    for await (const part of this.contents.read(content, { start: 0, end: Math.min(content.byteSize, 64 * 1024) - 1 })) return part;
    return Buffer.alloc(0);
  }
}
