import { AppError } from '../errors';
import type { Context } from '../context';
import type { ModelDefinition } from './define-model';
import type { WhereInput } from './filters';
import type { RowValues } from './model-reader';
import type { Wanted } from './selection';

/** What happened to a row, as one subscriber sees it (a row that leaves what it may see is DELETED for it). */
export type ChangeKind = 'CREATED' | 'UPDATED' | 'DELETED';

/** One change delivered to one subscriber: the row as it is now (null when DELETED for it). */
export interface LiveChange {
  readonly kind: ChangeKind;
  readonly id: string;
  readonly row: RowValues | null;
  /**
   * Subscribers whose deliveries of this change carry the same key would be answered the same
   * (same row, same field mask, same roles; the same account too where the selection follows a
   * relation): the server executes the subscription once for all of them.
   */
  readonly sharedAs: string;
  /** The subscriber's rights as this change was decided with them: it is answered with the same. */
  readonly context: Context;
}

/**
 * The changes of a model's rows, as the realtime feature delivers them to one subscription: only
 * rows the subscriber may read and its `where` matches, decided at each change with its rights at
 * that moment. The data API generates the subscription fields; the realtime feature provides this.
 */
export interface LiveChanges {
  /** From now until the iterator is returned. Throws (an AppError) when the subscription is refused. */
  follow(model: ModelDefinition, context: Context, where: WhereInput | null | undefined, node: Wanted): AsyncIterableIterator<LiveChange>;
}

declare module '../context' {
  interface Context {
    /** Set on a WebSocket connection's context by the realtime feature: where subscriptions follow changes. */
    readonly liveChanges?: LiveChanges;
  }
}

/** A subscription's event stream; refused where nothing delivers changes (a subscription over HTTP never gets here: Apollo refuses it). */
export function followChanges(
  model: ModelDefinition,
  context: Context,
  where: WhereInput | null | undefined,
  node: Wanted,
): AsyncIterableIterator<LiveChange> {
  if (!context.liveChanges)
    throw new AppError('BAD_REQUEST', 'Subscriptions are served over WebSocket (graphql-transport-ws) at /graphql.');
  return context.liveChanges.follow(model, context, where, node);
}
