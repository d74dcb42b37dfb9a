import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, OperationDefinitionNode, OperationTypeNode } from 'graphql';
import type { Context } from '../context';
import { AppError } from '../errors';
import type { TokenFailures } from './token-failures';

/** The operations that exchange credentials for tokens: an expired token must not block them. */
const CREDENTIAL_EXCHANGES = new Set([
  'refreshSession',
  'signIn',
  'verifyMfa',
  'signUp',
  'requestPasswordReset',
  'resetPassword',
  'verifyEmail',
]);

function onlyExchangesCredentials(operation: OperationDefinitionNode): boolean {
  return (
    operation.operation === OperationTypeNode.MUTATION &&
    operation.selectionSet.selections.every(
      (selection) =>
        selection.kind === Kind.FIELD && (CREDENTIAL_EXCHANGES.has(selection.name.value) || selection.name.value === '__typename'),
    )
  );
}

/**
 * A request with an expired access token gets 401 TOKEN_EXPIRED (the app refreshes), unless all
 * it does is exchange credentials: an app that attaches the header to every call would otherwise
 * be stuck, unable to send the very refreshSession the error asks for.
 */
export function expiredTokenGate(failures: TokenFailures): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ contextValue, operation }) {
          if (!contextValue.accessTokenExpired || (operation && onlyExchangesCredentials(operation))) return;
          failures.rejected('access_token', 'expired', contextValue.ipAddress);
          throw new AppError('TOKEN_EXPIRED', 'The access token expired: refresh it with refreshSession.', { stopsRequest: true });
        },
      };
    },
  };
}
