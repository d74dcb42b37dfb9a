import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getIntrospectionQuery } from 'graphql';
import Redis from 'ioredis';
import { FrozenClock } from '../../src/clock';
import { configWith } from '../../src/settings';
import { operationId } from '../../src/firewall/operation-allowlist';
import { RedisCounterStore } from '../../src/firewall/shared-counter';
import { createLogger } from '../../src/logging';
import { RunningBastion, startBastion } from '../../src/main';
import { SIGN_IN, SIGN_UP, codesOf, makeClient, makeUser } from '../support/factories';
import { LogCollector } from '../support/log-collector';
import { TEST_KEY_SETTINGS } from '../support/test-keys';
import { TestServer, startTestServer } from '../support/test-server';

const SERVER_INFO = '{ serverInfo { name } }';
const TRUSTED_LOOPBACK = { trustProxy: ['127.0.0.1', '::1'] };
let addresses = 0;
/** A fresh client address for each test, so buckets do not carry over. */
const freshAddress = () => `198.18.${Math.floor((addresses += 1) / 250)}.${addresses % 250}`;

describe('rate limits (PostgreSQL store)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      config: {
        ...TRUSTED_LOOPBACK,
        rateLimitsEnabled: true,
        rateLimitPerIp: { points: 5, seconds: 60 },
        rateLimitPerUser: { points: 4, seconds: 60 },
        rateLimitSignIn: { points: 49, seconds: 60 },
        rateLimitSignUp: { points: 100, seconds: 60 },
        rateLimitVerifyMfa: { points: 1, seconds: 60 },
        rateLimitPasswordReset: { points: 1, seconds: 60 },
        // Room for 50 aliases, so the rate limit (not the alias limit) is what refuses them.
        graphqlMaxAliases: 60,
      },
    });
  });
  afterAll(() => server?.close());

  it('refuses the request over the per-address limit with 429, Retry-After and RATE_LIMITED, before any GraphQL work', async () => {
    const client = makeClient(server, { 'x-forwarded-for': freshAddress() });
    for (let request = 0; request < 5; request += 1) expect((await client.request(SERVER_INFO)).status).toBe(200);
    const refused = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.18.200.1' },
      body: '{}',
    });
    expect(refused.status).not.toBe(429); // another address has its own bucket
    const over = await client.request(SERVER_INFO);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(over.body.errors?.[0].extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: Number(over.headers.get('retry-after')) });
    expect(server.logs.find((line) => line.msg === 'firewall: rate limit hit')).toMatchObject({ kind: 'rate_limited', bucket: 'ip' });
  });

  it('counts every aliased signIn: 50 in one request are 50 attempts against a limit of 49', async () => {
    const address = freshAddress();
    const account = await makeUser(server);
    const aliased = (count: number) => {
      const aliases = Array.from(
        { length: count },
        (_unused, index) =>
          `a${index}: signIn(input: { email: "${account.email}", password: "wrong-${index}-password-here" }) { __typename }`,
      );
      return `mutation { ${aliases.join(' ')} }`;
    };
    const client = makeClient(server, { 'x-forwarded-for': address });
    const five = await client.request(aliased(50));
    expect(five.status).toBe(429);
    expect(codesOf(five)).toEqual(['RATE_LIMITED']);
    expect(five.headers.get('retry-after')).toEqual(expect.stringMatching(/^\d+$/));
    // Refused before running: not one of the five reached the password check.
    expect(server.logs.lines.filter((line) => line.msg === 'sign-in failed' && line.ipAddress === address)).toHaveLength(0);

    const other = makeClient(server, { 'x-forwarded-for': freshAddress() });
    expect(codesOf(await other.request(aliased(49)))).toEqual(['INVALID_CREDENTIALS']);
    expect(codesOf(await other.request(SIGN_IN, { input: { email: account.email, password: account.password } }))).toEqual([
      'RATE_LIMITED',
    ]);
  });

  it('has a bucket of its own for verifyMfa and requestPasswordReset, each refused with 429 and Retry-After', async () => {
    const calls: Record<string, string> = {
      verifyMfa: 'mutation { verifyMfa(input: { mfaToken: "not-a-challenge-token-at-all", code: "123456" }) { accessToken } }',
      requestPasswordReset: 'mutation { requestPasswordReset(input: { email: "nobody@example.com" }) }',
    };
    for (const [operation, query] of Object.entries(calls)) {
      const client = makeClient(server, { 'x-forwarded-for': freshAddress() });
      expect({ operation, status: (await client.request(query)).status }).not.toEqual({ operation, status: 429 });
      const second = await client.request(query);
      expect({
        operation,
        status: second.status,
        codes: codesOf(second),
        retryAfter: Number(second.headers.get('retry-after')) > 0,
      }).toEqual({ operation, status: 429, codes: ['RATE_LIMITED'], retryAfter: true });
    }
  });

  it('limits one account across addresses', async () => {
    const account = await makeUser(server);
    const results: number[] = [];
    for (let request = 0; request < 5; request += 1)
      results.push(
        (
          await makeClient(server, { authorization: `Bearer ${account.accessToken}`, 'x-forwarded-for': freshAddress() }).request(
            '{ me { id } }',
          )
        ).status,
      );
    expect(results).toEqual([200, 200, 200, 200, 429]);
  });
});

