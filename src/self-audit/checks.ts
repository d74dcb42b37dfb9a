import fs from 'node:fs';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { CONSOLE_BUILD_DIR } from '../console/console-pages';
import { fallbackDenies } from '../shield/coverage';
import type { AuditMetadata } from '../audit/audit-event.entity';
import { AuditChainPosition, verifyAuditChainSince } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { Config } from '../config';
import { databaseHostOf, databaseTlsProblem, isLocalDatabase, unverifiedConnection } from '../db/database-tls';
import type { BackupOptions } from '../backup/backup.service';
import type { KeyService } from '../crypto/key.service';
import type { Keyring } from '../crypto/keyring';

export const MEASURES = ['encryption', 'access_control', 'firewall', 'backups', 'audits'] as const;
export type Measure = (typeof MEASURES)[number];
export type CheckStatus = 'PASS' | 'WARN' | 'FAIL';

/** One finding: `<measure>.<check>`, what was found, and what to do about it. */
export interface SecurityCheck {
  readonly id: string;
  readonly measure: Measure;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to change; null when it passes. */
  readonly remedy: string | null;
}

/** What the checks read: the running configuration and the database, never a feature's tables directly but through its service or its own query. */
export interface CheckContext {
  readonly config: Config;
  readonly dataSource: DataSource;
  readonly clock: Clock;
  readonly keys: KeyService;
  readonly keyring: Keyring;
  readonly backups: BackupOptions;
  /** Where the keyring came from: settings, or the development key file. */
  readonly developmentKeys: boolean;
  /** The schema's fields without an explicit rule (the coverage walk). */
  readonly unruledFields: () => Promise<string[]>;
  /** Tests: the log size up to which the chain is walked whole (CHAIN_FULL_VERIFY_MAX_EVENTS). */
  readonly chainFullVerifyMaxEvents?: number;
}

export const DAY_MS = 24 * 60 * 60 * 1000;
/** A current signing key older than this should be rotated. */
const SIGNING_KEY_MAX_AGE_DAYS = 180;
/** A newest backup older than this misses a daily schedule (with an hour's slack). */
const BACKUP_MAX_AGE_HOURS = 25;
/** A newest proven restore older than this misses a weekly verification (with a day's slack). */
const VERIFIED_RESTORE_MAX_AGE_DAYS = 8;
/** The chain is walked whole while it spans at most this many events (a second or two); beyond, from the last run's position. */
const CHAIN_FULL_VERIFY_MAX_EVENTS = 100_000;
/** ... and whole at least this often, so an edit behind the recorded position is found within a week. */
const CHAIN_FULL_VERIFY_MAX_AGE_DAYS = 7;
/** A self-audit older than this is stale. */
const SELF_AUDIT_MAX_AGE_DAYS = 7;

/** Apollo Studio and Sandbox (studio.apollographql.com, sandbox.embed.apollographql.com): pages anyone can load a token into. */
function isApolloStudioOrigin(origin: string): boolean {
  const host = new URL(origin).hostname;
  return host === 'apollographql.com' || host.endsWith('.apollographql.com');
}

/** A check's finding, and what it asks the run's audit event to record for the next run. */
export type CheckOutcome = Omit<SecurityCheck, 'id' | 'measure'> & { readonly record?: AuditMetadata };

/** A check of one measure, run on the context it reads (a feature's checks may need more than CheckContext). */
export interface CheckDefinition<C extends CheckContext = CheckContext> {
  readonly id: string;
  readonly measure: Measure;
  readonly run: (context: C) => Promise<CheckOutcome>;
}

export const pass = (detail: string) => ({ status: 'PASS' as const, detail, remedy: null });
export const warn = (detail: string, remedy: string) => ({ status: 'WARN' as const, detail, remedy });
export const fail = (detail: string, remedy: string) => ({ status: 'FAIL' as const, detail, remedy });
/** In production a problem fails; elsewhere it warns (a development machine is allowed its shortcuts). */
const failInProduction = (context: CheckContext, detail: string, remedy: string) =>
  context.config.nodeEnv === 'production' ? fail(detail, remedy) : warn(detail, remedy);

