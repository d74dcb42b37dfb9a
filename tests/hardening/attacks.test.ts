import { rulesOf } from '../../src/schema';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  GraphQLField,
  GraphQLSchema,
  Kind,
  OperationDefinitionNode,
  getIntrospectionQuery,
  getNamedType,
  isEnumType,
  isObjectType,
  isUnionType,
  parse,
  validate,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values';
import { FEATURES } from '../../src/features';
import { buildGraphQLSchema } from '../../src/schema';
import { SIGN_IN, SIGN_UP, TestAccount, makeUser, strongPassword } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';
import { changedTables, settledFingerprint } from './support/db-fingerprint';
import { forgedTokenMakers } from './support/forged-tokens';
import {
  Operation,
  SampleOverrides,
  argumentsWithExtra,
  inputPositions,
  minimalSelection,
  printLiteral,
  requiredArguments,
  rootFields,
  rootOperation,
  routesToObjectTypes,
  sampleValue,
} from './support/schema-samples';

/**
 * The attack suite (issue 11 part 2, docs/security.md#gql), generated from the schema where it can be,
 * for what tests/integration does not already prove: mass assignment on every input, suggestion
 * and introspection leaks, CSRF on every mutation, forged tokens on every non-public root field,
 * batching and alias/fragment abuse. Every attack is counted; one that gets through is reported
 * with what it got.
 */

interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: { data?: unknown; errors?: { message: string; extensions?: { code?: unknown } }[] } | null;
}

type HeaderSet = Record<string, string>;
const EVIL_ORIGIN = 'https://evil.example';
/** What a browser adds to a cross-site request it sends without asking (a "simple" request). */
const CROSS_SITE: HeaderSet = { origin: EVIL_ORIGIN, referer: `${EVIL_ORIGIN}/cat.html`, 'sec-fetch-site': 'cross-site', accept: '*/*' };
const REFUSED_AS_INVALID = new Set(['GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT']);
const REFUSED_AS_BAD_REQUEST = new Set(['BAD_REQUEST', 'GRAPHQL_VALIDATION_FAILED']);
const SUGGESTION = /did you mean/i;

/** Counts attacks by category and keeps each one that got through. */
class AttackLedger {
  private readonly tried = new Map<string, number>();
  private readonly successes: string[] = [];

  /** One attack tried; `failure` says how it got through, null when it was refused as it must be. */
  record(category: string, label: string, failure: string | null): void {
    this.tried.set(category, (this.tried.get(category) ?? 0) + 1);
    if (failure) this.successes.push(`${category}: ${label}: ${failure}`);
  }

  succeededIn(category: string): string[] {
    return this.successes.filter((success) => success.startsWith(`${category}: `));
  }

  summary(): string {
    const total = [...this.tried.values()].reduce((sum, count) => sum + count, 0);
    const byCategory = [...this.tried].map(([category, count]) => `${category} ${count}`).join(', ');
    return `attacks: ${total} tried, ${this.successes.length} succeeded (${byCategory})`;
  }
}

async function inParallel<T>(items: readonly T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += width) await Promise.all(items.slice(start, start + width).map(run));
}

const codesOf = (response: RawResponse) => response.body?.errors?.map((error) => error.extensions?.code) ?? [];
const hasData = (response: RawResponse) => response.body?.data !== undefined && response.body?.data !== null;
const misspelt = (name: string) => `${name}${name.at(-1)}`;

/** What graphql-js itself says about an operation (validation, then variable coercion), as the server would before any plugin. */
function localMessages(schema: GraphQLSchema, { query, variables }: Operation): string[] {
  const document = parse(query);
  const invalid = validate(schema, document).map((error) => error.message);
  if (invalid.length > 0) return invalid;
  const operation = document.definitions.find((definition) => definition.kind === Kind.OPERATION_DEFINITION) as OperationDefinitionNode;
  return getVariableValues(schema, operation.variableDefinitions ?? [], variables).errors?.map((error) => error.message) ?? [];
}

