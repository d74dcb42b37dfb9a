import { DocumentNode, ExecutionArgs, ExecutionResult, createSourceEventStream, execute } from 'graphql';
import type { LiveChange } from '../data/live-changes';

/** Answers kept for sharing; a new batch's keys never match an old one's, so the oldest can go. */
const MAX_SHARED_ANSWERS = 5_000;

/**
 * graphql-js's subscribe, except that subscribers a change reaches with the same `sharedAs` key,
 * the same document and the same variables share one execution of it (a thousand anonymous
 * subscribers of one published post: one execution, not a thousand). The key names everything an
 * answer depends on (SubscriptionHub): the row, its field mask, the roles and policy, the account
 * where the selection follows a relation.
 */
export class SharedExecution {
  private readonly answers = new Map<string, Promise<ExecutionResult>>();
  private readonly documentIds = new WeakMap<DocumentNode, number>();
  private documents = 0;

  async subscribe(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const stream = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in stream)) return stream;
    const source = stream as AsyncIterableIterator<LiveChange>;
    const documentKey = `${this.documentId(args.document)}|${args.operationName ?? ''}|${JSON.stringify(args.variableValues ?? {})}`;
    const answer = async (result: IteratorResult<LiveChange>): Promise<IteratorResult<ExecutionResult>> =>
      result.done ? { done: true, value: undefined } : { done: false, value: await this.answer(args, result.value, documentKey) };
    // Returning the mapped stream returns the source: the hub forgets the subscription at once.
    const mapped: AsyncIterableIterator<ExecutionResult> = {
      next: async () => answer(await source.next()),
      return: async () => answer(await source.return!()),
      throw: async (error?: unknown) => answer(await source.throw!(error)),
      [Symbol.asyncIterator]: () => mapped,
    };
    return mapped;
  }

  private answer(args: ExecutionArgs, change: LiveChange, documentKey: string): Promise<ExecutionResult> {
    const key = `${change.sharedAs}|${documentKey}`;
    let answer = this.answers.get(key);
    if (!answer) {
      // With the rights the change was decided with, not the connection's latest: the key describes those.
      answer = Promise.resolve(execute({ ...args, rootValue: change, contextValue: change.context }));
      if (this.answers.size >= MAX_SHARED_ANSWERS) this.answers.delete(this.answers.keys().next().value!);
      this.answers.set(key, answer);
    }
    return answer;
  }

  private documentId(document: DocumentNode): number {
    let id = this.documentIds.get(document);
    if (id === undefined) this.documentIds.set(document, (id = this.documents += 1));
    return id;
  }
}
