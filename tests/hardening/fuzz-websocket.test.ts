import fc from 'fast-check';
import { eventually } from '../support/eventually';
import { TestAccount, makeUser } from '../support/factories';
import { seedFuzzRows } from './support/fuzz-rows';
import { fuzzSeed } from './support/fuzz-seed';
import { inParallel } from '../support/leaks';
import { liveClient } from '../support/live-client';
import { TestServer, startTestServer } from '../support/test-server';
import { corpusOperations, loadContractSchema } from './fuzz-documents';
import { schemaNames } from './fuzz-mutations';
import { WsFuzzContext, WsOutcome, WsScript, describeScript, problemsOf, runScript, wsScripts } from './fuzz-websocket';

/**
 * The hardening fuzzer's WebSocket mode: hostile graphql-transport-ws scripts on real sockets
 * (see fuzz-websocket.ts). No message may carry a stack trace, SQL or an INTERNAL_SERVER_ERROR,
 * no socket may be cut or left hanging; afterwards the server is healthy, a fresh subscription
 * still hears changes, and nothing was logged as an error. Bounded: FUZZ_WS_SCRIPTS scripts
 * (default 1,500) or 15 s, whichever comes first. FUZZ_SEED=… replays a run.
 */

const SCRIPTS = Number(process.env.FUZZ_WS_SCRIPTS ?? 1_500);
const TIME_BUDGET_MS = Number(process.env.FUZZ_WS_BUDGET_MS ?? 15_000);
const BATCH = 100;
const CONCURRENCY = 8;
const CI_SEED = 20_260_302;

interface Finding {
  readonly where: string;
  readonly script: WsScript;
  readonly problems: readonly string[];
  readonly outcome: WsOutcome;
}

function report(findings: readonly Finding[], context: WsFuzzContext): string[] {
  const bySignature = new Map<string, { count: number; example: Finding }>();
  for (const finding of findings) {
    const signature = `${finding.script.kind}: ${finding.problems.map((problem) => problem.replace(/[:…][\s\S]*$/, '')).join('; ')}`;
    const entry = bySignature.get(signature) ?? { count: 0, example: finding };
    entry.count += 1;
    bySignature.set(signature, entry);
  }
  return [...bySignature].map(
    ([signature, { count, example }]) =>
      `${count} × ${signature}\n  e.g. ${example.where}: ${example.problems.join('; ')}\n${describeScript(example.script, context)}\n` +
      `  got: ${example.outcome.texts.map((message) => message.slice(0, 300)).join(' | ')}; closed ${JSON.stringify(example.outcome.closedByServer)}`,
  );
}

