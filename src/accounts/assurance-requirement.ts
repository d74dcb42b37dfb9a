/**
 * Whether roles need a session confirmed with the second factor (aal2), as enforced: built-ins
 * follow BASTION_MFA_REQUIRED_FOR, custom roles their requireMfa flag. The access feature owns
 * roles and answers (service `assuranceRequirement`); accounts asks after a password sign-in, so
 * an account that has no factor yet is told to enrol one (MfaEnrollmentRequired) instead of
 * meeting MFA_REQUIRED on its first call.
 */
export interface AssuranceRequirement {
  rolesNeedSecondFactor(roles: readonly string[]): Promise<boolean>;
}
