import type { EntityManager, EntitySubscriberInterface, QueryRunner, TransactionCommitEvent, TransactionRollbackEvent } from 'typeorm';
import { EventSubscriber } from 'typeorm';

const CALLBACKS = Symbol('bastion.afterCommit');
type WithCallbacks = { [CALLBACKS]?: (() => void)[] };

/**
 * Runs `callback` once the caller's transaction has committed (at once when there is none).
 * For in-process caches: dropping an entry inside the transaction is too early, since a request
 * could reload the old row before the commit and keep it.
 */
export function afterCommit(manager: EntityManager, callback: () => void): void {
  const runner = manager.queryRunner;
  if (!runner?.isTransactionActive) {
    callback();
    return;
  }
  const data = runner.data as WithCallbacks;
  (data[CALLBACKS] ??= []).push(callback);
}

function take(runner: QueryRunner): (() => void)[] {
  const data = runner.data as WithCallbacks;
  const callbacks = data[CALLBACKS] ?? [];
  delete data[CALLBACKS];
  return callbacks;
}

/** Fires `afterCommit` callbacks when the outermost transaction commits; drops them when it rolls back. */
@EventSubscriber()
export class AfterCommitSubscriber implements EntitySubscriberInterface {
  afterTransactionCommit(event: TransactionCommitEvent): void {
    // A released savepoint also reports a commit; only the real COMMIT ends the transaction.
    if (event.queryRunner.isTransactionActive) return;
    for (const callback of take(event.queryRunner)) callback();
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) take(event.queryRunner);
  }
}
