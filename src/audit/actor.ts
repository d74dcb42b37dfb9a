import type { Context } from '../context';

/** Where a request came from, for session rows and the audit log. */
export interface RequestOrigin {
  readonly ipAddress: string | null;
  readonly userAgent: string | null;
  readonly requestId: string | null;
}

/** Who makes a change, and from where: the audit row's actor. */
export interface Actor extends RequestOrigin {
  readonly actorId: string | null;
}

/** Work a server does by itself on a schedule (self-audit, backups): no account, no address. */
export const SCHEDULE_ACTOR: Actor = Object.freeze({ actorId: null, ipAddress: null, userAgent: 'bastion-schedule', requestId: null });

/** Changes made from the CLI: no account, no address (so no lockout check: the CLI is the way back in). */
export const CLI_ACTOR: Actor = Object.freeze({ actorId: null, ipAddress: null, userAgent: 'bastion-cli', requestId: null });

/** Where the request came from. */
export function originOf(context: Context): RequestOrigin {
  return { ipAddress: context.ipAddress, userAgent: context.userAgent, requestId: context.requestId };
}

/** Who is changing something, and from where, for the audit row. */
export function actorOf(context: Context): Actor {
  return { actorId: context.viewer.userId, ...originOf(context) };
}
