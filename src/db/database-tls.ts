import net from 'node:net';

/**
 * How a PostgreSQL connection URL reaches its server, read the way pg reads it: a `host` query
 * parameter wins over the URL's host, and a host that starts with `/` is a Unix socket folder.
 */
export function databaseHostOf(url: string): string {
  const parsed = new URL(url);
  const fromQuery = parsed.searchParams.get('host');
  if (fromQuery) return fromQuery;
  return decodeURIComponent(parsed.hostname).replace(/^\[(.+)\]$/, '$1');
}

/**
 * True when the connection never leaves this machine: a Unix socket, `localhost`, or a loopback
 * address (127.0.0.0/8, ::1). An empty host is not local: pg would then take PGHOST, which may name
 * any server.
 */
export function isLocalDatabase(url: string): boolean {
  const host = databaseHostOf(url).toLowerCase();
  if (host.startsWith('/')) return true;
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return net.isIPv6(host) && (host === '::1' || /^::ffff:127\./.test(host));
}

/**
 * The URL with BASTION_DATABASE_CA_FILE applied as pg reads it: `sslmode=verify-full` (TLS,
 * the chain checked against that CA, the host name against the certificate) and
 * `sslrootcert=<file>`. Carried in the URL itself so that every connection Bastion opens from it
 * (the pool, LISTEN, backups, verification's scratch databases, restores) is checked alike. A
 * contradicting sslmode or sslrootcert already in the URL is left for `databaseCaProblem` to report.
 */
export function withDatabaseCa(url: string, caFile: string | undefined): string {
  if (caFile === undefined) return url;
  const parsed = new URL(url);
  if (!parsed.searchParams.has('sslmode')) parsed.searchParams.set('sslmode', 'verify-full');
  if (!parsed.searchParams.has('sslrootcert')) parsed.searchParams.set('sslrootcert', caFile);
  return parsed.toString();
}

/** A URL that says something else than the CA file does (checked on the URL `withDatabaseCa` produced). */
export function databaseCaProblem(url: string, caFile: string | undefined): string | null {
  if (caFile === undefined) return null;
  const parameters = new URL(url).searchParams;
  if (parameters.get('sslmode') !== 'verify-full')
    return `says sslmode=${parameters.get('sslmode')}, but BASTION_DATABASE_CA_FILE asks for verify-full: drop one of them`;
  if (parameters.get('sslrootcert') !== caFile) return 'names its own sslrootcert as well as BASTION_DATABASE_CA_FILE: keep one';
  return null;
}

/**
 * Why a connection URL is unsafe on a server, or null: anything but a local server must be reached
 * over TLS with the certificate checked (`sslmode=verify-full`; pg checks the chain against
 * `sslrootcert`, or Node's CA list without it, and the host name). `require`, `prefer`, `verify-ca`
 * (no host-name check in libpq's meaning) and `no-verify` accept whoever answers.
 */
export function databaseTlsProblem(url: string): string | null {
  if (isLocalDatabase(url) || new URL(url).searchParams.get('sslmode') === 'verify-full') return null;
  return (
    `${unverifiedConnection(url)}: in production a database that is not on this machine needs TLS with certificate checks ` +
    '(add sslmode=verify-full, or set BASTION_DATABASE_CA_FILE)'
  );
}

/** "reaches db.example.com without TLS" (or "with sslmode=require"). */
export function unverifiedConnection(url: string): string {
  const sslmode = new URL(url).searchParams.get('sslmode');
  return `reaches ${databaseHostOf(url) || 'its server'} ${sslmode ? `with sslmode=${sslmode}` : 'without TLS'}`;
}
