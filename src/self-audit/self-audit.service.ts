import { Cron } from 'croner';
import type { DataSource } from 'typeorm';
import { Actor, SCHEDULE_ACTOR } from '../audit/actor';
import type { AuditLog } from '../audit/audit-log';
import type { AuditMetadata } from '../audit/audit-event.entity';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { KeyService, type KeyedData } from '../crypto/key.service';
import type { Keyring } from '../crypto/keyring';
import type { BackupOptions } from '../backup/backup.service';
import type { Contents } from '../files/content-io';
import type { Logger } from '../logging';
import { CHECKS, CheckDefinition, MEASURES, SecurityCheck } from './checks';
import { FILE_CHECKS, FileCheckContext } from './files-checks';

export interface SecurityAuditReport {
  readonly ranAt: Date;
  readonly passed: number;
  readonly warnings: number;
  readonly failures: number;
  readonly checks: readonly SecurityCheck[];
}

/** Every check, grouped by measure in report order (the sort is stable: within a measure, the platform's first, then the files feature's). */
export const SELF_AUDIT_CHECKS: readonly CheckDefinition<FileCheckContext>[] = [...CHECKS, ...FILE_CHECKS].sort(
  (a, b) => MEASURES.indexOf(a.measure) - MEASURES.indexOf(b.measure),
);

/** A scheduled run this recent (on any instance) makes this one unnecessary. */
const RECENT_RUN_MS = 10 * 60 * 1000;

/** "bstaudit" is the chain's; this is "bstselfa" in ASCII: one scheduled self-audit across instances. */
const SCHEDULE_LOCK_KEY = '7094141877010327137';

/**
 * The self-audit: runs every check of the five measures, and records each run in the audit log
 * (`security_audit_run`), so a report says when the last one ran. The same checks behind
 * `securityAudit`, `bastion audit` and the schedule.
 */
export class SelfAudit {
  private readonly context: FileCheckContext;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    config: Config,
    keyring: Keyring,
    backups: BackupOptions,
    fileContents: Contents,
    /** What features keep under the data keys besides the columns (file contents), counted per key. */
    keyedData: readonly KeyedData[],
    unruledFields: () => Promise<string[]>,
  ) {
    this.context = {
      config,
      dataSource,
      clock,
      keys: new KeyService(dataSource, keyring, clock, undefined, keyedData),
      keyring,
      backups,
      fileContents,
      developmentKeys: !(config.encryptionKeys && config.blindIndexKey),
      unruledFields,
    };
  }

  async run(actor: Actor): Promise<SecurityAuditReport> {
    const ranAt = this.clock.now();
    const checks: SecurityCheck[] = [];
    let recorded: AuditMetadata = {};
    for (const check of SELF_AUDIT_CHECKS) {
      try {
        const { record, ...finding } = await check.run(this.context);
        checks.push({ id: check.id, measure: check.measure, ...finding });
        recorded = { ...recorded, ...record };
      } catch (error) {
        // A check that cannot run is a finding, not a crash of the whole report.
        this.logger.warn({ err: error, check: check.id }, 'self-audit: a check could not run');
        checks.push({
          id: check.id,
          measure: check.measure,
          status: 'FAIL',
          detail: 'The check could not run (see the server log).',
          remedy: 'Fix what the log names, then run the self-audit again.',
        });
      }
    }
    const report = {
      ranAt,
      passed: checks.filter((check) => check.status === 'PASS').length,
      warnings: checks.filter((check) => check.status === 'WARN').length,
      failures: checks.filter((check) => check.status === 'FAIL').length,
      checks,
    };
    await this.audit.append(this.dataSource.manager, {
      action: 'security_audit_run',
      outcome: report.failures > 0 ? 'failure' : 'success',
      metadata: {
        passed: report.passed,
        warnings: report.warnings,
        failures: report.failures,
        failed: checks.filter((check) => check.status === 'FAIL').map((check) => check.id),
        ...recorded,
      },
      ...actor,
    });
    return report;
  }

  /**
   * The scheduled run: on one instance at a time (an advisory lock), and not when another
   * instance whose timer fired a little earlier has just run it. Returns whether it ran here.
   */
  async runScheduled(): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const [{ locked }]: { locked: boolean }[] = await manager.query('SELECT pg_try_advisory_xact_lock($1) AS locked', [
        SCHEDULE_LOCK_KEY,
      ]);
      if (!locked) return false;
      const [recent] = await manager.query<unknown[]>(
        "SELECT 1 FROM audit_events WHERE action = 'security_audit_run' AND user_agent = $2 AND at > $1 LIMIT 1",
        [new Date(this.clock.now().getTime() - RECENT_RUN_MS), SCHEDULE_ACTOR.userAgent],
      );
      if (recent) return false;
      const report = await this.run(SCHEDULE_ACTOR);
      this.logger.info({ passed: report.passed, warnings: report.warnings, failures: report.failures }, 'self-audit done');
      return true;
    });
  }

  /** Runs on `cron` on one instance at a time (an advisory lock); returns the stopper. */
  schedule(cron: string): () => void {
    const job = new Cron(cron, { protect: true, timezone: 'Etc/UTC' }, async () => {
      try {
        await this.runScheduled();
      } catch (error) {
        this.logger.warn({ err: error }, 'self-audit: the scheduled run failed');
      }
    });
    return () => job.stop();
  }
}
