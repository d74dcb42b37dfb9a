import net from 'node:net';
import type { NextFunction, Request, Response } from 'express';

declare module 'express-serve-static-core' {
  interface Request {
    /** The client's address, resolved once per request through TRUST_PROXY. */
    clientIp: string;
  }
}

/**
 * `::ffff:10.1.2.3` → `10.1.2.3`, so IPv4 rules match IPv4 clients on a dual-stack socket; a
 * proxy's `1.2.3.4:5678` or `[2001:db8::1]:443` → the address alone.
 */
export function normalizeIp(address: string): string {
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/i.exec(address);
  const withPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(address);
  const bare = bracketed?.[1] ?? withPort?.[1] ?? address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped ? mapped[1] : bare;
}

function blockListOf(cidrs: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split('/');
    const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
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
  const trusted = blockListOf(trustProxy);
  const isTrusted = (address: string) => {
    const family = net.isIP(address);
    return family !== 0 && trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
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
        if (net.isIP(hop) === 0) break;
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
