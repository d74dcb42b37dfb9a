import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { EmbeddedPostgres } from '../../src/db/embedded-postgres';
import { createLogger } from '../../src/logging';
import { LogCollector } from '../support/log-collector';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

async function canQuery(server: EmbeddedPostgres): Promise<boolean> {
  const client = new Client({ connectionString: server.urlFor('postgres') });
  await client.connect();
  try {
    return (await client.query('SELECT 1 AS one')).rows[0].one === 1;
  } finally {
    await client.end();
  }
}

describe('the embedded PostgreSQL when its state file is gone', () => {
  const scratch: string[] = [];
  const folder = (mode: number) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-embedded-'));
    fs.chmodSync(dir, mode);
    scratch.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a cluster inside the data folder whose password file was deleted, and says how to recover', async () => {
    const dataDir = path.join(folder(0o755), 'data');
    const logger = createLogger({ level: 'silent', pretty: false });
    const first = await EmbeddedPostgres.start({ dataDir, logger, disposable: true });
    expect(await canQuery(first)).toBe(true);
    await first.stop();
    fs.rmSync(path.join(dataDir, 'embedded-postgres.json'));
    await expect(EmbeddedPostgres.start({ dataDir, logger, disposable: true })).rejects.toThrow(
      /holds a PostgreSQL cluster but .*embedded-postgres\.json \(its password\) is missing/,
    );
  });

  it('as root, replaces the orphaned temp-folder cluster of an earlier checkout at the same path', async () => {
    // Only root runs PostgreSQL under another account and so ever needs the temp fallback.
    const closed = folder(0o700);
    const dataDir = path.join(closed, 'data');
    const logs = new LogCollector();
    const logger = createLogger({ level: 'info', pretty: false, destination: logs });
    const first = await EmbeddedPostgres.start({ dataDir, logger, disposable: true });
    const clusterDir = JSON.parse(fs.readFileSync(path.join(dataDir, 'embedded-postgres.json'), 'utf8')).clusterDir as string;
    if (!isRoot) {
      expect(clusterDir).toBe(path.join(dataDir, 'postgres'));
      await first.stop();
      return;
    }
    expect(clusterDir.startsWith(os.tmpdir())).toBe(true);
    // A fresh checkout at the same path: the data folder (and its state file) is gone, the server still runs.
    fs.rmSync(dataDir, { recursive: true, force: true });
    const second = await EmbeddedPostgres.start({ dataDir, logger, disposable: true });
    try {
      expect(await canQuery(second)).toBe(true);
      expect(
        logs.find((line) => line.msg === 'replacing an orphaned embedded PostgreSQL cluster left by an earlier checkout at this path'),
      ).toBeDefined();
    } finally {
      await second.stop();
      fs.rmSync(path.dirname(clusterDir), { recursive: true, force: true });
    }
  });
});
