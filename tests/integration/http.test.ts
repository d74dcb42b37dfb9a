import { makeClient } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const SERVER_INFO = '{ serverInfo { name } }';

describe('HTTP surface', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { sandbox: true, bodyLimitBytes: 4096 } });
  });
  afterAll(() => server.close());

  const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(server.url, { method: 'POST', headers, body });

  describe('request ids', () => {
    it('echoes an acceptable X-Request-Id and stamps the log with it', async () => {
      const { headers } = await makeClient(server).request(SERVER_INFO, undefined, { 'x-request-id': 'ios-42.abc' });
      expect(headers.get('x-request-id')).toBe('ios-42.abc');
      expect(server.logs.find((line) => line.msg === 'request' && line.requestId === 'ios-42.abc')).toMatchObject({
        status: 200,
        path: '/graphql',
      });
    });

    it('replaces an id that could forge log lines with a fresh UUID', async () => {
      const { headers } = await makeClient(server).request(SERVER_INFO, undefined, { 'x-request-id': 'a b\tc' });
      expect(headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('generates one when none is sent', async () => {
      const { headers } = await makeClient(server).request(SERVER_INFO);
      expect(headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe('operation names', () => {
    it('refuses an operationName the document does not define, with 400, instead of running another operation', async () => {
      for (const query of ['{ serverInfo { name } }', 'query Other { serverInfo { name } }', 'mutation { signOut }']) {
        const response = await post(JSON.stringify({ query, operationName: 'Missing' }));
        const body = (await response.json()) as { data?: unknown; errors: { extensions: { code: string } }[] };
        expect({ query, status: response.status, code: body.errors[0].extensions.code, data: body.data }).toEqual({
          query,
          status: 400,
          code: 'OPERATION_RESOLUTION_FAILURE',
          data: undefined,
        });
      }
      expect(server.logs.lines.filter((line) => line.level >= 50)).toEqual([]);
    });
  });

  describe('health', () => {
    it('/healthz says the process is up', async () => {
      const response = await fetch(`${server.origin}/healthz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ok' });
    });

    it('/readyz says the database answers and migrations are applied', async () => {
      const response = await fetch(`${server.origin}/readyz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ready' });
    });
  });

  describe('Apollo Sandbox', () => {
    it('serves the landing page to a browser on GET /graphql', async () => {
      const response = await fetch(server.url, { headers: { accept: 'text/html' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/text\/html/);
      expect(await response.text()).toMatch(/embeddable-sandbox|EmbeddedSandbox/);
    });

    it('lets the Sandbox origin call the API (CORS) and no other origin', async () => {
      const sandbox = await fetch(server.url, {
        method: 'OPTIONS',
        headers: { origin: 'https://sandbox.embed.apollographql.com', 'access-control-request-method': 'POST' },
      });
      expect(sandbox.status).toBe(204);
      expect(sandbox.headers.get('access-control-allow-origin')).toBe('https://sandbox.embed.apollographql.com');
      const other = await fetch(server.url, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  describe('bad input gets a 4xx GraphQL error with a code, never a 500 or a stack', () => {
    const expectClientError = async (response: Response, status: number, code: string) => {
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/application\/json/);
      const body = (await response.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
      expect(body.errors[0].extensions.code).toBe(code);
      expect(JSON.stringify(body)).not.toMatch(/stacktrace|at .*\.js:\d+|node_modules/);
      return body;
    };

    it('malformed JSON', async () => {
      const body = await expectClientError(await post('{"query": '), 400, 'BAD_REQUEST');
      expect(body.errors[0].message).toBe('The request body is not valid JSON.');
    });

    it('a POST without a query', async () => {
      await expectClientError(await post('{"hello":"world"}'), 400, 'BAD_REQUEST');
    });

    it('a body over the limit', async () => {
      await expectClientError(await post(JSON.stringify({ query: `{ serverInfo { name } } # ${'x'.repeat(5000)}` })), 413, 'BAD_REQUEST');
    });

    it('a syntax error', async () => {
      await expectClientError(await post(JSON.stringify({ query: '{ serverInfo { name }' })), 400, 'GRAPHQL_PARSE_FAILED');
    });

    it('an unknown field, without "Did you mean" hints (GQL-2)', async () => {
      const body = await expectClientError(
        await post(JSON.stringify({ query: '{ serverInf { name } }' })),
        400,
        'GRAPHQL_VALIDATION_FAILED',
      );
      expect(body.errors[0].message).not.toMatch(/Did you mean/);
    });

    it('a batch of operations (GQL-6)', async () => {
      await expectClientError(await post(JSON.stringify([{ query: SERVER_INFO }, { query: SERVER_INFO }])), 400, 'BAD_REQUEST');
    });

    it('a form-encoded POST (CSRF, GQL-8)', async () => {
      await expectClientError(
        await post('query=%7B__typename%7D', { 'content-type': 'application/x-www-form-urlencoded' }),
        400,
        'BAD_REQUEST',
      );
    });

    it('a mutation over GET', async () => {
      const response = await fetch(`${server.url}?query=${encodeURIComponent('mutation { __typename }')}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      await expectClientError(response, 405, 'BAD_REQUEST');
    });

    it('an unknown route', async () => {
      await expectClientError(await fetch(`${server.origin}/admin`), 404, 'NOT_FOUND');
    });
  });

  describe('introspection (GQL-1)', () => {
    it('is refused to non-admins outside development', async () => {
      const { status, body } = await makeClient(server).request('{ __schema { types { name } } }');
      expect(status).toBe(403);
      expect(body.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      expect(body.data).toBeUndefined();
    });

    it('is refused when hidden inside a fragment', async () => {
      const { body } = await makeClient(server).request('query { ...F } fragment F on Query { __type(name: "Query") { name } }');
      expect(body.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    });

    it('still answers __typename', async () => {
      const { body } = await makeClient(server).request('{ __typename }');
      expect(body).toEqual({ data: { __typename: 'Query' } });
    });
  });
});

describe('introspection in development', () => {
  it('is open to everyone when BASTION_INTROSPECTION=everyone', async () => {
    const server = await startTestServer({ config: { introspection: 'everyone' } });
    try {
      const { body } = await makeClient(server).request<{ __schema: { queryType: { name: string } } }>(
        '{ __schema { queryType { name } } }',
      );
      expect(body.data?.__schema.queryType.name).toBe('Query');
    } finally {
      await server.close();
    }
  });
});
