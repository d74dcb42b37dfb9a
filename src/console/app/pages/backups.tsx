import { useState } from 'preact/hooks';
import { ActionButton, Columns, ErrorText, Page, PageProps, Status, useLoad, when } from '../ui';

type BackupStatus = 'CREATING' | 'COMPLETE' | 'FAILED' | 'VERIFIED' | 'VERIFY_FAILED';

interface Backup {
  readonly id: string;
  readonly createdAt: string;
  readonly status: BackupStatus;
  readonly sizeBytes: number;
  readonly tables: number;
  readonly rows: number;
  readonly keyId: string;
  readonly verifiedAt: string | null;
  readonly verification: string | null;
  readonly error: string | null;
}

const FIELDS = 'id createdAt status sizeBytes tables rows keyId verifiedAt verification error';
const BACKUPS = `query ConsoleBackups { backups { ${FIELDS} } }`;
const CREATE = `mutation ConsoleCreateBackup { createBackup { ${FIELDS} } }`;
const VERIFY = `mutation ConsoleVerifyBackup($id: ID!) { verifyBackup(id: $id) { ${FIELDS} } }`;

/** The statuses with an archive on disk, which a verification can restore. */
const VERIFIABLE: readonly BackupStatus[] = ['COMPLETE', 'VERIFIED', 'VERIFY_FAILED'];

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

function size(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** What the last action answered, in words. */
function outcomeOf(backup: Backup, verb: 'create' | 'verify'): string {
  switch (backup.status) {
    case 'CREATING':
      return 'The backup is still being written: it carries on on the server. Refresh to see when it is complete.';
    case 'COMPLETE':
      return verb === 'create'
        ? `Backup ${backup.id} is complete: ${backup.tables} tables, ${backup.rows.toLocaleString()} rows, ${size(backup.sizeBytes)}.`
        : `Backup ${backup.id} is still being verified: it carries on on the server. Refresh to see the result.`;
    case 'FAILED':
      return `Backup ${backup.id} failed: ${backup.error ?? 'no reason given'}.`;
    case 'VERIFIED':
      return `Backup ${backup.id} is verified: ${backup.verification ?? 'restored and found equal to its manifest'}.`;
    case 'VERIFY_FAILED':
      return `Verifying backup ${backup.id} failed: ${backup.verification ?? 'no reason given'}.`;
  }
}

/** The backup catalogue: take a backup now, prove one restorable; restoring itself stays on the command line. */
export function Backups({ session }: PageProps) {
  const backups = useLoad(() => session.run<{ backups: readonly Backup[] }>(BACKUPS).then((result) => result.backups));
  const [outcome, setOutcome] = useState<string | null>(null);
  const creating = backups.data?.some((backup) => backup.status === 'CREATING') ?? false;

  return (
    <Page
      title="Backups"
      intro={
        'Encrypted, compressed archives of every table, each taken from one consistent snapshot. ' +
        'A verification restores an archive into a scratch database and compares every table with its manifest.'
      }
    >
      <p class="notice restore-note">
        Restoring is done on the command line only, on purpose: it replaces the database's data, so it is not one click away on a network
        API. On the server, <code>bastion backup restore &lt;id&gt;</code> restores into a new database (a drill: it prints the new
        database's name); <code>bastion backup restore &lt;id or file&gt; --yes</code> replaces the current database's data.
      </p>
      <div class="toolbar">
        <ActionButton
          label="Create backup"
          kind="primary"
          run={async () => {
            setOutcome(null);
            const { createBackup } = await session.run<{ createBackup: Backup }>(CREATE);
            setOutcome(outcomeOf(createBackup, 'create'));
          }}
          done={backups.reload}
        />
        <button type="button" class="plain" disabled={backups.loading} onClick={backups.reload}>
          Refresh
        </button>
      </div>
      {outcome ? (
        <p class="outcome" role="status">
          {outcome}
        </p>
      ) : null}
      {creating && !outcome ? <p>A backup is being written. Refresh to see when it is complete.</p> : null}
      <ErrorText error={backups.error} />
      {backups.data && backups.data.length === 0 ? <p>No backups yet.</p> : null}
      {backups.data && backups.data.length > 0 ? (
        <BackupTable
          session={session}
          backups={backups.data}
          verified={(backup) => setOutcome(outcomeOf(backup, 'verify'))}
          changed={backups.reload}
        />
      ) : null}
    </Page>
  );
}

function BackupTable(props: {
  readonly session: PageProps['session'];
  readonly backups: readonly Backup[];
  readonly verified: (backup: Backup) => void;
  readonly changed: () => void;
}) {
  return (
    <div class="table-scroll">
      <table class="backups" aria-label="Backups">
        <Columns names={['Created', 'Status', 'Id', 'Size', 'Tables', 'Rows', 'Key', 'Verified', 'Verification', 'Error', 'Check']} />
        <tbody>
          {props.backups.map((backup) => (
            <tr key={backup.id}>
              <td>{when(backup.createdAt)}</td>
              <td>
                <Status value={backup.status} />
              </td>
              <td>
                <code>{backup.id}</code>
              </td>
              <td>{size(backup.sizeBytes)}</td>
              <td>{backup.tables}</td>
              <td>{backup.rows.toLocaleString()}</td>
              <td>
                <code>{backup.keyId}</code>
              </td>
              <td>{when(backup.verifiedAt)}</td>
              <td>{backup.verification ?? ''}</td>
              <td>{backup.error ?? ''}</td>
              <td>
                {VERIFIABLE.includes(backup.status) ? (
                  <ActionButton
                    label="Verify"
                    run={async () => {
                      const { verifyBackup } = await props.session.run<{ verifyBackup: Backup }>(VERIFY, { id: backup.id });
                      props.verified(verifyBackup);
                    }}
                    done={props.changed}
                  />
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
