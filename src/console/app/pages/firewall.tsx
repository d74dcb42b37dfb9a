import { useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { ActionButton, ErrorText, Page, PageProps, Status, localToIso, textOf, useLoad, when } from '../ui';

type RuleAction = 'ALLOW' | 'DENY';

interface FirewallRule {
  readonly id: string;
  readonly cidr: string;
  readonly action: RuleAction;
  readonly note: string | null;
  readonly expiresAt: string | null;
  readonly createdAt: string;
}

interface RulesResult {
  readonly firewallRules: readonly FirewallRule[];
  readonly serverInfo: { readonly serverTime: string };
}

interface RateLimit {
  readonly name: string;
  readonly description: string;
  readonly limit: number;
  readonly windowSeconds: number;
  readonly setting: string;
}

interface RateLimitSettings {
  readonly enabled: boolean;
  readonly store: string;
  readonly limits: readonly RateLimit[];
}

type HitKind = 'ip_blocked' | 'rate_limited';

/** An aggregated audit row: one kind's hits in one window (src/audit/aggregated-hits.ts, windowMetadata). */
interface HitWindowEvent {
  readonly id: string;
  readonly at: string;
  readonly action: HitKind;
  readonly metadata: {
    readonly hits?: number;
    readonly subjects?: number;
    readonly top?: readonly { readonly subject: string; readonly hits: number }[];
  };
}

interface HitEvents {
  readonly edges: readonly { readonly node: HitWindowEvent }[];
}

const RULES = `query ConsoleFirewallRules {
  firewallRules { id cidr action note expiresAt createdAt }
  serverInfo { serverTime }
}`;
const ADD_RULE = `mutation ConsoleAddFirewallRule($input: AddFirewallRuleInput!) {
  addFirewallRule(input: $input) { id }
}`;
const REMOVE_RULE = `mutation ConsoleRemoveFirewallRule($id: ID!, $confirmLockout: Boolean!) {
  removeFirewallRule(id: $id, confirmLockout: $confirmLockout)
}`;
const RATE_LIMITS = `query ConsoleRateLimits {
  rateLimits { enabled store limits { name description limit windowSeconds setting } }
}`;
const HIT_FIELDS = 'edges { node { id at action metadata } }';
const RECENT_BLOCKS = `query ConsoleRecentBlocks {
  blocked: auditEvents(first: 20, filter: { action: "ip_blocked" }) { ${HIT_FIELDS} }
  limited: auditEvents(first: 20, filter: { action: "rate_limited" }) { ${HIT_FIELDS} }
}`;

/** The server refuses a change that would block the caller's own address until it is confirmed (confirmLockout). */
function isLockout(error: unknown): boolean {
  return error instanceof ApiError && error.code === 'BAD_USER_INPUT' && error.message.includes('confirmLockout');
}

/** IP rules, the rate limits in force, and the blocks of the last windows. */
export function Firewall({ session }: PageProps) {
  return (
    <Page
      title="Firewall"
      intro={
        'IP rules decide which client addresses may reach the API: the rule with the most specific matching network wins, ' +
        'and FIREWALL_DEFAULT applies when none matches. Changes are in force at the next request on every instance.'
      }
    >
      <Rules session={session} />
      <RateLimits session={session} />
      <RecentBlocks session={session} />
    </Page>
  );
}

function Rules({ session }: PageProps) {
  const rules = useLoad(() => session.run<RulesResult>(RULES));
  const now = rules.data ? new Date(rules.data.serverInfo.serverTime).getTime() : Date.now();
  return (
    <section>
      <h2 id="firewall-rules">IP rules</h2>
      <ErrorText error={rules.error} />
      {rules.data && rules.data.firewallRules.length === 0 ? <p>No IP rules: FIREWALL_DEFAULT decides for every address.</p> : null}
      {rules.data && rules.data.firewallRules.length > 0 ? (
        <table aria-labelledby="firewall-rules">
          <thead>
            <tr>
              <th>Network</th>
              <th>Action</th>
              <th>Note</th>
              <th>Expires</th>
              <th>Added</th>
              <th>Change</th>
            </tr>
          </thead>
          <tbody>
            {rules.data.firewallRules.map((rule) => (
              <RuleRow key={rule.id} session={session} rule={rule} now={now} removed={rules.reload} />
            ))}
          </tbody>
        </table>
      ) : null}
      <AddRule session={session} added={rules.reload} />
    </section>
  );
}

function RuleRow(props: {
  readonly session: PageProps['session'];
  readonly rule: FirewallRule;
  readonly now: number;
  readonly removed: () => void;
}) {
  const { rule } = props;
  const expired = rule.expiresAt !== null && new Date(rule.expiresAt).getTime() <= props.now;
  return (
    <tr>
      <td>
        <code>{rule.cidr}</code>
      </td>
      <td>
        <Status value={rule.action} />
      </td>
      <td>{rule.note ?? ''}</td>
      <td>{rule.expiresAt ? `${when(rule.expiresAt)}${expired ? ' (expired)' : ''}` : 'never'}</td>
      <td>{when(rule.createdAt)}</td>
      <td>
        <RemoveRule session={props.session} rule={rule} removed={props.removed} />
      </td>
    </tr>
  );
}

/** "Remove"; when the server says that would lock this admin out, its message and a second button that confirms. */
function RemoveRule(props: { readonly session: PageProps['session']; readonly rule: FirewallRule; readonly removed: () => void }) {
  const [lockout, setLockout] = useState(false);
  const remove = (confirmLockout: boolean) =>
    props.session.run<{ removeFirewallRule: boolean }>(REMOVE_RULE, { id: props.rule.id, confirmLockout });
  return (
    <>
      <ActionButton
        label="Remove"
        kind="danger"
        run={async () => {
          setLockout(false);
          try {
            await remove(false);
          } catch (failure) {
            setLockout(isLockout(failure));
            throw failure;
          }
        }}
        done={props.removed}
      />
      {lockout ? <ActionButton label="Remove anyway" kind="danger" run={() => remove(true)} done={props.removed} /> : null}
    </>
  );
}

function AddRule(props: { readonly session: PageProps['session']; readonly added: () => void }) {
  const form = useRef<HTMLFormElement>(null);
  const [expires, setExpires] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [lockout, setLockout] = useState(false);

  const add = async (confirmLockout: boolean) => {
    if (!form.current) return;
    const fields = new FormData(form.current);
    const input = {
      cidr: textOf(fields, 'cidr'),
      action: textOf(fields, 'action') as RuleAction,
      note: textOf(fields, 'note') || null,
      expiresAt: localToIso(expires) ?? null,
      confirmLockout,
    };
    setBusy(true);
    setError(null);
    try {
      await props.session.run<{ addFirewallRule: { id: string } }>(ADD_RULE, { input });
      form.current.reset();
      setExpires('');
      setLockout(false);
      props.added();
    } catch (failure) {
      setError(failure);
      setLockout(isLockout(failure));
    } finally {
      setBusy(false);
    }
  };

  // Any change to the form withdraws an earlier confirmation offer: "Add anyway" adds what was refused, nothing else.
  const changed = () => {
    if (!lockout) return;
    setLockout(false);
    setError(null);
  };

  return (
    <form
      ref={form}
      class="inline"
      aria-label="Add rule"
      onInput={changed}
      onSubmit={(event) => {
        event.preventDefault();
        void add(false);
      }}
    >
      <label>
        Address or network
        <input name="cidr" required placeholder="203.0.113.7 or 203.0.113.0/24" autocomplete="off" />
      </label>
      <label>
        Action
        <select name="action">
          <option value="DENY">DENY</option>
          <option value="ALLOW">ALLOW</option>
        </select>
      </label>
      <label>
        Note
        <input name="note" maxLength={200} autocomplete="off" />
      </label>
      <label>
        Expires (your local time; empty for never)
        <input name="expiresAt" type="datetime-local" value={expires} onInput={(event) => setExpires(event.currentTarget.value)} />
      </label>
      {expires && localToIso(expires) ? <span class="hint">That is {when(localToIso(expires))}.</span> : null}
      <button type="submit" class="primary" disabled={busy}>
        {busy ? 'Add rule…' : 'Add rule'}
      </button>
      {lockout ? (
        <button type="button" class="danger" disabled={busy} onClick={() => void add(true)}>
          Add anyway
        </button>
      ) : null}
      <ErrorText error={error} />
    </form>
  );
}

function storeName(store: string): string {
  if (store === 'postgres') return 'PostgreSQL';
  if (store === 'redis') return 'Redis';
  return store;
}

function RateLimits({ session }: PageProps) {
  const settings = useLoad(() => session.run<{ rateLimits: RateLimitSettings }>(RATE_LIMITS).then(({ rateLimits }) => rateLimits));
  const data = settings.data;
  return (
    <section>
      <h2 id="rate-limits">Rate limits</h2>
      <ErrorText error={settings.error} />
      {data ? (
        <>
          <p class="rate-limits-state">
            {data.enabled
              ? `Enforced. The counters live in ${storeName(data.store)}, shared by every instance.`
              : `Not enforced: BASTION_RATE_LIMITS is off, so none of these limits applies (the counters would live in ${storeName(data.store)}).`}
          </p>
          <table aria-labelledby="rate-limits">
            <thead>
              <tr>
                <th>Limit</th>
                <th>What it counts</th>
                <th>Allows</th>
                <th>Setting</th>
              </tr>
            </thead>
            <tbody>
              {data.limits.map((limit) => (
                <tr key={limit.name}>
                  <td>
                    <code>{limit.name}</code>
                  </td>
                  <td>{limit.description}</td>
                  <td class="allows">
                    {limit.limit} per {limit.windowSeconds} s
                  </td>
                  <td>
                    <code>{limit.setting}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}

const HIT_KINDS: Record<HitKind, string> = { ip_blocked: 'Blocked by an IP rule', rate_limited: 'Over a rate limit' };

/** A rate-limit subject is "<bucket> <key>" (ip 203.0.113.7, signIn 203.0.113.7, user <id>); a block's is the address. */
function subjectLabel(kind: HitKind, subject: string): string {
  if (kind !== 'rate_limited') return subject;
  const space = subject.indexOf(' ');
  return space < 0 ? subject : `${subject.slice(space + 1)} (${subject.slice(0, space)})`;
}

function RecentBlocks({ session }: PageProps) {
  const recent = useLoad(() =>
    session
      .run<{ blocked: HitEvents; limited: HitEvents }>(RECENT_BLOCKS)
      .then(({ blocked, limited }) =>
        [...blocked.edges, ...limited.edges]
          .map((edge) => edge.node)
          .sort((a, b) => b.at.localeCompare(a.at) || Number(b.id) - Number(a.id)),
      ),
  );
  return (
    <section>
      <h2 id="recent-blocks">Recent blocks</h2>
      <p>
        Requests refused by an IP rule or a rate limit are summed up per address once a minute, in the audit log (actions{' '}
        <code>ip_blocked</code> and <code>rate_limited</code>): a minute shows here once it has ended.
      </p>
      <button type="button" class="plain" disabled={recent.loading} onClick={recent.reload}>
        Refresh
      </button>
      <ErrorText error={recent.error} />
      {recent.data && recent.data.length === 0 ? <p>No blocked requests recorded.</p> : null}
      {recent.data && recent.data.length > 0 ? (
        <table aria-labelledby="recent-blocks">
          <thead>
            <tr>
              <th>Recorded</th>
              <th>Why</th>
              <th>Requests</th>
              <th>Sources</th>
              <th>Busiest sources</th>
            </tr>
          </thead>
          <tbody>
            {recent.data.map((event) => (
              <tr key={event.id}>
                <td>{when(event.at)}</td>
                <td>{HIT_KINDS[event.action] ?? event.action}</td>
                <td>{event.metadata.hits ?? '—'}</td>
                <td>{event.metadata.subjects ?? '—'}</td>
                <td>
                  <ul class="plain-list">
                    {(event.metadata.top ?? []).map((entry) => (
                      <li key={entry.subject}>
                        <code>{subjectLabel(event.action, entry.subject)}</code>: {entry.hits}
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
