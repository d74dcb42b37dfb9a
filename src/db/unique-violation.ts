import { QueryFailedError } from 'typeorm';
import { AppError } from '../errors';

/** PostgreSQL's unique_violation: a UNIQUE constraint (often on a blind index) refused a row. */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof QueryFailedError && (error.driverError as { code?: string } | undefined)?.code === '23505';
}

/** A duplicate found by a lookup rather than by a UNIQUE index; conflictOnDuplicate answers it the same way. */
export class DuplicateValueError extends Error {}

/**
 * Runs a write and turns a unique violation into a CONFLICT AppError with a client-safe message;
 * the constraint and values stay in the log (cause), never in the response.
 */
export async function conflictOnDuplicate<T>(write: () => Promise<T>, message: string): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isUniqueViolation(error) || error instanceof DuplicateValueError) throw new AppError('CONFLICT', message, { cause: error });
    throw error;
  }
}
