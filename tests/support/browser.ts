import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { totpCode } from '../../src/mfa/totp';
import { PROJECT_ROOT } from '../../src/project';
import type { TestAccount } from './factories';
import { TestServer, TestServerOptions, startTestServer } from './test-server';

/**
 * Browser tests drive the Debian `chromium` package through playwright-core (never a Playwright
 * browser download). CHROMIUM_PATH names another binary. Where no browser can be had the suites
 * skip with a loud message, except under CI, where a missing browser fails the run (.ci/run
 * installs it).
 */
export function chromiumPath(): string | null {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim() || null;
    } catch {
      // not on PATH
    }
  }
  return null;
}

/** `describe` when a browser is here; otherwise a loud skip, or a failure under CI. */
export function describeInBrowser(name: string, body: () => void): void {
  const found = chromiumPath();
  if (found) return describe(name, body);
  const message = `NO BROWSER: "${name}" needs Chromium (apt-get install -y chromium, or CHROMIUM_PATH).`;
  if (process.env.CI) throw new Error(`${message} CI must have one.`);
  console.warn(`\n\n*** ${message} These browser tests are SKIPPED. ***\n`);
  describe.skip(name, body);
}

/** Headless Chromium, as root without its sandbox, with nothing of its own going to the network. */
export async function launchBrowser(): Promise<Browser> {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return chromium.launch({
    executablePath: chromiumPath()!,
    headless: true,
    args: [
      ...(root ? ['--no-sandbox'] : []),
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/** A page with everything it did recorded: every request's URL, and every error it logged (CSP violations included). */
export interface RecordedPage {
  readonly page: Page;
  readonly context: BrowserContext;
  readonly requests: string[];
  readonly problems: string[];
  close(): Promise<void>;
}

/**
 * Opens `path` on the server in a fresh browser context, recording it. `fakeClock`: the page's
 * clock and timers are Playwright's, moved only by `page.clock` (an idle hour in no time).
 */
export async function openPage(
  browser: Browser,
  server: Pick<TestServer, 'origin'>,
  path: string,
  options: { readonly fakeClock?: boolean } = {},
): Promise<RecordedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: server.origin });
  const page = await context.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text().slice(0, 300)}`);
  });
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  // Destructive actions ask first: the tests say yes.
  page.on('dialog', (dialog) => void dialog.accept());
  if (options.fakeClock) await page.clock.install();
  await page.goto(path);
  return { page, context, requests, problems, close: () => context.close() };
}

/** The requests that left for another origin than the server's (there must be none). */
export function foreignRequests(recorded: RecordedPage, server: Pick<TestServer, 'origin'>): string[] {
  return recorded.requests.filter((url) => !url.startsWith(`${server.origin}/`) && !url.startsWith('data:'));
}

/** Signs in through the console's form: email, password, then the TOTP code the server's frozen clock expects. */
export async function signInToConsole(recorded: RecordedPage, server: Pick<TestServer, 'clock'>, account: TestAccount): Promise<void> {
  const { page } = recorded;
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (account.totpSecret) {
    const code = await totpCode({ secret: account.totpSecret, now: server.clock.now() });
    await page.getByLabel(/Code from your authenticator app/).fill(code);
    await page.getByRole('button', { name: 'Confirm' }).click();
    // Answered (the console, or the notice that sends a non-admin back): the code's time step is spent,
    // so the next sign-in of the same account needs the next step's code.
    await page.getByRole('navigation', { name: 'Console' }).or(page.locator('.notice, [role=alert]')).first().waitFor();
    server.clock.advance(30_000);
  }
}

/** Where the README's screenshots live: written only with CONSOLE_SCREENSHOTS=1, so a test run leaves the checkout as it was. */
const SCREENSHOTS = path.join(PROJECT_ROOT, 'docs', 'console');

export async function screenshot(recorded: RecordedPage, name: string): Promise<void> {
  if (process.env.CONSOLE_SCREENSHOTS !== '1') return;
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await recorded.page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

export interface Started {
  readonly server: TestServer;
  readonly browser: Browser;
}

/**
 * A suite's server and browser: both started before its tests (`ready` then gets them, to keep
 * them and make accounts), both closed after. A browser that fails to start does not leave the server running.
 */
export function withServerAndBrowser(options: TestServerOptions, ready: (started: Started) => void | Promise<void>): void {
  let started: Started | undefined;
  beforeAll(async () => {
    const [server, browser] = await Promise.allSettled([startTestServer(options), launchBrowser()]);
    if (server.status === 'rejected' || browser.status === 'rejected') {
      if (server.status === 'fulfilled') await server.value.close();
      if (browser.status === 'fulfilled') await browser.value.close();
      throw server.status === 'rejected' ? server.reason : (browser as PromiseRejectedResult).reason;
    }
    started = { server: server.value, browser: browser.value };
    await ready(started);
  });
  afterAll(async () => {
    await started?.browser.close();
    await started?.server.close();
  });
}

/** A page's test ends clean: nothing left for another origin, no CSP violation, no console error; then the page closes. */
export async function finish(recorded: RecordedPage, server: Pick<TestServer, 'origin'>): Promise<void> {
  expect(foreignRequests(recorded, server)).toEqual([]);
  expect(recorded.problems).toEqual([]);
  await recorded.close();
}
