import { makeClient } from '../support/factories';
import { inspect } from 'node:util';
import { DecryptionFailedError } from '../../src/crypto/envelope';
import { TEST_KEYS, testKeyring } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

describe('serverInfo, end to end over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('answers name, version and the (frozen) server time', async () => {
    server.clock.set('2026-05-04T03:02:01.000Z');
    const { status, body } = await makeClient(server).request('{ serverInfo { name version serverTime } }');
    expect(status).toBe(200);
    expect(body).toEqual({
      data: { serverInfo: { name: 'Bastion', version: expect.stringMatching(/^\d+\.\d+\.\d+/), serverTime: '2026-05-04T03:02:01.000Z' } },
    });
  });

  it('never logs key material, even when the config, the keyring and a decryption failure are logged', async () => {
    await makeClient(server).request('{ serverInfo { name } }');
    const keyring = testKeyring();
    const { logger } = server;
    logger.info({ config: server.config, keyring }, 'diagnostics');
    logger.error({ err: new DecryptionFailedError('users.email') }, 'decrypt failed');
    expect(inspect(keyring)).toBe('Keyring {"currentKid":"k1","kids":["k1","k2"]}');
    const derived = [keyring.columnKey('k1', 'users.email')!, keyring.blindIndexKey('users.email')];
    const logs = server.logs.text();
    expect(logs.length).toBeGreaterThan(0);
    for (const key of [...Object.values(TEST_KEYS), ...derived]) {
      expect(logs).not.toContain(key.toString('base64'));
      expect(logs).not.toContain(key.toString('hex'));
    }
  });
});
