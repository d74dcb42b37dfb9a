import type { Request } from 'express';
import { configWith } from '../../src/settings';
import { proxyTrust } from '../../src/http/client-ip';
import { normalizeIp } from '../../src/net/ip';
import { transportWarning } from '../../src/http/tls';

function request(peer: string, headers: Record<string, string> = {}): Request {
  return { socket: { remoteAddress: peer }, headers } as unknown as Request;
}

describe('client IP behind proxies', () => {
  const behindProxy = proxyTrust(['10.0.0.0/8', 'fd00::/8'], false);

  it('ignores X-Forwarded-For from anyone who is not a trusted proxy', () => {
    expect(proxyTrust([], false).clientIp(request('203.0.113.7', { 'x-forwarded-for': '1.2.3.4' }))).toBe('203.0.113.7');
    expect(behindProxy.clientIp(request('198.51.100.1', { 'x-forwarded-for': '1.2.3.4' }))).toBe('198.51.100.1');
  });

  it('takes the right-most address that is not a trusted proxy', () => {
    expect(behindProxy.clientIp(request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, 203.0.113.9' }))).toBe('203.0.113.9');
    expect(behindProxy.clientIp(request('10.0.0.2', { 'x-forwarded-for': '203.0.113.9, 10.0.0.3' }))).toBe('203.0.113.9');
    expect(behindProxy.clientIp(request('::ffff:10.0.0.2', { 'x-forwarded-for': '2001:db8::5' }))).toBe('2001:db8::5');
    expect(behindProxy.clientIp(request('fd00::1', { 'x-forwarded-for': '203.0.113.9' }))).toBe('203.0.113.9');
  });

  it('stops at garbage in the chain instead of believing what lies left of it', () => {
    expect(behindProxy.clientIp(request('10.0.0.2', { 'x-forwarded-for': '6.6.6.6, not-an-ip' }))).toBe('10.0.0.2');
    expect(behindProxy.clientIp(request('10.0.0.2'))).toBe('10.0.0.2');
  });

  it('believes X-Forwarded-Proto only from a trusted proxy', () => {
    expect(behindProxy.isSecure(request('10.0.0.2', { 'x-forwarded-proto': 'https' }))).toBe(true);
    expect(behindProxy.isSecure(request('203.0.113.7', { 'x-forwarded-proto': 'https' }))).toBe(false);
    expect(proxyTrust([], true).isSecure(request('203.0.113.7'))).toBe(true);
  });

  it('normalises IPv4-mapped IPv6 addresses', () => {
    expect(normalizeIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeIp('2001:db8::1')).toBe('2001:db8::1');
  });
});

describe('transport warning', () => {
  const production = { nodeEnv: 'production' as const };
  it('is loud in production with neither TLS nor a trusted proxy, silent otherwise', () => {
    expect(transportWarning(configWith({ ...production }))).toMatch(/^NO TLS/);
    expect(transportWarning(configWith({ ...production, trustProxy: ['10.0.0.0/8'] }))).toBeUndefined();
    expect(transportWarning(configWith({}))).toBeUndefined();
  });
});
