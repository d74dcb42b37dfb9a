import type { DataSource, EntityManager } from 'typeorm';
import { In } from 'typeorm';
import type { Context } from '../context';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import type { ModelDefinition, ModelFileField } from '../data/define-model';
import type { Contents } from './content-io';
import { FileContent } from './file-content.entity';
import type { FileFields } from './file-fields';
import type { FileUrls } from './file-urls';
import { FileVariant } from './file-variant.entity';
import { FileView } from './file-view';
import { StoredFile } from './stored-file.entity';

/** The full-size file, as `url(variant:)` names it. */
export const ORIGINAL = 'ORIGINAL';

/** A download: what to send and how to label it. */
export interface Download {
  readonly file: StoredFile;
  readonly content: FileContent;
  readonly contentType: string;
  readonly sha256: string;
}

/**
 * The files attached to rows: read a page's files in one statement per field, sign their URLs,
 * serve their bytes, and remove them.
 */
export class FilesService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly contents: Contents,
    private readonly fields: FileFields,
    readonly urls: FileUrls,
  ) {}

  /** The files of a field of a row, batched per request and field (a page of 100 profiles: one statement). */
  async filesOf(context: Context, model: ModelDefinition, field: ModelFileField, rowId: string, baseUrl: string): Promise<FileView[]> {
    const loader = context.loaders.get<string, FileView[]>(`files:${model.table}.${field.name}`, async (rowIds) => {
      const files = await this.dataSource.manager.find(StoredFile, {
        where: { tableName: model.table, field: field.name, rowId: In([...rowIds]) },
        order: { createdAt: 'ASC', id: 'ASC' },
      });
      const variants =
        files.length === 0 ? [] : await this.dataSource.manager.find(FileVariant, { where: { fileId: In(files.map((file) => file.id)) } });
      const byFile = new Map<string, Set<string>>();
      for (const variant of variants) byFile.set(variant.fileId, (byFile.get(variant.fileId) ?? new Set()).add(variant.variant));
      const byRow = new Map<string, FileView[]>();
      for (const file of files) {
        const list = byRow.get(file.rowId) ?? [];
        list.push(new FileView(file, byFile.get(file.id) ?? new Set(), baseUrl));
        byRow.set(file.rowId, list);
      }
      return rowIds.map((rowId) => byRow.get(rowId) ?? []);
    });
    return loader.load(rowId);
  }

  /** A signed URL for a variant of a file (null: an image variant of a file that is not an image). */
  urlOf(view: FileView, variant: string): string | null {
    if (variant !== ORIGINAL && !view.variants.has(variant)) return null;
    return `${view.baseUrl}/files/${view.file.id}/${variant.toLowerCase()}?${this.urls.downloadQuery(view.file.id, variant)}`;
  }

  /** The content behind a download URL (already verified); null when the file is gone. */
  async download(fileId: string, variant: string): Promise<Download | null> {
    const file = await this.dataSource.manager.findOneBy(StoredFile, { id: fileId });
    if (!file) return null;
    // A content replaced or removed between the two reads (key rotation, a replace): gone, as the file would be.
    if (variant === ORIGINAL) {
      const content = await this.dataSource.manager.findOneBy(FileContent, { id: file.contentId });
      return content && { file, content, contentType: file.contentType, sha256: file.sha256 };
    }
    const rendition = await this.dataSource.manager.findOneBy(FileVariant, { fileId, variant });
    if (!rendition) return null;
    const content = await this.dataSource.manager.findOneBy(FileContent, { id: rendition.contentId });
    return content && { file, content, contentType: rendition.contentType, sha256: rendition.sha256 };
  }

  read(content: FileContent, range?: { start: number; end: number }): AsyncIterable<Buffer> {
    return this.contents.read(content, range);
  }

  /** Removes a file: the viewer needs update on its row and write on its field, as for attaching one. */
  async remove(context: Context, fileId: string): Promise<void> {
    if (!isUuid(fileId)) throw notFound();
    await this.dataSource.transaction(async (manager: EntityManager) => {
      const file = await manager.findOne(StoredFile, { where: { id: fileId }, lock: { mode: 'pessimistic_write' } });
      const entry = file && this.fields.of(file.tableName, file.field);
      if (!file || !entry) throw notFound();
      const scope = context.access.scope(entry.model.access, 'update');
      const clauses = scope.writableClauses([entry.field.name]);
      const where = scope.where({ id: file.rowId }, clauses);
      const row = where && (await manager.findOne(entry.model.entity, { where, select: { id: true } }));
      if (!row) throw notFound();
      await manager.delete(StoredFile, { id: file.id });
    });
  }
}

function notFound(): AppError {
  return new AppError('NOT_FOUND', 'No file with this id that you may remove.', { details: { field: 'id' } });
}
