import { useState } from 'preact/hooks';
import { ActionButton, Columns, ErrorText, Page, PageProps, Status, formOf, textOf, useCursorPages, useLoad, useSubmit, when } from '../ui';
import type { Session } from '../session';

interface User {
  readonly id: string;
  readonly email: string;
  readonly status: 'ACTIVE' | 'SUSPENDED';
  readonly roles: readonly string[];
  readonly mfaEnabled: boolean;
  readonly emailVerified: boolean;
  readonly createdAt: string;
}

interface UserPage {
  readonly totalCount: number;
  readonly pageInfo: { readonly endCursor: string | null; readonly hasNextPage: boolean };
  readonly edges: readonly { readonly node: User }[];
}

interface DeviceSession {
  readonly id: string;
  readonly userAgent: string | null;
  readonly ipAddress: string | null;
  readonly createdAt: string;
  readonly lastUsedAt: string;
  readonly aal: number;
  /** The session this console signs its requests with. */
  readonly current: boolean;
}

interface Filter {
  readonly email?: string;
  readonly role?: string;
  readonly status?: string;
}

const USER_FIELDS = 'id email status roles mfaEnabled emailVerified createdAt';
const USERS = `query ConsoleUsers($first: Int!, $after: String, $filter: UserFilter) {
  users(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { endCursor hasNextPage } edges { node { ${USER_FIELDS} } }
  }
}`;
const ROLE_NAMES = 'query ConsoleRoleNames { roles { name } }';
const USER_SESSIONS = `query ConsoleUserSessions($userId: ID!) {
  userSessions(userId: $userId) { id userAgent ipAddress createdAt lastUsedAt aal current }
}`;
const SET_STATUS = `mutation ConsoleSetUserStatus($input: SetUserStatusInput!) { setUserStatus(input: $input) { ${USER_FIELDS} } }`;
const ASSIGN_ROLE = `mutation ConsoleAssignRole($input: AssignRoleInput!) { assignRole(input: $input) { ${USER_FIELDS} } }`;
const UNASSIGN_ROLE = `mutation ConsoleUnassignRole($input: AssignRoleInput!) { unassignRole(input: $input) { ${USER_FIELDS} } }`;
const REVOKE_SESSIONS = `mutation ConsoleRevokeUserSessions($userId: ID!, $sessionId: ID) {
  adminRevokeSessions(userId: $userId, sessionId: $sessionId)
}`;

const PAGE_SIZE = 20;

/** Roles every account holds without being given them: never assigned or removed. */
const IMPLICIT_ROLES = ['anonymous', 'user'];

/** Accounts: find them, page through them, and manage one (status, roles, sessions) in a panel below the list. */
export function Users({ session }: PageProps) {
  const [filter, setFilter] = useState<Filter>({});
  const pages = useCursorPages();
  const [selected, setSelected] = useState<User | null>(null);
  const { after } = pages;
  const list = useLoad(
    () => session.run<{ users: UserPage }>(USERS, { first: PAGE_SIZE, after, filter }).then(({ users }) => users),
    JSON.stringify([filter, after]),
  );
  const roles = useLoad(() => session.run<{ roles: { name: string }[] }>(ROLE_NAMES).then((data) => data.roles.map((role) => role.name)));

  // Searching again reads the list again, even with the same conditions.
  const search = (next: Filter) => {
    setFilter(next);
    pages.reset();
    list.reload();
  };
  const changed = (user: User) => {
    setSelected(user);
    list.reload();
  };

  return (
    <Page
      title="Users"
      intro={
        'Every account, newest first. Manage one to suspend or reactivate it, change its roles, or end its sessions; ' +
        "each change is in force at the user's next request and is recorded in the audit log."
      }
    >
      <SearchForm roles={roles.data ?? []} onSearch={search} />
      <ErrorText error={list.error ?? roles.error} />
      {list.data ? (
        <UserTable
          page={list.data}
          self={session.claims.sub}
          selectedId={selected?.id ?? null}
          onManage={(user) => setSelected(user)}
          first={pages.page === 1}
          onPrevious={pages.previous}
          onNext={pages.next}
        />
      ) : list.loading ? (
        <p>Loading…</p>
      ) : null}
      {selected ? (
        <UserPanel
          key={selected.id}
          session={session}
          user={selected}
          roles={roles.data ?? []}
          onChange={changed}
          onClose={() => setSelected(null)}
        />
      ) : null}
    </Page>
  );
}

