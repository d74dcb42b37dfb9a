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
  private passRequested = false;
  /** Set when polling stops: a pass in flight ends after its current message. */
  private stopping = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transport: MailTransport,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /**
   * Retries what is pending every `intervalMs` (and once now), until stopped. Rows are claimed
   * with SKIP LOCKED, so every instance may run this.
   */
  startPolling(intervalMs: number): () => Promise<void> {
    const run = () => this.deliverSoon();
    run();
    const timer = setInterval(run, intervalMs);
    timer.unref();
    // Stopping waits for the message in flight (the pool closes next, and would fail it
    // halfway), not for the whole backlog: the rest stays queued for the next start.
    return async () => {
      clearInterval(timer);
      this.stopping = true;
      await this.delivering?.catch(() => undefined);
    };
  }

  /** Starts a delivery pass without waiting for it (after a commit that queued mail); a failure stays queued for the poller. */
  deliverSoon(): void {
    void this.deliverPending().catch((error: unknown) => this.logger.warn({ err: error }, 'email delivery pass failed'));
  }

  /** Queues a message inside the caller's transaction. */
  async enqueue(manager: EntityManager, message: MailMessage): Promise<void> {
    await manager.save(
      Object.assign(new OutboxMessage(), {
        userId: message.userId ?? null,
        recipient: message.to,
        subject: message.subject,
        body: message.text,
        status: 'pending',
        attempts: 0,
        lastError: null,
        sentAt: null,
      }),
    );
  }

  /**
   * Sends what is pending. Called after each commit that queued mail and by the poller; a failed
   * send stays pending and is retried by a later pass, up to MAX_ATTEMPTS. Rows are claimed with SKIP LOCKED, so
   * several instances never send one message twice.
   */
  deliverPending(): Promise<void> {
    if (this.delivering) {
      // A pass is running and may already have looked past this new message: run one more after it.
      this.passRequested = true;
      return this.delivering;
    }
    this.delivering = (async () => {
      do {
        this.passRequested = false;
        await this.deliverBatch();
      } while (this.passRequested && !this.stopping);
    })().finally(() => {
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
          // Fewest attempts first, so one failing message cannot hold back the ones behind it.
          .orderBy('message.attempts', 'ASC')
          .addOrderBy('message.created_at', 'ASC')
          .setLock('pessimistic_write')
          .setOnLocked('skip_locked')
          .getOne();
        if (!message) return false;
        try {
          await this.transport.send({ to: message.recipient, subject: message.subject, text: message.body });
          // A sent message (an address and a live link) is deleted, not kept.
          await manager.delete(OutboxMessage, { id: message.id });
        } catch (error) {
          const attempts = message.attempts + 1;
          // SMTP errors often quote the recipient: only the error's class and code are kept and logged.
          const { code, responseCode } = error as { code?: string; responseCode?: number };
          const summary = [error instanceof Error ? error.name : 'Error', code, responseCode].filter(Boolean).join(' ');
          this.logger.warn({ messageId: message.id, attempts, failure: summary }, 'email delivery failed');
          await manager.update(
            OutboxMessage,
            { id: message.id },
            { attempts, status: attempts >= MAX_ATTEMPTS ? 'failed' : 'pending', lastError: summary },
          );
          return false;
        }
        return true;
      });
      if (!delivered || this.stopping) return;
    }
  }
}
