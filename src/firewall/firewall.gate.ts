import type { NextFunction, Request, Response } from 'express';
import { sendError } from '../http/http-errors';
import { loggablePath } from '../http/request-id';
import { FirewallAction } from './firewall-rule.entity';
import type { FirewallService } from './firewall.service';
import type { HitLog } from './hit-log';

/**
 * The first thing a request meets after its client address is resolved: a denied address gets
 * HTTP 403 with a GraphQL-shaped error (code IP_BLOCKED) and no GraphQL work at all.
 */
export function firewallGate(firewall: FirewallService, hits: HitLog) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      if (!(await isBlocked(firewall, hits, req.clientIp, loggablePath(req.path)))) {
        next();
        return;
      }
      sendError(res, 'IP_BLOCKED', 'Requests from your network are not allowed.');
    } catch (error) {
      next(error);
    }
  };
}

/** Do the IP rules deny this address? A denial is counted as an `ip_blocked` hit on `path` (an HTTP path, or `websocket`). */
export async function isBlocked(firewall: FirewallService, hits: HitLog, address: string, path: string): Promise<boolean> {
  const verdict = await firewall.check(address);
  if (verdict.action === FirewallAction.ALLOW) return false;
  hits.record('ip_blocked', address, { rule: verdict.rule?.id ?? 'FIREWALL_DEFAULT', path });
  return true;
}
