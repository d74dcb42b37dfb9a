import type { EntityManager } from 'typeorm';

/** Where a content's sealed chunks live. */
export type StoreKind = 'postgres' | 's3';

/** A chunk a store should hold and does not: the content is damaged or was removed meanwhile. */
export class ChunkMissingError extends Error {
  constructor(
    readonly contentId: string,
    readonly chunkIndex: number,
  ) {
    super(`chunk ${chunkIndex} of content ${contentId} is missing from the store`);
    this.name = 'ChunkMissingError';
  }
}

/**
 * Sealed chunks by (content id, chunk index). A store sees only ciphertext: contents are
 * encrypted before they reach it and opened after they leave it.
 */
export interface ChunkStore {
  readonly kind: StoreKind;
  /**
   * Writes one sealed chunk; writing the same (content, index) again replaces it. `transaction`:
   * the upload's claim of the chunk; a store in PostgreSQL writes inside it, so the claim and the
   * chunk commit together.
   */
  put(contentId: string, chunkIndex: number, sealed: Buffer, transaction?: EntityManager): Promise<void>;
  /** The sealed chunks first..last (inclusive), in order, a few at a time; ChunkMissingError for a missing one. */
  read(contentId: string, first: number, last: number): AsyncIterable<Buffer>;
  /** Removes the chunks of these contents (`chunkCount`: how many may exist); idempotent. */
  remove(contents: readonly { readonly contentId: string; readonly chunkCount: number }[]): Promise<void>;
  /** Throws, with a reason an operator can act on, when the store cannot be written and read back. */
  probe(): Promise<void>;
  /** Lets go of its connections. */
  close(): Promise<void>;
}