function SearchForm(props: { readonly roles: readonly string[]; readonly onSearch: (filter: Filter) => void }) {
  const submit = (event: Event) => {
    event.preventDefault();
    const form = formOf(event);
    const value = (name: string) => textOf(form, name) || undefined;
    props.onSearch({ email: value('email'), role: value('role'), status: value('status') });
  };
  return (
    <form class="inline search" aria-label="Find users" onSubmit={submit}>
      <label>
        Email
        <input name="email" type="search" autocomplete="off" aria-describedby="user-email-hint" />
      </label>
      <label>
        Role
        <select name="role">
          <option value="">Any role</option>
          {props.roles
            .filter((role) => !IMPLICIT_ROLES.includes(role))
            .map((role) => (
              <option value={role}>{role}</option>
            ))}
        </select>
      </label>
      <label>
        Status
        <select name="status">
          <option value="">Any status</option>
          <option value="ACTIVE">ACTIVE</option>
          <option value="SUSPENDED">SUSPENDED</option>
        </select>
      </label>
      <button type="submit" class="primary">
        Search
      </button>
      <p class="hint" id="user-email-hint">
        Email finds the whole address only: addresses are stored encrypted and looked up by a blind index (a keyed hash), so a part of one
        matches nothing. Case and surrounding spaces do not matter.
      </p>
    </form>
  );
}

