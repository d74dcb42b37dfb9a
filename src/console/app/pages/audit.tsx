import { useState } from 'preact/hooks';
import {
  ActionButton,
  Columns,
  ErrorText,
  Page,
  PageProps,
  Status,
  formOf,
  localToIso,
  textOf,
  useCursorPages,
  useLoad,
  when,
} from '../ui';

interface AuditEvent {
  readonly id: string;
  readonly at: string;
  readonly action: string;
  readonly outcome: string;
  readonly actorId: string | null;
  readonly targetType: string | null;
  readonly targetId: string | null;
  readonly ipAddress: string | null;
  readonly metadata: unknown;
}

interface AuditEventPage {
  readonly edges: readonly { readonly node: AuditEvent }[];
  readonly pageInfo: { readonly endCursor: string | null; readonly hasNextPage: boolean };
}

/** AuditEventFilter: every given condition must hold. */
interface AuditEventFilter {
  action?: string;
  actorId?: string;
  targetId?: string;
  outcome?: string;
  from?: string;
  to?: string;
}

interface Verification {
  readonly ok: boolean;
  readonly checked: number;
  readonly firstBrokenId: string | null;
}

interface ChainHead {
  readonly id: string;
  readonly hash: string;
  readonly at: string;
}

const EVENTS = `query ConsoleAuditEvents($first: Int!, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    edges { node { id at action outcome actorId targetType targetId ipAddress metadata } }
    pageInfo { endCursor hasNextPage }
  }
}`;
const VERIFY = `query ConsoleVerifyAuditLog { verifyAuditLog { ok checked firstBrokenId } }`;
const HEAD = `query ConsoleAuditLogHead { auditLogHead { id hash at } }`;

const PAGE_SIZES = [20, 50, 100];
const OUTCOMES = ['success', 'failure', 'denied'];

/** The filter form's fields, without the empty ones. */
function filterOf(fields: FormData): AuditEventFilter {
  const text = (name: string) => textOf(fields, name) || undefined;
  const filter: AuditEventFilter = {
    action: text('action'),
    actorId: text('actorId'),
    targetId: text('targetId'),
    outcome: text('outcome'),
    from: localToIso(textOf(fields, 'from')),
    to: localToIso(textOf(fields, 'to')),
  };
  return Object.fromEntries(Object.entries(filter).filter(([, value]) => value !== undefined));
}

/** The security events of the hash-chained log, filtered and paged; the chain verified on demand; its head to anchor. */
export function Audit({ session }: PageProps) {
  return (
    <Page
      title="Audit log"
      intro={
        "Every security event, newest first, in a hash chain: each event's keyed hash covers every event before it, " +
        'so an edited, inserted or deleted event shows.'
      }
    >
      <Events session={session} />
      <Chain session={session} />
    </Page>
  );
}

