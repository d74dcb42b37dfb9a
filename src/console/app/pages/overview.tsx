import { useState } from 'preact/hooks';
import { ActionButton, Columns, ErrorText, Page, PageProps, Status, useLoad, when } from '../ui';

interface Check {
  readonly id: string;
  readonly measure: string;
  readonly status: string;
  readonly detail: string;
  readonly remedy: string | null;
}

interface Report {
  readonly ranAt: string;
  readonly passed: number;
  readonly warnings: number;
  readonly failures: number;
  readonly checks: readonly Check[];
}

const RUN = `query ConsoleSecurityAudit {
  securityAudit { ranAt passed warnings failures checks { id measure status detail remedy } }
}`;
const LAST_RUN = `query ConsoleLastAuditRun {
  auditEvents(first: 1, filter: { action: "security_audit_run" }) { edges { node { at actorId outcome } } }
}`;

/** The five measures, in the order the README presents them, by their names in the report. */
const MEASURES: Readonly<Record<string, string>> = {
  encryption: 'Encryption',
  access_control: 'Access control',
  firewall: 'Firewall',
  backups: 'Backups',
  audits: 'Security audits',
};
const ORDER = Object.keys(MEASURES);

function measureRank(measure: string): number {
  const rank = ORDER.indexOf(measure);
  return rank < 0 ? ORDER.length : rank;
}

/** The self-audit: the last run's time, and a run on demand with every check's status, detail and remedy. */
export function Overview({ session }: PageProps) {
  const last = useLoad(() =>
    session
      .run<{ auditEvents: { edges: { node: { at: string; outcome: string } }[] } }>(LAST_RUN)
      .then(({ auditEvents }) => auditEvents.edges[0]?.node ?? null),
  );
  const [report, setReport] = useState<Report | null>(null);
  const measures = report ? [...new Set(report.checks.map((check) => check.measure))].sort((a, b) => measureRank(a) - measureRank(b)) : [];

  return (
    <Page
      title="Overview"
      intro={
        'The self-audit checks the five security measures (encryption, access control, firewall, backups, audit log) ' +
        'of this running server. Each run is recorded in the audit log.'
      }
    >
      <p class="last-run">Last run: {last.data ? `${when(last.data.at)} (${last.data.outcome})` : last.loading ? '…' : 'never'}</p>
      <ErrorText error={last.error} />
      <ActionButton
        label="Run the self-audit now"
        kind="primary"
        name="run-self-audit"
        run={async () => {
          const { securityAudit } = await session.run<{ securityAudit: Report }>(RUN);
          setReport(securityAudit);
          last.reload();
        }}
      />
      {report ? (
        <div class="report">
          <p class="summary" role="status">
            Ran {when(report.ranAt)}: <Status value="PASS" /> {report.passed} <Status value="WARN" /> {report.warnings}{' '}
            <Status value="FAIL" /> {report.failures}
          </p>
          {measures.map((measure) => (
            <table class="checks">
              <caption>{MEASURES[measure] ?? measure}</caption>
              <Columns names={['Check', 'Status', 'Detail', 'Remedy']} />
              <tbody>
                {report.checks
                  .filter((check) => check.measure === measure)
                  .map((check) => (
                    <tr>
                      <td>
                        <code>{check.id}</code>
                      </td>
                      <td>
                        <Status value={check.status} />
                      </td>
                      <td>{check.detail}</td>
                      <td>{check.remedy ?? ''}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          ))}
        </div>
      ) : null}
    </Page>
  );
}
