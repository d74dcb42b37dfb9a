import fs from 'node:fs';
import type { Command } from 'commander';
import { CLI_ACTOR } from '../audit/actor';
import { AuditReader } from '../audit/audit-reader';
import type { CommandTools } from '../feature';
import { formatReport, renderReportHtml } from './report';
import type { SelfAudit } from './self-audit.service';

/** `bastion audit` (the self-audit) and `bastion audit log verify|export` (the audit log). */
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
  const log = audit.command('log').description('The hash-chained audit log: verify it, export it');
  log
    .command('verify')
    .description('Re-check the whole hash chain; exit 1 and name the first broken event when it is broken')
    .action(() =>
      tools.withDatabase(async ({ dataSource }) => {
        const report = await new AuditReader(dataSource).verify();
        if (report.ok) {
          say(`audit log intact: ${report.checked} events checked`);
          return;
        }
        say(
          `audit log BROKEN at event ${report.firstBrokenId} (${report.checked} events checked): it was edited, inserted, or follows a deleted event`,
        );
        process.exitCode = 1;
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
        for await (const event of new AuditReader(dataSource).export(since)) process.stdout.write(`${JSON.stringify(event)}\n`);
      }),
    );
}
