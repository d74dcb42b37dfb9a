import './account.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { request } from './api';
import { ErrorText, secretOf, useSubmit } from './ui';

/**
 * The pages behind the links in Bastion's emails, when BASTION_PUBLIC_URL is this server:
 * /verify-email and /reset-password. The token arrives in the URL's fragment (never sent to any
 * server by the browser) or, from older links, its query; it is taken off the address bar at once
 * and sent only in the body of the GraphQL request that uses it.
 */

function takeToken(): string | null {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
  const fromQuery = new URLSearchParams(location.search).get('token');
  history.replaceState(null, '', location.pathname);
  return fromFragment ?? fromQuery;
}

const TOKEN = takeToken();

const MISSING = 'This link has no token. Open the link from the email again, or ask the app for a new email.';

function VerifyEmail() {
  const [state, setState] = useState<'working' | 'done' | 'failed'>('working');
  const [error, setError] = useState<unknown>(TOKEN ? null : new Error(MISSING));
  useEffect(() => {
    if (!TOKEN) return setState('failed');
    request<{ verifyEmail: boolean }>('mutation AccountVerifyEmail($input: VerifyEmailInput!) { verifyEmail(input: $input) }', {
      input: { token: TOKEN },
    }).then(
      () => setState('done'),
      (failure: unknown) => {
        setError(failure);
        setState('failed');
      },
    );
  }, []);
  return (
    <main class="account">
      <h1>Confirm your email address</h1>
      {state === 'working' ? <p role="status">Confirming…</p> : null}
      {state === 'done' ? <p role="status">Your email address is confirmed. You can go back to the app.</p> : null}
      <ErrorText error={error} />
    </main>
  );
}

function ResetPassword() {
  const [done, setDone] = useState(false);
  const submit = useSubmit(async (form) => {
    const newPassword = secretOf(form, 'password');
    if (newPassword !== secretOf(form, 'repeat')) throw new Error('The two passwords differ: type the same one twice.');
    await request('mutation AccountResetPassword($input: ResetPasswordInput!) { resetPassword(input: $input) }', {
      input: { token: TOKEN, newPassword },
    });
    setDone(true);
  });
  if (done)
    return (
      <main class="account">
        <h1>Password changed</h1>
        <p role="status">Your password is changed and every device was signed out. Sign in again in the app with the new password.</p>
      </main>
    );
  return (
    <main class="account">
      <form onSubmit={submit.onSubmit} aria-label="Choose a new password">
        <h1>Choose a new password</h1>
        <p>A long passphrase of several words you can remember is best.</p>
        <label>
          New password
          <input name="password" type="password" autocomplete="new-password" required disabled={!TOKEN} />
        </label>
        <label>
          The same again
          <input name="repeat" type="password" autocomplete="new-password" required disabled={!TOKEN} />
        </label>
        <button type="submit" class="primary" disabled={!TOKEN || submit.busy}>
          {submit.busy ? 'Changing…' : 'Change password'}
        </button>
        <ErrorText error={TOKEN ? submit.error : new Error(MISSING)} />
      </form>
    </main>
  );
}

function Account() {
  if (location.pathname === '/verify-email') return <VerifyEmail />;
  if (location.pathname === '/reset-password') return <ResetPassword />;
  return (
    <main class="account">
      <p>Nothing here.</p>
    </main>
  );
}

render(<Account />, document.getElementById('account')!);
