import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { PersistedQueryOptions } from '@apollo/server';
import { ADMIN_ROLE } from '../accounts/roles';
import type { OperationCheck } from '../feature';
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

/** The operations of a persisted-query manifest: their documents, by every name a client may send. */
export interface OperationAllowlist {
  /** The ids a request's document may hash to, and the manifest's own ids. */
  readonly ids: ReadonlySet<string>;
  /** Each operation's document, by its manifest id and by its SHA-256 (what an id-only request names). */
  readonly documents: ReadonlyMap<string, string>;
}

/** Reads the manifest; a file that is not one stops the server at start with the reason. */
export function loadOperationAllowlist(file: string): OperationAllowlist {
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
  const documents = new Map<string, string>();
  for (const operation of operations) {
    // The id is what clients may send; the body's own hash is what a full document is checked by.
    if (typeof operation.body !== 'string')
      throw new OperationAllowlistError(
        `OPERATION_ALLOWLIST_FILE ${file}: operation ${String(operation.name ?? operation.id)} has no body`,
      );
    documents.set(operationId(operation.body), operation.body);
    if (typeof operation.id === 'string') documents.set(operation.id, operation.body);
  }
  return { ids: new Set(documents.keys()), documents };
}

/** Apollo prefixes its persisted-query cache keys: `apq:<sha256>`. */
const APQ_PREFIX = 'apq:';

function hashOfKey(key: string): string {
  return key.startsWith(APQ_PREFIX) ? key.slice(APQ_PREFIX.length) : key;
}

/**
 * Apollo's persisted-query cache when an allowlist is in force: the manifest's documents, there
 * from the start, so an app may send an operation's id alone (`extensions.persistedQuery`) and be
 * answered at the first try, without the automatic-persisted-query round trip. Nothing else is
 * kept: a non-admin may run only the manifest's operations anyway, and an admin's client that sends
 * an unlisted hash gets PERSISTED_QUERY_NOT_FOUND and sends the document, as Apollo clients do. So
 * the cache cannot be filled from outside, and no entry can be replaced.
 */
export function manifestQueryCache(allowlist: OperationAllowlist): NonNullable<PersistedQueryOptions['cache']> {
  return {
    get: async (key) => allowlist.documents.get(hashOfKey(key)),
    set: async () => {},
    delete: async () => false,
  };
}

/**
 * Production apps may run only the operations their build shipped (docs/security.md#gql-12): a
 * request's document must hash to a manifest entry. Admins (Sandbox) are exempt.
 */
export function operationAllowlist(allowlist: OperationAllowlist): OperationCheck {
  const allowed = allowlist.ids;
  return ({ source }, context) => {
    if (context.access.actsAs(ADMIN_ROLE)) return;
    if (allowed.has(operationId(source))) return;
    context.logger.info({ operationId: operationId(source) }, 'operation not in the allowlist');
    throw new AppError('FORBIDDEN', 'This operation is not one this app was built with (operation allowlist).', {
      stopsRequest: true,
    });
  };
}
