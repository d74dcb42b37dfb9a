import type { NextFunction, Request, Response } from 'express';
import { isDatabaseUnavailable } from '../db/database-unavailable';
import { ERROR_CODES, ErrorCode, PublicDetails, SERVICE_UNAVAILABLE_MESSAGE } from '../errors';

/** A GraphQL-shaped error body, so clients parse every failure the same way; `details` join the code in extensions. */
export function errorBody(code: ErrorCode, message: string, details: PublicDetails = {}): string {
  return JSON.stringify({ errors: [{ message, extensions: { code, ...details } }] });
}

/** Answers with an error body (errorBody) and the catalogue's status for its code, or `status`. */
export function sendError(
  res: Response,
  code: ErrorCode,
  message: string,
  status: number = ERROR_CODES[code].httpStatus,
  details: PublicDetails = {},
): void {
  res
    .status(status)
    .type('application/json; charset=utf-8')
    .send(errorBody(code, message, details));
}

/** Set on `res.locals` once the request deadline has answered (http/request-deadline.ts). */
export const DEADLINE_ANSWERED = 'bastionDeadlineAnswered';

export function notFound(req: Request, res: Response): void {
  sendError(res, 'NOT_FOUND', `No route for ${req.method} ${req.path}. The API is at /graphql.`);
}

/** What body-parser and express raise for a bad request, told in words a mobile developer can act on. */
const CLIENT_FAILURES: Record<string, string> = {
  'entity.parse.failed': 'The request body is not valid JSON.',
  'entity.too.large': 'The request body is too large.',
  'encoding.unsupported': 'The request body encoding is not supported; send UTF-8.',
  'charset.unsupported': 'The request charset is not supported; send UTF-8.',
  'request.aborted': 'The request was aborted before its body arrived.',
};

/**
 * The last express handler: client mistakes become 4xx GraphQL-shaped errors, a database that is
 * away a 503 SERVICE_UNAVAILABLE, anything else a masked 500, logged in full with the request id.
 * Never express's HTML page with a stack.
 */
export function errorHandler(error: unknown, req: Request, res: Response, _next: NextFunction): void {
  const { type, status } = error as { type?: string; status?: number };
  // The deadline answered already; Apollo's late answer then fails to set its headers, which is expected.
  if (res.headersSent && res.locals[DEADLINE_ANSWERED] === true) {
    req.log.debug({ err: error }, 'late answer after the request deadline dropped');
    return;
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    sendError(res, 'BAD_REQUEST', (type && CLIENT_FAILURES[type]) || 'The request is malformed.', status);
    return;
  }
  if (isDatabaseUnavailable(error) && !res.headersSent) {
    req.log.warn({ err: error }, 'request refused: a dependency is unavailable');
    sendError(res, 'SERVICE_UNAVAILABLE', SERVICE_UNAVAILABLE_MESSAGE);
    return;
  }
  req.log.error({ err: error }, 'unexpected error outside GraphQL');
  if (res.headersSent) {
    res.end();
    return;
  }
  sendError(res, 'INTERNAL_SERVER_ERROR', 'Internal server error');
}