function UserTable(props: {
  readonly page: UserPage;
  readonly self: string;
  readonly selectedId: string | null;
  readonly onManage: (user: User) => void;
  readonly first: boolean;
  readonly onPrevious: () => void;
  readonly onNext: (cursor: string) => void;
}) {
  const { page } = props;
  const { endCursor, hasNextPage } = page.pageInfo;
  return (
    <>
      <p class="count" role="status">
        {page.totalCount === 1 ? '1 user' : `${page.totalCount} users`} in all
      </p>
      <table class="users" aria-label="Users">
        <Columns names={['Email', 'Status', 'Roles', 'MFA', 'Email verified', 'Created']} actions />
        <tbody>
          {page.edges.length === 0 ? (
            <tr>
              <td colSpan={7}>No user matches.</td>
            </tr>
          ) : null}
          {page.edges.map(({ node: user }) => (
            <tr class={user.id === props.selectedId ? 'selected' : undefined}>
              <td>
                {user.email}
                {user.id === props.self ? ' (you)' : ''}
              </td>
              <td>
                <Status value={user.status} />
              </td>
              <td>{user.roles.join(', ')}</td>
              <td>{user.mfaEnabled ? 'on' : 'off'}</td>
              <td>{user.emailVerified ? 'yes' : 'no'}</td>
              <td>{when(user.createdAt)}</td>
              <td>
                <button type="button" class="plain" onClick={() => props.onManage(user)}>
                  Manage
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="pager">
        {props.first ? null : (
          <button type="button" class="plain" onClick={props.onPrevious}>
            Previous page
          </button>
        )}
        {hasNextPage && endCursor ? (
          <button type="button" class="plain" onClick={() => props.onNext(endCursor)}>
            Next page
          </button>
        ) : null}
      </div>
    </>
  );
}

/** One user's status, roles and sessions. */
function UserPanel(props: {
  readonly session: Session;
  readonly user: User;
  readonly roles: readonly string[];
  readonly onChange: (user: User) => void;
  readonly onClose: () => void;
}) {
  const { session, user } = props;
  const suspended = user.status === 'SUSPENDED';
  const setStatus = async (status: User['status']) => {
    const { setUserStatus } = await session.run<{ setUserStatus: User }>(SET_STATUS, { input: { userId: user.id, status } });
    props.onChange(setUserStatus);
  };
  return (
    <section class="panel" aria-label={`Manage ${user.email}`}>
      <div class="panel-head">
        <h2>{user.email}</h2>
        <button type="button" class="plain" onClick={props.onClose}>
          Close
        </button>
      </div>
      <p>
        Status: <Status value={user.status} />{' '}
        {suspended ? (
          <ActionButton label="Reactivate" kind="primary" run={() => setStatus('ACTIVE')} />
        ) : (
          <ActionButton
            label="Suspend"
            kind="danger"
            confirm={`Suspend ${user.email}? Every session of theirs ends at once, and they cannot sign in until reactivated.`}
            run={() => setStatus('SUSPENDED')}
          />
        )}
      </p>
      <UserRoles session={session} user={user} roles={props.roles} onChange={props.onChange} />
      <UserSessions session={session} user={user} />
    </section>
  );
}

function UserRoles(props: {
  readonly session: Session;
  readonly user: User;
  readonly roles: readonly string[];
  readonly onChange: (user: User) => void;
}) {
  const { session, user } = props;
  const held = user.roles.filter((role) => !IMPLICIT_ROLES.includes(role));
  const assignable = props.roles.filter((role) => !IMPLICIT_ROLES.includes(role) && !user.roles.includes(role));

  const assign = useSubmit(async (form) => {
    const role = textOf(form, 'role');
    if (!role) return;
    const { assignRole } = await session.run<{ assignRole: User }>(ASSIGN_ROLE, { input: { userId: user.id, role } });
    props.onChange(assignRole);
  });
  const unassign = async (role: string) => {
    const { unassignRole } = await session.run<{ unassignRole: User }>(UNASSIGN_ROLE, { input: { userId: user.id, role } });
    props.onChange(unassignRole);
  };

  return (
    <>
      <h3>Roles</h3>
      <p class="hint">Every account holds "user". A change is in force at the user's next request.</p>
      {held.length === 0 ? <p>No other role.</p> : null}
      <ul class="roles">
        {held.map((role) => (
          <li>
            <code>{role}</code>{' '}
            <ActionButton label={`Remove ${role}`} confirm={`Take the role "${role}" from ${user.email}?`} run={() => unassign(role)} />
          </li>
        ))}
      </ul>
      <form class="inline" aria-label="Assign a role" onSubmit={assign.onSubmit}>
        <label>
          Role to assign
          <select name="role" required>
            <option value="">Choose a role</option>
            {assignable.map((role) => (
              <option value={role}>{role}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary" disabled={assign.busy || assignable.length === 0}>
          {assign.busy ? 'Assign role…' : 'Assign role'}
        </button>
      </form>
      <ErrorText error={assign.error} />
    </>
  );
}

function UserSessions({ session, user }: { readonly session: Session; readonly user: User }) {
  // A suspension ends every session: the list is read again when the status changes.
  const sessions = useLoad(
    () => session.run<{ userSessions: DeviceSession[] }>(USER_SESSIONS, { userId: user.id }).then((data) => data.userSessions),
    `${user.id}:${user.status}`,
  );
  const list = sessions.data ?? [];
  // Ending the console's own session signs it out: it says so before, not after.
  const ownIncluded = list.some((device) => device.current);
  const revoke = async (sessionId: string | null, endsConsole: boolean) => {
    await session.run<{ adminRevokeSessions: number }>(REVOKE_SESSIONS, { userId: user.id, sessionId });
    // The console's own session ended on the server: back to sign-in at once, before a request with the dead token.
    if (endsConsole) session.endHere('This console’s session was revoked: sign in again.');
  };
  return (
    <>
      <h3>Sessions</h3>
      <ErrorText error={sessions.error} />
      <table class="sessions" aria-label={`Live sessions of ${user.email}`}>
        <Columns names={['Device (user agent)', 'IP address', 'Signed in', 'Last used', 'Assurance']} actions />
        <tbody>
          {sessions.data && list.length === 0 ? (
            <tr>
              <td colSpan={6}>No live session.</td>
            </tr>
          ) : null}
          {list.map((device) => (
            <tr>
              <td>
                {device.userAgent ?? 'unknown'}
                {device.current ? ' (this console)' : ''}
              </td>
              <td>{device.ipAddress ?? '—'}</td>
              <td>{when(device.createdAt)}</td>
              <td>{when(device.lastUsedAt)}</td>
              <td>{device.aal >= 2 ? 'aal2: second factor' : 'aal1: password only'}</td>
              <td>
                <ActionButton
                  label="Revoke"
                  kind="danger"
                  confirm={
                    device.current
                      ? 'End this session? It is the one this console is using: the console signs out at once.'
                      : 'End this session? That device is signed out at its next request.'
                  }
                  run={() => revoke(device.id, device.current)}
                  done={device.current ? undefined : sessions.reload}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length > 0 ? (
        <ActionButton
          label="Revoke all"
          kind="danger"
          confirm={
            ownIncluded
              ? `End every session of ${user.email}, this console's included? Each device is signed out at its next request, and the console at once.`
              : `End every session of ${user.email}? Each device is signed out at its next request.`
          }
          run={() => revoke(null, ownIncluded)}
          done={ownIncluded ? undefined : sessions.reload}
        />
      ) : null}
    </>
  );
}
