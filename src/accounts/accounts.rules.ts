import { or, rule } from 'graphql-shield';
import { isAdmin, isAuthenticated, isPublic } from '../access/rules';
import type { RuleTree } from '../access/shield';
import type { Context } from '../context';
import type { Session } from './session.entity';
import type { User } from './user.entity';

/** The User object is the viewer's own account, or one that signed in during this request. Reads `parent`: no cache (SH-5). */
const isOwnAccount = rule('isOwnAccount', { cache: 'no_cache' })((user: User, _args: unknown, context: Context) => user.id === context.viewer.userId || context.signedInDuringRequest.has(user.id));

/** The Session object belongs to the viewer. */
const isOwnSession = rule('isOwnSession', { cache: 'no_cache' })((session: Session, _args: unknown, context: Context) => context.viewer.userId !== null && session.userId === context.viewer.userId);

const isOwnAccountOrAdmin = or(isOwnAccount, isAdmin);

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
  // AuthPayload and MfaChallenge only ever reach the client that just proved itself.
  AuthPayload: { accessToken: isPublic, refreshToken: isPublic, accessTokenExpiresAt: isPublic, user: isPublic },
  MfaChallenge: { mfaToken: isPublic, expiresAt: isPublic, methods: isPublic },
  User: { id: isOwnAccountOrAdmin, email: isOwnAccountOrAdmin, emailVerified: isOwnAccountOrAdmin, roles: isOwnAccountOrAdmin, mfaEnabled: isOwnAccountOrAdmin, createdAt: isOwnAccountOrAdmin },
  Session: { id: isOwnSession, current: isOwnSession, createdAt: isOwnSession, lastUsedAt: isOwnSession, ipAddress: isOwnSession, userAgent: isOwnSession, aal: isOwnSession },
};
