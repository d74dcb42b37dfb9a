// Decorator metadata must exist before any type-graphql class is loaded.
import 'reflect-metadata';
import os from 'node:os';
import { systemClock } from '../../src/clock';
import { createLogger } from '../../src/logging';
import { startBastion } from '../../src/main';
import { BASTION_VERSION } from '../../src/project';
import { AUDIT_CONCURRENT_WRITERS, AUDIT_GOAL_EVENTS_PER_SECOND, auditSignInShare, lockHeldMs, runAuditBench } from './audit-bench';
import {
  BACKUP_BENCH_POSTS,
  BACKUP_GOAL_MB_PER_SECOND,
  BACKUP_RUNS,
  BackupOperation,
  fastestRun,
  megabytesPerSecond,
  rowsPerSecond,
  runBackupBench,
} from './backup-bench';
import { probeProfiles, runCryptoBench, seedProfiles } from './crypto-bench';
import {
  FIREWALL_GOAL,
  FIREWALL_RULE_COUNT,
  RATE_LIMITS_OFF,
  RATE_LIMITS_ON,
  probeFirewallTwins,
  runFirewallBench,
} from './firewall-bench';
import { BENCH_FILES_FEATURES, FILES_BASTION_SETTINGS, fileMegabytes, formatFiles, prepareBenchFiles, runFilesBench } from './files-bench';
import { startFloorServer } from './floor-server';
import { SIGN_IN_CONCURRENCY, Teardown, benchConfigFor, benchDatabaseUrl, benchPoolSize, loopbackOrigin, positiveInteger } from './harness';
import { Measurement, combined, countStatements, measure, probe } from './measure';
import { COST_ROUNDS, benchItemsFeature, probeShieldTwins, runShieldBench, seedBenchItems, startShieldTwins } from './permission-bench';
import { seedBenchData } from './posts-bench';
import {
  AuditRunRow,
  BackupRunRow,
  ReportRow,
  firewallCost,
  formatAuditPhases,
  formatAuditRuns,
  formatBackupRuns,
  formatFirewallCost,
  formatRelative,
  formatCost,
  formatTable,
} from './report';
import { formatRealtime, runRealtimeBench } from './realtime-bench';
import { BenchRequest, BenchTarget, SCENARIOS, Scenario, withBearer } from './scenarios';
import { SignInBenchResult, runSignInBench } from './sign-in-bench';

const WARM_UP_SECONDS = 2;
const SIGN_IN_MAX_SECONDS = 5;
/** Rounds over every read scenario; each row shows the mean of its runs. */
const READ_ROUNDS = 2;
/** Reading two encrypted columns of 100 rows, as a multiple of the same read of plain ones. */
const ENCRYPTION_GOAL = 1.3;

