import type { RuleTree } from '../shield/shield';
import { isAdmin } from './guards';

/** Roles and grants are admin business, down to every field of their types. */
export const accessRules: RuleTree = {
  Query: { roles: isAdmin, permissionMatrix: isAdmin, users: isAdmin, userSessions: isAdmin },
  Mutation: {
    createRole: isAdmin,
    deleteRole: isAdmin,
    assignRole: isAdmin,
    unassignRole: isAdmin,
    grantPermission: isAdmin,
    revokePermission: isAdmin,
    setUserStatus: isAdmin,
    adminRevokeSessions: isAdmin,
  },
  Role: { name: isAdmin, description: isAdmin, builtIn: isAdmin, requireMfa: isAdmin },
  PermissionGrant: { id: isAdmin, role: isAdmin, model: isAdmin, action: isAdmin, scope: isAdmin, fields: isAdmin, filter: isAdmin },
  UserConnection: { edges: isAdmin, pageInfo: isAdmin, totalCount: isAdmin },
  UserEdge: { cursor: isAdmin, node: isAdmin },
};
