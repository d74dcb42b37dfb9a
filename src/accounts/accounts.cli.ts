import type { Command } from 'commander';
import { CLI_ACTOR } from '../audit/actor';
import type { CommandTools } from '../feature';
import type { AccountsService } from './accounts.service';
import { ADMIN_ROLE } from './roles';
import type { SigningKeysService } from './signing-keys.service';

/** `bastion admin create` and `bastion keys rotate-signing`. */
export function registerAccountCommands(
  program: Command,
  tools: CommandTools<{ readonly accounts: AccountsService; readonly signingKeys: SigningKeysService }>,
): void {
  const { say } = tools;
  tools
    .group('keys', 'token signing key: rotate-signing')
    .command('rotate-signing')
    .description(
      'Publish a new access-token signing key; it starts signing once verifiers have had ' +
        'time to fetch it (~6 min). The old key stays published until its tokens expire',
    )
    .option(
      '--now',
      'make the new key sign at once (suspected compromise; external verifiers may refuse new tokens until they refetch the JWKS)',
    )
    .action((options: { now?: boolean }) =>
      tools.withServices(async ({ signingKeys }) => {
        const retired = await signingKeys.retireExpired();
        const retiredText = retired ? `; retired ${retired} expired key(s)` : '';
        if (options.now) {
          const key = await signingKeys.rotate();
          return say(`signing key ${key.kid} is current now${retiredText}`);
        }
        const next = await signingKeys.publishNext();
        say(`signing key ${next.kid} is published and signs from ${next.signsFrom.toISOString()}${retiredText}`);
      }),
    );

  program
    .command('admin')
    .description('Administrator accounts')
    .command('create')
    .requiredOption('--email <email>', "the administrator's email address")
    .description('Create an administrator account (password from a hidden prompt, or piped on stdin; never an argument)')
    .action((options: { email: string }) =>
      tools.withServices(async ({ accounts }) => {
        const password = await tools.readPassword(`Password for ${options.email}: `);
        const user = await accounts.createAccount(options.email, password, [ADMIN_ROLE], CLI_ACTOR);
        say(`created administrator ${user.id} (${options.email})`);
      }),
    );
}
