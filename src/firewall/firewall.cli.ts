import type { Command } from 'commander';
import { CLI_ACTOR } from '../audit/actor';
import type { Clock } from '../clock';
import type { CommandTools } from '../feature';
import { FirewallAction } from './firewall-rule.entity';
import type { FirewallService } from './firewall.service';

/** `bastion firewall …`: IP rules, straight to the database, so they work when the API has locked everyone out. */
export function registerFirewallCommands(
  program: Command,
  tools: CommandTools<{ readonly firewall: FirewallService; readonly clock: Clock }>,
): void {
  const { say } = tools;
  const firewall = program.command('firewall').description('IP rules (straight to the database: works even when the API is locked out)');
  firewall
    .command('list')
    .description('Every IP rule, newest first')
    .action(() =>
      tools.withServices(async ({ firewall: rules, clock }) => {
        const now = clock.now().getTime();
        const list = await rules.list();
        if (list.length === 0) return say('No IP rules.');
        for (const rule of list) {
          const expiry = rule.expiresAt
            ? rule.expiresAt.getTime() <= now
              ? `expired ${rule.expiresAt.toISOString()}`
              : `until ${rule.expiresAt.toISOString()}`
            : 'permanent';
          say(`${rule.id}  ${rule.action.toUpperCase().padEnd(5)}  ${rule.cidr.padEnd(43)}  ${expiry}${rule.note ? `  ${rule.note}` : ''}`);
        }
      }),
    );
  for (const action of [FirewallAction.ALLOW, FirewallAction.DENY]) {
    firewall
      .command(`${action} <cidr>`)
      .description(`${action === FirewallAction.ALLOW ? 'Allow' : 'Deny'} an IP address or network (e.g. 203.0.113.0/24)`)
      .option('--note <text>', 'why')
      .option('--expires <when>', 'an ISO date-time after which the rule stops applying')
      .action((cidr: string, options: { note?: string; expires?: string }) =>
        tools.withServices(async ({ firewall: rules }) => {
          const expiresAt = options.expires === undefined ? null : new Date(options.expires);
          if (expiresAt && Number.isNaN(expiresAt.getTime()))
            tools.fail(`--expires must be an ISO date-time such as 2027-01-31T00:00:00Z (got ${options.expires})`);
          const rule = await rules.add({ cidr, action, note: options.note, expiresAt }, CLI_ACTOR);
          say(`added ${rule.id}: ${rule.action.toUpperCase()} ${rule.cidr}`);
        }),
      );
  }
  firewall
    .command('remove <id>')
    .description('Remove an IP rule by id (see firewall list)')
    .action((id: string) =>
      tools.withServices(async ({ firewall: rules }) => {
        await rules.remove(id, CLI_ACTOR);
        say(`removed ${id}`);
      }),
    );
}
