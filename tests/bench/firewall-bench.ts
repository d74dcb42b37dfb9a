import type { DataSource } from 'typeorm';
import type { Config } from '../../src/config';
import { notify } from '../../src/db/notifications';
import { Cidr, formatCidr, parseCidr } from '../../src/net/ip';
import { FirewallAction, FirewallRule } from '../../src/firewall/firewall-rule.entity';
import { FIREWALL_CHANNEL } from '../../src/firewall/firewall.service';
import { RATE_LIMIT_TABLE } from '../../src/firewall/rate-limit.entity';
import type { Measurement } from './measure';
import type { FirewallCostRow } from './report';
import { BenchRequest, graphqlRequest } from './scenarios';
import { seededRandom } from './statistics';

/**
 * What the firewall costs on the hot path: anonymous `serverInfo` (no SQL of its own) with 1,000
 * IP rules loaded and the rate limits on (PostgreSQL store), against the same request with no
 * rules and no rate limits, measured in the same run.
 *
 * The design, since the rules live in the shared database and src offers no switch for the gate:
 * - Two Bastions are started up front on the bench database with the same settings but the rate
 *   limits: "off" (the harness's main instance, BASTION_RATE_LIMITS=false) and "on" (a second
 *   one, with a per-address limit so high that it never trips: the point is the cost of counting,
 *   not 429s). Both trust loopback as a proxy, so a probe can speak for another address.
 * - "off" is measured while the rule table is empty: the gate still runs (client address parsed,
 *   an empty table looked up), which is the least any Bastion does.
 * - Then 1,000 DENY rules are inserted: IPv4 networks of every length /8 to /32 and IPv6 ones
 *   /16 to /128, none containing 127.0.0.1 or ::1. The bench client (127.0.0.1) matches none, so
 *   every request walks all 25 IPv4 prefix lengths before FIREWALL_DEFAULT lets it in: the
 *   lookup's worst case, and the common one (most traffic matches no rule).
 * - "on" (the second instance: rules and rate limits) is the row the goal is about; "rules" (the
 *   off instance, now with the rules) splits its cost into its two parts.
 * - The rules are removed and "off" is measured again: the baseline is the mean of the two, so
 *   a drift over the section (the load before it, the machine) does not pass for a cost. Apart,
 *   they show how far one measurement is to be trusted.
 * - Probes show that both instances really apply the rules (a sample of ruled networks, through
 *   X-Forwarded-For, get 403 IP_BLOCKED), that they are gone again for the second "off", and
 *   that the "on" run was counted in the rate_limits table.
 * Later sections meet the rule table as empty as before.
 */

/** The goal of the issue: cost on / off, as req/s off ÷ req/s on (a goal, not a gate). */
export const FIREWALL_GOAL = 1.1;
export const FIREWALL_RULE_COUNT = 1000;
/** The share of IPv4 rules; the rest are IPv6 (they cost an IPv4 client nothing, but are loaded all the same). */
const IPV4_SHARE = 0.75;
/** What marks the bench's rules, so a run can remove them, also those an interrupted run left behind. */
const BENCH_RULE_NOTE = 'bench: firewall cost';
/** Ruled networks a probe speaks for, spread over the list (IPv4 and IPv6). */
const PROBED_RULES = 20;
/** How long the instances get to reload the rules after the NOTIFY. */
const RELOAD_TIMEOUT_MS = 5000;

/** Both instances alike: loopback is a trusted proxy, so a probe can say it comes from a ruled network. */
const SHARED_SETTINGS: Partial<Config> = { trustProxy: ['127.0.0.1', '::1'] };

/** The harness's main Bastion: no rate limits (the floor-relative rows measure the stack without them). */
export const RATE_LIMITS_OFF: Partial<Config> = { ...SHARED_SETTINGS, rateLimitsEnabled: false };

/**
 * The second Bastion: rate limits on, counted in PostgreSQL (no REDIS_URL), the per-address limit
 * at the largest BASTION_RATE_LIMIT_IP accepts (9999999/60): a few hundred thousand requests a
 * minute at most here, so it never refuses one.
 */
export const RATE_LIMITS_ON: Partial<Config> = {
  ...SHARED_SETTINGS,
  rateLimitsEnabled: true,
  redisUrl: undefined,
  rateLimitPerIp: { points: 9_999_999, seconds: 60 },
};

/** The address the load comes from: the key of its rate-limit row is `ip:` and this. */
const BENCH_CLIENT = '127.0.0.1';
const SERVER_INFO = graphqlRequest('{ serverInfo { name version serverTime } }');

/**
 * `count` distinct networks, canonical: IPv4 of every prefix length /8 to /32 in turn (first octet
 * never 127, so none contains 127.0.0.1), IPv6 of lengths /16 to /128 inside 2000::/3 (never ::1).
 */
