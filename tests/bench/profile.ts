// Decorator metadata must exist before any type-graphql class is loaded.
import 'reflect-metadata';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { systemClock } from '../../src/clock';
import { createLogger } from '../../src/logging';
import { startBastion } from '../../src/main';
import { PROJECT_ROOT } from '../../src/project';
import { profileWhile, summarise, writeProfile } from './cpu-profile';
import { RATE_LIMITS_OFF } from './firewall-bench';
import { Teardown, benchConfigFor, benchDatabaseUrl, benchPoolSize, loopbackOrigin, positiveInteger } from './harness';
import { measure, probe } from './measure';
import { seedBenchData } from './posts-bench';
import { ENCRYPTED, PLAIN, seedProfiles } from './crypto-bench';
import { SCENARIOS, Scenario, withBearer } from './scenarios';

/**
 * `npm run bench:profile -- <scenario> [<scenario> …]`: where one scenario's CPU time goes. Starts
 * the bench's Bastion and data, loads the scenario as `npm run bench` does (10 connections after a
 * warm-up), records the main thread's CPU profile during the measured window only, writes it to
 * .bastion/profiles/<scenario>.cpuprofile (open it in Chrome DevTools) and prints self time by
 * group, by package and by function. The load generator runs in a worker thread, outside the profile.
 */
async function main(): Promise<number> {
  const names = process.argv.slice(2);
  // The encryption section's two reads, by the profile reader (who may read every profile).
  const extra: Scenario[] = [
    { name: 'profiles-plain', target: 'bastion', request: PLAIN, signedIn: true },
    { name: 'profiles-encrypted', target: 'bastion', request: ENCRYPTED, signedIn: true },
  ];
  const known = [...SCENARIOS.filter((scenario) => scenario.target === 'bastion'), ...extra];
  const scenarios = names.map(
    (name) =>
      known.find((scenario) => scenario.name === name) ??
      fail(`no Bastion scenario named ${name}; scenarios: ${known.map((s) => s.name).join(', ')}`),
  );
  if (scenarios.length === 0) fail('name at least one scenario');
  const seconds = positiveInteger('BENCH_DURATION', 10);
  const connections = positiveInteger('BENCH_CONNECTIONS', 10);
  // Longer than the bench's per-scenario 2 s: a fresh server's first list runs on cold caches (V8's, PostgreSQL's) for several seconds.
  const warmUpSeconds = positiveInteger('BENCH_WARMUP', 8);
  const logger = createLogger({ level: 'silent', pretty: false });
  const teardown = new Teardown();
  const signal = new AbortController().signal;
  try {
    const databaseUrl = await benchDatabaseUrl(logger, teardown);
    const bastion = await startBastion(benchConfigFor(databaseUrl, benchPoolSize(connections))(RATE_LIMITS_OFF), {
      logger,
      clock: systemClock,
    });
    teardown.add(() => bastion.stop());
    const origin = loopbackOrigin(bastion);
    const data = await seedBenchData(new URL('/graphql', origin).toString(), bastion.database.dataSource);
    const profileReader = await seedProfiles(new URL('/graphql', origin).toString(), bastion.database.dataSource, bastion.services);
    for (const scenario of scenarios) {
      const token = extra.includes(scenario) ? profileReader.accessToken : data.reader.accessToken;
      const request = scenario.signedIn ? withBearer(scenario.request, token) : scenario.request;
      const problem = await probe(origin, request, scenario.check);
      if (problem) fail(`${scenario.name}: ${problem}`);
      await measure(origin, request, { durationSeconds: warmUpSeconds, connections, signal });
      // The main thread's busy time per request, without the profiler: steadier than req/s on a shared host.
      const before = performance.eventLoopUtilization();
      const plain = await measure(origin, request, { durationSeconds: seconds, connections, signal });
      const busy = performance.eventLoopUtilization(before);
      const perRequest = plain && plain.requestsPerSecond > 0 ? (busy.active / (plain.requestsPerSecond * seconds)) * 1000 : 0;
      process.stdout.write(
        `\n${scenario.name} without the profiler: ${plain?.requestsPerSecond.toFixed(1)} req/s, ` +
          `main thread busy ${(busy.utilization * 100).toFixed(0)} %, ${perRequest.toFixed(0)} µs per request\n`,
      );
      if (process.env.BENCH_PROFILE === '0') continue;
      let requestsPerSecond = 0;
      const profile = await profileWhile(async () => {
        requestsPerSecond = (await measure(origin, request, { durationSeconds: seconds, connections, signal }))?.requestsPerSecond ?? 0;
      });
      const file = path.join(PROJECT_ROOT, '.bastion', 'profiles', `${scenario.name}.cpuprofile`);
      writeProfile(file, profile);
      const { busyMs, groups, places, functions } = summarise(profile);
      const percent = (share: number) => `${(share * 100).toFixed(1).padStart(5)} %`;
      process.stdout.write(
        `\n${scenario.name}: ${requestsPerSecond.toFixed(1)} req/s, main thread busy ${(busyMs / 1000).toFixed(1)} s of ${seconds} s; ` +
          `profile: ${path.relative(process.cwd(), file)}\n`,
      );
      process.stdout.write('\nwhere the time goes (self time, idle excluded)\n');
      for (const group of groups) process.stdout.write(`  ${percent(group.share)}  ${group.name}\n`);
      process.stdout.write('\nby package or folder\n');
      for (const place of places.slice(0, 20)) process.stdout.write(`  ${percent(place.share)}  ${place.name}\n`);
      process.stdout.write('\nby function\n');
      for (const entry of functions.slice(0, 25)) process.stdout.write(`  ${percent(entry.share)}  ${entry.name}\n`);
    }
    return 0;
  } finally {
    await teardown.run();
  }
}

function fail(message: string): never {
  throw new Error(message);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench:profile: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