interface BenchSettings {
  readonly durationSeconds: number;
  readonly connections: number;
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Floors first: every other row is a ratio of one of them. */
function orderedScenarios(scenarios: readonly Scenario[]): Scenario[] {
  const floors = scenarios.filter((scenario) => scenario.target === 'floor');
  for (const scenario of scenarios) {
    const floor = scenario.floor ?? 'floor';
    if (!floors.some((candidate) => candidate.floor === floor))
      throw new Error(`scenario ${scenario.name}: no floor scenario named ${floor}`);
  }
  return [...floors, ...scenarios.filter((scenario) => scenario.target !== 'floor')];
}

/** The sections of the run; BENCH_SECTIONS=reads,encryption runs only those (all by default). */
const SECTIONS = ['reads', 'permission', 'firewall', 'sign-ins', 'audit', 'encryption', 'realtime', 'files', 'backups'] as const;
type Section = (typeof SECTIONS)[number];

function chosenSections(): ReadonlySet<Section> {
  const raw = process.env.BENCH_SECTIONS?.trim();
  if (!raw) return new Set(SECTIONS);
  const chosen = raw.split(',').map((name) => name.trim());
  const unknown = chosen.filter((name) => !(SECTIONS as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`BENCH_SECTIONS: unknown ${unknown.join(', ')} (sections: ${SECTIONS.join(', ')})`);
  return new Set(chosen as Section[]);
}

async function main(signal: AbortSignal): Promise<number> {
  const settings: BenchSettings = {
    durationSeconds: positiveInteger('BENCH_DURATION', 10),
    connections: positiveInteger('BENCH_CONNECTIONS', 10),
  };
  const scenarios = orderedScenarios(SCENARIOS);
  const sections = chosenSections();
  const logger = createLogger({ level: 'silent', pretty: false });
  const teardown = new Teardown();
  let exitCode = 0;
  try {
    const databaseUrl = await benchDatabaseUrl(logger, teardown);
    const poolSize = benchPoolSize(settings.connections);
    const benchConfig = benchConfigFor(databaseUrl, poolSize);
    // The permission bench's model: its grant is seeded and its entity known from the start.
    const bastionDeps = { logger, clock: systemClock, extraFeatures: [benchItemsFeature] };
    // Without rate limits: at the default 600/60 per address the load would measure 429s, and
    // sign-ins stop at 20 a minute. What they cost is the firewall section's "on" instance.
    const bastion = await startBastion(benchConfig(RATE_LIMITS_OFF), bastionDeps);
    teardown.add(() => bastion.stop());
    // The firewall section's "on": the same Bastion on the same database, rate limits on.
    const rateLimited = await startBastion(benchConfig(RATE_LIMITS_ON), bastionDeps);
    teardown.add(() => rateLimited.stop());
    const bastionOrigin = loopbackOrigin(bastion);
    const firewallTwins = { off: bastionOrigin, on: loopbackOrigin(rateLimited), dataSource: bastion.database.dataSource };
    const bastionEndpoint = new URL('/graphql', bastionOrigin).toString();
    const { reader: benchUser } = await seedBenchData(bastionEndpoint, bastion.database.dataSource);
    // The floors speak for the same reader, so floor-100 lists the same page as Bastion.
    const floor = await startFloorServer({ databaseUrl, version: BASTION_VERSION, poolSize, subject: benchUser.id });
    teardown.add(() => floor.close());
    const origins: Record<BenchTarget, string> = { floor: floor.origin, bastion: bastionOrigin };
    const tokens: Record<BenchTarget, string> = { floor: floor.token, bastion: benchUser.accessToken };
    const requestFor = (scenario: Scenario): BenchRequest =>
      scenario.signedIn ? withBearer(scenario.request, tokens[scenario.target]) : scenario.request;
    await seedBenchItems(bastion.database.dataSource, benchUser.id);
    const profileReader = await seedProfiles(bastionEndpoint, bastion.database.dataSource, bastion.services);
    const shieldTwins = await startShieldTwins(bastion);
    teardown.add(() => shieldTwins.close());

    for (const scenario of scenarios) {
      const problem = await probe(origins[scenario.target], requestFor(scenario), scenario.check);
      if (problem) throw new Error(`scenario ${scenario.name}: ${problem}`);
    }
    // Counted on the warm server the probes left (session and policy cached), before any load.
    const statementCounts: string[] = [];
    for (const scenario of scenarios.filter((candidate) => candidate.countStatements)) {
      const statements = await countStatements(origins[scenario.target], requestFor(scenario));
      statementCounts.push(`${scenario.name}: ${statements} SQL statement${statements === 1 ? '' : 's'} per request`);
    }
    await probeShieldTwins(shieldTwins, benchUser.accessToken);
    await probeProfiles(bastionOrigin, profileReader);
    await probeFirewallTwins(firewallTwins);
    const warmedUpMeasure = async (origin: string, request: BenchRequest): Promise<Measurement | undefined> => {
      // JIT, connection pools and prepared caches fill up during the warm-up; its numbers are thrown away.
      await measure(origin, request, { durationSeconds: WARM_UP_SECONDS, connections: settings.connections, signal });
      const measurement = await measure(origin, request, { ...settings, signal });
      if (measurement && measurement.failures > 0) exitCode = 1;
      return measurement;
    };

    say(`Bastion ${BASTION_VERSION} bench: ${os.cpus().length} cores, Node ${process.version}`);
    say(
      `${settings.durationSeconds} s per scenario after a ${WARM_UP_SECONDS} s warm-up, ${settings.connections} connections; ` +
        `the reads in ${READ_ROUNDS} rounds, each row the mean of its runs`,
    );
    // One round over every read first: a fresh server's first lists run on cold caches (V8's
    // compiled code, PostgreSQL's buffers) for several seconds, which would weigh on whichever
    // scenario came first.
    if (sections.has('reads')) {
      process.stderr.write('warming up…\n');
      for (const scenario of scenarios)
        await measure(origins[scenario.target], requestFor(scenario), {
          durationSeconds: WARM_UP_SECONDS,
          connections: settings.connections,
          signal,
        });
    }
    // Every read in turn, twice: a drift of the shared machine over the section (minutes) then weighs
    // on floors and scenarios alike instead of on whichever ran at the wrong moment.
    const runs = new Map<Scenario, Measurement[]>();
    for (let round = 0; round < READ_ROUNDS && sections.has('reads'); round += 1) {
      for (const scenario of scenarios) {
        process.stderr.write(`running ${scenario.name} (${round + 1}/${READ_ROUNDS})…\n`);
        const measurement = await warmedUpMeasure(origins[scenario.target], requestFor(scenario));
        if (!measurement) break;
        runs.set(scenario, [...(runs.get(scenario) ?? []), measurement]);
      }
    }
    const floorRates = new Map<string, number>();
    const rows: ReportRow[] = [];
    for (const [scenario, measured] of runs) {
      const measurement = combined(measured);
      const floor = scenario.floor ?? 'floor';
      if (scenario.target === 'floor') floorRates.set(floor, measurement.requestsPerSecond);
      rows.push({
        scenario: scenario.name,
        measurement,
        floor,
        floorRequestsPerSecond: floorRates.get(floor) ?? 0,
        floorGoal: scenario.floorGoal,
      });
    }
    say();
    say(formatTable(rows));
    const meVsServerInfo = formatRelative(rows, 'me', 'serverInfo');
    if (meVsServerInfo) say(meVsServerInfo);
    for (const line of statementCounts) say(line);
    if (rows.length > 0)
      say(
        `RSS after the reads: ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB (this process: both Bastions, the floor and the load generator)`,
      );
    // Before the sign-ins and the encryption: the lists need the bench user's access token still valid.
    const shieldCosts = sections.has('permission') ? await runShieldBench(shieldTwins, benchUser.accessToken, warmedUpMeasure) : [];
    if (shieldCosts.length > 0) {
      say();
      say(
        'permission layer: benchItems (a data API model), a user listing own rows (8 fields each): ' +
          `with it (shield, OWN scope in SQL, each row decided) and without it (no shield, READ ALL); ${COST_ROUNDS} runs each, in turn`,
      );
      say(formatCost(shieldCosts, { column: 'permissions', base: 'without', measured: 'with' }));
    }
    // Before the sign-ins, which then run on a rule table as empty as before (the section removes its rules).
    const firewall = sections.has('firewall') ? await runFirewallBench(firewallTwins, warmedUpMeasure) : undefined;
    if (firewall) {
      const cost = firewallCost(
        firewall.rows,
        firewall.rows.find((row) => row.goal !== undefined)!,
      );
      say();
      say(
        `firewall on the hot path: serverInfo, ${FIREWALL_RULE_COUNT.toLocaleString('en-US')} IP rules + rate limits (PostgreSQL store) vs none`,
      );
      say(formatFirewallCost(firewall.rows));
      say(
        `cost on / off: ${cost === undefined ? 'n/a' : `${cost.toFixed(2)}×`} (goal ≤ ${FIREWALL_GOAL}×, off = the mean of its two runs): ` +
          `${cost !== undefined && cost <= FIREWALL_GOAL ? 'met' : 'not met'}`,
      );
      say(
        `  checked: ${firewall.probedRules} ruled networks get 403 IP_BLOCKED through X-Forwarded-For; ` +
          `rate_limits counted ${firewall.countedRequests.toLocaleString('en-US')} requests for the bench client`,
      );
      if (firewall.otherRules > 0)
        say(`  note: ${firewall.otherRules} rules besides the bench's are in the database, so "off" had them too`);
    }
    let signIns: SignInBenchResult | undefined;
    if (!signal.aborted && sections.has('sign-ins')) {
      process.stderr.write('running sign-ins…\n');
      signIns = await runSignInBench(bastionEndpoint, benchUser, {
        seconds: Math.min(settings.durationSeconds, SIGN_IN_MAX_SECONDS),
        concurrency: SIGN_IN_CONCURRENCY,
        signal,
      });
      say();
      say(`sign-ins: ${signIns.signInsPerSecond.toFixed(1)}/s (argon2id m=19456 t=2 p=1)`);
      if (signIns.failures.size > 0) {
        const failures = [...signIns.failures].map(([outcome, count]) => `${outcome} ×${count}`).join(', ');
        // Reported, not fatal: the rate counts only the sign-ins that succeeded.
        say(`  failed sign-ins: ${failures} (besides ${signIns.succeeded} that succeeded)`);
      }
    }
    // After the sign-ins, whose rate the audit write is set against.
    if (!signal.aborted && sections.has('audit')) {
      process.stderr.write('running audit log appends…\n');
      const audit = await runAuditBench(bastion.database.dataSource, bastion.services.audit, bastion.services.keyring, {
        seconds: settings.durationSeconds,
        warmUpSeconds: WARM_UP_SECONDS,
        signal,
      });
      if (audit) {
        const { concurrent, single, chain } = audit;
        const errors = (run: typeof single) => [...run.failures.values()].reduce((sum, count) => sum + count, 0);
        const rows: AuditRunRow[] = [
          { ...concurrent, errors: errors(concurrent), goal: AUDIT_GOAL_EVENTS_PER_SECOND },
          { ...single, errors: errors(single) },
        ];
        say();
        say(
          `audit log: appends through the server's AuditLog, each in its own transaction, ${AUDIT_CONCURRENT_WRITERS} writers and 1, ` +
            `${settings.durationSeconds} s each after a ${WARM_UP_SECONDS} s warm-up`,
        );
        say(formatAuditRuns(rows));
        say("  where an append's time goes, mean ms per append (the chain lock is held from its grant to the end of COMMIT):");
        say(formatAuditPhases(rows).replace(/^/gm, '  '));
        // Appends on one chain follow one another: no rate above 1 ÷ (time the lock is held), however many writers.
        const held = [concurrent, single].map((run) => {
          const ms = lockHeldMs(run.phases);
          return `${run.writers} writer${run.writers === 1 ? '' : 's'} ${ms.toFixed(3)} ms (≤ ${Math.round(1000 / ms).toLocaleString('en-US')}/s)`;
        });
        say(`  lock held per append (SELECT + checks + hash + INSERT + COMMIT) and the ceiling it sets: ${held.join(', ')}`);
        for (const run of [concurrent, single]) {
          for (const [reason, count] of run.failures)
            say(`  failed appends, ${run.writers} writer${run.writers === 1 ? '' : 's'}: ${reason} ×${count}`);
        }
        if (errors(concurrent) + errors(single) > 0) exitCode = 1;
        const share = signIns ? auditSignInShare(single, signIns.signInsPerSecond, SIGN_IN_CONCURRENCY) : undefined;
        if (share) {
          const percent = (ms: number) => `${((ms / share.signInMs) * 100).toFixed(2)} %`;
          say(
            `  derived, not measured: a sign-in takes ${share.signInMs.toFixed(1)} ms ` +
              `(${SIGN_IN_CONCURRENCY} ÷ ${signIns!.signInsPerSecond.toFixed(1)} sign-ins/s above)`,
          );
          say(
            '    its audit write inside its transaction (lock + SELECT + hash + INSERT, 1 writer, mean) ' +
              `${share.appendInTransactionMs.toFixed(3)} ms = ${percent(share.appendInTransactionMs)} of it: ` +
              `with vs without ≈ ${(share.signInMs / (share.signInMs - share.appendInTransactionMs)).toFixed(4)}×`,
          );
          say(
            '    an append in a transaction of its own (as sign_in_failed, 1 writer, p50) ' +
              `${share.appendTransactionMs.toFixed(3)} ms = ${percent(share.appendTransactionMs)}`,
          );
        } else {
          say('  sign-in share: n/a (no sign-in rate measured)');
        }
        say(
          `  chain: ${chain.ok ? 'intact' : `BROKEN at id ${chain.firstBrokenId}`}, ` +
            `${chain.checked.toLocaleString('en-US')} rows verified in ${(audit.verifyMs / 1000).toFixed(2)} s ` +
            `(${Math.round(chain.checked / (audit.verifyMs / 1000)).toLocaleString('en-US')} events/s); ` +
            `incremental from a recorded position: ${audit.incremental.checked.toLocaleString('en-US')} rows in ` +
            `${(audit.incremental.ms / 1000).toFixed(2)} s ` +
            `(${Math.round(audit.incremental.checked / (audit.incremental.ms / 1000)).toLocaleString('en-US')} events/s); ` +
            `${audit.rowsAdded.toLocaleString('en-US')} bench rows added for ${audit.appendsReturned.toLocaleString('en-US')} appends that returned ` +
            `(warm-up included)${audit.rowsAdded === audit.appendsReturned ? '' : ': MISMATCH'}`,
        );
        if (!chain.ok || !audit.incremental.ok || audit.rowsAdded !== audit.appendsReturned) exitCode = 1;
      }
    }
    if (!signal.aborted && sections.has('encryption')) {
      process.stderr.write('running encryption…\n');
      const crypto = await runCryptoBench(bastionOrigin, profileReader, settings.durationSeconds, warmedUpMeasure);
      if (crypto) {
        say();
        say(`encryption: seal + open of a 64-byte field ${Math.round(crypto.sealOpenPerSecond).toLocaleString('en-US')} ops/s`);
        say(
          '  profiles(first: 100) through the API: id + 2 encrypted columns (phone, birthDate) ' +
            `vs id + 2 plain columns of the same lengths (displayName, bio); ${COST_ROUNDS} runs each, in turn`,
        );
        say(
          formatCost([{ label: '100 profiles', base: crypto.plain, measured: crypto.encrypted, goal: ENCRYPTION_GOAL }], {
            column: 'columns',
            base: 'plain',
            measured: 'encrypted',
          }),
        );
      }
    }
    if (!signal.aborted && sections.has('realtime')) {
      process.stderr.write('running realtime…\n');
      // Its own Bastion: every bench client comes from 127.0.0.1, and a thousand sockets need limits per address and account to match.
      const live = await startBastion(
        benchConfig({ ...RATE_LIMITS_OFF, wsMaxSocketsPerAddress: 10_000, wsMaxSocketsPerAccount: 100 }),
        bastionDeps,
      );
      teardown.add(() => live.stop());
      const liveOrigin = loopbackOrigin(live);
      const postsLean = scenarios.find((scenario) => scenario.name === 'posts-lean')!;
      const realtime = await runRealtimeBench({
        bastion: live,
        origin: liveOrigin,
        readerId: benchUser.id,
        measurePostsLean: (accessToken) => warmedUpMeasure(liveOrigin, withBearer(postsLean.request, accessToken)),
        sustainedSeconds: positiveInteger('BENCH_REALTIME_SECONDS', 30),
        signal,
      });
      if (realtime) {
        const { lines, problems } = formatRealtime(realtime);
        say();
        for (const line of lines) say(line);
        if (problems.length > 0) exitCode = 1;
      }
    }
    if (!signal.aborted && sections.has('files')) {
      const megabytes = fileMegabytes('BENCH_FILES_MB', 100);
      const bigMegabytes = fileMegabytes('BENCH_FILES_BIG_MB', 1024);
      process.stderr.write(`running files (${megabytes} MB, ${bigMegabytes} MB)…\n`);
      // Its own Bastion: its only model is the bench's (a file field of up to 2 GiB), whose table and files trigger must exist before it starts.
      await prepareBenchFiles(databaseUrl);
      const filesBastion = await startBastion(benchConfig({ ...RATE_LIMITS_OFF, ...FILES_BASTION_SETTINGS }), {
        logger,
        clock: systemClock,
        extraFeatures: BENCH_FILES_FEATURES,
      });
      teardown.add(() => filesBastion.stop());
      const files = await runFilesBench({
        origin: loopbackOrigin(filesBastion),
        databaseUrl,
        megabytes,
        bigMegabytes,
        teardown,
        signal,
      });
      if (files) {
        const { lines, problems } = formatFiles(files);
        say();
        for (const line of lines) say(line);
        if (problems.length > 0) exitCode = 1;
      }
    }
    // Last: its own database and Bastion, and the longest single operations of the run.
    if (!signal.aborted && sections.has('backups')) {
      process.stderr.write(`running backups (${BACKUP_BENCH_POSTS.toLocaleString('en-US')} posts)…\n`);
      const backup = await runBackupBench({
        adminUrl: databaseUrl,
        startBastion: (overrides) => startBastion(benchConfig(overrides), { logger, clock: systemClock }),
        teardown,
        signal,
      });
      if (backup) {
        const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
        const floorMegabytesPerSecond = megabytesPerSecond(backup.floor);
        const row = (operation: string, detail: string, measured: BackupOperation, goalMegabytesPerSecond?: number): BackupRunRow => ({
          operation,
          detail,
          runSeconds: measured.runs.map((run) => run.seconds),
          cpuSeconds: fastestRun(measured).cpuSeconds,
          megabytesPerSecond: megabytesPerSecond(measured),
          rowsPerSecond: rowsPerSecond(measured),
          floorMegabytesPerSecond: measured === backup.floor ? undefined : floorMegabytesPerSecond,
          goalMegabytesPerSecond,
        });
        const rows: BackupRunRow[] = [
          row('floor', 'COPY posts TO STDOUT, read and dropped', backup.floor),
          row('create', 'services.backups.create: snapshot → deflate → AES-GCM → fsync', backup.create, BACKUP_GOAL_MB_PER_SECOND),
          row('verify', 'services.backups.verify: restore into scratch, re-read, compare', backup.verify),
          row('restore', 'restoreArchive into an empty database (authenticate, then load)', backup.restore),
        ];
        say();
        say(
          `backups: ${backup.create.rows.toLocaleString('en-US')} rows in ${backup.tables} tables, ${megabytes(backup.create.bytes)} of table data ` +
            `(COPY text; posts ${BACKUP_BENCH_POSTS.toLocaleString('en-US')} rows, ${megabytes(backup.postsBytes)}), ` +
            `best of ${BACKUP_RUNS} runs; MB = 10⁶ bytes of table data`,
        );
        say(formatBackupRuns(rows));
        say(
          `  archive: ${megabytes(backup.archiveBytes)} for ${megabytes(backup.create.bytes)} of table data, ` +
            `${(backup.create.bytes / backup.archiveBytes).toFixed(2)}× compression`,
        );
        say(
          `  memory: this process's RSS grew at most ${megabytes(backup.createRssGrowthBytes)} during a create of ${megabytes(backup.create.bytes)}`,
        );
        say(
          `  checked: the floor read the manifest's posts bytes exactly; every verify VERIFIED; ` +
            `every restore loaded the archive's ${backup.create.rows.toLocaleString('en-US')} rows${backup.problems.length > 0 ? ', EXCEPT:' : ''}`,
        );
        for (const problem of backup.problems) say(`    ${problem}`);
        if (backup.problems.length > 0) exitCode = 1;
      }
    }
    if (signal.aborted) {
      say('\ninterrupted: the table shows only the scenarios that finished');
      exitCode = 130;
    } else if (exitCode !== 0) {
      say('\nsome requests failed: a run with errors measures failures, not Bastion');
    }
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    exitCode = 1;
  } finally {
    if (!(await teardown.run()) && exitCode === 0) exitCode = 1;
  }
  return exitCode;
}

const interrupt = new AbortController();
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.on(name, () => {
    // A second Ctrl-C means "now": the embedded PostgreSQL is then stopped by the next run.
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write('stopping: finishing cleanup (Ctrl-C again to quit at once)\n');
    interrupt.abort();
  });
}

main(interrupt.signal).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
