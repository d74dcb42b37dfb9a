import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Context } from '../context';
import type { Logger } from '../logging';
import { ERROR_CODES, ErrorCode } from './error-codes';
import { isDependencyFailure, isPublicError, isTimeoutFailure } from './format-error';

/**
 * Logs, with the request id, the original of every error that formatError masks, so the masked
 * INTERNAL_SERVER_ERROR a client reports can be found. A request that met a dependency failure
 * (answered SERVICE_UNAVAILABLE) and has no data left (every root field null) gets that code's HTTP status (the error
 * reaches Apollo as a driver error, without the status an AppError would carry). One that still
 * has data keeps 200: mobile Apollo clients drop data on a non-2xx and retry the whole operation,
 * which would repeat the writes that did succeed. A statement cut by the statement timeout is
 * handled alike, with TIMEOUT (504).
 */
export function errorLoggingPlugin(logger: Logger): ApolloServerPlugin<Context> {
  return {
    // No request context exists yet here (building it failed, e.g. the database is down).
    async contextCreationDidFail({ error }) {
      if (!isPublicError(error)) logger.error({ err: error }, 'unexpected error while authenticating the request (masked for the client)');
      else if (error.cause !== undefined) logger.warn({ err: error.cause }, 'request refused: a dependency is unavailable');
    },
    async requestDidStart() {
      let stoppedWith: ErrorCode | undefined;
      return {
        async didEncounterErrors({ errors, contextValue, operationName }) {
          for (const error of errors) {
            if (isPublicError(error)) continue;
            if (isTimeoutFailure(error)) {
              stoppedWith ??= 'TIMEOUT';
              contextValue.logger.warn(
                { err: unwrapResolverError(error), path: error.path, operationName },
                'request stopped: a statement ran past BASTION_DB_STATEMENT_TIMEOUT_MS',
              );
              continue;
            }
            if (isDependencyFailure(error)) {
              stoppedWith = 'SERVICE_UNAVAILABLE';
              contextValue.logger.warn(
                { err: unwrapResolverError(error), path: error.path, operationName },
                'request refused: a dependency is unavailable',
              );
              continue;
            }
            contextValue.logger.error(
              { err: unwrapResolverError(error), path: error.path, operationName },
              'unexpected error (masked for the client)',
            );
          }
        },
        async willSendResponse({ response }) {
          if (!stoppedWith || response.body.kind !== 'single') return;
          const data = response.body.singleResult.data;
          // Nothing came back (every root field null): the whole request failed, and may be retried as a whole.
          if (data == null || Object.values(data).every((value) => value === null))
            response.http.status = ERROR_CODES[stoppedWith].httpStatus;
        },
      };
    },
  };
}
