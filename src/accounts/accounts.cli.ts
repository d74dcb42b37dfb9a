import type { Command } from 'commander';
import { CLI_ACTOR } from '../audit/actor';
import type { CommandTools } from '../feature';
import type { AccountsService } from './accounts.service';
import { ADMIN_ROLE } from './roles';
import type { SigningKeysService } from './signing-keys.service';
import type { UserDirectory } from './user-directory.service';

/** `bastion admin create`, `bastion admin revoke-sessions` and `bastion keys rotate-signing`. */
export function registerAccountCommands(
  program: Command,
  tools: CommandTools<{
    readonly accounts: AccountsService;
    readonly signingKeys: SigningKeysService;
    readonly userDirectory: UserDirectory;
  }>,
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

  const admin = program.command('admin').description('Administrator accounts');
  admin
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

  admin
    .command('revoke-sessions')
    .requiredOption('--email <email>', "the account's email address")
    .option('--session <id>', 'end only this session (its id is the target of the sign-in in the audit log)')
    .description("End an account's sessions at once, on every instance (a lost phone, a departed employee); audited")
    .action((options: { email: string; session?: string }) =>
      tools.withServices(async ({ userDirectory }) => {
        const [found] = (await userDirectory.list({ email: options.email, first: 1 })).users;
        if (!found) tools.fail(`no account with the email address ${options.email}`);
        const ended = await userDirectory.revokeSessions(found.user.id, options.session ?? null, CLI_ACTOR);
        say(`ended ${ended} session(s) of ${found.user.id} (${options.email})`);
      }),
    );
}
