import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { ApolloServerPlugin } from '@apollo/server';
import { ADMIN_ROLE } from '../accounts/roles';
import type { Context } from '../context';
import { AppError } from '../errors';

/** An Apollo persisted-query manifest (what `generate-persisted-query-manifest` writes for a mobile build). */
/** An Apollo persisted-query manifest as read from disk: every field is checked before use. */
interface Manifest {
  readonly format?: unknown;
  readonly version?: unknown;
  readonly operations?: unknown;
}

interface ManifestOperation {
  readonly id?: unknown;
  readonly name?: unknown;
  readonly body?: unknown;
}

export class OperationAllowlistError extends Error {}

/** The SHA-256 of a document, as Apollo's manifest ids and automatic persisted queries name operations. */
export function operationId(body: string): string {
  return createHash('sha256').update(body, 'utf8').digest('hex');
}

/** Reads the manifest; a file that is not one stops the server at start with the reason. */
export function loadOperationAllowlist(file: string): ReadonlySet<string> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  } catch (error) {
    throw new OperationAllowlistError(`OPERATION_ALLOWLIST_FILE ${file} is not JSON: ${(error as Error).message}`);
  }
  const operations = Array.isArray(manifest?.operations) ? (manifest.operations as readonly ManifestOperation[]) : null;
  if (manifest?.format !== 'apollo-persisted-query-manifest' || manifest.version !== 1 || !operations) {
    throw new OperationAllowlistError(
      `OPERATION_ALLOWLIST_FILE ${file} is not an Apollo persisted-query manifest (format "apollo-persisted-query-manifest", version 1)`,
    );
  }
  const ids = new Set<string>();
  for (const operation of operations) {
    // The id is what clients may send; the body's own hash is what a full document is checked by.
    if (typeof operation.body !== 'string')
      throw new OperationAllowlistError(
        `OPERATION_ALLOWLIST_FILE ${file}: operation ${String(operation.name ?? operation.id)} has no body`,
      );
    ids.add(operationId(operation.body));
    if (typeof operation.id === 'string') ids.add(operation.id);
  }
  return ids;
}

/**
 * Production apps may run only the operations their build shipped (docs/security.md#gql-12): a
 * request's document must hash to a manifest entry. Admins (Sandbox) are exempt.
 */
export function operationAllowlistPlugin(allowed: ReadonlySet<string>): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ source, contextValue }) {
          if (contextValue.access.actsAs(ADMIN_ROLE)) return;
          if (allowed.has(operationId(source))) return;
          contextValue.logger.info({ operationId: operationId(source) }, 'operation not in the allowlist');
          throw new AppError('FORBIDDEN', 'This operation is not one this app was built with (operation allowlist).', {
            stopsRequest: true,
          });
        },
      };
    },
  };
}
