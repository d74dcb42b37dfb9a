import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/project';
import { TEST_KEYS } from './test-keys';
import type { TestServer } from './test-server';

/**
 * Runs the compiled `bastion` CLI (npm test builds it) against a test server's database, with the
 * test keys, asynchronously: the server runs in this process and must keep answering meanwhile.
 * Resolves with the exit code and stdout, whatever the code.
 */
export function runCliAgainst(server: Pick<TestServer, 'database'>, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'src', 'cli.js'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      HOME: os.tmpdir(),
      NODE_ENV: 'test',
      DATABASE_URL: server.database.url,
      BASTION_ENCRYPTION_KEYS: `k1:${TEST_KEYS.k1.toString('base64')},k2:${TEST_KEYS.k2.toString('base64')}`,
      BASTION_ENCRYPTION_KEY_ID: 'k1',
      BASTION_BLIND_INDEX_KEY: TEST_KEYS.blindIndex.toString('base64'),
      BASTION_LOG_LEVEL: 'warn',
    },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}
