import { allow, rule } from 'graphql-shield';
import type { Context } from '../context';

/**
 * Anyone, signed in or not, may read this. Every use is a deliberate decision visible in review
 * (SECURITY.md SH-1: a type-level allow reopens field leaks).
 */
export const isPublic = allow;

/** A signed-in viewer. Reads only the context, so caching per request is safe (SH-5). */
export const isAuthenticated = rule('isAuthenticated', { cache: 'contextual' })((_parent: unknown, _args: unknown, context: Context) => context.viewer.userId !== null);

/** The viewer holds the admin role (read from the session, never the token). */
export const isAdmin = rule('isAdmin', { cache: 'contextual' })((_parent: unknown, _args: unknown, context: Context) => context.viewer.roles.includes('admin'));
