import { appTables } from '../support/test-tables';
import { DataSource } from 'typeorm';
import { FrozenClock } from '../../src/clock';
import { installKeyring } from '../../src/crypto/active-keyring';
import { createDataSource } from '../../src/db/data-source';
import { createLogger } from '../../src/logging';
import type { MailMessage, MailTransport } from '../../src/mail/mail-transport';
import { OutboxService } from '../../src/mail/outbox.service';
import { LogCollector } from '../support/log-collector';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { testKeyring } from '../support/test-keys';

/** A transport that fails until told otherwise, like an SMTP server that is down for a while. */
class FlakyTransport implements MailTransport {
  down = true;
  readonly sent: MailMessage[] = [];

  async send(message: MailMessage): Promise<void> {
    if (this.down) throw Object.assign(new Error(`550 mailbox ${message.to} unavailable`), { code: 'EENVELOPE', responseCode: 550 });
    this.sent.push(message);
  }
}

describe('the mail outbox', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  beforeAll(async () => {
    installKeyring(testKeyring());
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 2, ...appTables() });
    await dataSource.initialize();
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });

  it('keeps a failed message for the next pass, without the address in its error or the log, then sends and deletes it', async () => {
    const transport = new FlakyTransport();
    const logs = new LogCollector();
    const outbox = new OutboxService(
      dataSource,
      transport,
      new FrozenClock(),
      createLogger({ level: 'debug', pretty: false, destination: logs }),
    );
    await dataSource.transaction((manager) =>
      outbox.enqueue(manager, { to: 'grace@example.com', subject: 'Hello', text: 'body with a link' }),
    );

    await outbox.deliverPending();
    const [pending] = await dataSource.query('SELECT status, attempts, last_error, recipient FROM outbox');
    expect(pending).toMatchObject({ status: 'pending', attempts: 1, last_error: 'Error EENVELOPE 550' });
    expect(pending.recipient).toMatch(/^v1\./);
    expect(logs.text()).not.toContain('grace@example.com');

    transport.down = false;
    await outbox.deliverPending();
    expect(transport.sent).toEqual([{ to: 'grace@example.com', subject: 'Hello', text: 'body with a link' }]);
    expect(await dataSource.query('SELECT id FROM outbox')).toEqual([]);
  });

  it('gives up after five attempts, and a later message is not held back by a failing one', async () => {
    const transport = new FlakyTransport();
    const outbox = new OutboxService(dataSource, transport, new FrozenClock(), createLogger({ level: 'silent', pretty: false }));
    await dataSource.transaction((manager) => outbox.enqueue(manager, { to: 'a@example.com', subject: 'first', text: '1' }));
    for (let pass = 0; pass < 5; pass += 1) await outbox.deliverPending();
    expect(await dataSource.query("SELECT status, attempts FROM outbox WHERE subject = 'first'")).toEqual([
      { status: 'failed', attempts: 5 },
    ]);
    await dataSource.transaction((manager) => outbox.enqueue(manager, { to: 'b@example.com', subject: 'second', text: '2' }));
    transport.down = false;
    await outbox.deliverPending();
    expect(transport.sent.map((message) => message.subject)).toEqual(['second']);
  });
});

describe('delivery passes', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  beforeAll(async () => {
    installKeyring(testKeyring());
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 2, ...appTables() });
    await dataSource.initialize();
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });

  it('a message queued while a pass is running is sent by a follow-up pass, not left for the poller', async () => {
    const sent: string[] = [];
    let queuedSecond = false;
    const transport: MailTransport = {
      async send(message) {
        if (message.subject === 'first' && !queuedSecond) {
          queuedSecond = true;
          // Another request queues mail and asks for delivery while this pass is busy; this pass then fails and ends.
          await dataSource.transaction((manager) => outbox.enqueue(manager, { to: 'b@example.com', subject: 'second', text: '2' }));
          void outbox.deliverPending();
          throw new Error('421 try again later');
        }
        if (message.subject === 'first') throw new Error('421 try again later');
        sent.push(message.subject);
      },
    };
    const outbox = new OutboxService(dataSource, transport, new FrozenClock(), createLogger({ level: 'silent', pretty: false }));
    await dataSource.transaction((manager) => outbox.enqueue(manager, { to: 'a@example.com', subject: 'first', text: '1' }));
    await outbox.deliverPending();
    expect(sent).toEqual(['second']);
  });
});
