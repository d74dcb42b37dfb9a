import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { SmtpMailTransport } from '../../src/mail/mail-transport';

/** A real SMTP conversation with a local server (no mail leaves the machine). */
describe('the SMTP mail transport', () => {
  const received: { from: string; to: string[]; data: string; user?: string }[] = [];
  let server: SMTPServer;
  let port: number;

  beforeAll(async () => {
    server = new SMTPServer({
      secure: false,
      allowInsecureAuth: true,
      authOptional: false,
      disabledCommands: ['STARTTLS'],
      onAuth(auth, _session, callback) {
        if (auth.username === 'bastion' && auth.password === 'mail-secret') callback(null, { user: auth.username });
        else callback(new Error('bad credentials'));
      },
      onData(stream, session, callback) {
        let data = '';
        stream.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
        stream.on('end', () => {
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            data,
            user: session.user as string | undefined,
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('delivers a message, authenticated, from the configured sender', async () => {
    const transport = new SmtpMailTransport(`smtp://bastion:mail-secret@127.0.0.1:${port}`, 'Acme <no-reply@acme.example>');
    await transport.send({ to: 'ada@example.com', subject: 'Reset your password', text: 'Open myapp://auth/reset-password?token=abc' });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ from: 'no-reply@acme.example', to: ['ada@example.com'], user: 'bastion' });
    expect(received[0].data).toContain('Subject: Reset your password');
    expect(received[0].data).toContain('myapp://auth/reset-password?token=abc');
  });

  it('fails loudly on wrong credentials, so the outbox keeps the message for a retry', async () => {
    const transport = new SmtpMailTransport(`smtp://bastion:wrong@127.0.0.1:${port}`, 'Acme <no-reply@acme.example>');
    await expect(transport.send({ to: 'ada@example.com', subject: 'x', text: 'y' })).rejects.toThrow();
  });
});
