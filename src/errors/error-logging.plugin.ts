import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Context } from '../context';
import { isPublicError } from './format-error';

/**
 * Logs, with the request id, the original of every error that formatError masks, so the masked
 * INTERNAL_SERVER_ERROR a client reports can be found.
 */
export function errorLoggingPlugin(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue, operationName }) {
          for (const error of errors) {
            if (isPublicError(error)) continue;
            contextValue.logger.error({ err: unwrapResolverError(error), path: error.path, operationName }, 'unexpected error (masked for the client)');
          }
        },
      };
    },
  };
}
