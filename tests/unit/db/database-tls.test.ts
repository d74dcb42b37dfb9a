import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { ConfigError } from '../../../src/config';
import { databaseUrlFor } from '../../../src/db/database';
import { isLocalDatabase } from '../../../src/db/database-tls';
import { loadConfig } from '../../../src/settings';

const KEYS = {
  BASTION_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
  BASTION_BLIND_INDEX_KEY: Buffer.alloc(32, 2).toString('base64'),
  SMTP_URL: 'smtps://bastion:pw@mail.example.com:465',
};

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ NODE_ENV: 'production', ...KEYS, ...env }, '/srv/app');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('TLS to PostgreSQL', () => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-db-ca-'));
  const caFile = path.join(folder, 'ca.pem');
  fs.writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nnot parsed by Bastion, read by pg\n-----END CERTIFICATE-----\n');
  afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

  it('refuses to start in production with a remote DATABASE_URL without verified TLS, in one line', () => {
    for (const url of [
      'postgres://app:pw@db.internal:5432/bastion',
      'postgres://app:pw@db.internal:5432/bastion?sslmode=require',
      'postgres://app:pw@db.internal:5432/bastion?sslmode=no-verify',
      'postgres://app:pw@db.internal:5432/bastion?sslmode=verify-ca',
      'postgres://app:pw@10.0.0.7/bastion?ssl=true',
    ]) {
      const problems = problemsOf({ DATABASE_URL: url });
      expect({ url, problems }).toEqual({
        url,
        problems: [
          expect.stringMatching(/^DATABASE_URL: reaches (db\.internal|10\.0\.0\.7) (with sslmode=[a-z-]+|without TLS): in production/),
        ],
      });
      expect(problems[0]).toContain('sslmode=verify-full, or set BASTION_DATABASE_CA_FILE');
      expect(problems[0]).not.toContain('pw');
    }
    // The migration role's URL is held to the same rule.
    expect(
      problemsOf({
        DATABASE_URL: 'postgres://app:pw@db.internal/bastion?sslmode=verify-full',
        BASTION_MIGRATION_DATABASE_URL: 'postgres://owner:pw@db.internal/bastion',
      }),
    ).toEqual([expect.stringMatching(/^BASTION_MIGRATION_DATABASE_URL: reaches db\.internal without TLS/)]);
  });

  it('accepts verify-full, a CA file, loopback and Unix sockets; development accepts anything', () => {
    const accepted: Record<string, string>[] = [
      { DATABASE_URL: 'postgres://app:pw@db.internal:5432/bastion?sslmode=verify-full' },
      { DATABASE_URL: 'postgres://app:pw@db.internal:5432/bastion', BASTION_DATABASE_CA_FILE: caFile },
      { DATABASE_URL: 'postgres://app:pw@127.0.0.1:5432/bastion' },
      { DATABASE_URL: 'postgres://app:pw@localhost/bastion' },
      { DATABASE_URL: 'postgres://app:pw@[::1]:5432/bastion' },
      { DATABASE_URL: 'postgres://app@%2Fvar%2Frun%2Fpostgresql/bastion' },
      { DATABASE_URL: 'postgres:///bastion?host=/var/run/postgresql' },
    ];
    for (const env of accepted) expect({ env, problems: problemsOf(env) }).toEqual({ env, problems: [] });
    expect(loadConfig({ DATABASE_URL: 'postgres://app:pw@db.internal/bastion' }, '/srv/app').databaseUrl).toBe(
      'postgres://app:pw@db.internal/bastion',
    );
  });

  it('tells loopback and sockets from the network as pg does (a host parameter wins)', () => {
    expect(isLocalDatabase('postgres://u@127.0.0.2/db')).toBe(true);
    expect(isLocalDatabase('postgres://u@localhost.evil.example/db')).toBe(false);
    expect(isLocalDatabase('postgres://u@128.0.0.1/db')).toBe(false);
    expect(isLocalDatabase('postgres://u@localhost/db?host=db.internal')).toBe(false);
    expect(isLocalDatabase('postgres:///db')).toBe(false); // pg would take PGHOST, which may be anywhere
  });

  it('carries the CA file in the URL, so every connection made from it checks the certificate and the host name', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://app:pw@db.internal:5432/bastion', BASTION_DATABASE_CA_FILE: caFile }, '/srv/app');
    // The pool, LISTEN, backups and verification's scratch databases all start from this URL (or databaseUrlFor of it).
    for (const url of [config.databaseUrl!, databaseUrlFor(config.databaseUrl!, 'bastion_verify_1')]) {
      const { ssl, host } = new Client({ connectionString: url }) as unknown as { ssl: Record<string, unknown>; host: string };
      expect(host).toBe('db.internal');
      expect(ssl.ca).toBe(fs.readFileSync(caFile, 'utf8'));
      // Node's TLS defaults then check the chain against `ca` and pg passes the host for the name check.
      expect(ssl).not.toHaveProperty('rejectUnauthorized');
      expect(ssl).not.toHaveProperty('checkServerIdentity');
    }
  });

  it('refuses a CA file that the URL contradicts, in every environment', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env, '/srv/app');
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    expect(problems({ DATABASE_URL: 'postgres://app@db.internal/bastion?sslmode=require', BASTION_DATABASE_CA_FILE: caFile })).toEqual([
      'DATABASE_URL: says sslmode=require, but BASTION_DATABASE_CA_FILE asks for verify-full: drop one of them',
    ]);
    expect(
      problems({ DATABASE_URL: 'postgres://app@db.internal/bastion?sslrootcert=/etc/other.pem', BASTION_DATABASE_CA_FILE: caFile }),
    ).toEqual(['DATABASE_URL: names its own sslrootcert as well as BASTION_DATABASE_CA_FILE: keep one']);
  });
});