export function benchNetworks(count: number): Cidr[] {
  const random = seededRandom(0xb4571047);
  const int = (below: number) => Math.floor(random() * below);
  const ipv4Count = Math.round(count * IPV4_SHARE);
  const seen = new Set<string>();
  const networks: Cidr[] = [];
  for (let index = 0; networks.length < count; index += 1) {
    const v4 = networks.length < ipv4Count;
    let text: string;
    if (v4) {
      const first = (() => {
        for (;;) {
          const octet = 1 + int(223);
          if (octet !== 127) return octet;
        }
      })();
      text = `${first}.${int(256)}.${int(256)}.${int(256)}/${8 + (index % 25)}`;
    } else {
      const groups = [0x2000 + int(0x2000), ...Array.from({ length: 7 }, () => int(0x10000))].map((group) => group.toString(16));
      text = `${groups.join(':')}/${16 + (index % 113)}`;
    }
    const cidr = parseCidr(text);
    if (!cidr) throw new Error(`bench rule ${text} does not parse`);
    const canonical = formatCidr(cidr);
    if (seen.has(canonical)) continue;
    seen.add(canonical);
    networks.push(cidr);
  }
  return networks;
}

/** The network's own first address: inside it, so a request from it is ruled by it (or a longer DENY). */
function addressIn(cidr: Cidr): string {
  return formatCidr({ ...cidr, prefix: cidr.family === 4 ? 32 : 128 }).split('/')[0];
}

/** Removes the bench's rules and tells every instance (see rulesGone); resolves to how many other rules remain. */
async function removeBenchRules(dataSource: DataSource): Promise<number> {
  return dataSource.transaction(async (manager) => {
    await manager.delete(FirewallRule, { note: BENCH_RULE_NOTE });
    await notify(manager, FIREWALL_CHANNEL, 'changed');
    return manager.count(FirewallRule);
  });
}

/**
 * All rules in one transaction, as a restore would: through FirewallService.add they would take
 * 1,000 transactions, each reloading every rule for its lockout check, and write 1,000 audit rows,
 * none of which is under test. The NOTIFY makes every instance reload them at its next request.
 */
async function insertBenchRules(dataSource: DataSource, networks: readonly Cidr[]): Promise<void> {
  await dataSource.transaction(async (manager) => {
    const rows = networks.map((cidr) => ({
      cidr: formatCidr(cidr),
      action: FirewallAction.DENY,
      note: BENCH_RULE_NOTE,
      expiresAt: null,
      createdBy: null,
    }));
    // In slices: one INSERT with 1,000 rows of five parameters is fine, but slices keep it obviously so.
    for (let start = 0; start < rows.length; start += 250) await manager.insert(FirewallRule, rows.slice(start, start + 250));
    await notify(manager, FIREWALL_CHANNEL, 'changed');
  });
}

/** The status and error code of serverInfo asked on behalf of `forwardedFor` (no header: the bench client itself). */
async function serverInfoFrom(origin: string, forwardedFor?: string): Promise<{ status: number; code?: string }> {
  const headers: Record<string, string> = { ...SERVER_INFO.headers };
  if (forwardedFor) headers['x-forwarded-for'] = forwardedFor;
  const response = await fetch(new URL(SERVER_INFO.path, origin), { method: SERVER_INFO.method, headers, body: SERVER_INFO.body });
  const body = (await response.json().catch(() => undefined)) as { errors?: { extensions?: { code?: string } }[] } | undefined;
  return { status: response.status, code: body?.errors?.[0]?.extensions?.code };
}

/**
 * The sampled ruled networks all get 403 IP_BLOCKED from `origin`, and the bench client is let in:
 * the rules are loaded and applied. Waits for the reload the NOTIFY triggers; throws otherwise.
 */
