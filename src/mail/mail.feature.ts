import { defineFeature } from '../feature';
import { LogMailTransport, SmtpMailTransport } from './mail-transport';
import { MAIL_SETTINGS } from './mail.settings';
import { OutboxMessage } from './outbox-message.entity';
import { OutboxService } from './outbox.service';

/** The services this feature provides. */
export interface MailServices {
  /** Emails, written in the changing transaction and sent after it commits. */
  readonly outbox: OutboxService;
}

declare module '../feature' {
  interface Services extends MailServices {}
}

/** How often pending (failed) emails are retried. */
const MAIL_RETRY_INTERVAL_MS = 60_000;

/** The transactional outbox and its transport: SMTP, or the log in development. */
export const mailFeature = defineFeature<keyof MailServices>()({
  name: 'mail',
  settings: MAIL_SETTINGS,
  entities: [OutboxMessage],
  provides: {
    outbox: ({ config, dataSource, clock, logger }) =>
      new OutboxService(
        dataSource,
        config.smtpUrl ? new SmtpMailTransport(config.smtpUrl, config.mailFrom) : new LogMailTransport(logger),
        clock,
        logger,
      ),
  },
  start: async ({ outbox }) => outbox.startPolling(MAIL_RETRY_INTERVAL_MS),
});
