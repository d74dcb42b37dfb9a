import { isAdmin } from '../access/guards';
import type { RuleTree } from '../shield/shield';

/** The audit log is admin business, down to every field. */
export const auditRules: RuleTree = {
  Query: { auditEvents: isAdmin, verifyAuditLog: isAdmin, auditLogHead: isAdmin },
  AuditEvent: {
    id: isAdmin,
    at: isAdmin,
    action: isAdmin,
    outcome: isAdmin,
    actorId: isAdmin,
    targetType: isAdmin,
    targetId: isAdmin,
    ipAddress: isAdmin,
    userAgent: isAdmin,
    requestId: isAdmin,
    metadata: isAdmin,
  },
  AuditEventEdge: { cursor: isAdmin, node: isAdmin },
  AuditEventConnection: { edges: isAdmin, pageInfo: isAdmin },
  AuditLogVerification: { ok: isAdmin, checked: isAdmin, firstBrokenId: isAdmin },
  AuditChainHead: { id: isAdmin, hash: isAdmin, at: isAdmin },
};
