/** Every viewer holds `anonymous`; every signed-in account also holds `user`. */
export const ANONYMOUS_ROLE = 'anonymous';
export const USER_ROLE = 'user';
export const ADMIN_ROLE = 'admin';
export const BUILT_IN_ROLES = [ANONYMOUS_ROLE, USER_ROLE, ADMIN_ROLE] as const;