describe('rate limits spent only by requests that pass every check', () => {
  const ME = 'query Me { me { id } }';
  const COSTLY = 'query Costly { posts(first: 100) { edges { node { comments(first: 100) { body } } } } }';
  const VERIFY_MFA =
    'mutation VerifyMfa { verifyMfa(input: { mfaToken: "not-a-challenge-token-at-all", code: "123456" }) { accessToken } }';
  let server: TestServer;
  beforeAll(async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-allowlist-')), 'manifest.json');
    // The costly query is listed: the cost limit, not the allowlist, refuses it.
    const operations = [SIGN_UP, ME, COSTLY, VERIFY_MFA].map((body, index) => ({
      id: operationId(body),
      name: `Op${index}`,
      type: 'query',
      body,
    }));
    fs.writeFileSync(file, JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations }));
    server = await startTestServer({
      config: {
        ...TRUSTED_LOOPBACK,
        operationAllowlistFile: file,
        rateLimitsEnabled: true,
        rateLimitPerIp: { points: 100, seconds: 60 },
        rateLimitPerUser: { points: 2, seconds: 60 },
        rateLimitVerifyMfa: { points: 1, seconds: 60 },
      },
    });
  });
  afterAll(() => server?.close());

  const pointsOf = async (key: string): Promise<number> => {
    const rows: { points: number }[] = await server.bastion.database.dataSource.query('SELECT points FROM rate_limits WHERE key = $1', [
      key,
    ]);
    return rows[0]?.points ?? 0;
  };

  it('spends no account point on a request the cost limit refuses', async () => {
    const account = await makeUser(server);
    for (let request = 0; request < 3; request += 1) {
      const refused = await account.client.request(COSTLY);
      expect({ request, status: refused.status, codes: codesOf(refused) }).toEqual({
        request,
        status: 400,
        codes: ['GRAPHQL_VALIDATION_FAILED'],
      });
    }
    expect(await pointsOf(`user:${account.id}`)).toBe(0);
    // Three refusals against a limit of two: the account's next request is still served, and costs its one point.
    const served = await account.client.request(ME);
    expect({ status: served.status, body: served.body }).toEqual({ status: 200, body: { data: { me: { id: account.id } } } });
    expect(await pointsOf(`user:${account.id}`)).toBe(1);
  });

  it('spends no operation point on a request the operation allowlist refuses', async () => {
    const address = freshAddress();
    const client = makeClient(server, { 'x-forwarded-for': address });
    for (let request = 0; request < 3; request += 1) {
      // The same call, but not the document the app was built with.
      const refused = await client.request(VERIFY_MFA.replace('VerifyMfa', `Unlisted${request}`));
      expect({ request, status: refused.status, codes: codesOf(refused) }).toEqual({ request, status: 403, codes: ['FORBIDDEN'] });
    }
    expect(await pointsOf(`op-verifyMfa:${address}`)).toBe(0);
    // The listed call gets its one try (its own answer, not RATE_LIMITED), and spends the point.
    const listed = await client.request(VERIFY_MFA);
    expect({ status: listed.status, limited: codesOf(listed)?.includes('RATE_LIMITED') }).toEqual({ status: 200, limited: false });
    expect(await pointsOf(`op-verifyMfa:${address}`)).toBe(1);
    const again = await client.request(VERIFY_MFA);
    expect({ status: again.status, codes: codesOf(again), retryAfter: Number(again.headers.get('retry-after')) > 0 }).toEqual({
      status: 429,
      codes: ['RATE_LIMITED'],
      retryAfter: true,
    });
    expect(again.body.errors?.[0].extensions).toEqual({
      code: 'RATE_LIMITED',
      retryAfterSeconds: Number(again.headers.get('retry-after')),
    });
  });
});

