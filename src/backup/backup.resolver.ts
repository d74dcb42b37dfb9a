import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { actorOf } from '../audit/actor';
import type { Context } from '../context';
import { AppError } from '../errors';
import { isUuid } from '../db/uuid';
import { TIMED_OUT, settleWithin } from '../settle-within';
import { BackupError } from './backup-errors';
import { Backup } from './backup.entity';
import type { BackupService, StartedJob } from './backup.service';

/** How long a mutation waits for its job before answering with the entry as it stands (poll `backups`). */
const ANSWER_WITHIN_MS = 20_000;

function clientError(error: unknown): Error {
  if (!(error instanceof BackupError)) return error instanceof Error ? error : new Error(String(error));
  if (error.failure === 'IN_PROGRESS') return new AppError('CONFLICT', `${error.message[0].toUpperCase()}${error.message.slice(1)}.`);
  if (error.failure === 'NOT_FOUND') return new AppError('NOT_FOUND', 'No backup with this id has an archive to verify.');
  return error;
}

/** Backups for admins on an aal2 session. Restoring is deliberately not here: it is CLI-only. */
@Resolver()
export class BackupResolver {
  constructor(private readonly service: BackupService) {}

  @Query(() => [Backup], { description: 'Every backup in the catalogue, newest first.' })
  backups(): Promise<Backup[]> {
    return this.service.list();
  }

  @Mutation(() => Backup, {
    description:
      'Takes a backup now: a consistent snapshot of every table into an encrypted archive. Answers when it is COMPLETE or ' +
      'FAILED, or after 20 s with status CREATING while it carries on (poll backups). CONFLICT while another backup runs.',
  })
  async createBackup(@Ctx() context: Context): Promise<Backup> {
    const started = await this.service.startCreate(actorOf(context), 'api').catch((error: unknown) => Promise.reject(clientError(error)));
    return this.answer(started);
  }

  @Mutation(() => Backup, {
    description:
      'Proves a backup restorable: restores it into a scratch database, compares every table with its manifest, drops the scratch database. ' +
      'Answers with status VERIFIED or VERIFY_FAILED (verification says what differed), or after 20 s as it stands while it carries on.',
  })
  async verifyBackup(@Arg('id', () => ID) id: string, @Ctx() context: Context): Promise<Backup> {
    if (!isUuid(id)) throw new AppError('NOT_FOUND', 'No backup with this id has an archive to verify.');
    const started = await this.service.startVerify(id, actorOf(context)).catch((error: unknown) => Promise.reject(clientError(error)));
    return this.answer(started);
  }

  private async answer(started: StartedJob): Promise<Backup> {
    // The outcome (FAILED, VERIFY_FAILED) is in the catalogue and the audit log either way.
    const waited = await settleWithin(
      started.done.catch(() => undefined),
      ANSWER_WITHIN_MS,
    );
    if (waited !== TIMED_OUT && waited) return waited;
    return (await this.service.get(started.backup.id)) ?? started.backup;
  }
}
