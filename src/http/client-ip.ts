import type { NextFunction, Request, Response } from 'express';
import proxyaddr from 'proxy-addr';
import { isIpAddress, normalizeIp } from '../net/ip';

declare module 'express-serve-static-core' {
  interface Request {
    /** The client's address, resolved once per request through TRUST_PROXY. */
    clientIp: string;
  }
}

export interface ProxyTrust {
  /** The client's address: the socket peer, or what a trusted proxy says it saw. */
  clientIp(req: Request): string;
  /** Whether the client reached us over TLS: our own, or a trusted proxy's. */
  isSecure(req: Request): boolean;
}

/**
 * X-Forwarded-For and X-Forwarded-Proto are believed only from TRUST_PROXY addresses. The chain is
 * read from the right: the first address that is not a trusted proxy is the client, so a client
 * cannot push a fake address in front of what our own proxy appended.
 */
export function proxyTrust(trustProxy: readonly string[], ownTls: boolean): ProxyTrust {
  // proxy-addr's matcher (Express's own): IPv4-mapped peers match IPv4 networks; garbage matches nothing.
  const trusted = proxyaddr.compile([...trustProxy]);
  const isTrusted = (address: string) => isIpAddress(address) && trusted(address, 0);
  const peerOf = (req: Request) => normalizeIp(req.socket.remoteAddress ?? '');

  return {
    clientIp(req) {
      let client = peerOf(req);
      if (!isTrusted(client)) return client;
      const forwarded = (req.headers['x-forwarded-for'] ?? '')
        .toString()
        .split(',')
        .map((part) => normalizeIp(part.trim()));
      for (let index = forwarded.length - 1; index >= 0; index -= 1) {
        const hop = forwarded[index];
        if (!isIpAddress(hop)) break;
        client = hop;
        if (!isTrusted(hop)) break;
      }
      return client;
    },
    isSecure(req) {
      if (ownTls) return true;
      if (!isTrusted(peerOf(req))) return false;
      const proto = (req.headers['x-forwarded-proto'] ?? '').toString().split(',').pop()?.trim().toLowerCase();
      return proto === 'https';
    },
  };
}

/** Resolves `req.clientIp` once, before anything logs or rate-limits by it. */
export function resolveClientIp(trust: ProxyTrust) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    req.clientIp = trust.clientIp(req);
    next();
  };
}