describe('rate limits shared by two instances on one database', () => {
  it('counts requests to either instance against one limit, exactly, at the very next request', async () => {
    // A loaded CI machine must not turn a slow store answer into a local decision here.
    const config = {
      ...TRUSTED_LOOPBACK,
      rateLimitsEnabled: true,
      rateLimitPerIp: { points: 5, seconds: 60 },
      rateLimitStoreWaitMs: 30_000,
    };
    const a = await startTestServer({ config });
    let b: RunningBastion | undefined;
    try {
      b = await startBastion(
        configWith({
          databaseUrl: a.database.url,
          port: 0,
          host: '127.0.0.1',
          migrateOnStart: false,
          databasePoolSize: 2,
          ...TEST_KEY_SETTINGS,
          ...config,
        }),
        { logger: createLogger({ level: 'silent', pretty: false, destination: new LogCollector() }), clock: a.clock },
      );
      const address = freshAddress();
      const onA = makeClient(a, { 'x-forwarded-for': address });
      const onB = makeClient({ url: b.url }, { 'x-forwarded-for': address });
      const statuses = [];
      // A alone would allow all of its four; B's three come first in the count.
      for (const client of [onB, onB, onB, onA, onA, onA, onA, onB]) statuses.push((await client.request(SERVER_INFO)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      // Sent at once, to both: still five.
      const burst = freshAddress();
      const together = await Promise.all(
        Array.from({ length: 12 }, (_, request) =>
          makeClient(request % 2 === 0 ? a : { url: b!.url }, { 'x-forwarded-for': burst }).request(SERVER_INFO),
        ),
      );
      expect(together.filter((response) => response.status === 200)).toHaveLength(5);
      await a.bastion.services.rateLimits!.flush();
      await b.services.rateLimits!.flush();
      const [{ points }] = await a.bastion.database.dataSource.query(
        "SELECT sum(points)::int AS points FROM rate_limits WHERE key LIKE 'ipw:%' || $1",
        [address],
      );
      expect(points).toBe(8);
    } finally {
      await b?.stop();
      await a.close();
    }
  });
});

describe('rate limits (Redis store)', () => {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    it('are not run: REDIS_URL is not set (CI sets it)', () => {
      process.stdout.write('rate limits with Redis: not run, REDIS_URL is not set\n');
    });
    return;
  }
  it('refuse the request over the limit, counted in Redis', async () => {
    const server = await startTestServer({
      config: { ...TRUSTED_LOOPBACK, rateLimitsEnabled: true, redisUrl, rateLimitPerIp: { points: 3, seconds: 60 } },
    });
    try {
      // A prefix of its own in Redis, so runs do not share counters: a fresh address.
      const client = makeClient(server, {
        'x-forwarded-for': `2001:db8:${randomBytes(2).toString('hex')}::${randomBytes(2).toString('hex')}`,
      });
      const statuses = [];
      for (let request = 0; request < 4; request += 1) statuses.push((await client.request(SERVER_INFO)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const [{ count }] = await server.bastion.database.dataSource.query('SELECT count(*)::int AS count FROM rate_limits');
      expect(count).toBe(0); // not in PostgreSQL
    } finally {
      await server.close();
    }
  });

  it('take a command Redis refuses for a failed send (Redis reports it in the reply, not as a rejection)', async () => {
    const client = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false });
    await client.connect();
    const key = `bastion-test:${randomBytes(6).toString('hex')}`;
    try {
      await client.hset(key, 'not', 'a counter');
      const store = new RedisCounterStore(client, new FrozenClock('2026-03-01T12:00:00.000Z'));
      await expect(store.add([{ key, count: 1, expiresAt: Date.parse('2026-03-01T12:01:00.000Z') }])).rejects.toThrow(/WRONGTYPE/);
    } finally {
      await client.del(key);
      client.disconnect();
    }
  });
});

describe('GraphQL limits (hardened graphql-armor, token and cost limits)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  const expectRefused = async (query: string, label: string) => {
    const response = await makeClient(server).request(query);
    expect({ label, status: response.status, codes: [...new Set(codesOf(response))] }).toEqual({
      label,
      status: 400,
      codes: ['GRAPHQL_VALIDATION_FAILED'],
    });
    // Limits are not named: the attacker learns nothing about the numbers.
    expect(JSON.stringify(response.body)).not.toMatch(/\d+ exceeded|limit of \d+|found \d+/i);
    return response;
  };

  it('refuses deep queries, too many aliases (even of __typename), too many directives, too many tokens, too costly lists', async () => {
    await expectRefused('{ posts { edges { node { comments { post { comments { post { comments { id } } } } } } } } }', 'depth 9');
    await expectRefused(`{ ${Array.from({ length: 16 }, (_unused, index) => `a${index}: serverInfo { name }`).join(' ')} }`, '16 aliases');
    await expectRefused(
      `{ ${Array.from({ length: 101 }, (_unused, index) => `t${index}: __typename`).join(' ')} }`,
      '101 __typename aliases',
    );
    await expectRefused(`{ serverInfo { ${'name '.repeat(1200)} } }`, '1200 tokens');
    await expectRefused('{ posts(first: 100) { edges { node { comments(first: 100) { body } } } } }', 'cost 100 × 100');
    // Within every limit: served.
    const fine = await makeClient(server).request('{ posts(first: 100) { edges { node { title author { displayName } commentCount } } } }');
    expect(fine.status).toBe(200);
  });

  it('refuses a sixth directive by its own limit, where no standard rule would', async () => {
    // Each directive valid and used once per field: graphql-js's own rules (unknown directives, one
    // @skip per location) find nothing here, so only BASTION_GRAPHQL_MAX_DIRECTIVES can refuse it.
    const fields = (count: number) =>
      Array.from({ length: count }, (_unused, index) => `f${index}: __typename @skip(if: false) @include(if: true)`).join(' ');
    const refused = await expectRefused(`{ ${fields(3)} }`, '6 directives');
    expect(refused.body.errors?.map((error) => error.message)).toEqual([expect.stringMatching(/too many directives/)]);
    const withinLimit = await makeClient(server).request(`{ ${fields(2)} last: __typename @include(if: true) }`);
    expect({ status: withinLimit.status, errors: withinLimit.body.errors }).toEqual({ status: 200, errors: undefined });
  });

  it("cannot be fooled: fragment fan-out, a negative first, the library's node limit", async () => {
    // Each fragment spreads the next twice: 2^20 selections if expanded (the rate limiter and the cost walk must not expand them).
    const fragments = Array.from(
      { length: 20 },
      (_unused, index) => `fragment F${index} on Query { ...F${index + 1} ...F${index + 1} }`,
    ).join(' ');
    const fanOut = await makeClient(server).request(`query { ...F0 } ${fragments} fragment F20 on Query { serverInfo { name } }`);
    expect(fanOut.status).toBe(400);
    await expectRefused(
      '{ a: posts(first: -2000000000) { totalCount } b: posts(first: 100) { edges { node { comments(first: 100) { body } } } } }',
      'negative first',
    );
  });

  it('refuses deeply nested variables and over-long documents on GET too, however the URL is padded', async () => {
    const deep = JSON.stringify({ where: JSON.parse(`${'{"OR":['.repeat(40)}{}${']}'.repeat(40)}`) });
    const query = 'query($where: PostWhere) { posts(where: $where) { totalCount } }';
    // Express's parsed query string keeps the first 1000 keys; Apollo reads every one from the URL.
    for (const padding of ['', '&'.repeat(1000)]) {
      const response = await fetch(`${server.url}?${padding}query=${encodeURIComponent(query)}&variables=${encodeURIComponent(deep)}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      expect({
        padded: padding.length > 0,
        status: response.status,
        code: ((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code,
      }).toEqual({ padded: padding.length > 0, status: 400, code: 'BAD_USER_INPUT' });
      const long = await fetch(`${server.url}?${padding}query=${encodeURIComponent(`{ serverInfo { ${'name '.repeat(1200)} } }`)}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      expect({ padded: padding.length > 0, status: long.status }).toEqual({ padded: padding.length > 0, status: 400 });
    }
  });

  it('refuses directive overloading and field duplication with one error, before the rest of validation runs (graphql-cop)', async () => {
    const overloaded = {
      // graphql-cop's directive overloading: every other rule used to report each copy (10 and 49 errors).
      '10 × @aa': `query cop { __typename ${'@aa '.repeat(10)}}`,
      '50 × @include': `{ __typename ${'@include(if: true) '.repeat(50)}}`,
    };
    for (const [label, query] of Object.entries(overloaded)) {
      const response = await expectRefused(query, label);
      expect({ label, errors: response.body.errors }).toEqual({
        label,
        errors: [{ message: expect.stringMatching(/too many directives/), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }],
      });
    }
    // graphql-cop's field duplication: 500 × __typename was served.
    const duplicated = await expectRefused(`query cop { ${'__typename \n'.repeat(500)}}`, '500 × __typename');
    expect(duplicated.body).toEqual({
      errors: [{ message: 'The query repeats a field too often.', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }],
    });
    // Over several limits at once: still the one error.
    const both = await expectRefused(
      `{ ${'__typename '.repeat(4)} ${Array.from({ length: 16 }, (_unused, index) => `a${index}: __typename @aa`).join(' ')} }`,
      'repeats, aliases and directives',
    );
    expect(both.body.errors).toHaveLength(1);
    // A field written twice (or three times) is legal, and served.
    expect(await makeClient(server).request('{ __typename __typename serverInfo { name name name } }')).toMatchObject({
      status: 200,
      body: { data: { __typename: 'Query', serverInfo: { name: 'Bastion' } } },
    });
  });

  it('answers with at most 5 errors, however many the request makes', async () => {
    const twenty = await makeClient(server).request(`{ ${Array.from({ length: 20 }, (_unused, index) => `nope${index}`).join(' ')} }`);
    expect({ status: twenty.status, codes: codesOf(twenty) }).toEqual({ status: 400, codes: Array(5).fill('GRAPHQL_VALIDATION_FAILED') });
    // The first five, in document order.
    expect(twenty.body.errors?.map((error) => error.message)).toEqual(
      Array.from({ length: 5 }, (_unused, index) => `Cannot query field "nope${index}" on type "Query".`),
    );
    // Field errors too: ten posts that do not exist keep their (null) data, with five errors.
    const missing = await makeClient(server).request(
      `{ ${Array.from({ length: 10 }, (_unused, index) => `p${index}: post(id: "00000000-0000-4000-8000-00000000000${index}") { id }`).join(' ')} }`,
    );
    expect({ status: missing.status, codes: codesOf(missing), data: Object.keys(missing.body.data ?? {}).length }).toEqual({
      status: 200,
      codes: Array(5).fill('NOT_FOUND'),
      data: 10,
    });
  });

  it('lets an admin run the full introspection query (Sandbox, codegen)', async () => {
    const admin = await makeUser(server, { roles: ['admin'] });
    const introspection = await admin.client.request(getIntrospectionQuery());
    expect({ status: introspection.status, errors: introspection.body.errors }).toEqual({ status: 200, errors: undefined });
  });

  it('sends security headers and no field suggestions', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ serverInf { name } }' }),
    });
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(await response.text()).not.toContain('Did you mean');
  });
});

