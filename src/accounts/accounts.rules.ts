import { ADMIN_ROLE } from './roles';
import { isPublic, syncRule } from '../shield/rules';
import { isAuthenticated } from './viewer';
import type { RuleTree } from '../shield/shield';
import type { Session } from './session.entity';
import type { User } from './user.entity';

/**
 * The User object is the viewer's own account (or one that signed in during this request), or
 * the viewer acts as admin (MFA_REQUIRED when admin needs aal2). One rule, not or(): it stays
 * synchronous, and an owner never gets an admin's MFA_REQUIRED.
 */
export const isOwnAccountOrAdmin = syncRule<User>(
  'isOwnAccountOrAdmin',
  (user, _args, context) =>
    user.id === context.viewer.userId || context.signedInDuringRequest.has(user.id) || context.access.checkRole(ADMIN_ROLE),
);

/** The Session object belongs to the viewer. */
const isOwnSession = syncRule<Session>(
  'isOwnSession',
  (session, _args, context) => context.viewer.userId !== null && session.userId === context.viewer.userId,
);

export const accountsRules: RuleTree = {
  Query: { me: isPublic, mySessions: isAuthenticated },
  Mutation: {
    signUp: isPublic,
    signIn: isPublic,
    refreshSession: isPublic,
    requestPasswordReset: isPublic,
    resetPassword: isPublic,
    verifyEmail: isPublic,
    signOut: isAuthenticated,
    signOutEverywhere: isAuthenticated,
    revokeSession: isAuthenticated,
    changePassword: isAuthenticated,
    requestEmailVerification: isAuthenticated,
    deleteAccount: isAuthenticated,
  },
  // AuthPayload, MfaChallenge and MfaEnrollmentRequired only ever reach the client that just proved itself.
  AuthPayload: { accessToken: isPublic, refreshToken: isPublic, accessTokenExpiresAt: isPublic, user: isPublic },
  MfaChallenge: { mfaToken: isPublic, expiresAt: isPublic, methods: isPublic },
  MfaEnrollmentRequired: {
    accessToken: isPublic,
    refreshToken: isPublic,
    accessTokenExpiresAt: isPublic,
    user: isPublic,
    methods: isPublic,
  },
  User: {
    id: isOwnAccountOrAdmin,
    email: isOwnAccountOrAdmin,
    emailVerified: isOwnAccountOrAdmin,
    roles: isOwnAccountOrAdmin,
    status: isOwnAccountOrAdmin,
    createdAt: isOwnAccountOrAdmin,
  },
  Session: {
    id: isOwnSession,
    current: isOwnSession,
    createdAt: isOwnSession,
    lastUsedAt: isOwnSession,
    ipAddress: isOwnSession,
    userAgent: isOwnSession,
    aal: isOwnSession,
  },
};
