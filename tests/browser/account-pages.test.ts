import type { Browser } from 'playwright-core';
import { describeInBrowser, foreignRequests, launchBrowser, openPage, screenshot } from '../support/browser';
import { SIGN_IN, emailedToken, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const ME = 'query { me { emailVerified } }';

describeInBrowser('account pages: the links in emails', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    // The links point at this server, as BASTION_PUBLIC_URL does when it is Bastion itself.
    [server, browser] = await Promise.all([startTestServer(), launchBrowser()]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** The last link emailed to `to`: the token travels in its fragment. */
  function emailedLink(to: string, action: string): string {
    const mail = server.logs.lines.filter((line) => line.mailTo === to && String(line.mailText).includes(`/${action}#token=`)).at(-1);
    const link = /https?:\/\/\S+/.exec(String(mail?.mailText))?.[0];
    if (!link) throw new Error(`no ${action} link emailed to ${to}`);
    return link;
  }

  it('confirms an email address from the link, taking the token off the address bar', async () => {
    const user = await makeUser(server);
    const token = await emailedToken(server, user.email, 'verify-email');
    const link = new URL(emailedLink(user.email, 'verify-email'));
    expect(link.search).toBe('');
    expect(link.hash).toBe(`#token=${token}`);
    const recorded = await openPage(browser, server, `/verify-email${link.hash}`);
    await recorded.page.getByText('Your email address is confirmed').waitFor();
    await screenshot(recorded, 'verify-email');
    expect(recorded.page.url()).toBe(`${server.origin}/verify-email`);
    expect(recorded.requests.filter((url) => url.includes(token))).toEqual([]);
    expect((await user.client.request<{ me: { emailVerified: boolean } }>(ME)).body.data?.me.emailVerified).toBe(true);
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });

  it('says in words when the link is used up or broken, and changes nothing', async () => {
    const user = await makeUser(server);
    const token = await emailedToken(server, user.email, 'verify-email');
    const recorded = await openPage(browser, server, `/verify-email#token=${token.slice(0, -2)}xx`);
    await recorded.page.getByRole('alert').waitFor();
    expect(await recorded.page.getByRole('alert').innerText()).toMatch(/link|token/i);
    expect((await user.client.request<{ me: { emailVerified: boolean } }>(ME)).body.data?.me.emailVerified).toBe(false);
    await recorded.page.goto('/verify-email');
    await recorded.page.getByText('This link has no token').waitFor();
    await recorded.close();
  });

  it('resets a password: the new one signs in, the old one and every session end', async () => {
    const user = await makeUser(server);
    await makeClient(server).request('mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }', {
      input: { email: user.email },
    });
    const token = await emailedToken(server, user.email, 'reset-password');
    const recorded = await openPage(browser, server, `/reset-password#token=${token}`);
    const { page } = recorded;
    const newPassword = 'amber-lantern-quietly-drifts-north';
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('The same again').fill('amber-lantern-quietly-drifts-nort');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('The two passwords differ').waitFor();
    await page.getByLabel('The same again').fill(newPassword);
    await screenshot(recorded, 'reset-password');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Your password is changed').waitFor();
    expect(page.url()).toBe(`${server.origin}/reset-password`);
    expect(codesOf(await user.client.request(ME))).toEqual(['UNAUTHENTICATED']);
    const old = await makeClient(server).request(SIGN_IN, { input: { email: user.email, password: user.password } });
    expect(codesOf(old)).toEqual(['INVALID_CREDENTIALS']);
    const fresh = await makeClient(server).request(SIGN_IN, { input: { email: user.email, password: newPassword } });
    expect(fresh.body.errors).toBeUndefined();
    expect(recorded.requests.filter((url) => url.includes(token))).toEqual([]);
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });

  it('refuses a weak new password with the server’s reason, and keeps the old one', async () => {
    const user = await makeUser(server);
    await makeClient(server).request('mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }', {
      input: { email: user.email },
    });
    const token = await emailedToken(server, user.email, 'reset-password');
    const recorded = await openPage(browser, server, `/reset-password#token=${token}`);
    const { page } = recorded;
    await page.getByLabel('New password', { exact: true }).fill('password');
    await page.getByLabel('The same again').fill('password');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toMatch(/BAD_USER_INPUT|WEAK_PASSWORD|password/i);
    const old = await makeClient(server).request(SIGN_IN, { input: { email: user.email, password: user.password } });
    expect(old.body.errors).toBeUndefined();
    await recorded.close();
  });
});

function codesOf(response: { body: { errors?: { extensions?: { code?: string } }[] } }): (string | undefined)[] {
  return (response.body.errors ?? []).map((error) => error.extensions?.code);
}
