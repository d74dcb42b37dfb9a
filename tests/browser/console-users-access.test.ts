import type { Browser, Locator, Page } from 'playwright-core';
import { RecordedPage, describeInBrowser, foreignRequests, launchBrowser, openPage, screenshot, signInToConsole } from '../support/browser';
import { GraphQLClient, SIGN_IN, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const ME = 'query { me { id roles } }';
const POST = 'query Post($id: ID!) { post(id: $id) { id title } }';

describeInBrowser('console: users and access', () => {
  let server: TestServer;
  let browser: Browser;
  let admin: TestAccount;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startTestServer(), launchBrowser()]);
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Opens the console, signs the admin in, and goes to one of its pages by its link. */
  async function openConsole(link: 'Users' | 'Access'): Promise<RecordedPage> {
    const recorded = await openPage(browser, server, '/console/');
    await signInToConsole(recorded, server, admin);
    await recorded.page.getByRole('link', { name: link }).click();
    await recorded.page.getByRole('heading', { level: 1, name: link }).waitFor();
    return recorded;
  }

  /** Nothing left for another origin, no CSP violation, no console error. */
  async function finish(recorded: RecordedPage): Promise<void> {
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  }

  it('lists the real users and finds one by its exact email', async () => {
    const [first, second] = [await makeUser(server), await makeUser(server)];
    const total = await userCount(server);
    const recorded = await openConsole('Users');
    const { page } = recorded;
    for (const account of [admin, first, second]) await userRow(page, account.email).waitFor();
    await page.getByText(`${total} users in all`).waitFor();
    await expect(userRow(page, admin.email).locator('td').nth(3).innerText()).resolves.toBe('on'); // MFA

    // The whole address, in any case, finds the one account; a part of it finds nothing (a blind index).
    await search(page, `  ${first.email.toUpperCase()} `);
    await page.getByText('1 user in all').waitFor();
    expect(await page.getByRole('table', { name: 'Users' }).locator('tbody tr').count()).toBe(1);
    await userRow(page, first.email).waitFor();
    await search(page, first.email.split('@')[0]);
    await page.getByText('No user matches.').waitFor();
    await page.getByText('0 users in all').waitFor();

    // By role: the admin alone holds admin.
    const form = page.getByRole('form', { name: 'Find users' });
    await form.getByLabel('Email').fill('');
    await form.getByLabel('Role').selectOption('admin');
    await form.getByRole('button', { name: 'Search' }).click();
    await page.getByText('1 user in all').waitFor();
    await userRow(page, admin.email).waitFor();
    await finish(recorded);
  });

  it('pages through every user with "Next page" and back', async () => {
    const missing = Math.max(0, 23 - (await userCount(server)));
    await Promise.all(Array.from({ length: missing }, () => makeUser(server)));
    const total = await userCount(server);
    const recorded = await openConsole('Users');
    const { page } = recorded;
    const emails = page.getByRole('table', { name: 'Users' }).locator('tbody tr td:first-child');
    await page.getByText(`${total} users in all`).waitFor();
    await userRow(page, admin.email).waitFor({ state: 'detached' }); // the oldest account is not on the first page
    const first = await emails.allInnerTexts();
    expect(first).toHaveLength(20);
    await page.getByRole('button', { name: 'Next page' }).click();
    await userRow(page, admin.email).waitFor();
    const second = await emails.allInnerTexts();
    expect(second).toHaveLength(total - 20);
    expect(new Set([...first, ...second]).size).toBe(total);
    expect(await page.getByRole('button', { name: 'Next page' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await userRow(page, admin.email).waitFor({ state: 'detached' });
    expect(await emails.allInnerTexts()).toEqual(first);
    await finish(recorded);
  });

  it('suspends a user, whose next request then fails, and reactivates them so they sign in again', async () => {
    const user = await makeUser(server);
    expect((await user.client.request<{ me: { id: string } }>(ME)).body.data?.me.id).toBe(user.id);
    const recorded = await openConsole('Users');
    const { page } = recorded;
    const panel = await manage(page, user.email);
    await panel.getByRole('button', { name: 'Suspend' }).click();
    await panel.getByRole('button', { name: 'Reactivate' }).waitFor();
    await userRow(page, user.email).getByText('SUSPENDED').waitFor();

    const refused = await user.client.request(ME);
    expect(refused.body.data?.me ?? null).toBeNull();
    expect(codesOf(refused)).toEqual(['UNAUTHENTICATED']);
    expect(await signIn(server, user)).toBeNull();

    await panel.getByRole('button', { name: 'Reactivate' }).click();
    await panel.getByRole('button', { name: 'Suspend' }).waitFor();
    await userRow(page, user.email).getByText('ACTIVE').waitFor();
    const client = await signIn(server, user);
    expect((await client!.request<{ me: { id: string } }>(ME)).body.data?.me.id).toBe(user.id);
    await finish(recorded);
  });

  it('assigns a role and removes it, as the table and the user see it', async () => {
    const user = await makeUser(server);
    await adminRequest('mutation { createRole(input: { name: "support", description: "Answers tickets" }) { name } }');
    const recorded = await openConsole('Users');
    const { page } = recorded;
    const panel = await manage(page, user.email);
    await panel.getByLabel('Role to assign').selectOption('support');
    await panel.getByRole('button', { name: 'Assign role' }).click();
    await userRow(page, user.email).getByRole('cell', { name: 'support, user', exact: true }).waitFor();
    expect((await user.client.request<{ me: { roles: string[] } }>(ME)).body.data?.me.roles).toEqual(expect.arrayContaining(['support']));
    await screenshot(recorded, 'users');

    await panel.getByRole('button', { name: 'Remove support' }).click();
    await userRow(page, user.email).getByRole('cell', { name: 'user', exact: true }).waitFor();
    expect((await user.client.request<{ me: { roles: string[] } }>(ME)).body.data?.me.roles).not.toContain('support');
    await finish(recorded);
  });

  it("lists a user's sessions; revoking one stops its token, revoking all stops every one", async () => {
    const user = await makeUser(server);
    const phone = await signIn(server, user, 'Phone A (test)');
    const laptop = await signIn(server, user, 'Laptop B (test)');
    const recorded = await openConsole('Users');
    const { page } = recorded;
    const panel = await manage(page, user.email);
    const sessions = panel.getByRole('table', { name: `Live sessions of ${user.email}` });
    await sessions.getByRole('row').filter({ hasText: 'Laptop B (test)' }).waitFor();
    expect(await sessions.locator('tbody tr').count()).toBe(3); // sign-up's, the phone's and the laptop's
    await sessions.getByRole('row').filter({ hasText: 'Phone A (test)' }).getByText('127.0.0.1').waitFor();

    await sessions.getByRole('row').filter({ hasText: 'Phone A (test)' }).getByRole('button', { name: 'Revoke' }).click();
    await sessions.getByRole('row').filter({ hasText: 'Phone A (test)' }).waitFor({ state: 'detached' });
    expect(codesOf(await phone!.request(ME))).toEqual(['UNAUTHENTICATED']);
    expect((await laptop!.request<{ me: { id: string } }>(ME)).body.data?.me.id).toBe(user.id);

    await panel.getByRole('button', { name: 'Revoke all' }).click();
    await sessions.getByText('No live session.').waitFor();
    expect(codesOf(await laptop!.request(ME))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await user.client.request(ME))).toEqual(['UNAUTHENTICATED']);
    await finish(recorded);
  });

  it('shows the grants the server enforces, by model', async () => {
    const { permissionMatrix } = await adminRequest<{ permissionMatrix: unknown[] }>('query { permissionMatrix { id } }');
    const recorded = await openConsole('Access');
    const { page } = recorded;
    await page.locator('table.grants caption').first().waitFor();
    expect(await page.locator('table.grants caption').allTextContents()).toEqual(['Comment', 'Post', 'Profile']);
    expect(await page.locator('table.grants tbody tr').count()).toBe(permissionMatrix.length);
    // Anonymous viewers read published posts only; the fields column says "—" for every field.
    const anonymousRead = grantRow(page, 'Post', 'anonymous', 'READ');
    await expect(anonymousRead.locator('td').allInnerTexts()).resolves.toEqual(['anonymous', 'READ', 'ALL', '—', 'published', 'Revoke']);
    await grantRow(page, 'Profile', 'anonymous', 'READ').getByText('avatarUrl').waitFor();
    // The built-in roles, which cannot be deleted.
    for (const role of ['anonymous', 'user', 'admin']) {
      const row = page
        .getByRole('table', { name: 'Roles' })
        .getByRole('row')
        .filter({ has: page.getByRole('cell', { name: role, exact: true }) });
      await expect(row.locator('td').nth(2).innerText()).resolves.toBe('yes');
      expect(await row.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    }
    await finish(recorded);
  });

  it("grants a permission in the page and changes the user's next request; revoking takes it away", async () => {
    const [reader, writer] = [await makeUser(server), await makeUser(server)];
    const created = await writer.client.request<{ createPost: { id: string } }>(
      'mutation { createPost(input: { title: "Draft by the writer", published: false }) { id } }',
    );
    const postId = created.body.data!.createPost.id;
    const readPost = async () => (await reader.client.request<{ post: { title: string } | null }>(POST, { id: postId })).body;
    expect((await readPost()).data?.post ?? null).toBeNull();

    const recorded = await openConsole('Access');
    const { page } = recorded;
    // A custom role, made in the page…
    const createForm = page.getByRole('form', { name: 'Create a role' });
    await createForm.getByLabel('Name').fill('draft-readers');
    await createForm.getByLabel('Description').fill('Read every post, drafts included');
    await createForm.getByRole('button', { name: 'Create role' }).click();
    await page.getByText('Created the role draft-readers.').waitFor();
    await page.getByRole('table', { name: 'Roles' }).getByRole('cell', { name: 'draft-readers' }).waitFor();

    // …given to the reader on the Users page (the role alone grants nothing yet)…
    await page.getByRole('link', { name: 'Users' }).click();
    const panel = await manage(page, reader.email);
    await panel.getByLabel('Role to assign').selectOption('draft-readers');
    await panel.getByRole('button', { name: 'Assign role' }).click();
    await userRow(page, reader.email).getByRole('cell', { name: 'draft-readers, user', exact: true }).waitFor();
    expect((await readPost()).data?.post ?? null).toBeNull();

    // …then READ on every Post, granted on the Access page: the reader's next request sees the draft.
    await page.getByRole('link', { name: 'Access' }).click();
    const grantForm = page.getByRole('form', { name: 'Grant a permission' });
    await grantForm.getByLabel(/^Role/).selectOption('draft-readers');
    await grantForm.getByLabel('Model').selectOption('Post');
    await grantForm.getByLabel('Action').selectOption('READ');
    await grantForm.getByLabel('Scope').selectOption('ALL');
    await grantForm.getByRole('button', { name: 'Grant' }).click();
    await page.getByText('Granted READ (ALL) on Post to draft-readers.').waitFor();
    const grant = grantRow(page, 'Post', 'draft-readers', 'READ');
    await grant.waitFor();
    expect((await readPost()).data?.post?.title).toBe('Draft by the writer');
    await screenshot(recorded, 'access');

    // The same grant again is refused in words.
    await grantForm.getByRole('button', { name: 'Grant' }).click();
    await grantForm
      .getByRole('alert')
      .getByText(/An identical grant exists .*\(CONFLICT\)/)
      .waitFor();

    await grant.getByRole('button', { name: 'Revoke' }).click();
    await grant.waitFor({ state: 'detached' });
    expect((await readPost()).data?.post ?? null).toBeNull();

    // Deleting the role takes it from its members.
    await page
      .getByRole('table', { name: 'Roles' })
      .getByRole('row')
      .filter({ hasText: 'draft-readers' })
      .getByRole('button', { name: 'Delete' })
      .click();
    await page.getByRole('table', { name: 'Roles' }).getByRole('row').filter({ hasText: 'draft-readers' }).waitFor({ state: 'detached' });
    expect((await reader.client.request<{ me: { roles: string[] } }>(ME)).body.data?.me.roles).toEqual(['user']);
    await finish(recorded);
  });

  it('refuses to take admin from the only admin, and says why', async () => {
    const recorded = await openConsole('Users');
    const { page } = recorded;
    const panel = await manage(page, admin.email);
    await panel.getByRole('button', { name: 'Remove admin' }).click();
    await panel
      .getByRole('alert')
      .getByText('This is the last active admin: assign admin to someone else first (or use `bastion admin create`). (CONFLICT)')
      .waitFor();
    await userRow(page, admin.email)
      .getByRole('cell', { name: /\badmin\b/ })
      .waitFor();
    expect((await admin.client.request<{ me: { roles: string[] } }>(ME)).body.data?.me.roles).toContain('admin');
    await finish(recorded);
  });

  async function adminRequest<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const { body } = await admin.client.request<T>(query, variables);
    if (!body.data) throw new Error(`admin request failed: ${JSON.stringify(body.errors)}`);
    return body.data;
  }
});

/** The users table's row of one account. */
function userRow(page: Page, email: string): Locator {
  return page.getByRole('table', { name: 'Users' }).getByRole('row').filter({ hasText: email });
}

/** The row of one grant in its model's table. */
function grantRow(page: Page, model: string, role: string, action: string): Locator {
  return page
    .locator('table.grants')
    .filter({ has: page.locator('caption', { hasText: new RegExp(`^${model}$`) }) })
    .getByRole('row')
    .filter({ has: page.getByRole('cell', { name: role, exact: true }) })
    .filter({ has: page.getByRole('cell', { name: action, exact: true }) });
}

async function search(page: Page, email: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Find users' });
  await form.getByLabel('Email').fill(email);
  await form.getByRole('button', { name: 'Search' }).click();
}

/** Finds the account by email and opens its panel. */
async function manage(page: Page, email: string): Promise<Locator> {
  await search(page, email);
  await userRow(page, email).getByRole('button', { name: 'Manage' }).click();
  const panel = page.getByRole('region', { name: `Manage ${email}` });
  await panel.waitFor();
  return panel;
}

/** Signs in over the API (from a device named `userAgent`): a client with the new session's token, or null when refused. */
async function signIn(server: TestServer, account: TestAccount, userAgent?: string): Promise<GraphQLClient | null> {
  const headers = userAgent ? { 'user-agent': userAgent } : undefined;
  const { body } = await makeClient(server).request<{ signIn: { accessToken?: string } }>(
    SIGN_IN,
    { input: { email: account.email, password: account.password } },
    headers,
  );
  const token = body.data?.signIn.accessToken;
  return token ? makeClient(server, { authorization: `Bearer ${token}`, ...headers }) : null;
}

async function userCount(server: TestServer): Promise<number> {
  const [row] = await server.bastion.database.dataSource.query<{ count: string }[]>('SELECT count(*) FROM users');
  return Number(row.count);
}
