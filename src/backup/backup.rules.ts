import { isAdminOnAal2 } from '../access/guards';
import type { RuleTree } from '../shield/shield';

/** Backups hold every row: admins on an aal2 session only, down to every field. */
export const backupRules: RuleTree = {
  Query: { backups: isAdminOnAal2 },
  Mutation: { createBackup: isAdminOnAal2, verifyBackup: isAdminOnAal2 },
  Backup: {
    id: isAdminOnAal2,
    createdAt: isAdminOnAal2,
    sizeBytes: isAdminOnAal2,
    tables: isAdminOnAal2,
    rows: isAdminOnAal2,
    schemaVersion: isAdminOnAal2,
    status: isAdminOnAal2,
    verifiedAt: isAdminOnAal2,
    verification: isAdminOnAal2,
    error: isAdminOnAal2,
    keyId: isAdminOnAal2,
  },
};
