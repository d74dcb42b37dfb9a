import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, readEnvironment } from '../../../src/config';
import { loadConfig } from '../../../src/settings';

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');
const PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://u:p@db:5432/app?sslmode=verify-full',
  BASTION_ENCRYPTION_KEYS: `k1:${KEY_A}`,
  BASTION_BLIND_INDEX_KEY: KEY_B,
  SMTP_URL: 'smtps://bastion:pw@mail.example.com:465',
};

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env, '/srv/app');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  it('gives development defaults with nothing set', () => {
    const config = loadConfig({}, '/srv/app');
    expect(config).toMatchObject({
      nodeEnv: 'development',
      port: 4000,
      host: '127.0.0.1',
      dataDir: '/srv/app/.bastion',
      logLevel: 'info',
      sandbox: true,
      introspection: 'everyone',
      migrateOnStart: true,
    });
    expect(config.databaseUrl).toBeUndefined();
  });

  it('is frozen', () => {
    const config = loadConfig({}, '/srv/app');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('switches to safe defaults in production', () => {
    const config = loadConfig(PRODUCTION, '/srv/app');
    expect(config).toMatchObject({
      host: '0.0.0.0',
      sandbox: false,
      introspection: 'admins',
      logPretty: false,
      corsOrigins: [],
      trustProxy: [],
      // A release step migrates, as the schema's owner; the server's role cannot (docs/deploy.md).
      migrateOnStart: false,
    });
  });

  it('lists every problem at once', () => {
    const attempt = () => loadConfig({ PORT: 'eighty', LOG_LEVEL: 'loud', BASTION_SANDBOX: 'maybe' }, '/srv/app');
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        'PORT: must be a whole number (got "eighty")',
        'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
        'BASTION_SANDBOX: must be true or false (got "maybe")',
      ]);
      expect((error as Error).message).toContain('3 problems');
    }
  });

  it('refuses unsafe settings in production, all together', () => {
    try {
      loadConfig({ NODE_ENV: 'production', BASTION_LOG_PRETTY: 'true', BASTION_INTROSPECTION: 'everyone' }, '/srv/app');
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        expect.stringMatching(/^DATABASE_URL: must be set in production/),
        expect.stringMatching(/^BASTION_ENCRYPTION_KEYS: must be set in production/),
        expect.stringMatching(/^BASTION_BLIND_INDEX_KEY: must be set in production/),
        expect.stringMatching(/^SMTP_URL: must be set in production/),
        expect.stringMatching(/^BASTION_LOG_PRETTY: must be false in production/),
        expect.stringMatching(/^BASTION_INTROSPECTION: must be admins in production/),
      ]);
    }
  });

  it('never echoes a secret value in an error', () => {
    try {
      loadConfig({ DATABASE_URL: 'mysql://admin:hunter2-secret@db/app' }, '/srv/app');
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as Error).message).toContain('DATABASE_URL');
      expect((error as Error).message).not.toContain('hunter2-secret');
    }
  });

  it('checks ranges, sizes and origins', () => {
    expect(loadConfig({ PORT: '0', BASTION_BODY_LIMIT: '1mb', CORS_ORIGINS: 'https://admin.example.com' }, '/')).toMatchObject({
      port: 0,
      bodyLimitBytes: 1024 * 1024,
      corsOrigins: ['https://admin.example.com'],
    });
    expect(() => loadConfig({ PORT: '70000' }, '/')).toThrow('PORT: must be between 0 and 65535 (got 70000)');
    expect(() => loadConfig({ BASTION_BODY_LIMIT: '1gb' }, '/')).toThrow(/BASTION_BODY_LIMIT/);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://admin.example.com/path' }, '/')).toThrow(/CORS_ORIGINS/);
  });
});

