import { randomUUID } from 'node:crypto';
import {
  GraphQLArgument,
  GraphQLField,
  GraphQLInputType,
  GraphQLObjectType,
  getNamedType,
  isCompositeType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
} from 'graphql';
import { mergeRuleTrees } from '../../src/access/shield';
import { FEATURES } from '../../src/features';
import { buildGraphQLSchema } from '../../src/schema';
import { GraphQLClient, GraphQLResponse, SIGN_IN, TestAccount, makeClient, makeUser } from '../support/factories';
import { MEMOS_TABLE_SQL, memoFeature } from '../support/memo-model';
import { TestServer, startTestServer } from '../support/test-server';
import { totpCode } from '../../src/mfa/totp';

/**
 * SECURITY.md §1c / GQ-10 / GQ-11, generated: every root operation of the schema, called by every
 * kind of viewer (anonymous, user, a custom role, admin on aal1 and on aal2, admin requiring MFA),
 * with another user's ids wherever an operation takes one. The expected outcome is worked out here
 * from the policy as data (the roles and grants the admin API reports) and the rule each field
 * declares, independently of the code that enforces it.
 */

type ViewerKind = 'anonymous' | 'user' | 'curator' | 'adminAal1' | 'adminAal2';
const VIEWERS: readonly ViewerKind[] = ['anonymous', 'user', 'curator', 'adminAal1', 'adminAal2'];
/** Operations that end the caller's own session: each gets a fresh one, and they run last. */
const ENDS_OWN_SESSION = new Set(['Mutation.signOut', 'Mutation.signOutEverywhere']);
const DENIALS = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'MFA_REQUIRED']);

interface PolicyGrant {
  role: string;
  model: string;
  action: string;
  scope: string;
  filter: string | null;
}

interface Victim {
  account: TestAccount;
  memoId: string;
  sessionId: string;
}

interface Expectation {
  readonly allowed: boolean;
  /** The code a denial must carry. */
  readonly denial?: 'UNAUTHENTICATED' | 'FORBIDDEN' | 'MFA_REQUIRED';
  /** For id-taking model operations: whether the victim's row is in the viewer's scope. */
  readonly rowInScope?: boolean;
}

