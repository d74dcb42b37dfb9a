import { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '../clock';
import type { Logger } from '../logging';
import type { MailMessage, MailTransport } from './mail-transport';
import { OutboxMessage } from './outbox-message.entity';

const MAX_ATTEMPTS = 5;

/**
 * Transactional outbox: a message is stored with the change that causes it (so no email is sent
 * for a rolled-back change, and none is lost after a commit), then handed to the transport.
 */
export class OutboxService {
  private delivering: Promise<void> | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transport: MailTransport,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Queues a message inside the caller's transaction. */
  async enqueue(manager: EntityManager, message: MailMessage): Promise<void> {
    await manager.save(Object.assign(new OutboxMessage(), { recipient: message.to, subject: message.subject, body: message.text, status: 'pending', attempts: 0, lastError: null, sentAt: null }));
  }

  /**
   * Sends what is pending. Called after each commit that queued mail; a failed send stays pending
   * and is retried by the next call, up to MAX_ATTEMPTS. Rows are claimed with SKIP LOCKED, so
   * several instances never send one message twice.
   */
  deliverPending(): Promise<void> {
    this.delivering ??= this.deliverBatch().finally(() => {
      this.delivering = undefined;
    });
    return this.delivering;
  }

  private async deliverBatch(): Promise<void> {
    for (;;) {
      const delivered = await this.dataSource.transaction(async (manager) => {
        const message = await manager
          .getRepository(OutboxMessage)
          .createQueryBuilder('message')
          .where('message.status = :status', { status: 'pending' })
          .orderBy('message.created_at', 'ASC')
          .setLock('pessimistic_write')
          .setOnLocked('skip_locked')
          .getOne();
        if (!message) return false;
        try {
          await this.transport.send({ to: message.recipient, subject: message.subject, text: message.body });
          await manager.update(OutboxMessage, { id: message.id }, { status: 'sent', sentAt: this.clock.now(), attempts: message.attempts + 1 });
        } catch (error) {
          const attempts = message.attempts + 1;
          this.logger.warn({ err: error, messageId: message.id, attempts }, 'email delivery failed');
          await manager.update(OutboxMessage, { id: message.id }, { attempts, status: attempts >= MAX_ATTEMPTS ? 'failed' : 'pending', lastError: error instanceof Error ? error.message.slice(0, 500) : 'unknown' });
          return false;
        }
        return true;
      });
      if (!delivered) return;
    }
  }
}
