import './console.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Access } from './pages/access';
import { Audit } from './pages/audit';
import { Backups } from './pages/backups';
import { EnrollFactor } from './pages/enroll-factor';
import { Explorer } from './pages/explorer';
import { Firewall } from './pages/firewall';
import { Overview } from './pages/overview';
import { SignIn } from './pages/sign-in';
import { Users } from './pages/users';
import { Session, type Tokens } from './session';
import type { PageProps } from './ui';

/** The console's pages, by the path after /console/ ('' is the overview). */
const PAGES = [
  { path: '', title: 'Overview', page: Overview },
  { path: 'users', title: 'Users', page: Users },
  { path: 'access', title: 'Access', page: Access },
  { path: 'firewall', title: 'Firewall', page: Firewall },
  { path: 'audit', title: 'Audit log', page: Audit },
  { path: 'backups', title: 'Backups', page: Backups },
  { path: 'explorer', title: 'Explorer', page: Explorer },
] as const satisfies readonly { path: string; title: string; page: (props: PageProps) => unknown }[];

const BASE = '/console/';

function currentPath(): string {
  return location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length).replace(/\/$/, '') : '';
}

/** Follows a click on one of the console's own links without reloading (which would end the session). */
function navigate(event: MouseEvent, path: string, go: (path: string) => void): void {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  history.pushState(null, '', BASE + path);
  go(path);
}

function Shell({ session }: { readonly session: Session }) {
  const [path, setPath] = useState(currentPath);
  // Turning the factor on shows recovery codes once: the notice stays until they are saved, whatever the token says by then.
  const [enrolling, setEnrolling] = useState(false);
  useEffect(() => {
    const onPop = () => setPath(currentPath());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  const entry = PAGES.find((candidate) => candidate.path === path) ?? PAGES[0];
  useEffect(() => {
    document.title = `${entry.title} · Bastion console`;
  }, [entry]);
  const Current = entry.page;
  const { aal } = session.claims;
  return (
    <div class="shell">
      <nav aria-label="Console">
        <strong class="brand">Bastion</strong>
        {PAGES.map((candidate) => (
          <a
            href={BASE + candidate.path}
            aria-current={candidate === entry ? 'page' : undefined}
            onClick={(event) => navigate(event, candidate.path, setPath)}
          >
            {candidate.title}
          </a>
        ))}
        <button type="button" class="plain sign-out" onClick={() => void session.signOut().catch(() => undefined)}>
          Sign out
        </button>
      </nav>
      <main>
        {aal < 2 || enrolling ? (
          <div class="notice" role="status">
            <p>
              This session is not confirmed with a second factor. Where the server requires one of admins (BASTION_MFA_REQUIRED_FOR), it
              refuses their actions without it (MFA_REQUIRED); every admin should have one.
            </p>
            <EnrollFactor session={session} onConfirmed={() => setEnrolling(true)} onDone={() => setEnrolling(false)} />
          </div>
        ) : null}
        <Current session={session} />
      </main>
    </div>
  );
}

function Console() {
  const [session, setSession] = useState<Session | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const signedIn = async (tokens: Tokens) => {
    const next = new Session(tokens, (reason) => {
      setSession(null);
      setNotice(reason);
    });
    // The console is for admins: any other account is signed out again at once and sees nothing more.
    if (!next.isAdmin) {
      await next.signOut().catch(() => undefined);
      setNotice('This account is not an administrator: the console is for accounts with the admin role.');
      return;
    }
    setNotice(null);
    setSession(next);
  };

  return session ? <Shell session={session} /> : <SignIn onSignedIn={signedIn} notice={notice} />;
}

// A page restored from the back-forward cache holds a session it already ended as it left: start again.
addEventListener('pageshow', (event) => {
  if (event.persisted) location.reload();
});

render(<Console />, document.getElementById('console')!);