describe('operation allowlist (OPERATION_ALLOWLIST_FILE)', () => {
  it('serves only the operations of the manifest to non-admins; admins are exempt', async () => {
    const listed = 'query ServerName { serverInfo { name } }';
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-allowlist-')), 'manifest.json');
    // The app's build ships its sign-up too (the factories use it).
    const operations = [listed, SIGN_UP].map((body, index) => ({ id: operationId(body), name: `Operation${index}`, type: 'query', body }));
    fs.writeFileSync(file, JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations }));
    const server = await startTestServer({ config: { operationAllowlistFile: file } });
    try {
      expect((await makeClient(server).request(listed)).body).toEqual({ data: { serverInfo: { name: 'Bastion' } } });
      const other = await makeClient(server).request('{ serverInfo { name version } }');
      expect({ status: other.status, codes: codesOf(other) }).toEqual({ status: 403, codes: ['FORBIDDEN'] });
      const admin = await makeUser(server, { roles: ['admin'] });
      expect(codesOf(await admin.client.request('{ serverInfo { name version } roles { name } }'))).toBeUndefined();
    } finally {
      await server.close();
    }
  });
});

describe('operation allowlist: the manifest preloaded as persisted queries', () => {
  it('answers an id-only request for a listed operation at the first try, by POST and GET; an unlisted id is still refused', async () => {
    const listed = 'query ServerName { serverInfo { name } }';
    const unlisted = '{ serverInfo { name version } }';
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-allowlist-')), 'manifest.json');
    const operations = [listed, SIGN_UP].map((body, index) => ({ id: operationId(body), name: `Operation${index}`, type: 'query', body }));
    fs.writeFileSync(file, JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations }));
    const server = await startTestServer({ config: { operationAllowlistFile: file } });
    const persisted = (id: string) => ({ persistedQuery: { version: 1, sha256Hash: id } });
    const post = async (id: string) => {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ extensions: persisted(id) }),
      });
      return {
        status: response.status,
        body: (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] },
      };
    };
    const get = async (id: string) => {
      const url = `${server.url}?extensions=${encodeURIComponent(JSON.stringify(persisted(id)))}`;
      const response = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
      return {
        status: response.status,
        body: (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] },
      };
    };
    try {
      // A fresh server: nothing was ever sent with its document, yet the id alone is answered.
      expect(await post(operationId(listed))).toEqual({ status: 200, body: { data: { serverInfo: { name: 'Bastion' } } } });
      expect(await get(operationId(listed))).toEqual({ status: 200, body: { data: { serverInfo: { name: 'Bastion' } } } });
      for (const send of [post, get]) {
        const refused = await send(operationId(unlisted));
        expect(refused.body.data).toBeUndefined();
        expect(refused.body.errors?.map((error) => error.extensions?.code)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
      }
      // The APQ round trip for an unlisted document is refused by the allowlist, and leaves nothing behind.
      const registered = await makeClient(server).request(unlisted);
      expect(codesOf(registered)).toEqual(['FORBIDDEN']);
      const withDocument = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: unlisted, extensions: persisted(operationId(unlisted)) }),
      });
      expect(withDocument.status).toBe(403);
      expect((await post(operationId(unlisted))).body.errors?.map((error) => error.extensions?.code)).toEqual([
        'PERSISTED_QUERY_NOT_FOUND',
      ]);
    } finally {
      await server.close();
    }
  });
});
