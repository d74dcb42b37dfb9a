import { loadConfig } from '../../../src/settings';
import { REDACTED, createLogger, redactSecrets } from '../../../src/logging';
import { LogCollector } from '../../support/log-collector';

describe('redactSecrets', () => {
  it('redacts credentials, tokens, codes and secrets by key name at any depth', () => {
    const input = {
      headers: { authorization: 'Bearer eyJ.x.y', cookie: 'sid=1', 'user-agent': 'app/1.0' },
      input: { email: 'a@example.com', password: 'hunter2hunter2', newPassword: 'x', code: '123456' },
      tokens: [{ refreshToken: 'r1', accessToken: 'a1' }],
      totpSecret: 'JBSWY3DPEHPK3PXP',
      recoveryCodes: ['abcd-efgh'],
      privateKey: '-----BEGIN',
    };
    expect(redactSecrets(input)).toEqual({
      headers: { authorization: REDACTED, cookie: REDACTED, 'user-agent': 'app/1.0' },
      input: { email: 'a@example.com', password: REDACTED, newPassword: REDACTED, code: REDACTED },
      tokens: REDACTED,
      totpSecret: REDACTED,
      recoveryCodes: REDACTED,
      privateKey: REDACTED,
    });
  });

  it('keeps error codes, which are UPPER_SNAKE and never secrets', () => {
    expect(redactSecrets({ code: 'INTERNAL_SERVER_ERROR', extensions: { code: 'FORBIDDEN' } })).toEqual({
      code: 'INTERNAL_SERVER_ERROR',
      extensions: { code: 'FORBIDDEN' },
    });
  });

  it('survives cycles', () => {
    const node: Record<string, unknown> = { name: 'a' };
    node.self = node;
    expect(redactSecrets(node)).toEqual({ name: 'a', self: '[…]' });
  });
});

describe('createLogger', () => {
  it('writes JSON lines with UTC time and no secret values', () => {
    const sink = new LogCollector();
    const logger = createLogger({ level: 'info', pretty: false, destination: sink });
    logger.child({ requestId: 'req-1' }).info({ password: 'correct horse battery staple', operationName: 'SignIn' }, 'sign-in attempt');
    expect(sink.lines).toHaveLength(1);
    expect(sink.lines[0]).toMatchObject({ requestId: 'req-1', operationName: 'SignIn', password: REDACTED, msg: 'sign-in attempt' });
    expect(sink.lines[0].time).toMatch(/Z$/);
    expect(sink.text()).not.toContain('correct horse');
  });
});

describe('logged errors', () => {
  it('are redacted too, and lose the bound parameters that driver errors carry', () => {
    const sink = new LogCollector();
    const logger = createLogger({ level: 'info', pretty: false, destination: sink });
    const driverError = Object.assign(new Error('duplicate key value'), {
      query: 'INSERT INTO users …',
      parameters: ['ada@example.com', 'hunter2hunter2'],
      token: 'tok-123',
    });
    logger.error({ err: driverError }, 'write failed');
    const text = sink.text();
    expect(text).toContain('duplicate key value');
    expect(text).toContain('"parameterCount":2');
    for (const secret of ['ada@example.com', 'hunter2hunter2', 'tok-123']) expect(text).not.toContain(secret);
  });

  it('carry no SQL, no quoted row data and no stack trace, at any depth, but say where in Bastion they were raised', () => {
    const sink = new LogCollector();
    const logger = createLogger({ level: 'info', pretty: false, destination: sink });
    const driverError = Object.assign(new Error('insert or update on table "user_roles" violates foreign key constraint'), {
      code: '23503',
      detail: 'Key (user_id)=(ada@example.com) is not present in table "users".',
      where: 'COPY user_roles, line 1: "ada@example.com\tuser"',
    });
    // Raised inside Bastion's own code (the config parser), so it has a frame of ours to name.
    let raised: Error | undefined;
    try {
      loadConfig({ NODE_ENV: 'test', PORT: 'not a port' });
    } catch (error) {
      raised = error as Error;
    }
    const failure = Object.assign(raised!, {
      message: 'query failed',
      cause: driverError,
      query: 'SELECT secret_column FROM users',
      driverError,
    });
    logger.error({ err: failure }, 'write failed');
    const [line] = sink.lines as unknown as { err: Record<string, unknown> }[];
    const text = sink.text();
    for (const leak of ['SELECT secret_column', 'ada@example.com', 'COPY user_roles', '"stack"', '    at '])
      expect({ leak, found: text.includes(leak) }).toEqual({ leak, found: false });
    expect(line.err).toMatchObject({
      message: 'query failed',
      driverError: { code: '23503' },
      origin: expect.stringMatching(/^src\/config\/config\.ts:\d+:\d+$/),
    });

    // A message that imitates a frame does not become the origin.
    const forged = new Error('bad input\n    at evil (/app/src/secret-user-value:1:1)');
    logger.error({ err: forged }, 'forged');
    expect(JSON.stringify(sink.lines[1])).not.toContain('"origin":"src/secret-user-value');
  });
});
