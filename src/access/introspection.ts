import type { ApolloServerPlugin } from '@apollo/server';
import { BREAK, DocumentNode, visit } from 'graphql';
import type { IntrospectionMode } from './access.settings';
import type { Context } from '../context';
import { AppError } from '../errors';
import { ADMIN_ROLE } from '../accounts/roles';

/** Per parsed document: Apollo keeps documents, so each is walked once. */
const selecting = new WeakMap<DocumentNode, boolean>();

function selectsIntrospection(document: DocumentNode): boolean {
  let found = selecting.get(document);
  if (found !== undefined) return found;
  found = false;
  visit(document, {
    Field(node) {
      if (node.name.value === '__schema' || node.name.value === '__type') {
        found = true;
        return BREAK;
      }
      return undefined;
    },
  });
  selecting.set(document, found);
  return found;
}

/**
 * Introspection for admins only (docs/security.md#gql-1, ASVS 4.3.2). Apollo's own switch is all or
 * nothing per server, and shield skips introspection fields, so the check runs here, once
 * the viewer is known. `__typename` stays allowed: clients need it for unions.
 */
export function introspectionGate(mode: IntrospectionMode): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, contextValue }) {
          if (mode === 'everyone' || !selectsIntrospection(document)) return;
          const asAdmin = contextValue.access.checkRole(ADMIN_ROLE);
          if (asAdmin === true) return;
          contextValue.logger.info({ userId: contextValue.viewer.userId }, 'introspection refused');
          // An admin whose role needs aal2 is told so; anyone else learns only that it is for admins.
          if (asAdmin instanceof AppError) throw new AppError(asAdmin.code, asAdmin.message, { stopsRequest: true });
          throw new AppError('FORBIDDEN', 'Introspection is available to admins only. Build your client from schema/schema.graphql.', {
            stopsRequest: true,
          });
        },
      };
    },
  };
}
