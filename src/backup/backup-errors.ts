/** Why a backup operation stopped: each with one line an operator can act on. */
export type BackupFailure =
  | 'NOT_AN_ARCHIVE'
  | 'UNSUPPORTED_FORMAT'
  | 'UNKNOWN_KEY'
  | 'WRONG_KEY'
  | 'ARCHIVE_DAMAGED'
  | 'NEWER_SCHEMA'
  | 'SCHEMA_MISMATCH'
  | 'IN_PROGRESS'
  | 'TARGET_NOT_EMPTY'
  | 'NOT_FOUND'
  | 'FILE_MISSING'
  /** The store of file contents (S3) could not be read or written, or lost a chunk still in use. */
  | 'FILE_STORE';

/**
 * An expected failure of a backup, verification or restore (a bad archive, a wrong key, a busy
 * lock). Its message is safe to print and to store in the catalogue: it never holds key bytes,
 * passwords or row data.
 */
export class BackupError extends Error {
  constructor(
    readonly failure: BackupFailure,
    message: string,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

export function archiveDamaged(what: string): BackupError {
  return new BackupError('ARCHIVE_DAMAGED', `the archive is damaged or was modified: ${what}`);
}

/** A failure's text for the catalogue and the audit log: never SQL, key bytes or a stack. */
export function failureText(error: unknown): string {
  if (error instanceof BackupError) return error.message;
  const { code, syscall, path: file } = error as NodeJS.ErrnoException;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return `${code}${syscall ? ` on ${syscall}` : ''}${file ? ` ${file}` : ''}`;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return `database error ${code}: ${(error as Error).message.split('\n')[0]}`;
  return 'unexpected error (see the server log)';
}

/** Stops a long backup job (create, verify, restore) at its next chunk once shutdown fires `signal`. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new BackupError('IN_PROGRESS', 'interrupted: the process is shutting down');
}
