import { useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { ActionButton, Columns, ErrorText, Page, PageProps, Status, localToIso, textOf, useLoad, useSubmit, when } from '../ui';

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

/**
 * The server refuses a change that would block the caller's own address until it is confirmed: BAD_USER_INPUT
 * naming the argument confirmLockout as its field (src/firewall/firewall.service.ts, refuseLockout).
 */
function isLockout(error: unknown): boolean {
  return error instanceof ApiError && error.code === 'BAD_USER_INPUT' && error.details.field === 'confirmLockout';
}

interface NewRule {
  readonly cidr: string;
  readonly action: RuleAction;
  readonly note: string | null;
  readonly expiresAt: string | null;
}

const INCOMPLETE_EXPIRY = 'Enter a complete date and time, or leave Expires empty.';

/**
 * The rule the form describes. An expiry the browser cannot read (part of a date typed: badInput, and an empty value)
 * or that no Date can hold is refused, never taken for "never expires".
 */
function ruleOf(fields: FormData, form: HTMLFormElement): NewRule {
  const expiresInput = form.elements.namedItem('expiresAt') as HTMLInputElement;
  const expires = textOf(fields, 'expiresAt');
  const expiresAt = localToIso(expires) ?? null;
  if (expiresInput.validity.badInput || (expires && !expiresAt)) throw new Error(INCOMPLETE_EXPIRY);
  return { cidr: textOf(fields, 'cidr'), action: textOf(fields, 'action') as RuleAction, note: textOf(fields, 'note') || null, expiresAt };
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
          <Columns names={['Network', 'Action', 'Note', 'Expires', 'Added', 'Change']} />
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
  // The rule the server refused as a lockout, with its answer: "Add anyway" sends exactly that rule, confirmed.
  const [refused, setRefused] = useState<{ readonly rule: NewRule; readonly error: unknown } | null>(null);
  // The browser itself blocks a submission with part of a date typed (badInput): it is said here in words too.
  const [incomplete, setIncomplete] = useState(false);

  const add = async (rule: NewRule, confirmLockout: boolean) => {
    await props.session.run<{ addFirewallRule: { id: string } }>(ADD_RULE, { input: { ...rule, confirmLockout } });
    form.current?.reset();
    setExpires('');
    setRefused(null);
    props.added();
  };
  const submit = useSubmit(async (fields, element) => {
    setRefused(null);
    setIncomplete(false);
    const rule = ruleOf(fields, element);
    try {
      await add(rule, false);
    } catch (failure) {
      if (!isLockout(failure)) throw failure;
      setRefused({ rule, error: failure });
    }
  });

  return (
    <form
      ref={form}
      class="inline"
      aria-label="Add rule"
      // Any change to the form withdraws an earlier confirmation offer: "Add anyway" adds what was refused, nothing else.
      onInput={() => {
        setRefused(null);
        setIncomplete(false);
      }}
      onInvalidCapture={(event) => {
        const input = event.target as HTMLInputElement;
        if (input.name === 'expiresAt' && input.validity.badInput) setIncomplete(true);
      }}
      onSubmit={submit.onSubmit}
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
      <button type="submit" class="primary" disabled={submit.busy}>
        {submit.busy ? 'Add rule…' : 'Add rule'}
      </button>
      <ErrorText error={submit.error} />
      {incomplete ? <ErrorText error={new Error(INCOMPLETE_EXPIRY)} /> : null}
      {refused ? (
        <>
          <ErrorText error={refused.error} />
          <ActionButton label="Add anyway" kind="danger" run={() => add(refused.rule, true)} />
        </>
      ) : null}
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
            <Columns names={['Limit', 'What it counts', 'Allows', 'Setting']} />
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
          <Columns names={['Recorded', 'Why', 'Requests', 'Sources', 'Busiest sources']} />
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
