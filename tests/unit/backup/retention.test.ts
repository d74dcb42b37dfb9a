import { BackupStatus } from '../../../src/backup/backup.entity';
import { CatalogueEntry, RetentionPolicy, prunable } from '../../../src/backup/retention';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const DAY_MS = 24 * 60 * 60 * 1000;
const { CREATING, COMPLETE, FAILED, VERIFIED, VERIFY_FAILED } = BackupStatus;

/** An entry named by its status and age, e.g. entry(COMPLETE, 3) is "complete-3d". */
function entry(status: BackupStatus, ageDays: number): CatalogueEntry {
  return { id: `${status}-${ageDays}d`, createdAt: new Date(NOW.getTime() - ageDays * DAY_MS), status };
}

/** The ids prunable picks, sorted so the order entries are given in does not matter. */
function pruned(entries: CatalogueEntry[], policy: RetentionPolicy): string[] {
  return prunable(entries, policy, NOW)
    .map((picked) => picked.id)
    .sort();
}

const noAgeLimit = (keep: number): RetentionPolicy => ({ keep, maxAgeDays: undefined });

describe('retention (prunable)', () => {
  describe('keep count', () => {
    it('prunes restorable archives beyond the newest `keep`', () => {
      const entries = [entry(COMPLETE, 1), entry(COMPLETE, 2), entry(COMPLETE, 3), entry(COMPLETE, 4)];
      expect(pruned(entries, noAgeLimit(2))).toEqual(['complete-3d', 'complete-4d']);
    });

    it('ranks by creation time, not by the order it is given the entries in', () => {
      const entries = [entry(COMPLETE, 4), entry(COMPLETE, 1), entry(COMPLETE, 3), entry(COMPLETE, 2)];
      expect(pruned(entries, noAgeLimit(2))).toEqual(['complete-3d', 'complete-4d']);
    });

    it('counts COMPLETE and VERIFIED archives together', () => {
      const entries = [entry(VERIFIED, 1), entry(COMPLETE, 2), entry(COMPLETE, 3)];
      expect(pruned(entries, noAgeLimit(2))).toEqual(['complete-3d']);
    });

    it('does not count failed or creating entries towards `keep`', () => {
      const entries = [entry(CREATING, 0), entry(COMPLETE, 1), entry(FAILED, 2), entry(COMPLETE, 3), entry(COMPLETE, 4)];
      expect(pruned(entries, noAgeLimit(2))).toEqual(['complete-4d', 'failed-2d']);
    });

    it('prunes nothing when there are `keep` restorable archives or fewer', () => {
      const entries = [entry(COMPLETE, 1), entry(COMPLETE, 2)];
      expect(pruned(entries, noAgeLimit(2))).toEqual([]);
      expect(pruned(entries, noAgeLimit(3))).toEqual([]);
    });

    it('keep = 0 means no count limit', () => {
      const entries = Array.from({ length: 50 }, (_, age) => entry(COMPLETE, age + 1));
      expect(pruned(entries, noAgeLimit(0))).toEqual([]);
    });

    it('keep = 0 still prunes by age', () => {
      const entries = [entry(COMPLETE, 1), entry(COMPLETE, 10), entry(COMPLETE, 40)];
      expect(pruned(entries, { keep: 0, maxAgeDays: 30 })).toEqual(['complete-40d']);
    });
  });

  describe('max age', () => {
    it('prunes restorable archives older than maxAgeDays even within `keep`', () => {
      const entries = [entry(COMPLETE, 1), entry(COMPLETE, 31), entry(COMPLETE, 60)];
      expect(pruned(entries, { keep: 10, maxAgeDays: 30 })).toEqual(['complete-31d', 'complete-60d']);
    });

    it('keeps an archive exactly maxAgeDays old, and prunes one a millisecond older', () => {
      const newest = entry(COMPLETE, 1);
      const exactly = { id: 'exactly', createdAt: new Date(NOW.getTime() - 30 * DAY_MS), status: COMPLETE };
      const justOver = { id: 'just-over', createdAt: new Date(NOW.getTime() - 30 * DAY_MS - 1), status: COMPLETE };
      expect(pruned([newest, exactly, justOver], { keep: 10, maxAgeDays: 30 })).toEqual(['just-over']);
    });

    it('prunes both what is beyond `keep` and what is too old', () => {
      const entries = [entry(COMPLETE, 1), entry(COMPLETE, 2), entry(COMPLETE, 3), entry(COMPLETE, 45)];
      expect(pruned(entries, { keep: 2, maxAgeDays: 30 })).toEqual(['complete-3d', 'complete-45d']);
    });
  });

  describe('never leaves nothing to restore', () => {
    it('keeps the newest restorable archive even when it is older than maxAgeDays', () => {
      const entries = [entry(COMPLETE, 100), entry(COMPLETE, 200)];
      expect(pruned(entries, { keep: 10, maxAgeDays: 30 })).toEqual(['complete-200d']);
    });

    it('keeps the newest VERIFIED archive even when it is beyond `keep`', () => {
      const entries = [entry(COMPLETE, 1), entry(COMPLETE, 2), entry(COMPLETE, 3), entry(VERIFIED, 4), entry(VERIFIED, 5)];
      expect(pruned(entries, noAgeLimit(2))).toEqual(['complete-3d', 'verified-5d']);
    });

    it('keeps the newest VERIFIED archive even when it is older than maxAgeDays', () => {
      const entries = [entry(COMPLETE, 1), entry(VERIFIED, 40), entry(VERIFIED, 50)];
      expect(pruned(entries, { keep: 10, maxAgeDays: 30 })).toEqual(['verified-50d']);
    });

    it('keeps both the newest restorable and the newest VERIFIED when everything is too old and keep = 1', () => {
      const entries = [entry(COMPLETE, 100), entry(COMPLETE, 101), entry(VERIFIED, 102), entry(COMPLETE, 103)];
      expect(pruned(entries, { keep: 1, maxAgeDays: 30 })).toEqual(['complete-101d', 'complete-103d']);
    });

    it('keeps the newest VERIFIED archive, not a newer VERIFY_FAILED one', () => {
      const entries = [entry(COMPLETE, 1), entry(VERIFY_FAILED, 2), entry(VERIFIED, 3)];
      expect(pruned(entries, noAgeLimit(1))).toEqual(['verify_failed-2d']);
    });
  });

  describe('failed and creating entries', () => {
    it('prunes FAILED entries once a newer restorable archive exists, whatever their age', () => {
      const entries = [entry(COMPLETE, 1), entry(FAILED, 2), entry(FAILED, 400)];
      expect(pruned(entries, noAgeLimit(10))).toEqual(['failed-2d', 'failed-400d']);
    });

    it('keeps FAILED entries newer than the newest restorable archive', () => {
      const entries = [entry(FAILED, 1), entry(COMPLETE, 2), entry(FAILED, 3)];
      expect(pruned(entries, noAgeLimit(10))).toEqual(['failed-3d']);
    });

    it('keeps FAILED entries when there is no restorable archive at all', () => {
      const entries = [entry(FAILED, 1), entry(FAILED, 2), entry(FAILED, 400)];
      expect(pruned(entries, { keep: 1, maxAgeDays: 30 })).toEqual([]);
    });

    it('treats VERIFY_FAILED like FAILED: pruned once a newer restorable archive exists, kept until then', () => {
      expect(pruned([entry(COMPLETE, 1), entry(VERIFY_FAILED, 2)], noAgeLimit(10))).toEqual(['verify_failed-2d']);
      expect(pruned([entry(VERIFY_FAILED, 1), entry(COMPLETE, 2)], noAgeLimit(10))).toEqual([]);
    });

    it('never prunes CREATING entries, however old and however many newer archives exist', () => {
      const entries = [entry(COMPLETE, 1), entry(COMPLETE, 2), entry(CREATING, 3), entry(CREATING, 400)];
      expect(pruned(entries, { keep: 1, maxAgeDays: 30 })).toEqual(['complete-2d']);
    });
  });

  it('prunes nothing from an empty catalogue', () => {
    expect(pruned([], { keep: 1, maxAgeDays: 1 })).toEqual([]);
  });
});
