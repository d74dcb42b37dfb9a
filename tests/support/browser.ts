import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { totpCode } from '../../src/mfa/totp';
import { PROJECT_ROOT } from '../../src/project';
import type { TestAccount } from './factories';
import type { TestServer } from './test-server';

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

export async function openPage(browser: Browser, server: Pick<TestServer, 'origin'>, path: string): Promise<RecordedPage> {
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
    // The code's time step is spent: the next sign-in in the same test needs the next one.
    server.clock.advance(30_000);
    await page.getByRole('button', { name: 'Confirm' }).click();
  }
}

/** Where the README's screenshots live: written only with CONSOLE_SCREENSHOTS=1, so a test run leaves the checkout as it was. */
const SCREENSHOTS = path.join(PROJECT_ROOT, 'docs', 'console');

export async function screenshot(recorded: RecordedPage, name: string): Promise<void> {
  if (process.env.CONSOLE_SCREENSHOTS !== '1') return;
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await recorded.page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: false });
}
