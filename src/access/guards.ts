import { ADMIN_ROLE } from '../accounts/roles';
import { syncRule } from '../shield/rules';
import { mfaRequired } from './decision';

/**
 * The viewer acts as admin: holds the role (read from the session, never the token) and, when
 * the role requires MFA, on an aal2 session (MFA_REQUIRED otherwise).
 */
export const isAdmin = syncRule('isAdmin', (_parent, _args, context) => context.access.checkRole(ADMIN_ROLE));

/**
 * Admin work that must not ride on a stolen password alone, whatever BASTION_MFA_REQUIRED_FOR
 * says (backups): the admin role, on a session confirmed with the second factor.
 */
export const isAdminOnAal2 = syncRule('isAdminOnAal2', (_parent, _args, context) => {
  const admin = context.access.checkRole(ADMIN_ROLE);
  if (admin !== true) return admin;
  return context.viewer.aal >= 2 ? true : mfaRequired();
});
