import { AsyncLocalStorage } from 'node:async_hooks';
import type { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload as TusUpload } from '@tus/utils';
import type { UploadsService } from './uploads.service';

/** The client address of the tus request being served (the store's methods are not given the request). */
export const tusRequest = new AsyncLocalStorage<{ readonly clientIp: string }>();

/**
 * @tus/server's store, on our uploads: creation (once per upload, its length the one declared to
 * startUpload), appends into encrypted chunks, offsets for resuming, termination. Expiry is our
 * own (the upload's `expires_at`, read with the injected clock, and the maintenance job), so no
 * creation date is handed to @tus/server, which would compare it with the wall clock.
 */
export class BastionTusStore extends DataStore {
  constructor(private readonly uploads: UploadsService) {
    super();
    this.extensions = ['creation', 'creation-with-upload', 'expiration', 'termination'];
  }

  override async create(upload: TusUpload): Promise<TusUpload> {
    await this.uploads.createdByClient(upload.id, upload.size);
    return upload;
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    return this.uploads.receive(id, offset, stream, tusRequest.getStore()?.clientIp ?? null);
  }

  override async getUpload(id: string): Promise<TusUpload> {
    const upload = await this.uploads.find(id);
    // @tus/server answers with the error objects it exports (status_code, body), not Error instances.
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    if (!upload || upload.createdByClientAt === null) throw ERRORS.FILE_NOT_FOUND;
    return new TusUpload({ id, size: upload.byteSize, offset: upload.receivedBytes });
  }

  override async remove(id: string): Promise<void> {
    await this.uploads.discard(id);
  }

  /**
   * Zero: @tus/server would judge expiry by the wall clock against a creation date it stamps
   * itself. The upload's own expires_at decides (`find`), and the route sends it as Upload-Expires.
   */
  override getExpiration(): number {
    return 0;
  }

  /** The maintenance job deletes expired uploads (with the clock every test can freeze). */
  override async deleteExpired(): Promise<number> {
    return 0;
  }
}
