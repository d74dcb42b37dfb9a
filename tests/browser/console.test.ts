import type { Browser } from 'playwright-core';
import { describeInBrowser, withServerAndBrowser, foreignRequests, openPage, screenshot, signInToConsole } from '../support/browser';
import { totpCode } from '../../src/mfa/totp';
import { eventually } from '../support/eventually';
import { TestAccount, makeUser } from '../support/factories';
import type { TestServer } from '../support/test-server';

describeInBrowser('console: sign-in, overview, explorer', () => {
  let server: TestServer;
  let browser: Browser;
  let admin: TestAccount;

  withServerAndBrowser({}, async (started) => {
    ({ server, browser } = started);
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
  });

  it('signs an admin in with the second factor and runs the self-audit on demand', async () => {
    const recorded = await openPage(browser, server, '/console/');
    await screenshot(recorded, 'sign-in');
    await signInToConsole(recorded, server, admin);
    const { page } = recorded;
    await page.getByRole('navigation', { name: 'Console' }).waitFor();
    await page.getByText('Last run: never').waitFor();
    await page.getByRole('button', { name: 'Run the self-audit now' }).click();
    await page.getByRole('status').filter({ hasText: /^Ran / }).waitFor();
    // Every check of the five measures is shown with its status and detail, by measure.
    expect(await page.locator('table.checks caption').allTextContents()).toEqual([
      'Encryption',
      'Access control',
      'Firewall',
      'Backups',
      'Security audits',
    ]);
    expect(await page.locator('table.checks tbody tr').count()).toBeGreaterThan(15);
    await page.getByRole('cell', { name: 'encryption.keys_configured', exact: true }).waitFor();
    await page.getByText(/Last run: .* \((success|failure)\)/).waitFor();
    await screenshot(recorded, 'overview');
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });

  it('keeps the tokens in memory only, and ends the session when the tab goes', async () => {
    const recorded = await openPage(browser, server, '/console/');
    await signInToConsole(recorded, server, admin);
    const { page } = recorded;
    await page.getByRole('navigation', { name: 'Console' }).waitFor();
    // A string, evaluated in the page: the test is compiled without the DOM's types.
    const stored = await page.evaluate<string>(
      'JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookies: document.cookie })',
    );
    expect(stored).toBe(JSON.stringify({ local: {}, session: {}, cookies: '' }));
    const before = await liveSessions(server, admin.id);
    await page.reload();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await eventually(async () => (await liveSessions(server, admin.id)) === before - 1);
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });

  it('keeps its token fresh while idle, so leaving still ends the session after the token’s lifetime', async () => {
    const recorded = await openPage(browser, server, '/console/', { fakeClock: true });
    await signInToConsole(recorded, server, admin);
    const { page } = recorded;
    await page.getByRole('navigation', { name: 'Console' }).waitFor();
    const before = await liveSessions(server, admin.id);
    // Sixteen idle minutes, on both clocks: the first access token (15 min) has expired by the server's.
    server.clock.advance(16 * 60_000);
    const refreshed = page.waitForResponse((response) => response.request().postData()?.includes('ConsoleRefresh') ?? false);
    await page.clock.fastForward('16:00');
    expect((await (await refreshed).json()).errors).toBeUndefined();
    await page.reload();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await eventually(async () => (await liveSessions(server, admin.id)) === before - 1);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });

  it('runs queries in the bundled explorer, offline', async () => {
    const recorded = await openPage(browser, server, '/console/');
    await signInToConsole(recorded, server, admin);
    const { page } = recorded;
    await page.getByRole('link', { name: 'Explorer' }).click();
    await page.locator('.graphiql-container').waitFor();
    // Once GraphiQL has the schema (introspection, allowed to an admin), the query runs and its answer shows.
    await page.locator('.graphiql-doc-explorer-title, .graphiql-editor-tool').first().waitFor();
    await eventually(async () => {
      await page.getByRole('button', { name: /Execute query/ }).click();
      return (await page.locator('.result-window').innerText()).includes(admin.email);
    });
    await screenshot(recorded, 'explorer');
    // Its dialogs too stay within the policy.
    await page.getByRole('button', { name: 'Open settings dialog' }).click();
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });

  it('gives an account without the admin role nothing beyond the sign-in form', async () => {
    const user = await makeUser(server, { mfa: true });
    const recorded = await openPage(browser, server, '/console/users');
    await signInToConsole(recorded, server, user);
    const { page } = recorded;
    await page.getByText('This account is not an administrator').waitFor();
    expect(await page.getByRole('navigation', { name: 'Console' }).count()).toBe(0);
    expect(await liveSessions(server, user.id)).toBe(1); // makeUser's own session: the console's was ended
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });
});

async function liveSessions(server: TestServer, userId: string): Promise<number> {
  const [row] = await server.bastion.database.dataSource.query<{ count: string }[]>(
    'SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL',
    [userId],
  );
  return Number(row.count);
}

describeInBrowser('console: an admin without a second factor', () => {
  let server: TestServer;
  let browser: Browser;

  withServerAndBrowser({ config: { mfaRequiredFor: 'admin' } }, (started) => {
    ({ server, browser } = started);
  });

  it('is refused admin actions until it turns the factor on in the console, then works at aal2', async () => {
    const admin = await makeUser(server, { roles: ['admin'] });
    const recorded = await openPage(browser, server, '/console/');
    await signInToConsole(recorded, server, admin);
    const { page } = recorded;
    await page.getByRole('navigation', { name: 'Console' }).waitFor();
    await page.getByRole('button', { name: 'Run the self-audit now' }).click();
    await page.getByRole('alert').filter({ hasText: 'MFA_REQUIRED' }).first().waitFor();

    await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
    const secret = (await page.locator('code.secret').innerText()).trim();
    await page.getByRole('img', { name: 'QR code of the authenticator key' }).waitFor();
    await page.getByLabel('Code shown by the app').fill(await totpCode({ secret, now: server.clock.now() }));
    await page.getByLabel('Your password').fill(admin.password);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('button', { name: 'I have saved them' }).waitFor();
    expect(await page.locator('.recovery-codes li').count()).toBe(10);
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await page.getByRole('button', { name: 'Turn on two-factor authentication' }).waitFor({ state: 'detached' });

    await page.getByRole('button', { name: 'Run the self-audit now' }).click();
    await page.getByRole('status').filter({ hasText: /^Ran / }).waitFor();
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });
});