describe('attack suite: every attack refused, nothing changed', () => {
  let server: TestServer;
  let schema: GraphQLSchema;
  let admin: TestAccount;
  let adminAal1: TestAccount;
  let user: TestAccount;
  const ledger = new AttackLedger();
  const viewers: Record<'anonymous' | 'user' | 'adminAal1' | 'admin', HeaderSet> = { anonymous: {}, user: {}, adminAal1: {}, admin: {} };

  beforeAll(async () => {
    server = await startTestServer({ config: { mfaRequiredFor: 'admin' } });
    schema = await buildGraphQLSchema(FEATURES);
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
    adminAal1 = await makeUser(server, { roles: ['admin'] });
    user = await makeUser(server);
    viewers.user = { authorization: `Bearer ${user.accessToken}` };
    viewers.adminAal1 = { authorization: `Bearer ${adminAal1.accessToken}` };
    viewers.admin = { authorization: `Bearer ${admin.accessToken}` };
  });
  afterAll(async () => {
    process.stdout.write(`${ledger.summary()}\n`);
    await server?.close();
  });

  async function send(url: string, init: RequestInit): Promise<RawResponse> {
    const response = await fetch(url, init);
    const text = await response.text();
    let body: RawResponse['body'] = null;
    try {
      body = JSON.parse(text) as RawResponse['body'];
    } catch {
      // Not JSON: the checks below see a null body.
    }
    return { status: response.status, headers: response.headers, text, body };
  }

  const postJson = (payload: unknown, headers: HeaderSet = {}) =>
    send(server.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(payload) });
  const getUrl = ({ query, variables }: Operation, operationName?: string) => {
    const params = new URLSearchParams({ query });
    if (Object.keys(variables).length > 0) params.set('variables', JSON.stringify(variables));
    if (operationName) params.set('operationName', operationName);
    return `${server.url}?${String(params)}`;
  };
  const fingerprint = () => settledFingerprint(server.bastion.database.dataSource);

  describe('mass assignment (GQL-11, ASVS 15.3.3)', () => {
    /** What an attacker adds to an input, with values that would hurt if they were applied. */
    const attackerFields = (victimId: string): [string, unknown][] => [
      ['id', victimId],
      ['userId', victimId],
      ['authorId', victimId],
      ['ownerId', victimId],
      ['role', 'admin'],
      ['roles', ['admin']],
      ['status', 'ACTIVE'],
      ['isAdmin', true],
      ['createdAt', '2020-01-01T00:00:00.000Z'],
      ['updatedAt', '2020-01-01T00:00:00.000Z'],
      ['verifiedAt', '2020-01-01T00:00:00.000Z'],
      ['mfaEnabled', false],
      ['emailVerified', true],
      ['__proto__', { role: 'admin', isAdmin: true }],
    ];

    /** Field names of what the operation returns (every member of a union). */
    function returnedFieldNames(field: GraphQLField<unknown, unknown>): string[] {
      const named = getNamedType(field.type);
      const types = isObjectType(named) ? [named] : isUnionType(named) ? named.getTypes() : [];
      return types.flatMap((type) => Object.keys(type.getFields()));
    }

    it('every input of every root field refuses each extra field an attacker tries, as literals and as variables, and nothing changes', async () => {
      const before = await fingerprint();
      const attacks: { label: string; operation: Operation; extra: string }[] = [];
      const unusable: string[] = [];
      for (const position of inputPositions(schema)) {
        const own = new Set(Object.keys(position.type.getFields()));
        const extras = new Map(attackerFields(user.id));
        // What the operation returns is what a client might post back (only where the input is the operation's own).
        const returned = position.path.every((step) => step === 0) ? returnedFieldNames(position.root.field) : [];
        for (const name of returned) if (!extras.has(name)) extras.set(name, 'attack-suite');
        const where = `${position.root.key}(${position.arg.name}${position.path.map((step) => `.${step}`).join('')}: ${position.type.name})`;
        for (const form of ['literals', 'variables'] as const) {
          // The control: without the extra field the very same operation is valid, so the extra is what a refusal is about.
          const problems = localMessages(schema, rootOperation(position.root, argumentsWithExtra(position, {}), form));
          if (problems.length > 0) unusable.push(`${where} as ${form}: ${problems.join('; ')}`);
          for (const [name, value] of extras) {
            if (own.has(name)) continue;
            attacks.push({
              label: `${where} + ${name} as ${form}`,
              operation: rootOperation(position.root, argumentsWithExtra(position, {}, { name, value }), form),
              extra: name,
            });
          }
        }
      }
      // Extra arguments next to the ones a mutation takes (`deleteRole(name: "x", role: "admin")`).
      for (const root of rootFields(schema).filter((candidate) => candidate.section === 'Mutation')) {
        const args = [...requiredArguments(root.field).entries()].map(([arg, value]) => `${arg.name}: ${printLiteral(arg.type, value)}`);
        const own = new Set(root.field.args.map((arg) => arg.name));
        for (const [name, value] of attackerFields(user.id)) {
          if (own.has(name)) continue;
          const query = `mutation { ${root.field.name}(${[...args, `${name}: ${printLiteral(undefined, value)}`].join(', ')})${minimalSelection(root.field)} }`;
          attacks.push({ label: `${root.key} + argument ${name}`, operation: { query, variables: {} }, extra: name });
        }
      }
      expect(unusable).toEqual([]);

      // Sent by an admin on aal2: nothing but the schema stands between the input and the resolver.
      await inParallel(attacks, 16, async ({ label, operation, extra }) => {
        const response = await postJson(operation, viewers.admin);
        const codes = codesOf(response);
        const messages = response.body?.errors?.map((error) => error.message) ?? [];
        let failure: string | null = null;
        if (response.status !== 400 || codes.length === 0 || !codes.every((code) => REFUSED_AS_INVALID.has(String(code))))
          failure = `HTTP ${response.status} ${JSON.stringify(codes)}`;
        else if (hasData(response)) failure = `data came back: ${response.text}`;
        else if (!messages.some((message) => message.includes(`"${extra}"`)))
          failure = `refused for another reason: ${messages.join('; ')}`;
        ledger.record('mass assignment', label, failure);
      });
      expect(ledger.succeededIn('mass assignment')).toEqual([]);
      expect(changedTables(before, await fingerprint())).toEqual([]);
    });
  });

  describe('field suggestions (GQL-2)', () => {
    /** Probes that make graphql-js suggest a name: misspelt fields, arguments, input fields, enum values and type names. */
    function suggestionProbes(): { label: string; operation: Operation }[] {
      const probes: { label: string; operation: Operation }[] = [];
      const literal = (query: string) => ({ query, variables: {} });
      for (const [type, route] of routesToObjectTypes(schema)) {
        const fields = Object.values(type.getFields());
        probes.push({ label: `field ${type.name}.${misspelt(fields[0].name)}`, operation: literal(route(misspelt(fields[0].name))) });
        probes.push({
          label: `type condition ${misspelt(type.name)}`,
          operation: literal(route(`... on ${misspelt(type.name)} { __typename }`)),
        });
        const withArgs = fields.find((field) => field.args.length > 0);
        if (!withArgs) continue;
        const first = withArgs.args[0];
        const args = [
          `${misspelt(first.name)}: ${printLiteral(first.type, sampleValue(first.type))}`,
          ...[...requiredArguments(withArgs).entries()]
            .filter(([arg]) => arg !== first)
            .map(([arg, value]) => `${arg.name}: ${printLiteral(arg.type, value)}`),
        ];
        probes.push({
          label: `argument ${type.name}.${withArgs.name}(${misspelt(first.name)})`,
          operation: literal(route(`${withArgs.name}(${args.join(', ')})${minimalSelection(withArgs)}`)),
        });
      }
      probes.push({ label: 'directive argument @include(iff:)', operation: literal('{ __typename @include(iff: true) }') });
      const enumsProbed = new Set<string>();
      for (const position of inputPositions(schema)) {
        const fields = Object.values(position.type.getFields());
        const first = fields[0];
        for (const form of ['literals', 'variables'] as const) {
          const extra = { name: misspelt(first.name), value: sampleValue(first.type) };
          probes.push({
            label: `input field ${position.type.name}.${extra.name} as ${form} in ${position.root.key}`,
            operation: rootOperation(position.root, argumentsWithExtra(position, {}, extra), form),
          });
        }
        probes.push({
          label: `variable type ${misspelt(position.type.name)}`,
          operation: literal(`query($value: ${misspelt(position.type.name)}) { __typename }`),
        });
        for (const field of fields) {
          const enumType = getNamedType(field.type);
          if (!isEnumType(enumType) || enumsProbed.has(enumType.name)) continue;
          enumsProbed.add(enumType.name);
          const wrong = misspelt(enumType.getValues()[0].name);
          // The field's value replaced by the misspelt one (a list field gets a list of it).
          const extra = { name: field.name, value: Array.isArray(sampleValue(field.type)) ? [wrong] : wrong };
          for (const form of ['literals', 'variables'] as const) {
            probes.push({
              label: `enum value ${enumType.name}.${wrong} as ${form} in ${position.root.key}`,
              operation: rootOperation(position.root, argumentsWithExtra(position, {}, extra), form),
            });
          }
        }
      }
      return probes;
    }

    it('no error to anyone names a field, argument, input field, enum value or type it might have meant', async () => {
      const probes = suggestionProbes();
      // The control: graphql-js, left to itself, suggests a name for every probe.
      const silentProbes = probes
        .filter((probe) => !localMessages(schema, probe.operation).some((message) => SUGGESTION.test(message)))
        .map((probe) => probe.label);
      expect(silentProbes).toEqual([]);
      const attacks = (['anonymous', 'user', 'admin'] as const).flatMap((viewer) => probes.map((probe) => ({ ...probe, viewer })));
      await inParallel(attacks, 16, async ({ label, operation, viewer }) => {
        const response = await postJson(operation, viewers[viewer]);
        let failure: string | null = null;
        if (SUGGESTION.test(response.text))
          failure = `suggested: ${response.body?.errors?.map((error) => error.message).find((message) => SUGGESTION.test(message))}`;
        else if (response.status !== 400 || hasData(response)) failure = `HTTP ${response.status}: ${response.text}`;
        ledger.record('field suggestions', `${viewer}: ${label}`, failure);
      });
      expect(ledger.succeededIn('field suggestions')).toEqual([]);
    });
  });

  describe('introspection (GQL-1, ASVS 4.3.2)', () => {
    const VARIANTS: { label: string; operation: Operation; operationName?: string }[] = [
      { label: '__schema', operation: { query: '{ __schema { types { name } } }', variables: {} } },
      { label: '__type(name:)', operation: { query: '{ __type(name: "User") { name fields { name } } }', variables: {} } },
      { label: 'the full introspection query', operation: { query: getIntrospectionQuery(), variables: {} } },
      { label: 'aliased', operation: { query: '{ s: __schema { queryType { name } } t: __type(name: "Post") { name } }', variables: {} } },
      {
        label: 'in a named fragment',
        operation: { query: 'query { ...F } fragment F on Query { __schema { queryType { name } } }', variables: {} },
      },
      {
        label: 'in a fragment of a fragment',
        operation: {
          query: 'query { ...A } fragment A on Query { ...B } fragment B on Query { __type(name: "User") { name } }',
          variables: {},
        },
      },
      {
        label: 'in an inline fragment',
        operation: { query: '{ ... on Query { __type(name: "Mutation") { fields { name } } } }', variables: {} },
      },
      {
        label: 'behind @include(if: $yes)',
        operation: {
          query: 'query($yes: Boolean!) { serverInfo { name } __schema @include(if: $yes) { types { name } } }',
          variables: { yes: true },
        },
      },
      {
        label: 'behind @skip(if: $no)',
        operation: {
          query: 'query($no: Boolean!) { __typename __schema @skip(if: $no) { queryType { name } } }',
          variables: { no: false },
        },
      },
      {
        label: '__type(name: $name)',
        operation: { query: 'query($name: String!) { __type(name: $name) { fields { name } } }', variables: { name: 'User' } },
      },
      {
        label: 'the second operation of a document, chosen by operationName',
        operation: { query: 'query Harmless { __typename } query Leak { __schema { types { name } } }', variables: {} },
        operationName: 'Leak',
      },
    ];
    const TRANSPORTS = ['POST', 'GET'] as const;

    const request = (transport: (typeof TRANSPORTS)[number], variant: (typeof VARIANTS)[number], headers: HeaderSet) =>
      transport === 'POST'
        ? postJson({ ...variant.operation, operationName: variant.operationName }, headers)
        : // Not a browser: a GET with the preflight header (without it, the CSRF check refuses any GET).
          send(getUrl(variant.operation, variant.operationName), { headers: { 'apollo-require-preflight': 'true', ...headers } });

    it('is refused to anonymous, users and an admin on aal1, however it is hidden, and served to an admin on aal2', async () => {
      const refusedTo = ['anonymous', 'user', 'adminAal1'] as const;
      const attacks = refusedTo.flatMap((viewer) =>
        TRANSPORTS.flatMap((transport) => VARIANTS.map((variant) => ({ viewer, transport, variant }))),
      );
      await inParallel(attacks, 16, async ({ viewer, transport, variant }) => {
        const response = await request(transport, variant, viewers[viewer]);
        const codes = codesOf(response);
        const expected = viewer === 'adminAal1' ? 'MFA_REQUIRED' : 'FORBIDDEN';
        let failure: string | null = null;
        if (hasData(response) || /"(types|fields|queryType)"/.test(response.text))
          failure = `schema leaked: ${response.text.slice(0, 200)}`;
        else if (codes.length !== 1 || codes[0] !== expected)
          failure = `expected ${expected}, got HTTP ${response.status} ${JSON.stringify(codes)}`;
        else if (viewer !== 'adminAal1' && response.status !== 403) failure = `HTTP ${response.status}`;
        ledger.record('introspection', `${viewer} ${transport} ${variant.label}`, failure);
      });
      expect(ledger.succeededIn('introspection')).toEqual([]);

      // The control: the same requests are answered for an admin on aal2 (the refusals are about the viewer).
      const served: string[] = [];
      for (const transport of TRANSPORTS) {
        for (const variant of VARIANTS) {
          const response = await request(transport, variant, viewers.admin);
          if (response.status !== 200 || response.body?.errors || !hasData(response))
            served.push(`${transport} ${variant.label}: HTTP ${response.status} ${response.text.slice(0, 200)}`);
        }
      }
      expect(served).toEqual([]);
    });
  });

  describe('CSRF (GQL-8)', () => {
    it('no mutation goes through from another site, by GET, form, text/plain or multipart, nor any query by a simple GET', async () => {
      const dataSource = server.bastion.database.dataSource;
      const signUpEmail = `csrf.${randomBytes(3).toString('hex')}@example.com`;
      // Realistic inputs, so that a mutation that got through would change something.
      const overrides: SampleOverrides = {
        SignUpInput: () => ({ email: signUpEmail, password: strongPassword() }),
        SignInInput: () => ({ email: user.email, password: user.password }),
        RequestPasswordResetInput: () => ({ email: user.email }),
        RefreshSessionInput: () => ({ refreshToken: user.refreshToken }),
        CreatePostInput: () => ({ title: 'csrf', body: 'csrf' }),
        CreateProfileInput: () => ({ displayName: 'csrf' }),
        CreateRoleInput: () => ({ name: 'csrf' }),
      };
      const rules = rulesOf(FEATURES);
      const isPublic = (section: string, name: string) => (rules[section]?.[name] as { name?: string } | undefined)?.name === 'isPublic';
      const before = await fingerprint();

      const variants: Record<string, (operation: Operation, headers: HeaderSet) => Promise<RawResponse>> = {
        'GET with the query string': (operation, headers) => send(getUrl(operation), { headers: { ...CROSS_SITE, ...headers } }),
        'GET with a preflight header (as a non-browser client would)': (operation, headers) =>
          send(getUrl(operation), { headers: { ...CROSS_SITE, 'apollo-require-preflight': 'true', ...headers } }),
        'form-encoded POST': (operation, headers) =>
          send(server.url, {
            method: 'POST',
            headers: { ...CROSS_SITE, 'content-type': 'application/x-www-form-urlencoded', ...headers },
            body: new URLSearchParams({ query: operation.query, variables: JSON.stringify(operation.variables) }).toString(),
          }),
        'text/plain POST': (operation, headers) =>
          send(server.url, {
            method: 'POST',
            headers: { ...CROSS_SITE, 'content-type': 'text/plain;charset=UTF-8', ...headers },
            body: JSON.stringify(operation),
          }),
        'text/plain POST with the query in the URL too': (operation, headers) =>
          send(getUrl(operation), {
            method: 'POST',
            headers: { ...CROSS_SITE, 'content-type': 'text/plain', ...headers },
            body: JSON.stringify(operation),
          }),
        'POST without a Content-Type': (operation, headers) =>
          send(server.url, { method: 'POST', headers: { ...CROSS_SITE, ...headers }, body: new Blob([JSON.stringify(operation)]) }),
        'multipart/form-data POST': (operation, headers) => {
          const form = new FormData();
          form.set('operations', JSON.stringify(operation));
          form.set('map', '{}');
          form.set('query', operation.query);
          form.set('variables', JSON.stringify(operation.variables));
          return send(server.url, { method: 'POST', headers: { ...CROSS_SITE, ...headers }, body: form });
        },
      };
      const attacks: { label: string; run: () => Promise<RawResponse> }[] = [];
      for (const root of rootFields(schema)) {
        const operation = rootOperation(root, requiredArguments(root.field, overrides), 'variables');
        if (root.section === 'Query') {
          // A browser's simple GET: no Content-Type, no preflight header.
          attacks.push({ label: `${root.key} by a simple GET`, run: () => send(getUrl(operation), { headers: CROSS_SITE }) });
          continue;
        }
        // A page cannot attach a bearer token cross-site; sent anyway, so that a hole would show on every mutation.
        const headers = isPublic(root.section, root.field.name) ? {} : viewers.user;
        for (const [variant, run] of Object.entries(variants))
          attacks.push({ label: `${root.key} by ${variant}`, run: () => run(operation, headers) });
      }
      await inParallel(attacks, 16, async ({ label, run }) => {
        const response = await run();
        let failure: string | null = null;
        if (response.status < 400 || response.status >= 500 || codesOf(response).length === 0)
          failure = `HTTP ${response.status}: ${response.text.slice(0, 200)}`;
        else if (hasData(response)) failure = `data came back: ${response.text.slice(0, 200)}`;
        else if (response.headers.get('access-control-allow-origin'))
          failure = `CORS allowed ${response.headers.get('access-control-allow-origin')}`;
        ledger.record('CSRF', label, failure);
      });
      expect(ledger.succeededIn('CSRF')).toEqual([]);
      expect(changedTables(before, await fingerprint())).toEqual([]);

      // The controls: a native client's GET query is served, and its JSON signUp does change the database.
      const get = await send(getUrl({ query: '{ serverInfo { name } }', variables: {} }), {
        headers: { 'apollo-require-preflight': 'true' },
      });
      expect({ status: get.status, body: get.body }).toEqual({ status: 200, body: { data: { serverInfo: { name: 'Bastion' } } } });
      const signUp = await postJson({ query: SIGN_UP, variables: { input: overrides.SignUpInput() } });
      expect(signUp.status).toBe(200);
      expect(
        await dataSource.query('SELECT count(*)::int AS users FROM users WHERE id = $1', [
          (signUp.body?.data as { signUp: { user: { id: string } } }).signUp.user.id,
        ]),
      ).toEqual([{ users: 1 }]);
      expect(changedTables(before, await fingerprint())).toContain('users');
    });
  });

  describe('forged and dead tokens on every non-public root field (TOK-3, MFA-10, TOK-9)', () => {
    it('every one gets 401 UNAUTHENTICATED and no data, and nothing changes', async () => {
      const [{ id: sessionId }] = await server.bastion.database.dataSource.query(
        'SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL',
        [admin.id],
      );
      // Forgeries claim the admin's live aal2 session: the most a forged token could hope to get.
      const makers = forgedTokenMakers(server, { userId: admin.id, sessionId });
      makers['an mfaToken (the password step of an MFA sign-in)'] = async () => {
        const { body } = await postJson({ query: SIGN_IN, variables: { input: { email: admin.email, password: admin.password } } });
        const mfaToken = (body?.data as { signIn: { mfaToken?: string } }).signIn.mfaToken;
        if (!mfaToken) throw new Error(`expected an MFA challenge: ${JSON.stringify(body)}`);
        return mfaToken;
      };
      makers['the access token of a signed-out session'] = async () => {
        const leaver = await makeUser(server);
        const { body } = await leaver.client.request('mutation { signOut }');
        if (body.data?.signOut !== true) throw new Error(`signOut failed: ${JSON.stringify(body)}`);
        return leaver.accessToken;
      };
      const tokens = Object.fromEntries(
        await Promise.all(Object.entries(makers).map(async ([label, make]) => [label, await make()] as const)),
      );
      const rules = rulesOf(FEATURES);
      const guarded = rootFields(schema).filter((root) => (rules[root.section][root.field.name] as { name?: string }).name !== 'isPublic');
      expect(guarded.length).toBeGreaterThan(40);
      const before = await fingerprint();

      const attacks = Object.entries(tokens).flatMap(([label, token]) => guarded.map((root) => ({ label, token, root })));
      await inParallel(attacks, 16, async ({ label, token, root }) => {
        const response = await postJson(rootOperation(root, requiredArguments(root.field), 'variables'), {
          authorization: `Bearer ${token}`,
        });
        const outcome = { status: response.status, codes: codesOf(response), hasData: response.body !== null && 'data' in response.body };
        const failure =
          outcome.status === 401 && outcome.codes.length === 1 && outcome.codes[0] === 'UNAUTHENTICATED' && !outcome.hasData
            ? null
            : JSON.stringify(outcome);
        ledger.record('forged tokens', `${root.key} with ${label}`, failure);
      });
      expect(ledger.succeededIn('forged tokens')).toEqual([]);
      expect(changedTables(before, await fingerprint())).toEqual([]);
      // The control: the session the forgeries claim is alive, and its real token works.
      expect((await admin.client.request('{ me { id } }')).body).toEqual({ data: { me: { id: admin.id } } });
    });
  });

  describe('batching, aliases and fragments (GQL-3..7)', () => {
    it('are refused with 400, never a 5xx, and change nothing', async () => {
      const signIn = { query: SIGN_IN, variables: { input: { email: user.email, password: user.password } } };
      const aliases = (count: number) => `{ ${Array.from({ length: count }, (_unused, index) => `m${index}: me { id }`).join(' ')} }`;
      const nested = Array.from(
        { length: 30 },
        (_unused, index) => `fragment F${index} on Post { comments { post { ...F${index + 1} } } }`,
      ).join(' ');
      const fanOut = Array.from(
        { length: 20 },
        (_unused, index) => `fragment U${index} on User { ...U${index + 1} ...U${index + 1} }`,
      ).join(' ');
      const payloads: [label: string, payload: unknown][] = [
        ['an array batch of 10 signIn', Array.from({ length: 10 }, () => signIn)],
        [
          'an array batch of signUp and me',
          [
            { query: SIGN_UP, variables: { input: { email: `batch.${randomUUID()}@example.com`, password: strongPassword() } } },
            { query: '{ me { id } }' },
          ],
        ],
        ['an array batch of one signIn', [signIn]],
        ['1000 aliases of me', { query: aliases(1000) }],
        ['16 aliases of me', { query: aliases(16) }],
        ['fragments nested 30 deep', { query: `{ posts { edges { node { ...F0 } } } } ${nested} fragment F30 on Post { id }` }],
        [
          'circular fragments',
          {
            query:
              '{ posts { edges { node { ...A } } } } fragment A on Post { comments { post { ...B } } } fragment B on Post { comments { post { ...A } } }',
          },
        ],
        ['2^20 fragment fan-out inside me', { query: `{ me { ...U0 } } ${fanOut} fragment U20 on User { id }` }],
      ];
      const before = await fingerprint();
      const attacks = (['anonymous', 'user', 'admin'] as const).flatMap((viewer) =>
        payloads.map(([label, payload]) => ({ label: `${viewer}: ${label}`, payload, viewer })),
      );
      await inParallel(attacks, 8, async ({ label, payload, viewer }) => {
        const response = await postJson(payload, viewers[viewer]);
        const codes = codesOf(response);
        const failure =
          response.status === 400 &&
          codes.length > 0 &&
          codes.every((code) => REFUSED_AS_BAD_REQUEST.has(String(code))) &&
          !hasData(response)
            ? null
            : `HTTP ${response.status} ${response.text.slice(0, 200)}`;
        ledger.record('batching and aliases', label, failure);
      });
      expect(ledger.succeededIn('batching and aliases')).toEqual([]);
      expect(changedTables(before, await fingerprint())).toEqual([]);
    });
  });
});
