import { BackupStatus, RESTORABLE } from './backup.entity';

export interface RetentionPolicy {
  /** Restorable archives to keep (BACKUP_KEEP); 0 means no count limit. */
  readonly keep: number;
  /** Archives older than this go (BACKUP_MAX_AGE_DAYS); undefined means no age limit. */
  readonly maxAgeDays: number | undefined;
}

export interface CatalogueEntry {
  readonly id: string;
  readonly createdAt: Date;
  readonly status: BackupStatus;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Which catalogue entries retention removes. Restorable archives (COMPLETE, VERIFIED) beyond
 * the newest `keep`, or older than `maxAgeDays`, go; but the newest restorable archive and the
 * newest VERIFIED one always stay, so retention can never leave nothing to restore. Failed entries
 * go once a newer restorable archive exists (until then they are the news); CREATING never.
 */
export function prunable(entries: readonly CatalogueEntry[], policy: RetentionPolicy, now: Date): CatalogueEntry[] {
  const newestFirst = [...entries].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const restorable = newestFirst.filter((entry) => RESTORABLE.includes(entry.status));
  const protectedIds = new Set(
    [restorable[0]?.id, newestFirst.find((entry) => entry.status === BackupStatus.VERIFIED)?.id].filter(Boolean),
  );
  const newestRestorableAt = restorable[0]?.createdAt.getTime() ?? Number.NEGATIVE_INFINITY;
  const tooOld = (entry: CatalogueEntry) =>
    policy.maxAgeDays !== undefined && now.getTime() - entry.createdAt.getTime() > policy.maxAgeDays * DAY_MS;

  return newestFirst.filter((entry) => {
    if (protectedIds.has(entry.id) || entry.status === BackupStatus.CREATING) return false;
    if (RESTORABLE.includes(entry.status)) {
      const rank = restorable.indexOf(entry);
      return (policy.keep > 0 && rank >= policy.keep) || tooOld(entry);
    }
    // FAILED (no archive) and VERIFY_FAILED (an archive proven bad).
    return entry.createdAt.getTime() < newestRestorableAt;
  });
}
