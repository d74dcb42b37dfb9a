import { Cron } from 'croner';
import { SCHEDULE_ACTOR } from '../audit/actor';
import type { Clock } from '../clock';
import type { Logger } from '../logging';
import { BackupError } from './backup-errors';
import { BackupStatus, RESTORABLE } from './backup.entity';
import type { BackupService } from './backup.service';

/** A scheduled run this recent (on any instance) makes this one unnecessary. */
const RECENT_RUN_MS = 10 * 60 * 1000;

/** One scheduled backup (then retention) on `backupCron`; one verification of the newest archive on `verifyCron`. */
export class BackupSchedule {
  constructor(
    private readonly backups: BackupService,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** A scheduled backup, unless one was taken moments ago on another instance; then retention. Returns whether it backed up. */
  async backupNow(): Promise<boolean> {
    let started;
    try {
      started = await this.backups.startCreateUnless(SCHEDULE_ACTOR, 'schedule', {}, this.recentSince());
    } catch (error) {
      if (error instanceof BackupError && error.failure === 'IN_PROGRESS') {
        this.logger.info('scheduled backup skipped: another backup is being created');
        return false;
      }
      throw error;
    }
    if (!started) return false;
    const backup = await started.done;
    this.logger.info({ backupId: backup.id, sizeBytes: backup.sizeBytes, rows: backup.rows }, 'scheduled backup done');
    const pruned = await this.backups.prune(SCHEDULE_ACTOR);
    if (pruned.length > 0) this.logger.info({ removed: pruned.length }, 'backup retention pruned old archives');
    return true;
  }

  /** Verifies the newest restorable archive, unless that was just done. Returns whether it verified. */
  async verifyNow(): Promise<boolean> {
    // With an unshared BACKUP_DIR, the instance that holds the newest file verifies it.
    const newest = (await this.backups.list()).find((backup) => RESTORABLE.includes(backup.status) && this.backups.isHere(backup));
    if (!newest) return false;
    let started;
    try {
      started = await this.backups.startVerifyUnless(newest.id, SCHEDULE_ACTOR, this.recentSince());
    } catch (error) {
      if (error instanceof BackupError && error.failure === 'IN_PROGRESS') {
        this.logger.info('scheduled backup verification skipped: another verification is running');
        return false;
      }
      throw error;
    }
    if (!started) return false;
    const verified = await started.done;
    const log = verified.status === BackupStatus.VERIFIED ? this.logger.info.bind(this.logger) : this.logger.error.bind(this.logger);
    log({ backupId: verified.id, verification: verified.verification }, `scheduled backup verification: ${verified.status}`);
    return true;
  }

  /** Starts both timers (either may be undefined: off); returns the stopper. */
  start(backupCron: string | undefined, verifyCron: string | undefined): () => void {
    const jobs = [
      backupCron && this.cron(backupCron, 'scheduled backup', () => this.backupNow()),
      verifyCron && this.cron(verifyCron, 'scheduled backup verification', () => this.verifyNow()),
    ].filter((job): job is Cron => Boolean(job));
    return () => jobs.forEach((job) => job.stop());
  }

  private cron(pattern: string, what: string, run: () => Promise<boolean>): Cron {
    return new Cron(pattern, { protect: true, timezone: 'Etc/UTC' }, async () => {
      try {
        await run();
      } catch (error) {
        // Already in the catalogue and the audit log (backup_failed); the self-audit reports it.
        this.logger.error({ err: error }, `${what} failed`);
      }
    });
  }

  private recentSince(): Date {
    return new Date(this.clock.now().getTime() - RECENT_RUN_MS);
  }
}
