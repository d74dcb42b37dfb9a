import fs from 'node:fs';
import type { Command } from 'commander';
import { CLI_ACTOR } from '../audit/actor';
import type { AuditChainPosition } from '../audit/audit-log';
import { AuditReader } from '../audit/audit-reader';
import { activeKeyring } from '../crypto/active-keyring';
import type { CommandTools } from '../feature';
import { formatReport, renderReportHtml } from './report';
import type { SelfAudit } from './self-audit.service';

/** `bastion audit` (the self-audit) and `bastion audit log verify|head|export` (the audit log). */
export function registerAuditCommands(program: Command, tools: CommandTools<{ readonly selfAudit: SelfAudit }>): void {
  const { say } = tools;
  const audit = program
    .command('audit')
    .description('Run the self-audit of the five measures (exit 1 on any FAIL); `audit log …` for the audit log')
    .option('--json', 'print the report as JSON')
    .option('--html <file>', 'also write a one-page HTML report to this file')
    .action((options: { json?: boolean; html?: string }) =>
      tools.withServices(async ({ selfAudit }) => {
        const report = await selfAudit.run(CLI_ACTOR);
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
        if (options.html) {
          fs.writeFileSync(options.html, renderReportHtml(report));
          if (!options.json) say(`wrote ${options.html}`);
        }
        if (report.failures > 0) process.exitCode = 1;
      }),
    );
  const log = audit.command('log').description('The keyed hash-chained audit log: verify it, print its head, export it');
  log
    .command('verify')
    .description('Re-check the whole keyed hash chain; exit 1 and name the first broken event when it is broken')
    .option('--head <id:hash>', 'also prove the log still holds this earlier head (from `audit log head`) unchanged')
    .action((options: { head?: string }) =>
      tools.withDatabase(async ({ dataSource }) => {
        const head = options.head === undefined ? undefined : parseHead(options.head, tools.fail);
        const report = await new AuditReader(dataSource, activeKeyring()).verify(head);
        if (!report.ok && report.firstBrokenId !== null)
          say(
            `audit log BROKEN at event ${report.firstBrokenId} (${report.checked} events checked): ` +
              'it was edited, inserted, follows a deleted event, or its key is not in the keyring',
          );
        else if (report.head === 'missing')
          say(
            `audit log TRUNCATED: event ${head?.id} is gone, and no retention checkpoint accounts for it (${report.checked} events checked)`,
          );
        else if (report.head === 'changed')
          say(`audit log CHANGED: event ${head?.id} no longer has the anchored hash (${report.checked} events checked)`);
        else if (report.head === 'pruned')
          say(
            `audit log intact: ${report.checked} events checked; event ${head?.id} was removed by retention, as a chained checkpoint records`,
          );
        else if (report.head === 'found') say(`audit log intact: ${report.checked} events checked, head ${head?.id} present and unchanged`);
        else say(`audit log intact: ${report.checked} events checked`);
        if (!report.ok) process.exitCode = 1;
      }),
    );
  log
    .command('head')
    .description('Print the newest event as id:hash and its time, to anchor elsewhere (verify --head proves it later)')
    .option('--json', 'print {"id","hash","at"} as JSON')
    .action((options: { json?: boolean }) =>
      tools.withDatabase(async ({ dataSource }) => {
        const head = await new AuditReader(dataSource, activeKeyring()).head();
        if (!head) tools.fail('the audit log is empty: there is no head to anchor yet');
        const at = new Date(head.at).toISOString();
        // `--json` after `head` is the parent `audit` command's option too (commander reads it there first).
        const json = options.json === true || audit.opts<{ json?: boolean }>().json === true;
        say(json ? JSON.stringify({ id: head.id, hash: head.hash, at }) : `${head.id}:${head.hash} ${at}`);
      }),
    );
  log
    .command('export')
    .description('Print events as JSON lines, oldest first')
    .option('--since <when>', 'only events at or after this ISO date-time')
    .action((options: { since?: string }) =>
      tools.withDatabase(async ({ dataSource }) => {
        const since = options.since === undefined ? null : new Date(options.since);
        if (since && Number.isNaN(since.getTime()))
          tools.fail(`--since must be an ISO date-time such as 2027-01-31T00:00:00Z (got ${options.since})`);
        for await (const event of new AuditReader(dataSource, activeKeyring()).export(since))
          process.stdout.write(`${JSON.stringify(event)}\n`);
      }),
    );
}

/** `id:hash` as `audit log head` prints it. */
function parseHead(text: string, fail: (message: string) => never): AuditChainPosition {
  const match = /^(\d{1,19}):([0-9a-f]{64})$/.exec(text.trim());
  if (!match) fail(`--head must be id:hash as bastion audit log head prints it, e.g. 1234:3f5a… (64 hex digits), not "${text}"`);
  return { id: match[1], hash: match[2] };
}
