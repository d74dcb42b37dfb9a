import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/project';
import { TEST_KEYS } from './test-keys';
import type { TestServer } from './test-server';

/** The compiled CLI (npm test builds it). */
export const CLI_PATH = path.join(PROJECT_ROOT, 'dist', 'src', 'cli.js');

/**
 * The environment a CLI run against a test server gets: that server's database and the test keys,
 * and nothing of the test process's own (a DATABASE_URL there must not leak in). `env` adds or
 * overrides settings.
 */
export function cliEnvAgainst(server: Pick<TestServer, 'database'>, env: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: os.tmpdir(),
    NODE_ENV: 'test',
    DATABASE_URL: server.database.url,
    BASTION_ENCRYPTION_KEYS: `k1:${TEST_KEYS.k1.toString('base64')},k2:${TEST_KEYS.k2.toString('base64')}`,
    BASTION_ENCRYPTION_KEY_ID: 'k1',
    BASTION_BLIND_INDEX_KEY: TEST_KEYS.blindIndex.toString('base64'),
    ...env,
  };
}

/**
 * Runs the compiled `bastion` CLI against a test server's database, with the test keys,
 * asynchronously: the server runs in this process and must keep answering meanwhile.
 * Resolves with the exit code, stdout and stderr, whatever the code.
 */
export function runCliAgainst(
  server: Pick<TestServer, 'database'>,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [CLI_PATH, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: cliEnvAgainst(server, env),
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}