describe('encryption key settings', () => {
  it('parses a keyring and its current key id', () => {
    const config = loadConfig(
      { BASTION_ENCRYPTION_KEYS: `k1:${KEY_A}, k2:${KEY_B}`, BASTION_ENCRYPTION_KEY_ID: 'k2', BASTION_BLIND_INDEX_KEY: KEY_B },
      '/',
    );
    expect(config.encryptionKeys?.map((entry) => entry.kid)).toEqual(['k1', 'k2']);
    expect(config.encryptionKeys?.[1].key).toEqual(Buffer.alloc(32, 2));
    expect(config.encryptionKeyId).toBe('k2');
  });

  it('refuses short keys and bad lists without echoing key material', () => {
    const short = Buffer.alloc(16, 7).toString('base64');
    const problems = problemsOf({ BASTION_ENCRYPTION_KEYS: `k1:${short}`, BASTION_BLIND_INDEX_KEY: short });
    expect(problems).toEqual([
      expect.stringMatching(/^BASTION_ENCRYPTION_KEYS: key "k1" must be exactly 32 bytes/),
      expect.stringMatching(/^BASTION_BLIND_INDEX_KEY: the key must be exactly 32 bytes/),
    ]);
    expect(problems.join()).not.toContain(short);
    expect(problemsOf({ BASTION_ENCRYPTION_KEYS: `k1:${KEY_A},k1:${KEY_B}`, BASTION_BLIND_INDEX_KEY: KEY_A })).toEqual([
      'BASTION_ENCRYPTION_KEYS: names key id "k1" twice',
    ]);
    expect(problemsOf({ BASTION_ENCRYPTION_KEYS: KEY_A, BASTION_BLIND_INDEX_KEY: KEY_A })[0]).toMatch(/kid:base64key/);
  });

  it('needs the current key id among the keys, and one when there are several', () => {
    expect(problemsOf({ BASTION_ENCRYPTION_KEYS: `k1:${KEY_A}`, BASTION_ENCRYPTION_KEY_ID: 'k9', BASTION_BLIND_INDEX_KEY: KEY_B })).toEqual(
      ['BASTION_ENCRYPTION_KEY_ID: "k9" is not a key id in BASTION_ENCRYPTION_KEYS'],
    );
    expect(problemsOf({ BASTION_ENCRYPTION_KEYS: `k1:${KEY_A},k2:${KEY_B}`, BASTION_BLIND_INDEX_KEY: KEY_B })[0]).toMatch(
      /must name the current key/,
    );
    expect(problemsOf({ BASTION_ENCRYPTION_KEYS: `k1:${KEY_A}` })).toEqual([
      'BASTION_ENCRYPTION_KEYS and BASTION_BLIND_INDEX_KEY: set both or neither',
    ]);
  });
});

describe('TLS and proxy settings', () => {
  it('accepts IPv4 and IPv6 CIDRs and single addresses', () => {
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7, fd00::/8' }, '/').trustProxy).toEqual([
      '10.0.0.0/8',
      '192.168.1.7',
      'fd00::/8',
    ]);
    expect(problemsOf({ TRUST_PROXY: '10.0.0.0/33' })[0]).toMatch(/^TRUST_PROXY: must be a comma-separated list/);
    expect(problemsOf({ TRUST_PROXY: 'proxy.internal' })[0]).toMatch(/^TRUST_PROXY/);
    expect(problemsOf({ TRUST_PROXY: '0.0.0.0/0' })).toEqual([
      'TRUST_PROXY: "0.0.0.0/0" would trust every address, so anyone could forge X-Forwarded-For',
    ]);
    expect(problemsOf({ TRUST_PROXY: '::/0' })[0]).toMatch(/would trust every address/);
  });

  it('needs a readable certificate and key, both or neither', () => {
    expect(problemsOf({ TLS_CERT_FILE: '/no/such/cert.pem' })).toEqual(['TLS_CERT_FILE: cannot read "/no/such/cert.pem"']);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-tls-')), 'cert.pem');
    fs.writeFileSync(file, 'x');
    expect(problemsOf({ TLS_CERT_FILE: file })).toEqual(['TLS_CERT_FILE and TLS_KEY_FILE: set both or neither']);
  });
});

describe('readEnvironment', () => {
  it('merges .env under the real environment', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-env-'));
    fs.writeFileSync(path.join(dir, '.env'), 'PORT=5000\nLOG_LEVEL=debug\n');
    const env = readEnvironment({ LOG_LEVEL: 'warn' }, dir);
    expect(loadConfig(env, dir)).toMatchObject({ port: 5000, logLevel: 'warn' });
    fs.rmSync(dir, { recursive: true });
  });

  it('works without a .env file', () => {
    expect(readEnvironment({ PORT: '1' }, os.tmpdir() + '/no-such-folder')).toEqual({ PORT: '1' });
  });
});
