import type { EntityManager } from 'typeorm';
import { isUuid } from '../db/uuid';

/**
 * Locks one account's row until the transaction ends: serialises the changes to one account
 * (sign-ins, factor changes, role changes, suspension). False when there is no such account.
 */
export async function lockUserRow(manager: EntityManager, userId: string): Promise<boolean> {
  if (!isUuid(userId)) return false;
  const rows: unknown[] = await manager.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [userId]);
  return rows.length > 0;
}
