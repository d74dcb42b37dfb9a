import { GraphQLError } from 'graphql';
import { ERROR_CODES, ErrorCode } from './error-codes';

/** Safe-to-show extra fields, e.g. `retryAfterSeconds`. Never put internal detail here. */
export type PublicDetails = Readonly<Record<string, string | number | boolean | null>>;

/**
 * The only error a client sees as it was thrown. The message is for the mobile developer;
 * internal detail goes in `cause`, which reaches the log and never the response.
 */
export class AppError extends GraphQLError {
  readonly code: ErrorCode;

  /**
   * `stopsRequest`: the error ends the whole request (no data), so the HTTP status comes from the
   * catalogue. A field error leaves it at 200: mobile Apollo clients drop partial data on non-2xx.
   */
  constructor(code: ErrorCode, message: string, options: { details?: PublicDetails; cause?: unknown; stopsRequest?: boolean } = {}) {
    const http = options.stopsRequest ? { http: { status: ERROR_CODES[code].httpStatus } } : {};
    super(message, { extensions: { ...options.details, code, ...http } });
    this.name = 'AppError';
    this.code = code;
    if (options.cause !== undefined) Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false });
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

export const SERVICE_UNAVAILABLE_MESSAGE = 'The service is temporarily unavailable; retry shortly.';

/** A dependency (the database) failed: the app should retry with backoff, not sign the user out. The cause goes to the log. */
export function serviceUnavailable(cause: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', SERVICE_UNAVAILABLE_MESSAGE, { stopsRequest: true, cause });
}
