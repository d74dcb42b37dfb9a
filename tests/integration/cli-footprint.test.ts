import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI_PATH, cliEnvAgainst } from '../support/cli';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * What a CLI command costs: `bastion --help`'s time and `bastion backup list`'s peak memory
 * (goals: ≤ 300 ms and ≤ 120 MB). Both are printed; the time is not asserted, as it depends on
 * the machine, but the memory goal is: loading every feature and service (~175 MB) breaks it.
 */
const run = promisify(execFile);

/**
 * Runs the CLI in a child that records its own peak RSS (MB) on exit: the kernel's high-water mark
 * of the child's own memory (VmHWM). Not `process.resourceUsage().maxRSS`: Linux carries that
 * across exec from the forked copy of the parent, so it would report the jest worker's size.
 */
async function peakRss(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ mb: number; stdout: string }> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-rss-')), 'rss');
  // `node -e script -- bastion …`: process.argv is [node, 'bastion', …], as runCli expects.
  const script =
    `const fs = require('node:fs');` +
    `process.on('exit', () => fs.writeFileSync(${JSON.stringify(out)}, /VmHWM:\\s*(\\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]));` +
    `require(${JSON.stringify(CLI_PATH)}).runCli(process.argv);`;
  const { stdout } = await run(process.execPath, ['-e', script, '--', 'bastion', ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { mb: Number(fs.readFileSync(out, 'utf8')) / 1024, stdout };
}

describe('the CLI footprint', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('prints the time of `bastion --help` (median of 5)', async () => {
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const started = process.hrtime.bigint();
      await run(process.execPath, [CLI_PATH, '--help'], { encoding: 'utf8', timeout: 60_000 });
      if (i > 0) times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    times.sort((a, b) => a - b);
    process.stderr.write(`bastion --help: median ${times[2].toFixed(0)} ms (${times.map((ms) => ms.toFixed(0)).join(', ')})\n`);
  });

  it('prints the peak memory of `bastion backup list`, within 120 MB, far below what every service would take', async () => {
    const { mb, stdout } = await peakRss(['backup', 'list'], cliEnvAgainst(server, { BACKUP_DIR: server.config.backupDir! }));
    process.stderr.write(`bastion backup list: max RSS ${mb.toFixed(1)} MB\n`);
    expect(stdout).toMatch(/^no backups yet/);
    expect(mb).toBeLessThan(120);
  });
});
