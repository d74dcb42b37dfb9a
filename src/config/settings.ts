import fs from 'node:fs';
import path from 'node:path';
import { Cron } from 'croner';
import { parseCidr } from '../net/ip';

/** The three environments Bastion knows; `production` switches every default to the safe one. */
export type NodeEnv = 'development' | 'production' | 'test';

/** Thrown by a parser; the message completes "NAME: …" and never repeats a secret value. */
export class SettingProblem extends Error {}

/** One environment variable: how it is read, its default, and how the README documents it. */
export interface SettingSpec<T> {
  /** Environment variable that holds it. */
  readonly env: string;
  /** One line for the README table and `bastion --help`. */
  readonly description: string;
  /** Default per environment (an optional setting's type includes `undefined`). */
  readonly fallback: (nodeEnv: NodeEnv) => T;
  /** Human-readable default for the README table. */
  readonly defaultText: string;
  readonly parse: (raw: string) => T;
  /** A secret's value is never echoed in an error message. */
  readonly secret?: boolean;
  /**
   * What production demands: the setting must be set (`mustBeSet` says why, or is empty), or a
   * value is refused (`refuse` returns the problem, e.g. "must be false in production (…)").
   */
  readonly inProduction?: { readonly mustBeSet: string } | { refuse(value: T): string | null };
}

export function spec<T>(definition: SettingSpec<T>): SettingSpec<T> {
  return definition;
}

/** A raw value as an error message may show it: quoted, and cut at 40 characters. */
export const quote = (raw: string) => JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);

/** A whole number in [min, max]. */
export function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new SettingProblem(`must be a whole number (got ${quote(raw)})`);
    const value = Number(raw.trim());
    if (value < min || value > max) {
      throw new SettingProblem(`must be between ${min} and ${max} (got ${value})`);
    }
    return value;
  };
}

/** true/false, 1/0, yes/no, on/off. */
export function boolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new SettingProblem(`must be true or false (got ${quote(raw)})`);
}

/** One of a fixed list of words (case-insensitive). */
export function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: string): T => {
    const value = raw.trim().toLowerCase() as T;
    if (!choices.includes(value)) {
      throw new SettingProblem(`must be one of ${choices.join(', ')} (got ${quote(raw)})`);
    }
    return value;
  };
}

/** Any text but an empty one. */
export function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new SettingProblem('must not be empty');
  return raw.trim();
}

const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024, gb: 1024 * 1024 * 1024 };

/** A size in b, kb, mb or gb. */
export function byteSize(min: number, max: number) {
  return (raw: string): number => {
    const match = /^(\d+)\s*(b|kb|mb|gb)?$/i.exec(raw.trim());
    if (!match) throw new SettingProblem(`must be a size such as 100kb, 1mb or 2gb (got ${quote(raw)})`);
    const value = Number(match[1]) * BYTE_UNITS[(match[2] ?? 'b').toLowerCase()];
    if (value < min || value > max) {
      throw new SettingProblem(`must be between ${min} and ${max} bytes (got ${value})`);
    }
    return value;
  };
}

/** A file this process can read (resolved against the working directory). */
export function readableFile(raw: string): string {
  const file = path.resolve(raw.trim());
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    throw new SettingProblem(`cannot read ${quote(file)}`);
  }
  return file;
}

/** IP addresses or CIDRs, comma-separated, each one the firewall's own parser accepts. */
export function networkList(raw: string): readonly string[] {
  const cidrs = raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  for (const cidr of cidrs) {
    // The firewall's own parser: what is accepted here is exactly what the firewall can match.
    if (!parseCidr(cidr))
      throw new SettingProblem(`must be a comma-separated list of IP addresses or CIDRs such as 10.0.0.0/8 (got ${quote(cidr)})`);
  }
  return Object.freeze(cidrs);
}

/** A cron expression, or off (undefined). */
export function cronOrOff(raw: string): string | undefined {
  const value = raw.trim();
  if (value.toLowerCase() === 'off') return undefined;
  try {
    new Cron(value, { paused: true }).stop();
  } catch (error) {
    throw new SettingProblem(`must be a cron expression such as "17 3 * * *", or off (${(error as Error).message})`);
  }
  return value;
}

/** An absolute URL (an app deep link such as myapp://auth counts), without a trailing slash. */
export function absoluteUrl(raw: string): string {
  try {
    const url = new URL(raw.trim());
    return url.toString().replace(/\/$/, '');
  } catch {
    throw new SettingProblem(`must be an absolute URL such as https://api.example.com or myapp://auth (got ${quote(raw)})`);
  }
}

/** CIDRs such as 10.0.0.0/8 or fd00::/8; a bare address means that one host. */
export function cidrList(raw: string): readonly string[] {
  const cidrs = networkList(raw);
  for (const cidr of cidrs) {
    if (cidr.split('/')[1] === '0')
      throw new SettingProblem(`${quote(cidr)} would trust every address, so anyone could forge X-Forwarded-For`);
  }
  return cidrs;
}
