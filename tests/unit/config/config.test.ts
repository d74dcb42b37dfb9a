import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, readEnvironment } from '../../../src/config';

describe('loadConfig', () => {
  it('gives development defaults with nothing set', () => {
    const config = loadConfig({}, '/srv/app');
    expect(config).toMatchObject({ nodeEnv: 'development', port: 4000, host: '127.0.0.1', dataDir: '/srv/app/.bastion', logLevel: 'info', sandbox: true, introspection: 'everyone', migrateOnStart: true });
    expect(config.databaseUrl).toBeUndefined();
  });

  it('is frozen', () => {
    const config = loadConfig({}, '/srv/app');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('switches to safe defaults in production', () => {
    const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://u:p@db:5432/app' }, '/srv/app');
    expect(config).toMatchObject({ host: '0.0.0.0', sandbox: false, introspection: 'admins', logPretty: false, corsOrigins: [] });
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
    expect(loadConfig({ PORT: '0', BASTION_BODY_LIMIT: '1mb', BASTION_CORS_ORIGINS: 'https://admin.example.com' }, '/')).toMatchObject({ port: 0, bodyLimitBytes: 1024 * 1024, corsOrigins: ['https://admin.example.com'] });
    expect(() => loadConfig({ PORT: '70000' }, '/')).toThrow('PORT: must be between 0 and 65535 (got 70000)');
    expect(() => loadConfig({ BASTION_BODY_LIMIT: '1gb' }, '/')).toThrow(/BASTION_BODY_LIMIT/);
    expect(() => loadConfig({ BASTION_CORS_ORIGINS: 'https://admin.example.com/path' }, '/')).toThrow(/BASTION_CORS_ORIGINS/);
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
