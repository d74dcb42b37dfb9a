import net from 'node:net';
import { normalizeIp } from '../http/client-ip';

/** A parsed network: its family, its first address as a number, and its prefix length. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

/** An address as a number (IPv4-mapped IPv6 addresses count as IPv4). Null for anything that is not an IP address. */
export function addressValue(address: string): { family: 4 | 6; value: bigint } | null {
  const ip = normalizeIp(address.trim());
  const family = net.isIP(ip);
  if (family === 4) return { family: 4, value: ip.split('.').reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n) };
  if (family !== 6) return null;
  // Expand "::" and any embedded IPv4 tail into eight 16-bit groups.
  let text = ip.split('%')[0];
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail) {
    const v4 = addressValue(v4Tail[1])!.value;
    text = text.slice(0, -v4Tail[1].length) + `${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const value = groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group || '0', 16)), 0n);
  // An IPv4-mapped address however it is written (::ffff:102:304, 0:0:0:0:0:ffff:1.2.3.4) is the IPv4 address.
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
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

/** The canonical text of a network (host bits cleared): what is stored and shown. */
export function formatCidr(cidr: Cidr): string {
  if (cidr.family === 4) {
    const octets = [24n, 16n, 8n, 0n].map((shift) => String((cidr.network >> shift) & 0xffn));
    return `${octets.join('.')}/${cidr.prefix}`;
  }
  const groups = Array.from({ length: 8 }, (_, index) => ((cidr.network >> BigInt((7 - index) * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let best = { start: -1, length: 0 };
  for (let start = 0; start < 8; start += 1) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === '0') length += 1;
    if (length > best.length && length > 1) best = { start, length };
  }
  const text =
    best.start < 0 ? groups.join(':') : `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.length).join(':')}`;
  return `${text}/${cidr.prefix}`;
}

export function containsAddress(cidr: Cidr, address: { family: 4 | 6; value: bigint }): boolean {
  return cidr.family === address.family && (address.value & mask(cidr.family, cidr.prefix)) === cidr.network;
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