function Events({ session }: PageProps) {
  const [filter, setFilter] = useState<AuditEventFilter>({});
  const [first, setFirst] = useState(PAGE_SIZES[0]);
  const pages = useCursorPages();
  const { after } = pages;
  const events = useLoad(
    () =>
      session
        .run<{ auditEvents: AuditEventPage }>(EVENTS, { first, after, filter: Object.keys(filter).length ? filter : null })
        .then(({ auditEvents }) => auditEvents),
    JSON.stringify({ filter, first, after }),
  );

  const apply = (event: Event) => {
    event.preventDefault();
    const fields = formOf(event);
    setFilter(filterOf(fields));
    setFirst(Number(textOf(fields, 'first')) || PAGE_SIZES[0]);
    pages.reset();
    // The same filter again still asks again: newer events may have come.
    events.reload();
  };
  const clear = () => {
    setFilter({});
    setFirst(PAGE_SIZES[0]);
    pages.reset();
  };
  const page = events.data;

  return (
    <section>
      <h2 id="audit-events">Events</h2>
      <form class="inline" aria-label="Filter events" onSubmit={apply} onReset={clear}>
        <label>
          Action
          <input name="action" placeholder="sign_in_failed" autocomplete="off" />
        </label>
        <label>
          Outcome
          <select name="outcome">
            <option value="">any</option>
            {OUTCOMES.map((outcome) => (
              <option value={outcome}>{outcome}</option>
            ))}
          </select>
        </label>
        <label>
          Actor id
          <input name="actorId" autocomplete="off" />
        </label>
        <label>
          Target id
          <input name="targetId" autocomplete="off" />
        </label>
        <label>
          From (your local time)
          <input name="from" type="datetime-local" />
        </label>
        <label>
          Until (your local time)
          <input name="to" type="datetime-local" />
        </label>
        <label>
          Per page
          <select name="first">
            {PAGE_SIZES.map((size) => (
              <option value={String(size)}>{size}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary">
          Apply filters
        </button>
        <button type="reset" class="plain">
          Clear filters
        </button>
      </form>
      <ErrorText error={events.error} />
      {page && page.edges.length === 0 ? <p>No events match.</p> : null}
      {page && page.edges.length > 0 ? <EventTable events={page.edges.map((edge) => edge.node)} /> : null}
      <nav class="pager" aria-label="Pages of events">
        <button type="button" class="plain" disabled={pages.page === 1 || events.loading} onClick={pages.previous}>
          Previous page
        </button>
        <span>Page {pages.page}</span>
        <button
          type="button"
          class="plain"
          disabled={!page?.pageInfo.hasNextPage || !page.pageInfo.endCursor || events.loading}
          onClick={() => page?.pageInfo.endCursor && pages.next(page.pageInfo.endCursor)}
        >
          Next page
        </button>
      </nav>
    </section>
  );
}

function EventTable({ events }: { readonly events: readonly AuditEvent[] }) {
  return (
    <div class="table-scroll">
      <table class="audit-events" aria-labelledby="audit-events">
        <Columns names={['#', 'Time', 'Action', 'Outcome', 'Actor', 'Target', 'IP address', 'Details']} />
        <tbody>
          {events.map((event) => (
            <tr key={event.id}>
              <td>{event.id}</td>
              <td>{when(event.at)}</td>
              <td>
                <code>{event.action}</code>
              </td>
              <td>{event.outcome}</td>
              <td>{event.actorId ? <code>{event.actorId}</code> : '—'}</td>
              <td>
                {event.targetType ?? ''}
                {event.targetId ? (
                  <>
                    {' '}
                    <code>{event.targetId}</code>
                  </>
                ) : null}
              </td>
              <td>{event.ipAddress ?? '—'}</td>
              <td>
                <code class="metadata">{JSON.stringify(event.metadata)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Re-checking the whole chain, and its head to record elsewhere. */
function Chain({ session }: PageProps) {
  const head = useLoad(() => session.run<{ auditLogHead: ChainHead | null }>(HEAD).then(({ auditLogHead }) => auditLogHead));
  const [verification, setVerification] = useState<Verification | null>(null);
  return (
    <section>
      <h2>The chain</h2>
      <ActionButton
        label="Verify the chain"
        kind="primary"
        run={async () => {
          setVerification(null);
          const { verifyAuditLog } = await session.run<{ verifyAuditLog: Verification }>(VERIFY);
          setVerification(verifyAuditLog);
          head.reload();
        }}
      />
      {verification ? <VerificationResult verification={verification} /> : null}
      <h3>Head</h3>
      <ErrorText error={head.error} />
      {head.data === null && !head.loading && !head.error ? <p>The log is empty: there is no head yet.</p> : null}
      {head.data ? <Head head={head.data} /> : null}
    </section>
  );
}

function VerificationResult({ verification }: { readonly verification: Verification }) {
  return verification.ok ? (
    <p class="verification" role="status">
      <Status value="OK" /> {verification.checked} events checked, chain intact.
    </p>
  ) : (
    <p class="verification" role="status">
      <Status value="BROKEN" /> The chain is broken at event {verification.firstBrokenId} ({verification.checked} events checked): that
      event was edited or inserted, or an event before it was deleted.
    </p>
  );
}

function Head({ head }: { readonly head: ChainHead }) {
  const anchor = `${head.id}:${head.hash}`;
  return (
    <div class="chain-head">
      <dl>
        <dt>Newest event</dt>
        <dd class="head-id">{head.id}</dd>
        <dt>At</dt>
        <dd>{when(head.at)}</dd>
        <dt>Hash</dt>
        <dd>
          <code class="head-hash">{head.hash}</code>
        </dd>
      </dl>
      <p>
        Record <code>{anchor}</code> somewhere outside this database (a ticket, another system's log). Later, on the server,{' '}
        <code>bastion audit log verify --head {anchor}</code> proves the log still holds this event unchanged, and everything before it.
      </p>
    </div>
  );
}