describe('permission matrix: every operation × every kind of viewer, with another user\'s ids (IDOR)', () => {
  let server: TestServer;
  let admin: TestAccount;
  let victim: Victim;
  const viewers = new Map<ViewerKind, TestAccount | null>();
  let grants: PolicyGrant[];
  let requireMfa: Map<string, boolean>;

  beforeAll(async () => {
    server = await startTestServer({ config: { mfaRequiredFor: 'admin' }, extraFeatures: [memoFeature], setupSql: [MEMOS_TABLE_SQL] });
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
    // A custom role: reads every memo's title, nothing else.
    await admin.client.request('mutation { createRole(input: { name: "curator" }) { name } }');
    await admin.client.request('mutation { grantPermission(input: { role: "curator", model: "Memo", action: READ, scope: ALL, fields: ["title"] }) { id } }');

    const victimAccount = await makeUser(server);
    const created = await victimAccount.client.request<{ createMemo: { id: string } }>('mutation { createMemo(input: { title: "victim", body: "victim body" }) { id } }');
    const [session] = await server.bastion.database.dataSource.query('SELECT id FROM sessions WHERE user_id = $1', [victimAccount.id]);
    victim = { account: victimAccount, memoId: created.body.data!.createMemo.id, sessionId: session.id };

    viewers.set('anonymous', null);
    viewers.set('user', await makeUser(server));
    viewers.set('curator', await makeUser(server, { roles: ['curator'] }));
    viewers.set('adminAal1', await makeUser(server, { roles: ['admin'] }));
    viewers.set('adminAal2', admin);

    const policy = await admin.client.request<{ permissionMatrix: PolicyGrant[]; roles: { name: string; requireMfa: boolean }[] }>('{ permissionMatrix { role model action scope filter } roles { name requireMfa } }');
    grants = policy.body.data!.permissionMatrix;
    requireMfa = new Map(policy.body.data!.roles.map((role) => [role.name, role.requireMfa]));
  });
  afterAll(() => server?.close());

  /** The roles a viewer holds (every viewer holds anonymous), and which are in force on its session. */
  function rolesOf(kind: ViewerKind): { held: string[]; inForce: string[] } {
    const held = kind === 'anonymous' ? ['anonymous'] : kind === 'user' ? ['anonymous', 'user'] : kind === 'curator' ? ['anonymous', 'user', 'curator'] : ['anonymous', 'user', 'admin'];
    const aal2 = kind === 'adminAal2';
    return { held, inForce: held.filter((role) => aal2 || !requireMfa.get(role)) };
  }

  function denialFor(kind: ViewerKind, wouldAllowHeld: boolean): Expectation {
    if (kind === 'anonymous') return { allowed: false, denial: 'UNAUTHENTICATED' };
    return { allowed: false, denial: wouldAllowHeld ? 'MFA_REQUIRED' : 'FORBIDDEN' };
  }

  /** What the policy says about one root field for one viewer. */
  function expectationFor(kind: ViewerKind, ruleName: string, field: GraphQLField<unknown, unknown>): Expectation {
    const { held, inForce } = rolesOf(kind);
    if (ruleName === 'isPublic') return { allowed: true };
    if (ruleName === 'isAuthenticated') return kind === 'anonymous' ? denialFor(kind, false) : { allowed: true };
    if (ruleName === 'isAdmin') return inForce.includes('admin') ? { allowed: true } : denialFor(kind, held.includes('admin'));
    const modelRule = /^can(Read|Create|Update|Delete):(\w+)$/.exec(ruleName);
    if (!modelRule) throw new Error(`the matrix does not know rule ${ruleName}: teach it what the policy says for it`);
    const [action, model] = [modelRule[1].toUpperCase(), modelRule[2]];
    const applicable = (roles: string[]) => grants.filter((grant) => grant.model === model && grant.action === action && roles.includes(grant.role) && (grant.scope === 'ALL' || kind !== 'anonymous'));
    const inForceGrants = applicable(inForce);
    if (inForceGrants.length === 0) return denialFor(kind, applicable(held).length > 0);
    // The victim's memo is unpublished and not the viewer's: only an unfiltered ALL grant reaches it.
    const takesId = field.args.some((arg) => getNamedType(arg.type).name === 'ID');
    return takesId ? { allowed: true, rowInScope: inForceGrants.some((grant) => grant.scope === 'ALL' && grant.filter === null) } : { allowed: true };
  }

  /** Another user's id for every id-taking argument; a new id-taking field must be added here. */
  function idFor(path: string): string {
    const ids: Record<string, string> = {
      'Query.memo.id': victim.memoId,
      'Mutation.updateMemo.id': victim.memoId,
      'Mutation.deleteMemo.id': victim.memoId,
      'Mutation.revokeSession.id': victim.sessionId,
      'Mutation.revokePermission.id': randomUUID(),
      'Mutation.assignRole.input.userId': victim.account.id,
      'Mutation.unassignRole.input.userId': victim.account.id,
      'Mutation.setUserStatus.input.userId': victim.account.id,
    };
    if (!ids[path]) throw new Error(`${path} takes an id: add the victim's id for it to the IDOR map`);
    return ids[path];
  }

  function valueFor(type: GraphQLInputType, path: string): unknown {
    if (isNonNullType(type)) return valueFor(type.ofType, path);
    if (isListType(type)) return [valueFor(type.ofType, path)];
    if (isEnumType(type)) return type.getValues()[0].name;
    if (isInputObjectType(type)) {
      const input: Record<string, unknown> = {};
      for (const field of Object.values(type.getFields())) {
        if (isNonNullType(field.type) || getNamedType(field.type).name === 'ID') input[field.name] = valueFor(field.type, `${path}.${field.name}`);
      }
      // A write must name a field to reach the permission checks behind the schema.
      if (type.name === 'MemoInput') input.title = 'changed by the matrix';
      return input;
    }
    if (isScalarType(type)) {
      switch (type.name) {
        case 'ID':
          return idFor(path);
        case 'Int':
        case 'Float':
          return 1;
        case 'Boolean':
          return false;
        case 'DateTimeISO':
          return new Date().toISOString();
        default:
          return 'matrix-value';
      }
    }
    throw new Error(`no value for ${String(type)} at ${path}`);
  }

  function operationFor(section: 'Query' | 'Mutation', field: GraphQLField<unknown, unknown>): { query: string; variables: Record<string, unknown> } {
    const args = field.args.filter((arg: GraphQLArgument) => isNonNullType(arg.type) || getNamedType(arg.type).name === 'ID');
    const variables = Object.fromEntries(args.map((arg) => [arg.name, valueFor(arg.type, `${section}.${field.name}.${arg.name}`)]));
    const declared = args.map((arg) => `$${arg.name}: ${String(arg.type)}`).join(', ');
    const passed = args.map((arg) => `${arg.name}: $${arg.name}`).join(', ');
    const selection = isCompositeType(getNamedType(field.type)) ? ' { __typename }' : '';
    return {
      query: `${section.toLowerCase()}${declared ? `(${declared})` : ''} { ${field.name}${passed ? `(${passed})` : ''}${selection} }`,
      variables,
    };
  }

  async function clientFor(kind: ViewerKind, freshSession: boolean): Promise<GraphQLClient> {
    const account = viewers.get(kind);
    if (!account) return makeClient(server);
    if (!freshSession) return account.client;
    const signIn = await makeClient(server).request<{ signIn: { accessToken?: string; mfaToken?: string } }>(SIGN_IN, { input: { email: account.email, password: account.password } });
    let token = signIn.body.data!.signIn.accessToken;
    if (!token) {
      server.clock.advance(30_000); // a fresh TOTP step: each one is accepted once
      const code = await totpCode({ secret: account.totpSecret!, now: server.clock.now() });
      const verified = await makeClient(server).request<{ verifyMfa: { accessToken: string } }>('mutation($input: VerifyMfaInput!) { verifyMfa(input: $input) { accessToken } }', { input: { mfaToken: signIn.body.data!.signIn.mfaToken, code } });
      token = verified.body.data!.verifyMfa.accessToken;
    }
    return makeClient(server, { authorization: `Bearer ${token}` });
  }

  async function victimState(): Promise<unknown> {
    const dataSource = server.bastion.database.dataSource;
    const [memo] = await dataSource.query('SELECT title, body FROM memos WHERE id = $1', [victim.memoId]);
    const [user] = await dataSource.query('SELECT status FROM users WHERE id = $1', [victim.account.id]);
    const roles = await dataSource.query('SELECT role_name FROM user_roles WHERE user_id = $1 ORDER BY role_name', [victim.account.id]);
    const [session] = await dataSource.query('SELECT revoked_at FROM sessions WHERE id = $1', [victim.sessionId]);
    return { memo, user, roles, session };
  }

  it('allows and denies exactly as the policy says, and no other user\'s data changes', async () => {
    const schema = await buildGraphQLSchema([...FEATURES, memoFeature]);
    const rules = mergeRuleTrees([...FEATURES, memoFeature].map((feature) => feature.rules));
    const operations = (['Query', 'Mutation'] as const).flatMap((section) =>
      Object.values((schema.getType(section) as GraphQLObjectType).getFields()).map((field) => ({ section, field, key: `${section}.${field.name}` })),
    );
    // Session-ending operations last, so the rest run on a live session.
    operations.sort((a, b) => Number(ENDS_OWN_SESSION.has(a.key)) - Number(ENDS_OWN_SESSION.has(b.key)));
    const before = await victimState();
    const mismatches: string[] = [];
    let calls = 0;

    for (const kind of VIEWERS) {
      for (const { section, field, key } of operations) {
        const rule = rules[section][field.name] as { name?: string } | undefined;
        const expected = expectationFor(kind, rule?.name ?? '(none)', field);
        const { query, variables } = operationFor(section, field);
        const denialsBefore = server.logs.lines.filter((line) => line.msg === 'access denied' && line.field === key).length;
        const response: GraphQLResponse = await (await clientFor(kind, ENDS_OWN_SESSION.has(key))).request(query, variables);
        calls += 1;
        const deniedByRule = server.logs.lines.filter((line) => line.msg === 'access denied' && line.field === key).length > denialsBefore;
        const rootErrors = (response.body.errors ?? []).filter((error) => error.path?.length === 1 && error.path[0] === field.name);
        const codes = rootErrors.map((error) => error.extensions?.code);
        const label = `${kind} ${key}`;
        if (expected.allowed) {
          if (deniedByRule || codes.some((code) => code === 'FORBIDDEN' || (code === 'MFA_REQUIRED' && rule?.name !== 'isAuthenticated'))) mismatches.push(`${label}: expected allowed, got ${JSON.stringify(codes)}`);
          if (codes.includes('INTERNAL_SERVER_ERROR')) mismatches.push(`${label}: allowed, but failed inside: ${JSON.stringify(response.body.errors)}`);
          if (expected.rowInScope === false && !codes.includes('NOT_FOUND')) mismatches.push(`${label}: another user's row must be NOT_FOUND, got ${JSON.stringify(response.body)}`);
          if (expected.rowInScope === true && codes.includes('NOT_FOUND')) mismatches.push(`${label}: the row is in scope, got NOT_FOUND`);
        } else {
          if (codes.length !== 1 || codes[0] !== expected.denial) mismatches.push(`${label}: expected ${expected.denial}, got ${JSON.stringify(codes)}`);
          if (!deniedByRule) mismatches.push(`${label}: the denial was not logged by the permission layer`);
          if (DENIALS.has(String(codes[0])) && response.body.data && (response.body.data as Record<string, unknown>)[field.name] != null) mismatches.push(`${label}: denied, yet data came back`);
        }
      }
      // Nobody but an admin acting on aal2 may change another user's data (IDOR / BFLA).
      if (kind !== 'adminAal2') expect({ kind, state: await victimState() }).toEqual({ kind, state: before });
    }

    process.stdout.write(`access matrix: ${calls} calls, ${operations.length} operations × ${VIEWERS.length} viewers\n`);
    expect(mismatches).toEqual([]);
    // The admin on aal2 really could act on the victim (the matrix's allow path did something).
    expect(await victimState()).not.toEqual(before);
  });
});
