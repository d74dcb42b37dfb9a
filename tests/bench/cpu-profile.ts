import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';

/** The part of V8's .cpuprofile format the summary reads (the same file `node --cpu-prof` writes). */
export interface CpuProfile {
  readonly nodes: readonly { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/**
 * Records this thread's CPU profile while `work` runs, with V8's sampling profiler (what
 * `node --cpu-prof` uses, limited here to the measured window: no start-up, no seeding).
 */
export async function profileWhile(work: () => Promise<void>, sampleIntervalMicros = 200): Promise<CpuProfile> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: sampleIntervalMicros });
    await session.post('Profiler.start');
    await work();
    const { profile } = await session.post('Profiler.stop');
    return profile as unknown as CpuProfile;
  } finally {
    session.disconnect();
  }
}

export function writeProfile(file: string, profile: CpuProfile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(profile));
}

/** Where a sampled function belongs: its package, Node's own code, Bastion's source folder, or V8's pseudo-frames. */
export function placeOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    // graphql-jit's compiled operations (built with new Function: no url) are named after what they resolve.
    if (/Handler$|^query$|__context|getVariables|getGraphQLResolveInfo|^anonymous$/.test(functionName)) return 'generated code';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8 / native (program)';
    return `native ${functionName}`;
  }
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (packageMatch) return packageMatch[1];
  if (url.startsWith('node:')) {
    const module = url.slice('node:'.length).split('/');
    // internal/streams/readable → node:streams; internal/http → node:http
    return `node:${module[0] === 'internal' ? (module[1] ?? 'internal').replace(/\.js$/, '') : module[0]}`;
  }
  const sourceMatch = /\/(src|tests)\/([^/]+)(\/|\.js$)/.exec(url);
  if (sourceMatch) return `bastion ${sourceMatch[1]}/${sourceMatch[2].replace(/\.js$/, '')}`;
  if (url.startsWith('evalmachine') || !url.includes('/')) return 'generated code';
  return url;
}

/** The groups a "where the time goes" table shows, in the order it shows them. */
export const TIME_GROUPS: readonly { readonly name: string; readonly places: RegExp }[] = [
  {
    name: 'GraphQL execution (graphql-js, graphql-jit, generated)',
    places: /^(graphql|graphql-jit|graphql-scalars|generated code|dataloader)$/,
  },
  {
    name: 'resolver wrappers (type-graphql, graphql-middleware, graphql-shield)',
    places: /^(type-graphql|graphql-middleware|graphql-shield|class-validator|class-transformer)$/,
  },
  {
    name: 'Apollo Server and express',
    places: new RegExp(
      String.raw`^(@apollo\/.*|@as-integrations\/.*|express|body-parser|router|raw-body|negotiator|helmet|iconv-lite|content-type|` +
        String.raw`type-is|finalhandler|send|on-finished|depd|qs|parseurl|path-to-regexp|graphql-query-complexity|@escape\.tech\/.*)$`,
    ),
  },
  { name: 'TypeORM', places: /^typeorm$/ },
  { name: 'pg (driver, protocol, row parsing)', places: /^(pg|pg-protocol|pg-types|pg-pool|postgres-.*|pg-connection-string)$/ },
  {
    name: 'tokens and crypto (jose, node:crypto)',
    places: /^(jose|node:crypto|native .*([Cc]ipher|[Cc]rypt|[Ss]ign|[Vv]erify|[Hh]mac|[Hh]ash|[Dd]igest).*)$/,
  },
  { name: 'logging (pino)', places: /^(pino|pino-std-serializers|sonic-boom|quick-format-unescaped|fast-redact)$/ },
  { name: 'Bastion code', places: /^bastion src\// },
  {
    name: 'sockets and Node http (incl. native writes)',
    places:
      /^(node:.*|native (writev|writeBuffer|writeUtf8String|writeLatin1String|dispatch|onStreamRead|shutdown|close|readStop|readStart))$/,
  },
  {
    name: 'promise jobs and timers (native)',
    places: /^native (runMicrotasks|run|processTicksAndRejections|listOnTimeout|processTimers)$/,
  },
  { name: 'garbage collection', places: /^GC$/ },
  { name: 'V8 / native (program)', places: /^V8 \/ native \(program\)$/ },
];

export interface TimeShare {
  readonly name: string;
  readonly ms: number;
  /** Of the time not idle. */
  readonly share: number;
}

/** Self time by place and by group, idle excluded. */
export function summarise(profile: CpuProfile): { busyMs: number; places: TimeShare[]; groups: TimeShare[]; functions: TimeShare[] } {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byPlace = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busyMicros = 0;
  profile.samples.forEach((id, index) => {
    const node = nodes.get(id);
    if (!node) return;
    const micros = profile.timeDeltas[index] ?? 0;
    const place = placeOf(node.callFrame.url, node.callFrame.functionName);
    if (place === 'idle') return;
    busyMicros += micros;
    byPlace.set(place, (byPlace.get(place) ?? 0) + micros);
    const functionKey = `${node.callFrame.functionName || '(anonymous)'} (${place})`;
    byFunction.set(functionKey, (byFunction.get(functionKey) ?? 0) + micros);
  });
  const share = (entries: Iterable<[string, number]>): TimeShare[] =>
    [...entries]
      .map(([name, micros]) => ({ name, ms: micros / 1000, share: busyMicros > 0 ? micros / busyMicros : 0 }))
      .sort((a, b) => b.ms - a.ms);
  const groups = new Map<string, number>(TIME_GROUPS.map((group) => [group.name, 0]));
  let other = 0;
  for (const [place, micros] of byPlace) {
    const group = TIME_GROUPS.find((candidate) => candidate.places.test(place));
    if (group) groups.set(group.name, groups.get(group.name)! + micros);
    else other += micros;
  }
  groups.set('other packages', other);
  return {
    busyMs: busyMicros / 1000,
    places: share(byPlace),
    groups: share(groups).filter((group) => group.ms > 0),
    functions: share(byFunction),
  };
}
