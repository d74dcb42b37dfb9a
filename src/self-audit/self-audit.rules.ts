import { isAdmin } from '../access/guards';
import type { RuleTree } from '../shield/shield';

export const selfAuditRules: RuleTree = {
  Query: { securityAudit: isAdmin },
  SecurityAuditReport: { ranAt: isAdmin, passed: isAdmin, warnings: isAdmin, failures: isAdmin, checks: isAdmin },
  SecurityCheck: { id: isAdmin, measure: isAdmin, status: isAdmin, detail: isAdmin, remedy: isAdmin },
};
