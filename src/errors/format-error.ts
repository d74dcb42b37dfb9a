import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { isDatabaseUnavailable } from '../db/database-unavailable';
import { isStatementTimeout } from '../db/statement-timeout';
import { SERVICE_UNAVAILABLE_MESSAGE, isAppError } from './app-error';
import { ErrorCode, isErrorCode } from './error-codes';

export const MASKED_MESSAGE = 'Internal server error';

/** What a request that ran past a time limit (a statement's or the whole request's) is told. */
export const TIMEOUT_MESSAGE = 'The request took too long and was stopped; retry later, or ask for less (a smaller page, fewer fields).';

/**
 * graphql-js's hints ("Did you mean "title"?", "Did you mean the enum value "ASC"?"): a map of
 * the schema for anyone who misspells on purpose (docs/security.md#gql-2). Apollo's
 * hideSchemaDetailsFromClientErrors strips them from validation errors only; variable coercion
 * (BAD_USER_INPUT) adds them too, mid-message. Schema names never contain "?".
 */
const SCHEMA_HINT = / ?Did you mean [^?]*\?/g;

/**
 * Request errors that Apollo and graphql-js raise without a code, each the client's doing: an
 * automatic persisted query with a hash that does not match or an unknown version, and graphql-js
 * giving up after 50 bad variable values. Masked, they sent the app to support for its own
 * mistake and logged an error per hostile request. Known by message: the versions are pinned, and
 * tests/hardening/fuzz.test.ts sends all three.
 */
const UNCODED_CLIENT_ERRORS: ReadonlyMap<string, ErrorCode> = new Map([
  ['provided sha does not match query', 'BAD_REQUEST'],
  ['Unsupported persisted query version', 'BAD_REQUEST'],
  ['Too many errors processing variables, error limit reached. Execution aborted.', 'BAD_USER_INPUT'],
]);

/**
 * PostgreSQL text cannot hold U+0000 and refuses the whole statement (SQLSTATE 22021). The data
 * API refuses it up front, naming the field; any other string a client sends into a query (a
 * role name, an audit-log filter, a firewall note) is the client's mistake all the same.
 */
const NUL_IN_TEXT = '22021';

/** A client's mistake that arrives without a code: the code (and words, if its own would leak detail) it is answered with. */
function clientMistake(error: unknown): { code: ErrorCode; message?: string } | undefined {
  const original = unwrapResolverError(error);
  if (original instanceof GraphQLError) {
    if (original.extensions?.code !== undefined || original.originalError || original.path) return undefined;
    const code = UNCODED_CLIENT_ERRORS.get(original.message);
    return code && { code };
  }
  const { code, driverError } = (original ?? {}) as { code?: unknown; driverError?: { code?: unknown } };
  const message = (driverError as { message?: unknown } | undefined)?.message ?? (original as { message?: unknown } | undefined)?.message;
  // 22021 also covers other invalid bytes (a server-side bug): only the NUL case is the client's.
  if ((driverError?.code ?? code) === NUL_IN_TEXT && typeof message === 'string' && message.includes('0x00'))
    return { code: 'BAD_USER_INPUT', message: 'A text value contains a NUL character (U+0000), which cannot be stored.' };
  return undefined;
}

/**
 * True when an error may reach the client as it is: an AppError, or a request-level error that
 * Apollo or graphql-js raised itself (parse, validation, variable coercion), which carries a
 * catalogued code and wraps only other GraphQLErrors (Apollo wraps graphql-js's); or a client
 * mistake that formatClientError gives a code. A driver error, a bug or a raw SQL message is not.
 */
export function isPublicError(error: unknown): boolean {
  const original = unwrapResolverError(error);
  if (isAppError(original)) return true;
  if (clientMistake(original)) return true;
  if (!(original instanceof GraphQLError)) return false;
  const code = original.extensions?.code;
  if (!isErrorCode(code) || code === 'INTERNAL_SERVER_ERROR') return false;
  for (let inner = original.originalError; inner != null; inner = inner.originalError) {
    if (!(inner instanceof GraphQLError)) return false;
  }
  return true;
}

/**
 * A driver error saying the database is away (restarting, failing over, out of connections),
 * raised inside a resolver: not a bug, and the same request succeeds once the database is back.
 */
export function isDependencyFailure(error: unknown): boolean {
  return !isPublicError(error) && isDatabaseUnavailable(unwrapResolverError(error));
}

/** A statement cancelled by BASTION_DB_STATEMENT_TIMEOUT_MS inside a resolver: answered TIMEOUT, not a masked 500. */
export function isTimeoutFailure(error: unknown): boolean {
  return !isPublicError(error) && isStatementTimeout(unwrapResolverError(error));
}

/**
 * Apollo's `formatError`: a client mistake that came without a code gets one; other public errors
 * lose only a stack trace; a dependency failure becomes SERVICE_UNAVAILABLE (the app retries with
 * backoff); everything else becomes one bland INTERNAL_SERVER_ERROR. The original is logged with
 * the request id by the error-logging plugin, which sees the request context that this hook does
 * not (and sets SERVICE_UNAVAILABLE's 503).
 */
export function formatClientError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const mistake = clientMistake(error);
  if (mistake) return { ...formatted, message: mistake.message ?? formatted.message, extensions: { code: mistake.code } };
  if (isPublicError(error)) return withoutSchemaHints(withoutStacktrace(formatted));
  const path = formatted.path ? { path: formatted.path } : {};
  if (isDependencyFailure(error)) {
    const code: ErrorCode = 'SERVICE_UNAVAILABLE';
    return { message: SERVICE_UNAVAILABLE_MESSAGE, ...path, extensions: { code } };
  }
  if (isTimeoutFailure(error)) {
    const code: ErrorCode = 'TIMEOUT';
    return { message: TIMEOUT_MESSAGE, ...path, extensions: { code } };
  }
  const code: ErrorCode = 'INTERNAL_SERVER_ERROR';
  return { message: MASKED_MESSAGE, ...path, extensions: { code } };
}

function withoutStacktrace(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (!formatted.extensions || !('stacktrace' in formatted.extensions)) return formatted;
  const { stacktrace: _dropped, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
}

function withoutSchemaHints(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const message = formatted.message.replace(SCHEMA_HINT, '');
  return message === formatted.message ? formatted : { ...formatted, message };
}