async function expectRulesApplied(origin: string, networks: readonly Cidr[]): Promise<void> {
  const sample = Array.from({ length: PROBED_RULES }, (_, index) => networks[Math.floor((index * networks.length) / PROBED_RULES)]);
  // The last inserted rule first: once it is in force, the whole transaction's rules are.
  const last = addressIn(networks[networks.length - 1]);
  const deadline = Date.now() + RELOAD_TIMEOUT_MS;
  while ((await serverInfoFrom(origin, last)).status !== 403) {
    if (Date.now() > deadline)
      throw new Error(`the firewall bench rules are not in force on ${origin} after ${RELOAD_TIMEOUT_MS} ms (${last} is let in)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const cidr of sample) {
    const address = addressIn(cidr);
    const { status, code } = await serverInfoFrom(origin, address);
    if (status !== 403 || code !== 'IP_BLOCKED')
      throw new Error(`${address} (ruled by DENY ${formatCidr(cidr)}) got HTTP ${status} ${code ?? ''} from ${origin}, not 403 IP_BLOCKED`);
  }
  const own = await serverInfoFrom(origin);
  if (own.status !== 200)
    throw new Error(`the bench client got HTTP ${own.status} ${own.code ?? ''} from ${origin} with the bench rules loaded`);
}

/** The sampled ruled networks are let into `origin` again: the instance has reloaded the rules without the bench's. */
async function expectRulesGone(origin: string, networks: readonly Cidr[]): Promise<void> {
  const deadline = Date.now() + RELOAD_TIMEOUT_MS;
  for (const cidr of [networks[networks.length - 1], networks[0]]) {
    const address = addressIn(cidr);
    for (;;) {
      const { status, code } = await serverInfoFrom(origin, address);
      if (status === 200) break;
      if (Date.now() > deadline)
        throw new Error(
          `the firewall bench rules are still in force on ${origin} after ${RELOAD_TIMEOUT_MS} ms (${address}: HTTP ${status} ${code ?? ''})`,
        );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * The points counted for the bench client in its rate-limit windows (per-address counts are
 * shared every 100 ms: polled briefly until they are in); 0 when none arrived.
 */
async function countedRequests(dataSource: DataSource): Promise<number> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const [{ points }] = await dataSource.query<{ points: number }[]>(
      `SELECT coalesce(sum(points), 0)::int AS points FROM ${RATE_LIMIT_TABLE} WHERE key LIKE 'ipw:%:' || $1`,
      [BENCH_CLIENT],
    );
    if (points > 0 || Date.now() > deadline) return points;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The two instances of the comparison, by origin, and the database they share. */
export interface FirewallTwins {
  /** No rate limits (the harness's main Bastion). */
  readonly off: string;
  /** Rate limits on, PostgreSQL store. */
  readonly on: string;
  readonly dataSource: DataSource;
}

/** Before any load: serverInfo answers on both, and "on" counts it in rate_limits (the store is the one meant). */
export async function probeFirewallTwins(twins: FirewallTwins): Promise<void> {
  for (const [name, origin] of [
    ['off', twins.off],
    ['on', twins.on],
  ] as const) {
    const { status, code } = await serverInfoFrom(origin);
    if (status !== 200) throw new Error(`serverInfo on the firewall bench's "${name}" instance: HTTP ${status} ${code ?? ''}`);
  }
  if ((await countedRequests(twins.dataSource)) < 1)
    throw new Error(`the firewall bench's "on" instance counted nothing in ${RATE_LIMIT_TABLE}`);
}

export interface FirewallBenchResult {
  readonly rows: FirewallCostRow[];
  /** Rules other than the bench's in the database (DATABASE_URL of a used database): "off" is then not "none". */
  readonly otherRules: number;
  readonly probedRules: number;
  /** Points in the bench client's rate_limits row after the "on" measurement (warm-up, load and probes). */
  readonly countedRequests: number;
}

/** The harness's measurement (warm-up included), the same as for every other row. */
type Measure = (origin: string, request: BenchRequest) => Promise<Measurement | undefined>;

/**
 * Off, then (rules inserted) on and rules only, then (rules removed) off again; undefined when a
 * measurement was cut short (Ctrl-C).
 */
export async function runFirewallBench(twins: FirewallTwins, measure: Measure): Promise<FirewallBenchResult | undefined> {
  const { dataSource } = twins;
  const networks = benchNetworks(FIREWALL_RULE_COUNT);
  // Rules an interrupted run left behind (DATABASE_URL outlives runs) go first.
  const otherRules = await removeBenchRules(dataSource);
  try {
    await expectRulesGone(twins.off, networks);
    process.stderr.write('running serverInfo without rules and rate limits…\n');
    const offBefore = await measure(twins.off, SERVER_INFO);
    if (!offBefore) return undefined;

    await insertBenchRules(dataSource, networks);
    await expectRulesApplied(twins.on, networks);
    await expectRulesApplied(twins.off, networks);
    // Fresh rows, so the count is this run's.
    await dataSource.query(`DELETE FROM ${RATE_LIMIT_TABLE} WHERE key LIKE 'ipw:%:' || $1`, [BENCH_CLIENT]);
    process.stderr.write(`running serverInfo with ${FIREWALL_RULE_COUNT} IP rules, with and without rate limits…\n`);
    const on = await measure(twins.on, SERVER_INFO);
    if (!on) return undefined;
    const counted = await countedRequests(dataSource);
    if (counted < 1)
      throw new Error(`the "on" run left no count for ${BENCH_CLIENT} in ${RATE_LIMIT_TABLE}: its requests were not counted`);
    const rulesOnly = await measure(twins.off, SERVER_INFO);
    if (!rulesOnly) return undefined;

    await removeBenchRules(dataSource);
    await expectRulesGone(twins.off, networks);
    process.stderr.write('running serverInfo without rules and rate limits again…\n');
    const offAfter = await measure(twins.off, SERVER_INFO);
    if (!offAfter) return undefined;

    const rules = `${FIREWALL_RULE_COUNT.toLocaleString('en-US')} IP rules`;
    return {
      rows: [
        { label: 'off', detail: 'no rules, no rate limits', measurement: offBefore, baseline: true },
        { label: 'on', detail: `${rules} + rate limits`, measurement: on, goal: FIREWALL_GOAL },
        { label: 'rules', detail: `${rules}, no rate limits`, measurement: rulesOnly },
        { label: 'off', detail: 'no rules, no rate limits (again)', measurement: offAfter, baseline: true },
      ],
      otherRules,
      probedRules: PROBED_RULES,
      countedRequests: counted,
    };
  } finally {
    await removeBenchRules(dataSource);
  }
}
