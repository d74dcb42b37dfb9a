import type { Browser, Locator, Page } from 'playwright-core';
import { RecordedPage, describeInBrowser, finish, openPage, screenshot, signInToConsole, withServerAndBrowser } from '../support/browser';
import { GraphQLClient, SIGN_IN, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import type { TestServer } from '../support/test-server';

const ME = 'query { me { id roles } }';
const POST = 'query Post($id: ID!) { post(id: $id) { id title } }';

describeInBrowser('console: users and access', () => {
  let server: TestServer;
  let browser: Browser;
  let admin: TestAccount;

  withServerAndBrowser({}, async (started) => {
    ({ server, browser } = started);
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
  });

  /** Opens the console, signs an admin in (the suite's, unless told), and goes to one of its pages by its link. */
  async function openConsole(link: 'Users' | 'Access', account: TestAccount = admin): Promise<RecordedPage> {
    const recorded = await openPage(browser, server, '/console/');
    await signInToConsole(recorded, server, account);
    await goTo(recorded.page, link);
    return recorded;
  }

  it('lists the real users and finds one by its exact email', async () => {
    const [first, second] = [await makeUser(server), await makeUser(server)];
    const total = await userCount(server);
    const recorded = await openConsole('Users');
    const { page } = recorded;
    for (const account of [admin, first, second]) await userRow(page, account.email).waitFor();
    await page.getByText(`${total} users in all`, { exact: true }).waitFor();
    await expect(userRow(page, admin.email).locator('td').nth(3).innerText()).resolves.toBe('on'); // MFA

    // The whole address, in any case, finds the one account; a part of it finds nothing (a blind index).
    await search(page, `  ${first.email.toUpperCase()} `);
    await page.getByText('1 user in all', { exact: true }).waitFor();
    expect(await page.getByRole('table', { name: 'Users' }).locator('tbody tr').count()).toBe(1);
    await userRow(page, first.email).waitFor();
    await search(page, first.email.split('@')[0]);
    await page.getByText('No user matches.').waitFor();
    await page.getByText('0 users in all', { exact: true }).waitFor();

    // By role: the admin alone holds admin.
    const form = page.getByRole('form', { name: 'Find users' });
    await form.getByLabel('Email').fill('');
    await form.getByLabel('Role').selectOption('admin');
    await form.getByRole('button', { name: 'Search' }).click();
    await page.getByText('1 user in all', { exact: true }).waitFor();
    await userRow(page, admin.email).waitFor();
    await finish(recorded, server);
  });

  it('pages through every user with "Next page" and back', async () => {
    // One sign-up after another: twenty at once queue for the server's four database connections, and on a
    // loaded machine some wait past the pool's timeout and are refused (SERVICE_UNAVAILABLE).
    for (let missing = 23 - (await userCount(server)); missing > 0; missing -= 1) await makeUser(server);
    const total = await userCount(server);
    const recorded = await openConsole('Users');
    const { page } = recorded;
    const emails = page.getByRole('table', { name: 'Users' }).locator('tbody tr td:first-child');
    await page.getByText(`${total} users in all`, { exact: true }).waitFor();
    await userRow(page, admin.email).waitFor({ state: 'detached' }); // the oldest account is not on the first page
    const first = await emails.allInnerTexts();
    expect(first).toHaveLength(20);
    await page.getByRole('button', { name: 'Next page' }).click();
    await userRow(page, admin.email).waitFor();
    const second = await emails.allInnerTexts();
    expect(second).toHaveLength(total - 20);
    expect(new Set([...first, ...second]).size).toBe(total);
    expect(await page.getByRole('button', { name: 'Next page' }).count()).toBe(0);
    // Back: the admin's row goes at once (a page being read shows no rows); the first page's newest row shows it came.
    await page.getByRole('button', { name: 'Previous page' }).click();
    await userRow(page, first[0]).waitFor();
    expect(await userRow(page, admin.email).count()).toBe(0);
    expect(await emails.allInnerTexts()).toEqual(first);
    await finish(recorded, server);
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
    await finish(recorded, server);
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
    await finish(recorded, server);
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
    await finish(recorded, server);
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
    await finish(recorded, server);
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
    await goTo(page, 'Users');
    const panel = await manage(page, reader.email);
    await panel.getByLabel('Role to assign').selectOption('draft-readers');
    await panel.getByRole('button', { name: 'Assign role' }).click();
    await userRow(page, reader.email).getByRole('cell', { name: 'draft-readers, user', exact: true }).waitFor();
    expect((await readPost()).data?.post ?? null).toBeNull();

    // …then READ on every Post, granted on the Access page: the reader's next request sees the draft.
    await goTo(page, 'Access');
    const grantForm = page.getByRole('form', { name: 'Grant a permission' });
    await grantForm.getByLabel(/^Role/).selectOption('draft-readers');
    await grantForm.getByLabel('Model').fill('Post');
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
    await finish(recorded, server);
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
    await finish(recorded, server);
  });

  it('grants on a model that holds no grant yet, typed by its name', async () => {
    const { permissionMatrix } = await adminRequest<{ permissionMatrix: (GrantInput & { id: string })[] }>(
      `query { permissionMatrix { id ${GRANT_FIELDS} } }`,
    );
    const comments = permissionMatrix.filter((grant) => grant.model === 'Comment');
    expect(comments.length).toBeGreaterThan(0);
    for (const { id } of comments) await adminRequest('mutation($id: ID!) { revokePermission(id: $id) }', { id });
    try {
      const recorded = await openConsole('Access');
      const { page } = recorded;
      await page.locator('table.grants caption').first().waitFor();
      expect(await page.locator('table.grants caption').allTextContents()).toEqual(['Post', 'Profile']);
      // The list offers the models with grants; Comment, with none left, is typed.
      expect(
        await page.locator('datalist#grant-models option').evaluateAll((options) => options.map((option) => option.getAttribute('value'))),
      ).toEqual(['Post', 'Profile']);
      const grantForm = page.getByRole('form', { name: 'Grant a permission' });
      await grantForm.getByLabel(/^Role/).selectOption('user');
      await grantForm.getByLabel('Action').selectOption('READ');
      await grantForm.getByLabel('Scope').selectOption('OWN');
      // A model is still required.
      await grantForm.getByRole('button', { name: 'Grant' }).click();
      expect(
        await grantForm
          .getByLabel('Model')
          .evaluate((input) => (input as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing),
      ).toBe(true);
      await grantForm.getByLabel('Model').fill('Comment');
      await grantForm.getByRole('button', { name: 'Grant' }).click();
      await page.getByText('Granted READ (OWN) on Comment to user.').waitFor();
      await grantRow(page, 'Comment', 'user', 'READ').waitFor();
      await finish(recorded, server);
    } finally {
      const { permissionMatrix: now } = await adminRequest<{ permissionMatrix: { id: string; model: string }[] }>(
        'query { permissionMatrix { id model } }',
      );
      for (const { id } of now.filter((grant) => grant.model === 'Comment'))
        await adminRequest('mutation($id: ID!) { revokePermission(id: $id) }', { id });
      for (const { id: _id, ...input } of comments)
        await adminRequest('mutation($input: GrantPermissionInput!) { grantPermission(input: $input) { id } }', { input });
    }
  });

  it("labels the console's own session, and says before ending it that the console signs out", async () => {
    const other = await makeUser(server, { roles: ['admin'], mfa: true });
    const recorded = await openConsole('Users', other);
    const { page } = recorded;
    const asked: string[] = [];
    page.on('dialog', (dialog) => asked.push(dialog.message()));
    let panel = await manage(page, other.email);
    let sessions = panel.getByRole('table', { name: `Live sessions of ${other.email}` });
    const own = sessions.getByRole('row').filter({ hasText: '(this console)' });
    await own.waitFor();
    expect(await sessions.locator('tbody tr').count()).toBe(2); // sign-up's and the console's
    expect(await own.count()).toBe(1);

    // Revoking it: asked first, then back at sign-in; the other session lives on.
    await own.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(asked).toEqual(['End this session? It is the one this console is using: the console signs out at once.']);
    expect((await other.client.request<{ me: { id: string } }>(ME)).body.data?.me.id).toBe(other.id);

    // "Revoke all" with the console's session among them says so too.
    await signInToConsole(recorded, server, other);
    await goTo(page, 'Users');
    panel = await manage(page, other.email);
    sessions = panel.getByRole('table', { name: `Live sessions of ${other.email}` });
    await sessions.getByRole('row').filter({ hasText: '(this console)' }).waitFor();
    await panel.getByRole('button', { name: 'Revoke all' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(asked[1]).toBe(
      `End every session of ${other.email}, this console's included? Each device is signed out at its next request, and the console at once.`,
    );
    expect(codesOf(await other.client.request(ME))).toEqual(['UNAUTHENTICATED']);
    await finish(recorded, server);
  });

  async function adminRequest<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const { body } = await admin.client.request<T>(query, variables);
    if (!body.data) throw new Error(`admin request failed: ${JSON.stringify(body.errors)}`);
    return body.data;
  }
});

const GRANT_FIELDS = 'role model action scope fields filter';

interface GrantInput {
  readonly role: string;
  readonly model: string;
  readonly action: string;
  readonly scope: string;
  readonly fields: string[] | null;
  readonly filter: string | null;
}

/** Goes to one of the console's pages by its link. */
async function goTo(page: Page, link: 'Users' | 'Access'): Promise<void> {
  await page.getByRole('link', { name: link }).click();
  await page.getByRole('heading', { level: 1, name: link }).waitFor();
}

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
