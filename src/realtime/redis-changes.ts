import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import type { DataSource, EntitySubscriberInterface, QueryRunner, TransactionCommitEvent, TransactionRollbackEvent } from 'typeorm';
import { EventSubscriber } from 'typeorm';
import type { Logger } from '../logging';

/**
 * The Redis channel one database's changes travel on when REDIS_URL is set (the payload the
 * trigger's NOTIFY carries): named after the database, so deployments sharing a Redis never hear
 * each other's changes (an event id means nothing in another database).
 */
export function changesChannel(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const database = createHash('sha256')
    .update(`${url.hostname}:${url.port || '5432'}/${url.pathname.slice(1)}`)
    .digest('hex');
  return `bastion:changes:${database.slice(0, 16)}`;
}

const PUBLISHERS = new WeakMap<DataSource, (payloads: readonly string[]) => void>();
const PENDING = Symbol('bastion.realtimePayloads');
type WithPending = { [PENDING]?: string[] };

/** Depth of the runner's transaction: above 1, a commit only releases a savepoint. */
function depthOf(runner: QueryRunner): number {
  return (runner as unknown as { transactionDepth: number }).transactionDepth;
}

/**
 * With Redis as the transport, the writer publishes its transaction's changes itself: just before
 * COMMIT it asks which models its transaction's triggers recorded events for (by `tx`, indexed),
 * and once the COMMIT succeeded it publishes `<transaction>:<model>` for each, as the trigger's
 * NOTIFY would. A rolled-back transaction publishes nothing. Only writes
 * made through this process's TypeORM transactions are published (the data API, account deletion's
 * cascades); a change made by other means is heard only through PostgreSQL NOTIFY.
 */
@EventSubscriber()
export class RedisChangePublisher implements EntitySubscriberInterface {
  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    if (!PUBLISHERS.has(event.connection) || depthOf(event.queryRunner) > 1) return;
    const changed = (await event.queryRunner.query(
      `SELECT DISTINCT tx::text AS tx, model FROM realtime_events WHERE tx = txid_current_if_assigned()`,
    )) as { tx: string; model: string }[];
    if (changed.length > 0) (event.queryRunner.data as WithPending)[PENDING] = changed.map(({ tx, model }) => `${tx}:${model}`);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    if (event.queryRunner.isTransactionActive) return;
    const data = event.queryRunner.data as WithPending;
    const payloads = data[PENDING];
    delete data[PENDING];
    if (payloads) PUBLISHERS.get(event.connection)?.(payloads);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) delete (event.queryRunner.data as WithPending)[PENDING];
  }
}

/** Redis pub/sub for change events: one connection publishes, one listens (a subscribed connection can do nothing else). */
export class RedisChanges {
  private readonly publisher: Redis;
  private readonly listener: Redis;

  constructor(
    url: string,
    private readonly channel: string,
    private readonly dataSource: DataSource,
    private readonly logger: Logger,
  ) {
    const options = { lazyConnect: true, maxRetriesPerRequest: 1 };
    this.publisher = new Redis(url, { ...options, enableOfflineQueue: false });
    this.listener = new Redis(url, options);
    for (const client of [this.publisher, this.listener])
      client.on('error', (error) =>
        logger.warn({ err: error }, 'redis: realtime connection problem; changes published meanwhile are lost'),
      );
  }

  /**
   * Connects both, listens, and makes this process's commits publish their changes. Redis keeps
   * nothing for a listener that is away: `onMissed` runs each time the listener is back.
   */
  async start(onPayload: (payload: string) => void, onMissed: () => void): Promise<void> {
    await Promise.all([this.publisher.connect(), this.listener.connect()]);
    this.listener.on('message', (_channel: string, payload: string) => onPayload(payload));
    this.listener.on('ready', onMissed);
    await this.listener.subscribe(this.channel);
    PUBLISHERS.set(this.dataSource, (payloads) => {
      // Each commit's events in one round trip, in order.
      const pipeline = this.publisher.pipeline();
      for (const payload of payloads) pipeline.publish(this.channel, payload);
      pipeline
        .exec()
        .catch((error: unknown) =>
          this.logger.error({ err: error }, 'redis: change events could not be published; subscribers on every instance miss them'),
        );
    });
  }

  stop(): void {
    PUBLISHERS.delete(this.dataSource);
    this.publisher.disconnect();
    this.listener.disconnect();
  }
}
