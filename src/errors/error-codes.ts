/**
 * The catalogue: every `extensions.code` a client can receive, and what a mobile developer
 * should do about it. Codes are stable API: renaming one breaks shipped apps.
 */
export const ERROR_CODES = {
  UNAUTHENTICATED: { httpStatus: 401, meaning: 'No valid credentials: sign in (again).' },
  FORBIDDEN: { httpStatus: 403, meaning: 'Signed in, but not allowed to do this.' },
  BAD_USER_INPUT: { httpStatus: 400, meaning: 'An argument is invalid; the message names it.' },
  INVALID_CREDENTIALS: { httpStatus: 200, meaning: 'Email or password is wrong (never says which).' },
  MFA_REQUIRED: { httpStatus: 200, meaning: 'This needs a session confirmed with the second factor.' },
  INVALID_MFA_CODE: { httpStatus: 200, meaning: 'The TOTP or recovery code is wrong or already used.' },
  TOKEN_EXPIRED: { httpStatus: 401, meaning: 'The access token expired: refresh it.' },
  TOKEN_REUSED: { httpStatus: 401, meaning: 'A refresh token was used twice; the session was ended.' },
  RATE_LIMITED: { httpStatus: 429, meaning: 'Too many attempts; retry after extensions.retryAfterSeconds.' },
  IP_BLOCKED: { httpStatus: 403, meaning: 'Requests from this network are not allowed.' },
  NOT_FOUND: { httpStatus: 404, meaning: 'No such object, or not yours (the two look the same).' },
  CONFLICT: { httpStatus: 200, meaning: 'The change collides with existing data.' },
  QUOTA_EXCEEDED: {
    httpStatus: 413,
    meaning: "The account's file storage, or the field's number of files, would be exceeded: remove files first.",
  },
  FILE_REJECTED: {
    httpStatus: 422,
    meaning: 'An uploaded file was refused and nothing was kept: extensions.reason says why (TYPE_NOT_ALLOWED, PIXEL_LIMIT, UNDECODABLE).',
  },
  INTERNAL_SERVER_ERROR: { httpStatus: 500, meaning: 'Something failed on the server; quote the X-Request-Id response header.' },
  SERVICE_UNAVAILABLE: { httpStatus: 503, meaning: 'A dependency (the database) is down; retry with backoff.' },
  TIMEOUT: {
    httpStatus: 504,
    meaning: 'The request ran past its time limit and was stopped; retry later, or ask for less (a smaller page).',
  },
  // Apollo Server's request-level codes, kept as they are because every Apollo client knows them.
  BAD_REQUEST: { httpStatus: 400, meaning: 'The HTTP request is not a GraphQL request (body, JSON or headers).' },
  GRAPHQL_PARSE_FAILED: { httpStatus: 400, meaning: 'The query is not valid GraphQL syntax.' },
  GRAPHQL_VALIDATION_FAILED: { httpStatus: 400, meaning: 'The query does not match the schema or breaks a limit.' },
  PERSISTED_QUERY_NOT_FOUND: { httpStatus: 200, meaning: 'Send the full query text with this hash.' },
  PERSISTED_QUERY_NOT_SUPPORTED: { httpStatus: 200, meaning: 'Persisted queries are off on this server.' },
  OPERATION_RESOLUTION_FAILURE: { httpStatus: 400, meaning: 'operationName does not name an operation in the document.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}
