import { isPublic } from '../shield/rules';
import type { RuleTree } from '../shield/shield';

export const systemRules: RuleTree = {
  Query: { serverInfo: isPublic },
  ServerInfo: { name: isPublic, version: isPublic, serverTime: isPublic },
  // Only cursors and a flag; every list that returns it guards its own items.
  PageInfo: { hasNextPage: isPublic, endCursor: isPublic },
};
