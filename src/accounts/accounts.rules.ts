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

/**
 * The Session object belongs to the viewer (mySessions), or the viewer acts as admin (userSessions;
 * MFA_REQUIRED when admin needs aal2). One rule, for the reasons of isOwnAccountOrAdmin.
 */
const isOwnSessionOrAdmin = syncRule<Session>(
  'isOwnSessionOrAdmin',
  (session, _args, context) =>
    (context.viewer.userId !== null && session.userId === context.viewer.userId) || context.access.checkRole(ADMIN_ROLE),
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
    id: isOwnSessionOrAdmin,
    current: isOwnSessionOrAdmin,
    createdAt: isOwnSessionOrAdmin,
    lastUsedAt: isOwnSessionOrAdmin,
    ipAddress: isOwnSessionOrAdmin,
    userAgent: isOwnSessionOrAdmin,
    aal: isOwnSessionOrAdmin,
  },
};
