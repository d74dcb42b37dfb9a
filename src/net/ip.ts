import net from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * IP addresses and networks for the firewall, the admin networks, the trusted proxies and the
 * login throttle. Parsing is ipaddr.js's; what is Bastion's is the strictness (IPv4 only in
 * four-part decimal, no whitespace inside), IPv4-mapped IPv6 read as IPv4 however it is written,
 * and the longest-prefix table.
 */

/** A parsed network: its family, its first address as a number, and its prefix length. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}

/** An address as a number, with its family. */
export interface AddressValue {
  readonly family: 4 | 6;
  readonly value: bigint;
}

const BITS = { 4: 32, 6: 128 } as const;

/**
 * `::ffff:10.1.2.3` → `10.1.2.3`, so IPv4 rules match IPv4 clients on a dual-stack socket; a
 * proxy's `1.2.3.4:5678` or `[2001:db8::1]:443` → the address alone. Anything else is returned as
 * it is (callers check that it is an address).
 */
export function normalizeIp(address: string): string {
  const bare = withoutPort(address);
  const parsed = parse(bare);
  return parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress() ? parsed.toIPv4Address().toString() : bare;
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[2001:db8::1]:443` → `2001:db8::1`; anything else as it is. */
function withoutPort(address: string): string {
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/i.exec(address);
  const withPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(address);
  return bracketed?.[1] ?? withPort?.[1] ?? address;
}

/**
 * An address, IPv4 only in four-part decimal (no `1.2.3`, no hexadecimal). Node's checks decide
 * what is an address (they are strict, and ten times faster than ipaddr.js's on the firewall's
 * per-request path); ipaddr.js reads it.
 */
function parse(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  if (net.isIPv4(text)) return ipaddr.IPv4.parse(text);
  if (net.isIPv6(text)) return ipaddr.IPv6.parse(text);
  return null;
}

function toBigInt(bytes: readonly number[]): bigint {
  return bytes.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
}

/** An address as a number (IPv4-mapped IPv6 addresses count as IPv4). Null for anything that is not an IP address. */
export function addressValue(address: string): AddressValue | null {
  const parsed = parse(withoutPort(address.trim()));
  if (!parsed) return null;
  if (parsed instanceof ipaddr.IPv4) return { family: 4, value: toBigInt(parsed.toByteArray()) };
  if (parsed.isIPv4MappedAddress()) return { family: 4, value: toBigInt(parsed.toIPv4Address().toByteArray()) };
  return { family: 6, value: toBigInt(parsed.toByteArray()) };
}

/** Whether the text is an IP address Bastion reads. */
export function isIpAddress(text: string): boolean {
  return parse(text) !== null;
}

function mask(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  return prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << (bits - BigInt(prefix));
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128). Null when it is not one. */
export function parseCidr(text: string): Cidr | null {
  const [address, prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const parsed = addressValue(address);
  if (!parsed) return null;
  const bits = BITS[parsed.family];
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return null;
  return { family: parsed.family, network: parsed.value & mask(parsed.family, prefix), prefix };
}

/** The canonical text of a network (host bits cleared, IPv6 as RFC 5952 has it): what is stored and shown. */
export function formatCidr(cidr: Cidr): string {
  const length = BITS[cidr.family] / 8;
  const bytes = Array.from({ length }, (_, index) => Number((cidr.network >> BigInt((length - 1 - index) * 8)) & 0xffn));
  const address = ipaddr.fromByteArray(bytes);
  return `${address instanceof ipaddr.IPv6 ? address.toRFC5952String() : address.toString()}/${cidr.prefix}`;
}

export function containsAddress(cidr: Cidr, address: AddressValue): boolean {
  return cidr.family === address.family && (address.value & mask(cidr.family, cidr.prefix)) === cidr.network;
}

/**
 * The address a per-IP budget belongs to: an IPv4 address, or an IPv6 /64 (one customer's
 * network: anyone can rotate through the addresses inside it). The text is what the login
 * throttle stores, so it must not change: `2001:db8:1:2::/64`, groups without leading zeros.
 */
export function addressBucket(ipAddress: string | null): string {
  if (!ipAddress) return 'unknown';
  const parsed = parse(ipAddress);
  if (!(parsed instanceof ipaddr.IPv6)) return ipAddress;
  const groups = parsed.parts.slice(0, 4).map((group) => group.toString(16));
  return `${groups.join(':')}::/64`;
}

/**
 * Longest-prefix match over many networks: entries are grouped by family and prefix length, so a
 * lookup is one masked Map probe per distinct prefix length (at most 33 for IPv4), however many
 * networks there are.
 */
export class PrefixTable<T> {
  private readonly byLength = new Map<4 | 6, { prefix: number; mask: bigint; entries: Map<bigint, T> }[]>();

  constructor(entries: Iterable<readonly [Cidr, T]>) {
    for (const [cidr, value] of entries) {
      const levels = this.byLength.get(cidr.family) ?? [];
      let level = levels.find((candidate) => candidate.prefix === cidr.prefix);
      if (!level) {
        level = { prefix: cidr.prefix, mask: mask(cidr.family, cidr.prefix), entries: new Map() };
        levels.push(level);
      }
      // Two entries for one network: the first wins (callers order them).
      if (!level.entries.has(cidr.network)) level.entries.set(cidr.network, value);
      this.byLength.set(cidr.family, levels);
    }
    for (const levels of this.byLength.values()) levels.sort((a, b) => b.prefix - a.prefix);
  }

  /** The value of the most specific network containing the address, or undefined. */
  lookup(address: string): T | undefined {
    const parsed = addressValue(address);
    if (!parsed) return undefined;
    for (const level of this.byLength.get(parsed.family) ?? []) {
      const hit = level.entries.get(parsed.value & level.mask);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}
