import { useState } from 'preact/hooks';
import type { Session } from '../session';
import { ActionButton, ErrorText, secretOf, textOf, useSubmit } from '../ui';

interface Enrollment {
  readonly qrCodeSvg: string;
  readonly secret: string;
}

const ENROLL = 'mutation ConsoleEnrollTotp { enrollTotp { qrCodeSvg secret } }';
const CONFIRM = 'mutation ConsoleConfirmTotp($input: ConfirmTotpInput!) { confirmTotp(input: $input) { codes } }';

/** The QR code as an image (never markup in the page): an SVG in an <img> runs nothing. */
function qrImage(svg: string): string {
  return `data:image/svg+xml;base64,${btoa(svg)}`;
}

/**
 * Turns on two-factor authentication for the signed-in admin: scan the code, confirm with the
 * first code and the password, write down the recovery codes. The session then counts as
 * confirmed with the second factor (aal2), as the API makes it.
 */
export function EnrollFactor(props: {
  readonly session: Session;
  /** The factor is on: the codes are about to show (the session's token may say aal2 from now on). */
  readonly onConfirmed: () => void;
  /** The codes were saved. */
  readonly onDone: () => void;
}) {
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [codes, setCodes] = useState<readonly string[] | null>(null);
  const confirm = useSubmit(async (form) => {
    const { confirmTotp } = await props.session.run<{ confirmTotp: { codes: string[] } }>(CONFIRM, {
      input: { code: textOf(form, 'code'), currentPassword: secretOf(form, 'password') },
    });
    // The codes first: they are shown once, and must be even if the renewal below fails.
    props.onConfirmed();
    setCodes(confirmTotp.codes);
    // A token that says aal2 (the server already counts the session as confirmed); a failure here changes nothing.
    await props.session.renew().catch(() => undefined);
  });

  if (codes)
    return (
      <div class="enroll">
        <p>
          Two-factor authentication is on. Keep these recovery codes somewhere safe: each signs in once instead of a code, and they are
          shown only now.
        </p>
        <ul class="recovery-codes">
          {codes.map((code) => (
            <li>
              <code>{code}</code>
            </li>
          ))}
        </ul>
        <button type="button" class="primary" onClick={props.onDone}>
          I have saved them
        </button>
      </div>
    );
  if (!enrollment)
    return (
      <div class="enroll">
        <ActionButton
          label="Turn on two-factor authentication"
          kind="primary"
          run={async () => setEnrollment((await props.session.run<{ enrollTotp: Enrollment }>(ENROLL)).enrollTotp)}
        />
      </div>
    );
  return (
    <form class="enroll" aria-label="Confirm the authenticator" onSubmit={confirm.onSubmit}>
      <p>Scan this code with an authenticator app, or type the key by hand.</p>
      <img class="qr" src={qrImage(enrollment.qrCodeSvg)} alt="QR code of the authenticator key" width={180} height={180} />
      <p>
        Key: <code class="secret">{enrollment.secret}</code>
      </p>
      <label>
        Code shown by the app
        <input name="code" autocomplete="one-time-code" inputMode="numeric" required />
      </label>
      <label>
        Your password
        <input name="password" type="password" autocomplete="current-password" required />
      </label>
      <button type="submit" class="primary" disabled={confirm.busy}>
        Confirm
      </button>
      <ErrorText error={confirm.error} />
    </form>
  );
}
