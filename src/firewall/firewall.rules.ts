import { isAdmin } from '../access/guards';
import type { RuleTree } from '../shield/shield';

export const firewallRules: RuleTree = {
  Query: { firewallRules: isAdmin, rateLimits: isAdmin },
  Mutation: { addFirewallRule: isAdmin, removeFirewallRule: isAdmin },
  FirewallRule: { id: isAdmin, cidr: isAdmin, action: isAdmin, note: isAdmin, expiresAt: isAdmin, createdAt: isAdmin, createdBy: isAdmin },
  RateLimitSettings: { enabled: isAdmin, store: isAdmin, limits: isAdmin },
  RateLimitSetting: { name: isAdmin, description: isAdmin, limit: isAdmin, windowSeconds: isAdmin, setting: isAdmin },
};
