import { AppError } from '../errors';

/** Every viewer holds `anonymous`; every signed-in account also holds `user`. */
export const ANONYMOUS_ROLE = 'anonymous';
export const USER_ROLE = 'user';
export const ADMIN_ROLE = 'admin';
export const BUILT_IN_ROLES = [ANONYMOUS_ROLE, USER_ROLE, ADMIN_ROLE] as const;

/** The answer to a viewer who holds a role that needs a session confirmed with the second factor. */
export function mfaRequired(): AppError {
  return new AppError(
    'MFA_REQUIRED',
    'This needs a session confirmed with your second factor: sign in again and complete verifyMfa (enroll one with enrollTotp first if you have none).',
  );
}
