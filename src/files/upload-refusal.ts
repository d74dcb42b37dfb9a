import type { ErrorCode, PublicDetails } from '../errors';
import { ERROR_CODES } from '../errors';
import { errorBody } from '../http/http-errors';

/**
 * A refusal on the upload route, in the shape @tus/server answers with (`status_code`, `body`),
 * the body GraphQL-shaped like every other error Bastion sends, so an app parses one format.
 */
export class UploadRefusal extends Error {
  readonly status_code: number;
  readonly body: string;
  readonly details: PublicDetails;

  /** FILE_REJECTED's reason. */
  readonly reason: string | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: PublicDetails = {},
    status: number = ERROR_CODES[code].httpStatus,
  ) {
    super(message);
    this.name = 'UploadRefusal';
    this.status_code = status;
    this.body = errorBody(code, message, details);
    this.details = details;
    this.reason = typeof details.reason === 'string' ? details.reason : undefined;
  }
}

/** The reasons FILE_REJECTED gives in `extensions.reason`. */
export type RejectionReason = 'TYPE_NOT_ALLOWED' | 'PIXEL_LIMIT' | 'UNDECODABLE';

export function fileRejected(reason: RejectionReason, message: string): UploadRefusal {
  return new UploadRefusal('FILE_REJECTED', message, { reason });
}
