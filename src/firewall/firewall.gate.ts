import type { NextFunction, Request, Response } from 'express';
import { sendError } from '../http/http-errors';
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
      const verdict = await firewall.check(req.clientIp);
      if (verdict.action === FirewallAction.ALLOW) {
        next();
        return;
      }
      hits.record('ip_blocked', req.clientIp, { rule: verdict.rule?.id ?? 'FIREWALL_DEFAULT', path: req.path });
      sendError(res, 'IP_BLOCKED', 'Requests from your network are not allowed.');
    } catch (error) {
      next(error);
    }
  };
}
