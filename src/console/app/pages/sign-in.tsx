import { useState } from 'preact/hooks';
import { request } from '../api';
import { TOKEN_FIELDS, type Tokens } from '../session';
import { ErrorText, secretOf, textOf, useSubmit } from '../ui';

const SIGN_IN = `mutation ConsoleSignIn($input: SignInInput!) {
  signIn(input: $input) {
    __typename
    ... on AuthPayload { ${TOKEN_FIELDS} }
    ... on MfaChallenge { mfaToken expiresAt }
    ... on MfaEnrollmentRequired { ${TOKEN_FIELDS} }
  }
}`;
const VERIFY_MFA = `mutation ConsoleVerifyMfa($input: VerifyMfaInput!) { verifyMfa(input: $input) { ${TOKEN_FIELDS} } }`;

type SignInResult =
  | ({ readonly __typename: 'AuthPayload' } & Tokens)
  | { readonly __typename: 'MfaChallenge'; readonly mfaToken: string }
  | ({ readonly __typename: 'MfaEnrollmentRequired' } & Tokens);

/**
 * Email and password, then the second factor's code when the account has one. An account whose
 * roles need a factor it has not enrolled is signed in to enrol it (the console shows how).
 */
export function SignIn(props: { readonly onSignedIn: (tokens: Tokens) => Promise<void>; readonly notice: string | null }) {
  const [mfaToken, setMfaToken] = useState<string | null>(null);
  const submit = useSubmit(async (form) => {
    if (mfaToken) {
      const { verifyMfa } = await request<{ verifyMfa: Tokens }>(VERIFY_MFA, { input: { mfaToken, code: textOf(form, 'code') } });
      await props.onSignedIn(verifyMfa);
      return;
    }
    const { signIn } = await request<{ signIn: SignInResult }>(SIGN_IN, {
      input: { email: textOf(form, 'email'), password: secretOf(form, 'password') },
    });
    // A session that must enrol a factor first is still a session: the console offers the enrolment.
    if (signIn.__typename === 'MfaChallenge') setMfaToken(signIn.mfaToken);
    else await props.onSignedIn(signIn);
  });

  return (
    <main class="sign-in">
      <form onSubmit={submit.onSubmit} aria-label="Sign in">
        <h1>Bastion console</h1>
        {props.notice ? <p class="notice">{props.notice}</p> : null}
        {mfaToken ? (
          <label>
            Code from your authenticator app, or a recovery code
            <input name="code" autocomplete="one-time-code" inputMode="numeric" required autoFocus />
          </label>
        ) : (
          <>
            <label>
              Email
              <input name="email" type="email" autocomplete="username" required autoFocus />
            </label>
            <label>
              Password
              <input name="password" type="password" autocomplete="current-password" required />
            </label>
          </>
        )}
        <button type="submit" class="primary" disabled={submit.busy}>
          {mfaToken ? 'Confirm' : 'Sign in'}
        </button>
        <ErrorText error={submit.error} />
      </form>
    </main>
  );
}
