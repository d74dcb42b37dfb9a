import { Command, InvalidArgumentError } from 'commander';
import { AuditLog } from '../audit/audit-log';
import { systemClock } from '../clock';
import type { CommandTools } from '../feature';
import { ProgressBar } from '../progress-bar';
import { activeKeyring } from './active-keyring';
import { KeyService, KeyStatus, MissingKeyError, ReencryptProgress, keyedDataIn } from './key.service';
import { KID_PATTERN, generateKey } from './keyring';

function positiveInteger(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new InvalidArgumentError('must be a whole number above 0');
  return Number(raw);
}

function keyIdOption(raw: string): string {
  if (!KID_PATTERN.test(raw)) throw new InvalidArgumentError('must be letters, digits, _ and - (at most 32)');
  return raw;
}

/** A progress bar per column (on stderr), for the commands that rewrite columns in batches. */
function barPerColumn(): ReencryptProgress {
  const bars = new Map<string, ProgressBar>();
  return ({ table, column, done, total, label: named }) => {
    const label = named ?? `${table}.${column}`;
    if (!bars.has(label)) bars.set(label, new ProgressBar(label));
    bars.get(label)!.update(done, total);
  };
}

/** `keys status`'s lines. */
function printStatus(say: (line: string) => void, status: KeyStatus): void {
  say(`current key: ${status.currentKid}`);
  say('keys:');
  for (const key of status.keys) {
    const state = key.retiredAt ? `retired ${key.retiredAt.toISOString()}` : 'in use';
    say(`  ${key.kid.padEnd(20)} ${key.inKeyring ? 'in keyring' : 'NOT IN KEYRING'}  ${state}`);
  }
  say('encrypted columns (rows per key id):');
  if (status.columns.length === 0) say('  (none yet)');
  for (const column of status.columns) {
    const counts =
      Object.entries(column.rowsByKid)
        .map(([kid, rows]) => `${kid}=${rows}`)
        .join(' ') || 'no rows';
    say(`  ${`${column.table}.${column.column}`.padEnd(32)} ${counts}`);
  }
  if (status.keyedData.length === 0) return;
  say('other data under the keys (items per key id):');
  for (const data of status.keyedData) {
    const counts =
      Object.entries(data.byKid)
        .map(([kid, items]) => `${kid}=${items}`)
        .join(' ') || 'none';
    say(`  ${data.label.padEnd(32)} ${counts}`);
  }
}

/** The crypto feature's commands: its part of the shared `keys` group. */
export function registerCryptoCommands(program: Command, tools: CommandTools<unknown>): void {
  registerKeyCommands(tools.group('keys', 'Encryption keys: generate, status, reencrypt, rotate-blind-index, forget'), tools);
}

/**
 * `bastion keys …`: the column keys, straight to the database, so they work when the keyring no
 * longer covers the data; `status` and `reencrypt` also take in the data features keep under the
 * keys elsewhere (file contents), which needs the services (`status` falls back without them).
 */
export function registerKeyCommands(keys: Command, tools: CommandTools<unknown>): void {
  const { say } = tools;
  const withKeys = <T>(work: (keyService: KeyService) => Promise<T>): Promise<T> =>
    tools.withDatabase(({ dataSource }) =>
      work(new KeyService(dataSource, activeKeyring(), systemClock, new AuditLog(systemClock, activeKeyring()))),
    );
  // With every service started, so the data features keep under the keys outside the columns (file contents) is counted in.
  const withKeyedData = <T>(work: (keyService: KeyService) => Promise<T>): Promise<T> =>
    tools.withServices((services, { dataSource }) =>
      work(
        new KeyService(
          dataSource,
          activeKeyring(),
          systemClock,
          new AuditLog(systemClock, activeKeyring()),
          keyedDataIn(services as object),
        ),
      ),
    );

  keys
    .command('generate')
    .description(
      'Print a fresh random key line, kid:base64key, for BASTION_ENCRYPTION_KEYS (the part after ":" also serves as BASTION_BLIND_INDEX_KEY)',
    )
    .option(
      '--kid <kid>',
      'key id to print (letters, digits, _ and -, at most 32)',
      keyIdOption,
      `k${systemClock.now().toISOString().slice(0, 10).replace(/-/g, '')}`,
    )
    .action((options: { kid: string }) => say(`${options.kid}:${generateKey()}`));
  keys
    .command('status')
    .description('Key ids in the keyring and in use, and rows per key id in every encrypted column (and file contents per key id)')
    .action(async () => {
      try {
        await withKeyedData(async (keyService) => printStatus(say, await keyService.status()));
      } catch (error) {
        if (!(error instanceof MissingKeyError)) throw error;
        // The services refuse to start on a keyring that lacks a key in use: what the database alone tells is shown still.
        await withKeys(async (keyService) => printStatus(say, await keyService.status()));
        const missing = error.kids.map((kid) => `"${kid}"`).join(', ');
        say(
          `other data under the keys (file contents): not counted while ${missing} ${error.kids.length === 1 ? 'is' : 'are'} missing from the keyring`,
        );
      }
    });
  keys
    .command('reencrypt')
    .description(
      'Rewrite every value not on the current key, in batches, and every file content not on it (resumable; safe while the server runs)',
    )
    .option('--batch-size <rows>', 'rows per transaction', positiveInteger, 500)
    .action((options: { batchSize: number }) =>
      withKeyedData(async (keyService) => {
        const { rewritten, unreadable, left } = await keyService.reencrypt({ batchSize: options.batchSize, onProgress: barPerColumn() });
        say(`re-encrypted ${rewritten} value${rewritten === 1 ? '' : 's'}; run \`bastion keys status\` to check`);
        for (const line of left ?? []) say(`  left: ${line}`);
        if (unreadable.length > 0) {
          for (const value of unreadable.slice(0, 20)) say(`  unreadable: ${value.table}.${value.column} row ${value.id}`);
          tools.fail(`${unreadable.length} value(s) could not be decrypted with any key of the keyring and were left as they are`);
        }
      }),
    );
  keys
    .command('rotate-blind-index')
    .description('Rewrite every blind index under BASTION_BLIND_INDEX_KEY_NEXT, in batches (resumable; safe while the server runs)')
    .option('--batch-size <rows>', 'rows per transaction', positiveInteger, 500)
    .action((options: { batchSize: number }) =>
      withKeys(async (keyService) => {
        const { rewritten } = await keyService.rotateBlindIndexes({ batchSize: options.batchSize, onProgress: barPerColumn() });
        say(`rewrote ${rewritten} blind index${rewritten === 1 ? '' : 'es'} under the next key`);
        say('now make BASTION_BLIND_INDEX_KEY_NEXT the BASTION_BLIND_INDEX_KEY, unset BASTION_BLIND_INDEX_KEY_NEXT and restart');
      }),
    );
  keys
    .command('forget')
    .argument('<kid>', 'the key id to forget')
    .option('--force', 'confirm that values still under this key become unreadable')
    .description('Let the keyring drop a key that rows may still use (those values are lost)')
    .action((kid: string, options: { force?: boolean }) => {
      if (!options.force) tools.fail(`refusing to forget key "${kid}" without --force: values still encrypted under it become unreadable`);
      return withKeys(async (keyService) => {
        await keyService.forget(kid);
        say(`forgot key ${kid}`);
      });
    });
}
