import type { Browser, Locator } from 'playwright-core';
import { CLI_ACTOR } from '../../src/audit/actor';
import { BackupStatus } from '../../src/backup/backup.entity';
import { FirewallAction } from '../../src/firewall/firewall-rule.entity';
import { RecordedPage, describeInBrowser, finish, openPage, screenshot, signInToConsole, withServerAndBrowser } from '../support/browser';
import { eventually } from '../support/eventually';
import { TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import type { TestServer } from '../support/test-server';

const SERVER_INFO = '{ serverInfo { name } }';
const RESET = 'mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }';

describeInBrowser('console: firewall, audit log, backups', () => {
  let server: TestServer;
  let browser: Browser;
  let admin: TestAccount;
  /** A client calling from `address`: the server believes X-Forwarded-For from loopback (TRUST_PROXY below). */
  const from = (address: string) => makeClient(server, { 'x-forwarded-for': address });
  const firewall = () => server.bastion.services.firewall;

  withServerAndBrowser(
    {
      config: {
        // The browser calls from 127.0.0.1 with no X-Forwarded-For; the tests' own clients speak for other addresses.
        trustProxy: ['127.0.0.1', '::1'],
        // Enforced, with room for the browser's requests, and a tight password_reset limit to hit on purpose.
        rateLimitsEnabled: true,
        rateLimitPerIp: { points: 5000, seconds: 60 },
        rateLimitPerUser: { points: 5000, seconds: 60 },
        rateLimitSignIn: { points: 100, seconds: 60 },
        rateLimitSignUp: { points: 100, seconds: 3600 },
        rateLimitVerifyMfa: { points: 100, seconds: 60 },
        rateLimitPasswordReset: { points: 1, seconds: 3600 },
      },
    },
    async (started) => {
      ({ server, browser } = started);
      admin = await makeUser(server, { roles: ['admin'], mfa: true });
    },
  );

  /** A signed-in console on `path` (e.g. firewall), its content shown. */
  async function consoleAt(path: string, heading: string): Promise<RecordedPage> {
    const recorded = await openPage(browser, server, `/console/${path}`);
    await signInToConsole(recorded, server, admin);
    await recorded.page.getByRole('heading', { name: heading, level: 1 }).waitFor();
    return recorded;
  }

  /** The rows of a table's body, each as its cells' text. */
  async function rowsOf(table: Locator): Promise<string[][]> {
    return table
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((row) => [...row.querySelectorAll('td')].map((cell) => (cell.textContent ?? '').trim())));
  }

  describe('firewall', () => {
    it('blocks an address from the page, so its requests are refused, and removes the rule again', async () => {
      const recorded = await consoleAt('firewall', 'Firewall');
      const { page } = recorded;
      const form = page.getByRole('form', { name: 'Add rule' });
      const rules = page.getByRole('table', { name: 'IP rules' });

      await form.getByLabel('Address or network').fill('203.0.113.7');
      await form.getByLabel('Action').selectOption('DENY');
      await form.getByLabel('Note').fill('seen scanning');
      await form.getByRole('button', { name: 'Add rule' }).click();
      const row = rules.getByRole('row').filter({ hasText: '203.0.113.7/32' });
      await row.waitFor();
      expect(await row.innerText()).toMatch(/DENY\s+seen scanning\s+never/);
      // In force at once: that address is refused before any GraphQL work; its neighbour is not.
      const blocked = await from('203.0.113.7').request(SERVER_INFO);
      expect(blocked.status).toBe(403);
      expect(codesOf(blocked)).toEqual(['IP_BLOCKED']);
      expect((await from('203.0.113.8').request(SERVER_INFO)).status).toBe(200);
      await screenshot(recorded, 'firewall');

      // An expiry is entered in this browser's local time and sent in UTC.
      await form.getByLabel('Address or network').fill('198.51.100.0/24');
      await form.getByLabel('Action').selectOption('ALLOW');
      await form.getByLabel(/Expires/).fill('2026-03-02T00:00');
      await form.getByRole('button', { name: 'Add rule' }).click();
      const expiring = rules.getByRole('row').filter({ hasText: '198.51.100.0/24' });
      await expiring.waitFor();
      const expected = await page.evaluate(() => new Date('2026-03-02T00:00').toISOString());
      const stored = (await firewall().list()).find((rule) => rule.cidr === '198.51.100.0/24');
      expect(stored?.expiresAt?.toISOString()).toBe(expected);
      expect(await form.getByLabel('Address or network').inputValue()).toBe(''); // the form starts afresh

      await row.getByRole('button', { name: 'Remove', exact: true }).click();
      await row.waitFor({ state: 'detached' });
      expect((await from('203.0.113.7').request(SERVER_INFO)).status).toBe(200);
      await expiring.getByRole('button', { name: 'Remove', exact: true }).click();
      await expiring.waitFor({ state: 'detached' });
      expect(await firewall().list()).toEqual([]);
      await finish(recorded, server);
    });

    it('refuses, in words, a rule that would block your own address, and adds nothing', async () => {
      const recorded = await consoleAt('firewall', 'Firewall');
      const { page } = recorded;
      const form = page.getByRole('form', { name: 'Add rule' });
      await form.getByLabel('Address or network').fill('127.0.0.1/32');
      await form.getByLabel('Action').selectOption('DENY');
      await form.getByRole('button', { name: 'Add rule' }).click();
      await form.getByRole('alert').filter({ hasText: 'This change would block your own address (127.0.0.1)' }).waitFor();
      await form.getByRole('button', { name: 'Add anyway' }).waitFor();
      expect(await firewall().list()).toEqual([]);
      expect(await page.getByRole('table', { name: 'IP rules' }).count()).toBe(0);
      expect((await makeClient(server).request(SERVER_INFO)).status).toBe(200);
      // Changing the form withdraws the offer: "Add anyway" only ever adds what was refused.
      await form.getByLabel('Address or network').fill('127.0.0.2/32');
      expect(await form.getByRole('button', { name: 'Add anyway' }).count()).toBe(0);
      await finish(recorded, server);
    });

    it('refuses, in words, an expiry that is not a complete date and time, and adds nothing', async () => {
      const recorded = await consoleAt('firewall', 'Firewall');
      const { page } = recorded;
      const form = page.getByRole('form', { name: 'Add rule' });
      await form.getByLabel('Address or network').fill('203.0.113.9');
      // A month typed, the rest left blank: the browser holds no value, and "never expires" is not what was meant.
      const expires = form.getByLabel(/Expires/);
      await expires.focus();
      await page.keyboard.type('03');
      expect(await expires.inputValue()).toBe('');
      expect(await expires.evaluate((input) => (input as unknown as { validity: { badInput: boolean } }).validity.badInput)).toBe(true);
      await form.getByRole('button', { name: 'Add rule' }).click();
      await form.getByRole('alert').filter({ hasText: 'Enter a complete date and time, or leave Expires empty.' }).waitFor();
      expect(await firewall().list()).toEqual([]);

      // Emptied, it means never.
      await expires.fill('');
      await form.getByRole('button', { name: 'Add rule' }).click();
      const row = page.getByRole('table', { name: 'IP rules' }).getByRole('row').filter({ hasText: '203.0.113.9/32' });
      await row.waitFor();
      expect(await row.innerText()).toMatch(/DENY\s+never/);
      expect(await form.getByRole('alert').count()).toBe(0);
      await row.getByRole('button', { name: 'Remove', exact: true }).click();
      await row.waitFor({ state: 'detached' });
      expect(await firewall().list()).toEqual([]);
      await finish(recorded, server);
    });

    it('removes a rule that would lock you out later only with "Remove anyway"', async () => {
      const in24h = new Date(server.clock.now().getTime() + 24 * 3600_000);
      // Added from the CLI (no lockout check), in an order that never blocks 127.0.0.1.
      const own = await firewall().add({ cidr: '127.0.0.1/32', action: FirewallAction.ALLOW, note: 'this machine' }, CLI_ACTOR);
      const expiringAllow = await firewall().add({ cidr: '127.0.0.0/24', action: FirewallAction.ALLOW, expiresAt: in24h }, CLI_ACTOR);
      const loopbackDeny = await firewall().add({ cidr: '127.0.0.0/8', action: FirewallAction.DENY }, CLI_ACTOR);
      try {
        const recorded = await consoleAt('firewall', 'Firewall');
        const { page } = recorded;
        const row = page.getByRole('table', { name: 'IP rules' }).getByRole('row').filter({ hasText: '127.0.0.1/32' });
        await row.getByRole('button', { name: 'Remove', exact: true }).click();
        await row.getByRole('alert').filter({ hasText: 'After this change your own address (127.0.0.1) would be blocked from' }).waitFor();
        expect((await firewall().list()).map((rule) => rule.id)).toContain(own.id);
        await row.getByRole('button', { name: 'Remove anyway' }).click();
        await row.waitFor({ state: 'detached' });
        expect((await firewall().list()).map((rule) => rule.id)).not.toContain(own.id);
        await finish(recorded, server);
      } finally {
        for (const rule of [loopbackDeny, expiringAllow, own])
          await firewall()
            .remove(rule.id, CLI_ACTOR)
            .catch(() => undefined);
      }
    });

    it('shows the rate limits in force and where their counters live', async () => {
      const recorded = await consoleAt('firewall', 'Firewall');
      const { page } = recorded;
      await page.getByText('Enforced. The counters live in PostgreSQL, shared by every instance.').waitFor();
      const table = page.getByRole('table', { name: 'Rate limits' });
      await table.locator('tbody tr').first().waitFor();
      const rows = await rowsOf(table);
      expect(rows.map(([name, , allows, setting]) => [name, allows, setting])).toEqual([
        ['per_ip', '5000 per 60 s', 'BASTION_RATE_LIMIT_IP'],
        ['per_user', '5000 per 60 s', 'BASTION_RATE_LIMIT_USER'],
        ['sign_in', '100 per 60 s', 'BASTION_RATE_LIMIT_SIGN_IN'],
        ['sign_up', '100 per 3600 s', 'BASTION_RATE_LIMIT_SIGN_UP'],
        ['verify_mfa', '100 per 60 s', 'BASTION_RATE_LIMIT_VERIFY_MFA'],
        ['password_reset', '1 per 3600 s', 'BASTION_RATE_LIMIT_PASSWORD_RESET'],
      ]);
      for (const [, description] of rows) expect(description.length).toBeGreaterThan(10);
      await finish(recorded, server);
    });

    it('lists the recent blocks and rate-limit hits, per address', async () => {
      await server.bastion.services.hits.flush(); // earlier windows are written: this test's hits make windows of their own
      const rule = await firewall().add({ cidr: '203.0.113.64/26', action: FirewallAction.DENY, note: 'test' }, CLI_ACTOR);
      try {
        for (let request = 0; request < 3; request += 1) expect((await from('203.0.113.99').request(SERVER_INFO)).status).toBe(403);
      } finally {
        await firewall().remove(rule.id, CLI_ACTOR);
      }
      const resetter = from('198.51.100.23');
      expect(codesOf(await resetter.request(RESET, { input: { email: 'nobody@example.com' } }))).toBeUndefined();
      expect(codesOf(await resetter.request(RESET, { input: { email: 'nobody@example.com' } }))).toEqual(['RATE_LIMITED']);
      // The timer writes each minute's hits; the test does not wait for it.
      await server.bastion.services.hits.flush();

      const recorded = await consoleAt('firewall', 'Firewall');
      const { page } = recorded;
      const table = page.getByRole('table', { name: 'Recent blocks' });
      await table.getByRole('row').filter({ hasText: '203.0.113.99' }).waitFor();
      const rows = await rowsOf(table);
      expect(rows.find((cells) => cells[4].includes('203.0.113.99'))).toEqual([
        expect.stringMatching(/UTC$/),
        'Blocked by an IP rule',
        '3',
        '1',
        '203.0.113.99: 3',
      ]);
      expect(rows.find((cells) => cells[4].includes('198.51.100.23'))).toEqual([
        expect.stringMatching(/UTC$/),
        'Over a rate limit',
        '1',
        '1',
        '198.51.100.23 (requestPasswordReset): 1',
      ]);
      await finish(recorded, server);
    });
  });

  describe('audit log', () => {
    const newest = async (limit: number, offset = 0, action?: string): Promise<{ id: string; action: string; hash: string }[]> =>
      server.bastion.database.dataSource.query(
        `SELECT id::text AS id, action, hash FROM audit_events ${action ? 'WHERE action = $3' : ''} ORDER BY audit_events.id DESC LIMIT $1 OFFSET $2`,
        action ? [limit, offset, action] : [limit, offset],
      );

    it('lists, pages and filters real events, verifies the chain, and shows its head', async () => {
      await server.bastion.services.hits.flush(); // nothing written behind the test's back
      // Enough events for two pages of 20, and a few of one action to filter by.
      for (let account = 0; account < 3; account += 1) await makeUser(server);
      const recorded = await consoleAt('audit', 'Audit log');
      const { page } = recorded;
      const table = page.getByRole('table', { name: 'Events' });
      await table.locator('tbody tr').first().waitFor();

      const firstPage = await rowsOf(table);
      expect(firstPage.map((cells) => cells[0])).toEqual((await newest(20)).map((event) => event.id));
      expect(firstPage.map((cells) => cells[2])).toEqual((await newest(20)).map((event) => event.action));
      // The console's own sign-in (its second factor) is there, with its address and its metadata as JSON.
      const signIn = firstPage.find((cells) => cells[2] === 'mfa_verified' && cells[4] === admin.id);
      expect(signIn?.[3]).toBe('success');
      expect(signIn?.[5]).toMatch(/^session [0-9a-f-]{36}$/);
      expect(signIn?.[6]).toBe('127.0.0.1');
      expect(() => JSON.parse(signIn![7]) as unknown).not.toThrow();

      // The head is the newest event.
      const [head] = await newest(1);
      await page.locator('.head-id').filter({ hasText: head.id }).waitFor();
      expect(await page.locator('.head-hash').innerText()).toBe(head.hash);
      expect(firstPage[0][0]).toBe(head.id);
      await page.getByText(`bastion audit log verify --head ${head.id}:${head.hash}`).waitFor();
      await screenshot(recorded, 'audit');

      // Pages follow pageInfo.endCursor, and lead back.
      await page.getByRole('button', { name: 'Next page' }).click();
      await page.getByText('Page 2').waitFor();
      await table.locator('tbody tr td').first().filter({ hasNotText: firstPage[0][0] }).waitFor();
      const secondPage = await rowsOf(table);
      expect(secondPage.map((cells) => cells[0])).toEqual((await newest(20, 20)).map((event) => event.id));
      await page.getByRole('button', { name: 'Previous page' }).click();
      await page.getByText('Page 1').waitFor();
      await table.locator('tbody tr td').first().filter({ hasText: firstPage[0][0] }).waitFor();

      // Filtered by action: only those events.
      const filter = page.getByRole('form', { name: 'Filter events' });
      await filter.getByLabel('Action').fill('user_signed_up');
      await filter.getByRole('button', { name: 'Apply filters' }).click();
      const signedUp = (await newest(20, 0, 'user_signed_up')).map((event) => event.id);
      expect(signedUp.length).toBeGreaterThanOrEqual(4);
      // The unfiltered page holds sign-ups too, and as many rows or more: only the filtered answer's exact rows prove it came.
      const filtered = signedUp.map((id) => [id, 'user_signed_up']);
      await eventually(async () => JSON.stringify((await rowsOf(table)).map((cells) => [cells[0], cells[2]])) === JSON.stringify(filtered));
      expect(await page.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);

      // A filter nothing matches says so.
      await filter.getByLabel('Outcome').selectOption('denied');
      await filter.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByText('No events match.').waitFor();
      await filter.getByRole('button', { name: 'Clear filters' }).click();
      await expectRowCount(table, 20);

      // The whole chain, re-checked.
      const [{ count }] = await server.bastion.database.dataSource.query<{ count: string }[]>('SELECT count(*) FROM audit_events');
      await page.getByRole('button', { name: 'Verify the chain' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: `${count} events checked, chain intact.` })
        .waitFor();
      await finish(recorded, server);
    });
  });

  describe('backups', () => {
    it('creates and verifies a backup in the page, and says restoring is CLI-only', async () => {
      const recorded = await consoleAt('backups', 'Backups');
      const { page } = recorded;
      await page.getByText('No backups yet.').waitFor();
      const note = page.locator('.restore-note');
      expect(await note.innerText()).toMatch(/Restoring is done on the command line only/);
      expect(await note.innerText()).toContain('bastion backup restore <id>');

      await page.getByRole('button', { name: 'Create backup' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: /is complete: \d+ tables, [\d,]+ rows/ })
        .waitFor({ timeout: 60_000 });
      const [backup] = await server.bastion.services.backups.list();
      expect(backup.status).toBe(BackupStatus.COMPLETE);
      const row = page.getByRole('table', { name: 'Backups' }).getByRole('row').filter({ hasText: backup.id });
      await row.getByText('COMPLETE', { exact: true }).waitFor();
      expect(await row.innerText()).toContain('k1');

      await row.getByRole('button', { name: 'Verify' }).click();
      await row.getByText('VERIFIED', { exact: true }).waitFor({ timeout: 60_000 });
      await page
        .getByRole('status')
        .filter({ hasText: `Backup ${backup.id} is verified` })
        .waitFor();
      const [verified] = await server.bastion.services.backups.list();
      expect(verified.status).toBe(BackupStatus.VERIFIED);
      expect(verified.verifiedAt).not.toBeNull();
      expect(await row.innerText()).toContain(verified.verification!);
      await screenshot(recorded, 'backups');
      await finish(recorded, server);
    });
  });
});

/** Waits until a table shows exactly `count` rows (a page replaces its rows once the next answer comes). */
async function expectRowCount(table: Locator, count: number): Promise<void> {
  await eventually(async () => (await table.locator('tbody tr').count()) === count);
}
