import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { isAppError } from './app-error';
import { ErrorCode, isErrorCode } from './error-codes';

export const MASKED_MESSAGE = 'Internal server error';

/**
 * True when an error may reach the client as it is: an AppError, or a request-level error that
 * Apollo or graphql-js raised itself (parse, validation, variable coercion), which carries a
 * catalogued code and wraps only other GraphQLErrors (Apollo wraps graphql-js's). A driver
 * error, a bug or a raw SQL message is not.
 */
export function isPublicError(error: unknown): boolean {
  const original = unwrapResolverError(error);
  if (isAppError(original)) return true;
  if (!(original instanceof GraphQLError)) return false;
  const code = original.extensions?.code;
  if (!isErrorCode(code) || code === 'INTERNAL_SERVER_ERROR') return false;
  for (let inner = original.originalError; inner != null; inner = (inner as GraphQLError).originalError) {
    if (!(inner instanceof GraphQLError)) return false;
  }
  return true;
}

/**
 * Apollo's `formatError`: public errors lose only a stack trace; everything else becomes one
 * bland INTERNAL_SERVER_ERROR. The original is logged with the request id by the error-logging
 * plugin, which sees the request context that this hook does not.
 */
export function formatClientError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  if (isPublicError(error)) return withoutStacktrace(formatted);
  const code: ErrorCode = 'INTERNAL_SERVER_ERROR';
  return { message: MASKED_MESSAGE, ...(formatted.path ? { path: formatted.path } : {}), extensions: { code } };
}

function withoutStacktrace(formatted: GraphQLFormattedError): GraphQLFormattedError {
  if (!formatted.extensions || !('stacktrace' in formatted.extensions)) return formatted;
  const { stacktrace: _dropped, ...extensions } = formatted.extensions;
  return { ...formatted, extensions };
}
