import { allow } from 'graphql-shield';

/**
 * Anyone, signed in or not, may read this. Every use is a deliberate decision visible in review
 * (SECURITY.md SH-1: a type-level allow reopens field leaks).
 */
export const isPublic = allow;
