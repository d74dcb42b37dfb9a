import type { EntityManager } from 'typeorm';
import { AppError } from '../errors';

/** "bstadmin" in ASCII: every change that could remove an active admin takes it first. */
const ADMINS_LOCK_KEY = '7094141799684204910';

/**
 * Refuses a change (unassigning admin, suspending or deleting the account) that would leave no
 * active admin, since no one could then manage Bastion through the API. Changes that could remove
 * an admin are serialised by one transaction-scoped advisory lock, so two admins removing each
 * other at the same time cannot both succeed. Call inside the changing transaction, before it.
 */
export async function keepAnActiveAdmin(manager: EntityManager, userId: string): Promise<void> {
  await manager.query('SELECT pg_advisory_xact_lock($1)', [ADMINS_LOCK_KEY]);
  const [{ holds, others }] = await manager.query<{ holds: boolean | null; others: number }[]>(
    `SELECT bool_or(ur.user_id = $1) AS holds, count(*) FILTER (WHERE ur.user_id <> $1 AND u.status = 'active')::int AS others
       FROM user_roles ur JOIN users u ON u.id = ur.user_id
      WHERE ur.role_name = 'admin'`,
    [userId],
  );
  if (holds && others === 0)
    throw new AppError('CONFLICT', 'This is the last active admin: assign admin to someone else first (or use `bastion admin create`).');
}