describe('fuzzing the WebSocket surface', () => {
  let server: TestServer;
  let user: TestAccount;
  let admin: TestAccount;
  let context: WsFuzzContext;
  let logsBefore: number;

  beforeAll(async () => {
    // Sockets of the fuzzer's one address and accounts may overlap while they close: the per-socket limits are the attack suite's.
    server = await startTestServer({ config: { wsMaxSocketsPerAccount: 1_000, wsMaxSocketsPerAddress: 1_000, wsInitTimeoutMs: 1_000 } });
    const expiring = await makeUser(server);
    server.clock.advance((server.config.accessTokenTtlSeconds + 60) * 1000);
    user = await makeUser(server);
    admin = await makeUser(server, { roles: ['admin'] });
    const ids = await seedFuzzRows([user, admin]);
    const [header, payload, signature] = user.accessToken.split('.');
    const schema = loadContractSchema();
    context = {
      schema,
      names: schemaNames(schema),
      ids,
      corpus: corpusOperations(),
      tokens: {
        user: user.accessToken,
        admin: admin.accessToken,
        expired: expiring.accessToken,
        forged: `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`,
      },
    };
    logsBefore = server.logs.lines.length;
  });
  afterAll(() => server?.close());

  it(`answers up to ${SCRIPTS} hostile socket scripts without a leak, an internal error, a cut or a hang`, async () => {
    const seed = fuzzSeed(CI_SEED);
    const arbitrary = wsScripts(context);
    const findings: Finding[] = [];
    const outcomes = new Map<string, number>();
    const started = Date.now();
    let sent = 0;
    let changes = 0;
    // A change every subscriber may see (a published post, a comment on it), delivered before the probe goes out.
    const provoke = async () => {
      changes += 1;
      const account = changes % 2 === 0 ? user : admin;
      await account.client.request(
        'mutation($title: String!) { createPost(input: { title: $title, body: "live", published: true }) { id } }',
        {
          title: `fuzz change ${changes}`,
        },
      );
      await account.client.request('mutation($postId: ID!) { createComment(input: { postId: $postId, body: "live" }) { id } }', {
        postId: context.ids.postIds[0],
      });
      await server.bastion.services.changeListener.settled();
    };
    try {
      for (let batch = 0; sent < SCRIPTS && Date.now() - started < TIME_BUDGET_MS; batch += 1) {
        const scripts = fc.sample(arbitrary, { seed: (seed + batch) | 0, numRuns: Math.min(BATCH, SCRIPTS - sent) });
        await inParallel(scripts, CONCURRENCY, async (script, index) => {
          const where = `batch ${batch} #${index}`;
          let outcome: WsOutcome;
          try {
            outcome = await runScript(server.url, script, provoke);
          } catch (error) {
            findings.push({
              where,
              script,
              problems: [`the run failed: ${(error as Error).message}`],
              outcome: { opened: 0, texts: [], closedByServer: null, hung: false },
            });
            return;
          } finally {
            sent += 1;
          }
          const key = `${script.kind}: ${outcome.closedByServer ? `closed ${outcome.closedByServer.code}` : 'open'}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          const problems = problemsOf(script, outcome);
          if (problems.length > 0) findings.push({ where, script, problems, outcome });
        });
      }
    } finally {
      process.stdout.write(`websocket fuzz: ${sent} scripts in ${Date.now() - started} ms, ${changes} changes, seed ${seed}\n`);
      if (process.env.FUZZ_VERBOSE)
        process.stdout.write(
          `${[...outcomes]
            .sort()
            .map(([outcome, count]) => `  ${outcome}: ${count}`)
            .join('\n')}\n`,
        );
    }
    if (findings.length > 0) process.stdout.write(`websocket fuzz: ${findings.length} findings; replay with FUZZ_SEED=${seed}\n`);
    expect(report(findings, context)).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(Math.min(SCRIPTS, 300));
  }, 60_000);

  it('is healthy afterwards: /healthz, and a fresh subscription hears a change', async () => {
    expect((await fetch(`${server.origin}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.origin}/readyz`)).status).toBe(200);
    // Every fuzz socket is gone, with its subscriptions.
    await eventually(() => server.bastion.services.subscriptionHub.connections().length === 0);
    const writer = await makeUser(server);
    const live = liveClient(server, writer.accessToken);
    try {
      await live.connected;
      const received = live.subscribe(
        'subscription($author: ID) { postChanged(where: { authorId: { eq: $author } }) { kind node { title } } }',
        {
          author: writer.id,
        },
      );
      await eventually(() => server.bastion.services.subscriptionHub.connections().some((connection) => connection.userId === writer.id));
      await writer.client.request('mutation { createPost(input: { title: "after the fuzz" }) { id } }');
      expect(await received.next(1)).toEqual([{ data: { postChanged: { kind: 'CREATED', node: { title: 'after the fuzz' } } } }]);
    } finally {
      await live.dispose();
    }
    expect((await user.client.request('{ me { id } }')).body).toEqual({ data: { me: { id: user.id } } });
  });

  it('logged no error, and no message it could not handle, while being fuzzed', () => {
    const counts = new Map<string, number>();
    for (const line of server.logs.lines
      .slice(logsBefore)
      .filter((entry) => entry.level >= 50 || entry.msg === 'websocket: a message could not be handled')) {
      const err = line.err as { type?: string; message?: string; stack?: string } | undefined;
      const described = `${line.msg}: ${err?.type ?? ''} ${err?.message ?? ''}\n${err?.stack?.split('\n').slice(1, 5).join('\n') ?? ''}`;
      counts.set(described, (counts.get(described) ?? 0) + 1);
    }
    expect([...counts].map(([described, count]) => `${count} × ${described}`)).toEqual([]);
  });
});
