import type { Browser } from 'playwright-core';
import { describeInBrowser, withServerAndBrowser, foreignRequests, openPage, screenshot } from '../support/browser';
import { SIGN_IN, TestAccount, codesOf, emailedToken, makeClient, makeUser } from '../support/factories';
import type { TestServer } from '../support/test-server';

const ME = 'query { me { emailVerified } }';

describeInBrowser('account pages: the links in emails', () => {
  let server: TestServer;
  let browser: Browser;

  withServerAndBrowser({}, (started) => {
    ({ server, browser } = started);
  });

  /** Asks for a password-reset email for `user`, as the app would; the token it carries. */
  async function resetToken(user: TestAccount): Promise<string> {
    await makeClient(server).request('mutation($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) }', {
      input: { email: user.email },
    });
    return emailedToken(server, user.email, 'reset-password');
  }

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
    const broken = await openPage(browser, server, `/verify-email#token=${token.slice(0, -2)}xx`);
    await broken.page.getByRole('alert').waitFor();
    expect(await broken.page.getByRole('alert').innerText()).toBe(
      'This verification link is invalid or has expired: request a new one. (BAD_USER_INPUT)',
    );
    expect((await user.client.request<{ me: { emailVerified: boolean } }>(ME)).body.data?.me.emailVerified).toBe(false);
    await broken.page.goto('/verify-email');
    await broken.page.getByText('This link has no token').waitFor();
    expect(broken.problems).toEqual([]);
    await broken.close();

    // Used once, the same link again: refused, the first use stands.
    const first = await openPage(browser, server, `/verify-email#token=${token}`);
    await first.page.getByText('Your email address is confirmed').waitFor();
    await first.close();
    const again = await openPage(browser, server, `/verify-email#token=${token}`);
    await again.page.getByRole('alert').waitFor();
    expect(await again.page.getByRole('alert').innerText()).toMatch(/invalid or has expired.*\(BAD_USER_INPUT\)$/);
    expect((await user.client.request<{ me: { emailVerified: boolean } }>(ME)).body.data?.me.emailVerified).toBe(true);
    expect(foreignRequests(again, server)).toEqual([]);
    expect(again.problems).toEqual([]);
    await again.close();
  });

  it('resets a password: the new one signs in, the old one and every session end', async () => {
    const user = await makeUser(server);
    const token = await resetToken(user);
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
    const token = await resetToken(user);
    const recorded = await openPage(browser, server, `/reset-password#token=${token}`);
    const { page } = recorded;
    await page.getByLabel('New password', { exact: true }).fill('password');
    await page.getByLabel('The same again').fill('password');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('alert').waitFor();
    // The password policy's own reason, with its code; the form stays for another try.
    expect(await page.getByRole('alert').innerText()).toMatch(/\S.*\(BAD_USER_INPUT\)$/);
    await page.getByRole('button', { name: 'Change password' }).waitFor();
    const old = await makeClient(server).request(SIGN_IN, { input: { email: user.email, password: user.password } });
    expect(old.body.errors).toBeUndefined();
    expect(foreignRequests(recorded, server)).toEqual([]);
    expect(recorded.problems).toEqual([]);
    await recorded.close();
  });
});
