import { isPublic } from '../shield/rules';
import { isOwnAccountOrAdmin } from '../accounts/accounts.rules';
import { isAuthenticated } from '../accounts/viewer';
import type { RuleTree } from '../shield/shield';

export const mfaRules: RuleTree = {
  Mutation: {
    enrollTotp: isAuthenticated,
    confirmTotp: isAuthenticated,
    verifyMfa: isPublic,
    disableTotp: isAuthenticated,
    regenerateRecoveryCodes: isAuthenticated,
  },
  // Returned only to the signed-in user who asked for them.
  TotpEnrollment: { factorId: isAuthenticated, secret: isAuthenticated, otpauthUri: isAuthenticated, qrCodeSvg: isAuthenticated },
  RecoveryCodes: { codes: isAuthenticated },
  User: { mfaEnabled: isOwnAccountOrAdmin },
};
