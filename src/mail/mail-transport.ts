import nodemailer, { Transporter } from 'nodemailer';
import type { Logger } from '../logging';

export interface MailMessage {
  /** The account the message concerns, if any. */
  readonly userId?: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/** Where emails go. */
export interface MailTransport {
  send(message: MailMessage): Promise<void>;
}

/**
 * Development only (configuration refuses it in production): writes the whole message, link and
 * token included, to the log, so a developer can follow reset and verification flows locally.
 */
export class LogMailTransport implements MailTransport {
  constructor(private readonly logger: Logger) {}

  async send(message: MailMessage): Promise<void> {
    // Key names chosen so the redaction does not hide the body: that is this transport's purpose.
    this.logger.info(
      { mailTo: message.to, mailSubject: message.subject, mailText: message.text },
      `email (log transport): ${message.subject}`,
    );
  }
}

export class SmtpMailTransport implements MailTransport {
  private readonly transporter: Transporter;

  constructor(
    smtpUrl: string,
    private readonly from: string,
  ) {
    this.transporter = nodemailer.createTransport(smtpUrl);
  }

  async send(message: MailMessage): Promise<void> {
    await this.transporter.sendMail({ from: this.from, to: message.to, subject: message.subject, text: message.text });
  }
}