/**
 * The checks of the configuration, the keys and the platform's tables, by measure, in report
 * order; the files feature's are in files-checks.ts, and the report merges both by measure.
 */
export const CHECKS: readonly CheckDefinition[] = [
  {
    id: 'encryption.keys_configured',
    measure: 'encryption',
    run: async (context) =>
      context.developmentKeys
        ? failInProduction(
            context,
            'Column keys come from the development key file generated in the data folder.',
            'Set BASTION_ENCRYPTION_KEYS and BASTION_BLIND_INDEX_KEY from your secret store (bastion keys generate), then bastion keys reencrypt.',
          )
        : pass('Column keys come from BASTION_ENCRYPTION_KEYS and BASTION_BLIND_INDEX_KEY.'),
  },
  {
    id: 'encryption.retired_keys_unused',
    measure: 'encryption',
    run: async (context) => {
      const status = await context.keys.status();
      const onOlderKeys = (label: string, byKid: Readonly<Record<string, number>>) =>
        Object.entries(byKid)
          .filter(([kid, count]) => kid !== status.currentKid && count > 0)
          .map(([kid, count]) => `${label}: ${count} on ${kid}`);
      // Columns, and what features keep under the keys besides (file contents).
      const stale = [
        ...status.columns.flatMap((column) => onOlderKeys(`${column.table}.${column.column}`, column.rowsByKid)),
        ...status.keyedData.flatMap((data) => onOlderKeys(data.label, data.byKid)),
      ];
      return stale.length === 0
        ? pass(`Every encrypted value is on the current key ${status.currentKid}.`)
        : warn(
            `Values still on older keys: ${stale.join('; ')}.`,
            'Run bastion keys reencrypt, then drop the old key from the keyring once bastion keys status shows it retired.',
          );
    },
  },
  {
    id: 'encryption.blind_index_rotation',
    measure: 'encryption',
    run: async (context) =>
      context.keyring.rotatingBlindIndexes
        ? warn(
            'A blind-index key rotation is under way (BASTION_BLIND_INDEX_KEY_NEXT is set): every lookup tries two indexes.',
            'Run bastion keys rotate-blind-index, then make the next key BASTION_BLIND_INDEX_KEY and unset BASTION_BLIND_INDEX_KEY_NEXT.',
          )
        : pass('Blind indexes are written and looked up under one key.'),
  },
  {
    id: 'encryption.transport',
    measure: 'encryption',
    run: async (context) => {
      if (context.config.tlsCertFile) return pass('HTTPS with TLS_CERT_FILE (TLS 1.2 or later).');
      if (context.config.trustProxy.length > 0)
        return pass(`TLS terminated by a trusted proxy (TRUST_PROXY ${context.config.trustProxy.join(', ')}).`);
      return failInProduction(
        context,
        'Plain HTTP: no certificate and no trusted TLS proxy.',
        'Set TLS_CERT_FILE and TLS_KEY_FILE, or put a TLS-terminating load balancer in front and list it in TRUST_PROXY.',
      );
    },
  },
  {
    id: 'encryption.hsts',
    measure: 'encryption',
    run: async (context) =>
      context.config.tlsCertFile || context.config.trustProxy.length > 0
        ? pass('Strict-Transport-Security is sent on every HTTPS response.')
        : failInProduction(
            context,
            'No HTTPS, so no Strict-Transport-Security.',
            'Serve HTTPS (see encryption.transport); HSTS follows by itself.',
          ),
  },
  {
    id: 'encryption.database_transport',
    measure: 'encryption',
    run: async (context) => {
      const url = context.config.databaseUrl;
      if (url === undefined) return pass('The embedded PostgreSQL, on 127.0.0.1 only.');
      if (isLocalDatabase(url)) return pass(`PostgreSQL on this machine (${databaseHostOf(url)}).`);
      return databaseTlsProblem(url) === null
        ? pass(`TLS to ${databaseHostOf(url)} with the certificate and host name checked (sslmode=verify-full).`)
        : failInProduction(
            context,
            `DATABASE_URL ${unverifiedConnection(url)}: whoever is on the network path can read and change the traffic.`,
            'Add sslmode=verify-full to DATABASE_URL, or set BASTION_DATABASE_CA_FILE to the CA that signed the server certificate.',
          );
    },
  },
  {
    id: 'access_control.schema_coverage',
    measure: 'access_control',
    run: async (context) => {
      const unruled = await context.unruledFields();
      return unruled.length === 0
        ? pass('Every field of every object type has an explicit permission rule.')
        : fail(
            `Fields without a rule: ${unruled.slice(0, 10).join(', ')}${unruled.length > 10 ? ' …' : ''}.`,
            "Give each field a rule in its feature's *.rules.ts (models: defineModel does it).",
          );
    },
  },
  {
    id: 'access_control.fallback_deny',
    measure: 'access_control',
    run: async () =>
      (await fallbackDenies())
        ? pass('A field without a rule is refused (fallbackRule: deny), probed just now.')
        : fail('A field without a rule was served.', 'Restore fallbackRule: deny in src/access/shield.ts.'),
  },
  {
    id: 'access_control.admins_mfa',
    measure: 'access_control',
    run: async (context) => {
      const rows: { count: number }[] = await context.dataSource.query(
        `SELECT count(*)::int AS count FROM user_roles ur JOIN users u ON u.id = ur.user_id
          WHERE ur.role_name = 'admin' AND u.status = 'active'
            AND NOT EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = u.id AND f.status = 'verified')`,
      );
      const count = rows[0].count;
      return count === 0
        ? pass('Every active admin has a verified second factor.')
        : failInProduction(
            context,
            `${count} active admin${count === 1 ? '' : 's'} without a verified second factor.`,
            'Each admin enrolls TOTP (enrollTotp, confirmTotp); keep BASTION_MFA_REQUIRED_FOR at admin or all.',
          );
    },
  },
  {
    id: 'access_control.mfa_required',
    measure: 'access_control',
    run: async (context) =>
      context.config.mfaRequiredFor === 'all'
        ? pass('Every signed-in role needs a session confirmed with the second factor.')
        : warn(
            'Second factor required for: ' +
              (context.config.mfaRequiredFor === 'admin'
                ? 'the admin role (and roles marked requireMfa). '
                : 'roles marked requireMfa only. ') +
              (context.config.mfaRelaxedReason
                ? `Relaxed because: ${context.config.mfaRelaxedReason}`
                : 'No reason is recorded (BASTION_MFA_RELAXED_REASON).'),
            'Set BASTION_MFA_REQUIRED_FOR=all (the production default) when every user can be asked to enroll TOTP, ' +
              'or record why not in BASTION_MFA_RELAXED_REASON (ASVS 6.3.3; docs/security.md#dev-4).',
          ),
  },
  {
    id: 'access_control.password_length',
    measure: 'access_control',
    run: async (context) =>
      context.config.passwordMinLength >= 15
        ? pass(`Passwords need at least ${context.config.passwordMinLength} characters.`)
        : warn(
            `Passwords need only ${context.config.passwordMinLength} characters.`,
            'Raise BASTION_PASSWORD_MIN_LENGTH to 15 (NIST SP 800-63B-4 for single-factor accounts).',
          ),
  },
  {
    id: 'access_control.token_lifetimes',
    measure: 'access_control',
    run: async (context) => {
      const problems = [
        context.config.accessTokenTtlSeconds > 15 * 60 ? `access tokens live ${context.config.accessTokenTtlSeconds} s (> 900)` : null,
        context.config.refreshAbsoluteDays > 90 ? `sessions live up to ${context.config.refreshAbsoluteDays} days (> 90)` : null,
        context.config.refreshIdleDays > 30 ? `idle sessions live ${context.config.refreshIdleDays} days (> 30)` : null,
      ].filter((problem): problem is string => problem !== null);
      return problems.length === 0
        ? pass(
            `Access tokens ${context.config.accessTokenTtlSeconds} s, sessions ` +
              `${context.config.refreshIdleDays} days idle / ${context.config.refreshAbsoluteDays} days at most.`,
          )
        : fail(
            `Too long: ${problems.join('; ')}.`,
            'Lower BASTION_ACCESS_TOKEN_TTL, BASTION_REFRESH_IDLE_DAYS or BASTION_REFRESH_ABSOLUTE_DAYS.',
          );
    },
  },
  {
    id: 'access_control.signing_key_age',
    measure: 'access_control',
    run: async (context) => {
      const rows: { created_at: Date }[] = await context.dataSource.query(
        "SELECT created_at FROM signing_keys WHERE status = 'current' LIMIT 1",
      );
      if (!rows[0]) return fail('No current signing key.', 'Restart the server (it creates one) or run bastion keys rotate-signing.');
      const days = Math.floor((context.clock.now().getTime() - new Date(rows[0].created_at).getTime()) / DAY_MS);
      return days <= SIGNING_KEY_MAX_AGE_DAYS
        ? pass(`The access-token signing key is ${days} days old.`)
        : warn(`The access-token signing key is ${days} days old.`, 'Run bastion keys rotate-signing (no one is signed out).');
    },
  },
  {
    id: 'access_control.introspection',
    measure: 'access_control',
    run: async (context) =>
      context.config.introspection === 'admins'
        ? pass('Introspection is answered for admins only.')
        : failInProduction(
            context,
            'Introspection is open to everyone.',
            'Set BASTION_INTROSPECTION=admins (the default outside development).',
          ),
  },
  {
    id: 'access_control.sample_models',
    measure: 'access_control',
    run: async (context) =>
      !context.config.sampleModels
        ? pass('The sample models (Profile, Post, Comment) are not served.')
        : context.config.nodeEnv === 'production'
          ? warn(
              'The sample models Profile, Post and Comment are served in production, with their default grants.',
              'Set BASTION_SAMPLE_MODELS=false unless the app uses them as they are (anyone may read published posts and public profiles).',
            )
          : pass('The sample models are served (the default outside production).'),
  },
  {
    id: 'access_control.database_role',
    measure: 'access_control',
    run: async (context) => {
      const [role] = await context.dataSource.query<{ name: string; superuser: boolean; owned: number; auditWritable: boolean }[]>(
        `SELECT current_user AS name, r.rolsuper AS superuser,
                (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user) AS owned,
                has_table_privilege('public.audit_events', 'UPDATE')
                  OR has_table_privilege('public.audit_events', 'DELETE') AS "auditWritable"
           FROM pg_roles r WHERE r.rolname = current_user`,
      );
      const findings = [
        role.superuser ? `is a superuser` : null,
        role.owned > 0 ? `owns ${role.owned} of the tables (it may change the schema and grant itself anything)` : null,
        role.auditWritable ? 'may UPDATE or DELETE audit events' : null,
      ].filter((finding): finding is string => finding !== null);
      return findings.length === 0
        ? pass(`The server's role ${role.name} owns no table and may only append to the audit log.`)
        : warn(
            `The server's database role ${role.name} ${findings.join(', ')}.`,
            'Run migrations as the schema owner (BASTION_MIGRATION_DATABASE_URL) and the server as a plain role (DATABASE_URL) ' +
              'with BASTION_MIGRATE_ON_START=false; bastion migrate grants it what it needs (docs/deploy.md, "The database").',
          );
    },
  },
  {
    id: 'firewall.rate_limits',
    measure: 'firewall',
    run: async (context) =>
      context.config.rateLimitsEnabled
        ? pass(
            `Rate limits on: ${context.config.rateLimitPerIp.points}/${context.config.rateLimitPerIp.seconds} s per address, sign-in ` +
              `${context.config.rateLimitSignIn.points}/${context.config.rateLimitSignIn.seconds} s, ` +
              `stored in ${context.config.redisUrl ? 'Redis' : 'PostgreSQL'}.`,
          )
        : fail(
            'Rate limits are off (BASTION_RATE_LIMITS=false).',
            'Set BASTION_RATE_LIMITS=true, unless an equivalent limiter stands in front.',
          ),
  },
  {
    id: 'firewall.graphql_limits',
    measure: 'firewall',
    run: async (context) => {
      const {
        graphqlMaxDepth: depth,
        graphqlMaxCost: cost,
        graphqlMaxAliases: aliases,
        graphqlMaxDirectives: directives,
        graphqlMaxTokens: tokens,
      } = context.config;
      const loose = [
        depth > 15 ? `depth ${depth}` : null,
        cost > 100_000 ? `cost ${cost}` : null,
        aliases > 50 ? `aliases ${aliases}` : null,
        directives > 10 ? `directives ${directives}` : null,
        tokens > 10_000 ? `tokens ${tokens}` : null,
      ].filter(Boolean);
      return loose.length === 0
        ? pass(`Depth ≤ ${depth}, cost ≤ ${cost}, aliases ≤ ${aliases}, directives ≤ ${directives}, tokens ≤ ${tokens}.`)
        : warn(
            `Loose GraphQL limits: ${loose.join(', ')}.`,
            'Lower the BASTION_GRAPHQL_MAX_* settings towards their defaults (docs/security.md#gql-3).',
          );
    },
  },
  {
    id: 'firewall.cors',
    measure: 'firewall',
    run: async (context) => {
      const wide = context.config.corsOrigins.filter((origin) => origin === '*' || origin === 'null' || origin.startsWith('http://'));
      return wide.length === 0
        ? pass(`CORS allows ${context.config.corsOrigins.length === 0 ? 'no browser origin' : context.config.corsOrigins.join(', ')}.`)
        : failInProduction(context, `CORS allows ${wide.join(', ')}.`, 'List only the https origins of your admin tools in CORS_ORIGINS.');
    },
  },
  {
    id: 'firewall.websocket_policy',
    measure: 'firewall',
    run: async ({ config }) => {
      const origins = config.corsOrigins;
      const limits =
        `${config.wsMaxSocketsPerAddress} sockets per address and ${config.wsMaxSocketsPerAccount} per account on each instance, ` +
        `${config.wsMaxSubscriptions} subscriptions and ${config.wsMaxMessagesPerSecond} messages/s per socket, ` +
        `messages ≤ ${config.wsMaxMessageBytes} bytes, ≤ ${config.wsMaxBufferedBytes} bytes waiting to be read, ` +
        `connection_init within ${config.wsInitTimeoutMs} ms`;
      const allowed =
        origins.length === 0
          ? 'WebSocket upgrades that send an Origin are refused (CORS_ORIGINS is empty); native apps send none'
          : `WebSocket upgrades that send an Origin are accepted from the ${origins.length} CORS_ORIGINS origin(s) only; native apps send none`;
      if (config.nodeEnv !== 'production') return pass(`${allowed}. Limits: ${limits}.`);
      if (!config.wsRequireTls)
        return warn(
          `${allowed}, but plain ws:// upgrades are accepted in production (BASTION_WS_REQUIRE_TLS=false): tokens and data can travel unencrypted.`,
          'Unset BASTION_WS_REQUIRE_TLS (true in production), and serve TLS yourself or behind a TRUST_PROXY proxy that sets X-Forwarded-Proto.',
        );
      const plain = origins.filter((origin) => !origin.startsWith('https://'));
      const apollo = origins.filter((origin) => isApolloStudioOrigin(origin));
      if (plain.length === 0 && apollo.length === 0) return pass(`${allowed}. Limits: ${limits}.`);
      const findings = [
        plain.length > 0 ? `not https: ${plain.join(', ')} (a network attacker can act as that page)` : null,
        apollo.length > 0
          ? `Apollo Studio/Sandbox: ${apollo.join(', ')} (third-party pages: whatever runs there may open sockets to this server from your admins' browsers)`
          : null,
      ].filter((finding): finding is string => finding !== null);
      return warn(
        `${allowed}. In production, allowed origins that are ${findings.join('; ')}. CORS_ORIGINS cannot hold a wildcard ` +
          '(the setting refuses *), so each of these was listed by name. Limits: ' +
          `${limits}.`,
        'Keep in CORS_ORIGINS only the https origins of your own admin tools; explore a production server from Sandbox only ' +
          'through a staging copy, or add its origin for the session and remove it after.',
      );
    },
  },
  {
    id: 'firewall.admin_network',
    measure: 'firewall',
    run: async (context) =>
      context.config.adminAllowedCidrs.length > 0
        ? pass(`The admin role works only from ${context.config.adminAllowedCidrs.join(', ')}.`)
        : warn('The admin role works from any network.', 'Set ADMIN_ALLOWED_CIDRS to your office or VPN networks.'),
  },
  {
    id: 'firewall.console',
    measure: 'firewall',
    run: async ({ config }) => {
      if (!config.console) return pass('The console and the account pages are off (BASTION_CONSOLE=false).');
      if (!fs.existsSync(path.join(CONSOLE_BUILD_DIR, 'index.html')))
        return warn(
          'BASTION_CONSOLE is on but the console is not built (dist/console): /console answers 503.',
          'Run `npm run build` (the Docker image builds it), or set BASTION_CONSOLE=false.',
        );
      const served =
        'The console is served at /console under a strict Content-Security-Policy (no inline script or style, no eval, no framing)';
      if (config.adminAllowedCidrs.length > 0) return pass(`${served}, only to ${config.adminAllowedCidrs.join(', ')}.`);
      if (config.nodeEnv !== 'production') return pass(`${served}, to any network (development).`);
      return warn(
        `${served}, to every network the IP rules let in.`,
        'Set ADMIN_ALLOWED_CIDRS to your office or VPN networks (the console and the admin role then work only from there), ' +
          'or BASTION_CONSOLE=false and administer with the CLI.',
      );
    },
  },
  {
    id: 'backups.schedule_configured',
    measure: 'backups',
    run: async ({ config, backups }) => {
      if (!config.backupSchedule)
        return fail(
          'Backups are not scheduled (BACKUP_SCHEDULE=off).',
          'Set BACKUP_SCHEDULE to a cron such as "7 2 * * *" (daily); one instance takes each backup.',
        );
      const kept = backups.keep === 0 ? 'every archive' : `the newest ${backups.keep}`;
      const retention = `keeping ${kept}${backups.maxAgeDays ? `, none older than ${backups.maxAgeDays} days` : ''}`;
      if (!config.backupVerifySchedule)
        return warn(
          `Backups run at "${config.backupSchedule}" UTC, ${retention}; nothing verifies them by itself.`,
          'Set BACKUP_VERIFY_SCHEDULE (e.g. "47 2 * * *") so every archive is proven restorable.',
        );
      return pass(`Backups run at "${config.backupSchedule}" UTC and are verified at "${config.backupVerifySchedule}" UTC, ${retention}.`);
    },
  },
  {
    id: 'backups.last_backup',
    measure: 'backups',
    run: async ({ dataSource, clock }) => {
      const [good] = await dataSource.query<{ created_at: Date; rows: string; size_bytes: string }[]>(
        "SELECT created_at, rows, size_bytes FROM backups WHERE status IN ('complete', 'verified') ORDER BY created_at DESC LIMIT 1",
      );
      const [latest] = await dataSource.query<{ created_at: Date; error: string | null }[]>(
        "SELECT created_at, error FROM backups WHERE status = 'failed' ORDER BY created_at DESC LIMIT 1",
      );
      const failedSince =
        latest && (!good || latest.created_at > good.created_at)
          ? ` The latest attempt failed: ${latest.error ?? 'no reason recorded'}.`
          : '';
      if (!good) return fail(`No backup has been made.${failedSince}`, 'Run bastion backup create, and keep BACKUP_SCHEDULE on.');
      const hours = Math.floor((clock.now().getTime() - new Date(good.created_at).getTime()) / (60 * 60 * 1000));
      if (hours >= BACKUP_MAX_AGE_HOURS)
        return fail(
          `The newest backup is ${hours} hours old.${failedSince}`,
          'Check that BACKUP_SCHEDULE is set and the backups succeed (bastion backup list; audit events backup_failed).',
        );
      if (failedSince)
        return warn(
          `The newest backup is ${hours} hours old (${Number(good.rows)} rows).${failedSince}`,
          'Fix what the error names (bastion backup list shows it), then bastion backup create.',
        );
      return pass(`The newest backup is ${hours} hours old (${Number(good.rows)} rows, ${Number(good.size_bytes)} bytes).`);
    },
  },
  {
    id: 'backups.last_verified_restore',
    measure: 'backups',
    run: async ({ dataSource, clock }) => {
      const [verified] = await dataSource.query<{ created_at: Date; verified_at: Date }[]>(
        "SELECT created_at, verified_at FROM backups WHERE status = 'verified' ORDER BY verified_at DESC LIMIT 1",
      );
      // An archive as new as the newest proven one (or newer) that failed its verification.
      const [broken] = await dataSource.query<{ id: string; verification: string }[]>(
        "SELECT id, verification FROM backups WHERE status = 'verify_failed' AND created_at " +
          ">= COALESCE($1, '-infinity'::timestamptz) ORDER BY created_at DESC LIMIT 1",
        [verified?.created_at ?? null],
      );
      if (broken)
        return fail(
          `Backup ${broken.id} failed verification: ${broken.verification}`,
          'Investigate what differed; take a new backup and verify it (bastion backup create, bastion backup verify <id>).',
        );
      if (!verified)
        return fail('No backup has been proven restorable.', 'Run bastion backup verify <id>, and keep BACKUP_VERIFY_SCHEDULE on.');
      const days = Math.floor((clock.now().getTime() - new Date(verified.verified_at).getTime()) / DAY_MS);
      if (days >= VERIFIED_RESTORE_MAX_AGE_DAYS)
        return fail(
          `The newest verified restore was ${days} days ago.`,
          'Keep BACKUP_VERIFY_SCHEDULE on (at least weekly), or run bastion backup verify <id>.',
        );
      return pass(`A backup was restored into a scratch database and matched its manifest ${days} days ago.`);
    },
  },
  {
    id: 'backups.key',
    measure: 'backups',
    run: async (context) => {
      const { keyId } = context.backups;
      if (context.developmentKeys)
        return failInProduction(
          context,
          `Archives are encrypted with the development key "${keyId}" from the data folder, the same folder the archives sit beside.`,
          'Set BASTION_ENCRYPTION_KEYS with a key of its own for backups, name it in BACKUP_KEY_ID, and escrow it apart from the archives.',
        );
      const rows = await context.dataSource.query<{ key_id: string }[]>(
        "SELECT DISTINCT key_id FROM backups WHERE status IN ('complete', 'verified', 'verify_failed')",
      );
      const lost = rows.map((row) => row.key_id).filter((kid) => !context.keyring.has(kid));
      if (lost.length > 0)
        return fail(
          `Kept archives are encrypted with key(s) ${lost.join(', ')}, which the keyring no longer holds: they cannot be restored.`,
          'Put the key back into BASTION_ENCRYPTION_KEYS (from escrow), or prune those archives.',
        );
      if (keyId === context.keyring.currentKid)
        return warn(
          `Archives are encrypted with "${keyId}", the current column key: one leaked key opens both layers.`,
          'Add a key of its own for backups to BASTION_ENCRYPTION_KEYS and name it in BACKUP_KEY_ID; escrow it apart from the archives.',
        );
      return pass(
        `Archives are encrypted with key "${keyId}", apart from the column key "${context.keyring.currentKid}"; every kept archive's key is in the keyring.`,
      );
    },
  },
  {
    id: 'backups.copy_location',
    measure: 'backups',
    run: async ({ dataSource, backups }) => {
      if (!backups.copyDir)
        return warn(
          `Archives are kept in one place only (${backups.dir}).`,
          'Set BACKUP_COPY_DIR to another disk or a mounted remote (3-2-1: three copies, two media, one off-site).',
        );
      const [latest] = await dataSource.query<{ copy_path: string | null; copy_error: string | null }[]>(
        "SELECT copy_path, copy_error FROM backups WHERE status IN ('complete', 'verified') ORDER BY created_at DESC LIMIT 1",
      );
      if (latest && !latest.copy_path) {
        const why = latest.copy_error ?? 'it was never made (the process stopped before copying)';
        return fail(
          `The newest archive has no copy in ${backups.copyDir}: ${why}`,
          'Make BACKUP_COPY_DIR writable and mounted; the next backup copies again.',
        );
      }
      return pass(`Every new archive is copied to ${backups.copyDir}.`);
    },
  },
  {
    id: 'audits.chain_intact',
    measure: 'audits',
    run: async (context) => {
      // A long log is not read whole every day: from where the previous run's verification reached
      // (recorded in its own chained event), with a full walk weekly or while the log is small.
      const previous = await lastVerification(context.dataSource);
      const [{ span }] = await context.dataSource.query<{ span: string | null }[]>(
        'SELECT (max(id) - min(id) + 1)::text AS span FROM audit_events',
      );
      const now = context.clock.now();
      const full =
        previous === null ||
        Number(span ?? 0) <= (context.chainFullVerifyMaxEvents ?? CHAIN_FULL_VERIFY_MAX_EVENTS) ||
        now.getTime() - previous.fullAt.getTime() > CHAIN_FULL_VERIFY_MAX_AGE_DAYS * DAY_MS;
      const since = full ? null : previous.position;
      const { report, reached } = await context.dataSource.transaction('REPEATABLE READ', (manager) =>
        verifyAuditChainSince(manager, context.keyring, since),
      );
      if (report.ok && reached === null) {
        const [{ users }] = await context.dataSource.query<{ users: number }[]>('SELECT count(*)::int AS users FROM users');
        if (users > 0)
          return fail('The audit log is empty although accounts exist: it was emptied.', 'Investigate; restore the table from a backup.');
      }
      const record = reached && {
        chainVerifiedThroughId: reached.id,
        chainVerifiedThroughHash: reached.hash,
        chainFullyVerifiedAt: (full ? now : (previous?.fullAt ?? now)).toISOString(),
      };
      const scope = since
        ? `the ${report.checked} events after event ${since.id} verified; a full walk weekly`
        : `all ${report.checked} events verified`;
      return report.ok
        ? { ...pass(`The audit log's keyed hash chain is intact (${scope}).`), record: record ?? undefined }
        : fail(
            `The audit log's hash chain breaks at event ${report.firstBrokenId}: it was edited, inserted, or follows a deleted event.`,
            'Investigate (bastion audit log export), restore the table from a backup; the break stays visible until then.',
          );
    },
  },
  {
    id: 'audits.last_self_audit',
    measure: 'audits',
    run: async (context) => {
      const rows: { at: Date }[] = await context.dataSource.query(
        "SELECT at FROM audit_events WHERE action = 'security_audit_run' ORDER BY id DESC LIMIT 1",
      );
      if (!rows[0])
        return warn('This is the first self-audit on record.', 'Schedule it: AUDIT_SCHEDULE (cron), or run bastion audit from CI.');
      const days = Math.floor((context.clock.now().getTime() - new Date(rows[0].at).getTime()) / DAY_MS);
      return days <= SELF_AUDIT_MAX_AGE_DAYS
        ? pass(`The previous self-audit ran ${days} days ago.`)
        : warn(`The previous self-audit ran ${days} days ago.`, 'Schedule it: AUDIT_SCHEDULE (cron), or run bastion audit from CI.');
    },
  },
];

/** Where the previous self-audit's chain verification reached, and when it last walked the whole chain, as its chained event recorded. */
async function lastVerification(dataSource: DataSource): Promise<{ position: AuditChainPosition; fullAt: Date } | null> {
  const [run] = await dataSource.query<
    { metadata: { chainVerifiedThroughId?: string; chainVerifiedThroughHash?: string; chainFullyVerifiedAt?: string } }[]
  >(
    "SELECT metadata FROM audit_events WHERE action = 'security_audit_run' AND metadata ? 'chainVerifiedThroughId' ORDER BY id DESC LIMIT 1",
  );
  const { chainVerifiedThroughId: id, chainVerifiedThroughHash: hash, chainFullyVerifiedAt: fullAt } = run?.metadata ?? {};
  const fullTime = Date.parse(fullAt ?? '');
  return id && hash && !Number.isNaN(fullTime) ? { position: { id, hash }, fullAt: new Date(fullTime) } : null;
}
