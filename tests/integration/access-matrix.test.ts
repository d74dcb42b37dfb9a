import { rulesOf } from '../../src/schema';
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
import { FEATURES } from '../../src/features';
import { buildGraphQLSchema } from '../../src/schema';
import { GraphQLClient, GraphQLResponse, SIGN_IN, TestAccount, makeClient, makeUser } from '../support/factories';
import { startUpload, tusUpload } from '../support/files';
import { MEMOS_TABLE_SQL, memoFeature } from '../support/memo-model';
import { TestServer, startTestServer } from '../support/test-server';
import { totpCode } from '../../src/mfa/totp';

/**
 * docs/security.md#perm-9 and #perm-11, generated: every root operation of the schema, called by every
 * kind of viewer (anonymous, user, a custom role, admin on aal1 and on aal2, admin requiring MFA),
 * with another user's ids wherever an operation takes one. The expected outcome is worked out here
 * from the policy as data (the roles and grants the admin API reports) and the rule each field
 * declares, independently of the code that enforces it.
 */

type ViewerKind = 'anonymous' | 'user' | 'curator' | 'adminAal1' | 'adminAal2';
const VIEWERS: readonly ViewerKind[] = ['anonymous', 'user', 'curator', 'adminAal1', 'adminAal2'];
/** Operations that end the caller's own session: each gets a fresh one, and they run last. */
const ENDS_OWN_SESSION = new Set(['Mutation.signOut', 'Mutation.signOutEverywhere']);
/** Deletes run after the rest, children before parents (deleting a post cascades to its comments). */
const DELETES = ['Mutation.deleteComment', 'Mutation.deletePost', 'Mutation.deleteProfile', 'Mutation.deleteMemo'];
const DENIALS = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'MFA_REQUIRED']);
/** A small PDF: the victim's post's attachment, which no one else may remove. */
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

interface PolicyGrant {
  role: string;
  model: string;
  action: string;
  scope: string;
  fields: string[] | null;
  filter: string | null;
}

interface Victim {
  account: TestAccount;
  memoId: string;
  sessionId: string;
  profileId: string;
  postId: string;
  commentId: string;
  /** An attachment of the victim's post. */
  fileId: string;
}

interface Expectation {
  readonly allowed: boolean;
  /** The code a denial must carry. */
  readonly denial?: 'UNAUTHENTICATED' | 'FORBIDDEN' | 'MFA_REQUIRED';
  /** For id-taking model operations: whether the victim's row is in the viewer's scope. */
  readonly rowInScope?: boolean;
  /** Allowed by the operation's rule, but the input sets a field no grant in force names: FORBIDDEN from the write check. */
  readonly fieldDenied?: boolean;
}

describe("permission matrix: every operation × every kind of viewer, with another user's ids (IDOR)", () => {
  let server: TestServer;
  let admin: TestAccount;
  let victim: Victim;
  const viewers = new Map<ViewerKind, TestAccount | null>();
  let grants: PolicyGrant[];
  let requireMfa: Map<string, boolean>;

  beforeAll(async () => {
    server = await startTestServer({
      config: { mfaRequiredFor: 'admin' },
      extraFeatures: [memoFeature],
      setupSql: [MEMOS_TABLE_SQL],
      compareExecutors: true,
    });
    admin = await makeUser(server, { roles: ['admin'], mfa: true });
    // A custom role: reads every memo's title, nothing else.
    await admin.client.request('mutation { createRole(input: { name: "curator" }) { name } }');
    await admin.client.request(
      'mutation { grantPermission(input: { role: "curator", model: "Memo", action: READ, scope: ALL, fields: ["title"] }) { id } }',
    );

    const victimAccount = await makeUser(server);
    const created = await victimAccount.client.request<{ createMemo: { id: string } }>(
      'mutation { createMemo(input: { title: "victim", body: "victim body" }) { id } }',
    );
    const [session] = await server.bastion.database.dataSource.query('SELECT id FROM sessions WHERE user_id = $1', [victimAccount.id]);
    // The sample models: the victim's profile (phone private), a draft post, and a comment on it.
    const owned = await victimAccount.client.request<{ createProfile: { id: string }; createPost: { id: string } }>(
      'mutation { createProfile(input: { displayName: "Victim", phone: "+447700900123" }) { id } ' +
        'createPost(input: { title: "draft", body: "secret draft" }) { id } }',
    );
    const comment = await victimAccount.client.request<{ createComment: { id: string } }>(
      'mutation($postId: ID!) { createComment(input: { postId: $postId, body: "victim comment" }) { id } }',
      { postId: owned.body.data!.createPost.id },
    );
    const started = await startUpload(
      victimAccount.client,
      'startPostAttachmentsUpload',
      owned.body.data!.createPost.id,
      PDF,
      'application/pdf',
    );
    expect((await tusUpload(started.url!, PDF)).status).toBe(204);
    const [file] = await server.bastion.database.dataSource.query('SELECT id FROM files WHERE row_id = $1', [
      owned.body.data!.createPost.id,
    ]);
    victim = {
      fileId: file.id,
      account: victimAccount,
      memoId: created.body.data!.createMemo.id,
      sessionId: session.id,
      profileId: owned.body.data!.createProfile.id,
      postId: owned.body.data!.createPost.id,
      commentId: comment.body.data!.createComment.id,
    };

    viewers.set('anonymous', null);
    viewers.set('user', await makeUser(server));
    viewers.set('curator', await makeUser(server, { roles: ['curator'] }));
    viewers.set('adminAal1', await makeUser(server, { roles: ['admin'] }));
    viewers.set('adminAal2', admin);

    const policy = await admin.client.request<{ permissionMatrix: PolicyGrant[]; roles: { name: string; requireMfa: boolean }[] }>(
      '{ permissionMatrix { role model action scope fields filter } roles { name requireMfa } }',
    );
    grants = policy.body.data!.permissionMatrix;
    requireMfa = new Map(policy.body.data!.roles.map((role) => [role.name, role.requireMfa]));
  });
  afterAll(() => server?.close());

  /** The roles a viewer holds (every viewer holds anonymous), and which are in force on its session. */
  function rolesOf(kind: ViewerKind): { held: string[]; inForce: string[] } {
    const held =
      kind === 'anonymous'
        ? ['anonymous']
        : kind === 'user'
          ? ['anonymous', 'user']
          : kind === 'curator'
            ? ['anonymous', 'user', 'curator']
            : ['anonymous', 'user', 'admin'];
    const aal2 = kind === 'adminAal2';
    return { held, inForce: held.filter((role) => aal2 || !requireMfa.get(role)) };
  }

  function denialFor(kind: ViewerKind, wouldAllowHeld: boolean): Expectation {
    if (kind === 'anonymous') return { allowed: false, denial: 'UNAUTHENTICATED' };
    return { allowed: false, denial: wouldAllowHeld ? 'MFA_REQUIRED' : 'FORBIDDEN' };
  }

  /** What the policy says about one root field for one viewer. */
  function expectationFor(
    kind: ViewerKind,
    ruleName: string,
    field: GraphQLField<unknown, unknown>,
    variables: Record<string, unknown>,
  ): Expectation {
    const { held, inForce } = rolesOf(kind);
    if (ruleName === 'isPublic') return { allowed: true };
    if (ruleName === 'isAuthenticated') return kind === 'anonymous' ? denialFor(kind, false) : { allowed: true };
    if (ruleName === 'isAdmin') return inForce.includes('admin') ? { allowed: true } : denialFor(kind, held.includes('admin'));
    // Whatever BASTION_MFA_REQUIRED_FOR says: the admin role in force, on an aal2 session.
    if (ruleName === 'isAdminOnAal2')
      return inForce.includes('admin') && kind === 'adminAal2' ? { allowed: true } : denialFor(kind, held.includes('admin'));
    // Starting an upload writes a file field: an update of the row, which must be in scope.
    const uploadRule = /^canStartUpload:(\w+)$/.exec(ruleName);
    const modelRule = uploadRule ? [ruleName, 'Update', uploadRule[1]] : /^can(Read|Create|Update|Delete):(\w+)$/.exec(ruleName);
    if (!modelRule) throw new Error(`the matrix does not know rule ${ruleName}: teach it what the policy says for it`);
    const [action, model] = [modelRule[1].toUpperCase(), modelRule[2]];
    const applicable = (roles: string[]) =>
      grants.filter(
        (grant) =>
          grant.model === model && grant.action === action && roles.includes(grant.role) && (grant.scope === 'ALL' || kind !== 'anonymous'),
      );
    let inForceGrants = applicable(inForce);
    if (inForceGrants.length === 0) return denialFor(kind, applicable(held).length > 0);
    const input = variables.input as Record<string, unknown> | undefined;
    if (input && !uploadRule && (action === 'CREATE' || action === 'UPDATE')) {
      inForceGrants = inForceGrants.filter(
        (grant) => grant.fields === null || Object.keys(input).every((name) => grant.fields!.includes(name)),
      );
      if (inForceGrants.length === 0) return { allowed: true, fieldDenied: true };
    }
    // The victim's memo is unpublished and not the viewer's: only an unfiltered ALL grant reaches it.
    const takesId = field.args.some((arg) => getNamedType(arg.type).name === 'ID');
    return takesId
      ? { allowed: true, rowInScope: inForceGrants.some((grant) => grant.scope === 'ALL' && grant.filter === null) }
      : { allowed: true };
  }

  /** Another user's id for every id-taking argument; a new id-taking field must be added here. */
  function idFor(path: string): string {
    const ids: Record<string, string> = {
      'Query.memo.id': victim.memoId,
      'Mutation.updateMemo.id': victim.memoId,
      'Mutation.deleteMemo.id': victim.memoId,
      'Mutation.revokeSession.id': victim.sessionId,
      'Mutation.revokePermission.id': randomUUID(),
      'Mutation.removeFirewallRule.id': randomUUID(),
      'Mutation.verifyBackup.id': randomUUID(),
      'Query.auditEvents.filter.actorId': victim.account.id,
      'Mutation.assignRole.input.userId': victim.account.id,
      'Mutation.unassignRole.input.userId': victim.account.id,
      'Mutation.setUserStatus.input.userId': victim.account.id,
      'Mutation.adminRevokeSessions.userId': victim.account.id,
      'Mutation.adminRevokeSessions.sessionId': victim.sessionId,
      'Query.userSessions.userId': victim.account.id,
      'Query.profile.id': victim.profileId,
      'Mutation.updateProfile.id': victim.profileId,
      'Mutation.deleteProfile.id': victim.profileId,
      'Query.post.id': victim.postId,
      'Mutation.updatePost.id': victim.postId,
      'Mutation.deletePost.id': victim.postId,
      // A reference to a row the viewer cannot read: refused like a missing one.
      'Mutation.createComment.input.postId': victim.postId,
      'Mutation.updateComment.input.postId': victim.postId,
      'Query.comment.id': victim.commentId,
      'Mutation.updateComment.id': victim.commentId,
      'Mutation.deleteComment.id': victim.commentId,
      'Mutation.startProfileAvatarUpload.id': victim.profileId,
      'Mutation.startPostAttachmentsUpload.id': victim.postId,
      'Mutation.removeFile.id': victim.fileId,
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
        if (isNonNullType(field.type) || getNamedType(field.type).name === 'ID')
          input[field.name] = valueFor(field.type, `${path}.${field.name}`);
      }
      // A write must name a field to reach the permission checks behind the schema.
      if (Object.keys(input).length === 0) {
        const text = Object.values(type.getFields()).find((field) => getNamedType(field.type).name === 'String');
        if (text) input[text.name] = 'changed by the matrix';
      }
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

  function operationFor(
    section: 'Query' | 'Mutation',
    field: GraphQLField<unknown, unknown>,
  ): { query: string; variables: Record<string, unknown> } {
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
    // Every operation that takes a password got a wrong one (changePassword, disableTotp, …): forget those guesses, or this
    // sign-in would meet the brute-force brake they add up to.
    await server.bastion.database.dataSource.query('DELETE FROM login_throttles');
    const signIn = await makeClient(server).request<{ signIn: { accessToken?: string; mfaToken?: string } }>(SIGN_IN, {
      input: { email: account.email, password: account.password },
    });
    let token = signIn.body.data!.signIn.accessToken;
    if (!token) {
      server.clock.advance(30_000); // a fresh TOTP step: each one is accepted once
      const code = await totpCode({ secret: account.totpSecret!, now: server.clock.now() });
      const verified = await makeClient(server).request<{ verifyMfa: { accessToken: string } }>(
        'mutation($input: VerifyMfaInput!) { verifyMfa(input: $input) { accessToken } }',
        { input: { mfaToken: signIn.body.data!.signIn.mfaToken, code } },
      );
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
    const [profile] = await dataSource.query('SELECT display_name, phone FROM profiles WHERE id = $1', [victim.profileId]);
    const [post] = await dataSource.query('SELECT title, body, published FROM posts WHERE id = $1', [victim.postId]);
    const [comment] = await dataSource.query('SELECT body FROM comments WHERE id = $1', [victim.commentId]);
    const [{ comments }] = await dataSource.query('SELECT count(*)::int AS comments FROM comments WHERE post_id = $1', [victim.postId]);
    const files = await dataSource.query(
      'SELECT f.id, f.sha256 FROM files f WHERE f.row_id = ANY($1::uuid[]) ' +
        'UNION ALL SELECT u.id, u.field FROM uploads u WHERE u.row_id = ANY($1::uuid[]) ORDER BY 1',
      [[victim.profileId, victim.postId]],
    );
    return { memo, user, roles, session, profile, post, comment, comments, files };
  }

  it("allows and denies exactly as the policy says, and no other user's data changes", async () => {
    const schema = await buildGraphQLSchema([...FEATURES, memoFeature]);
    const rules = rulesOf([...FEATURES, memoFeature]);
    const operations = (['Query', 'Mutation'] as const).flatMap((section) =>
      Object.values((schema.getType(section) as GraphQLObjectType).getFields()).map((field) => ({
        section,
        field,
        key: `${section}.${field.name}`,
      })),
    );
    // Session-ending operations last, so the rest run on a live session.
    const rank = (key: string) => (ENDS_OWN_SESSION.has(key) ? 100 : DELETES.includes(key) ? 1 + DELETES.indexOf(key) : 0);
    operations.sort((a, b) => rank(a.key) - rank(b.key));
    const before = await victimState();
    const mismatches: string[] = [];
    let calls = 0;

    for (const kind of VIEWERS) {
      for (const { section, field, key } of operations) {
        const rule = rules[section][field.name] as { name?: string } | undefined;
        const { query, variables } = operationFor(section, field);
        const expected = expectationFor(kind, rule?.name ?? '(none)', field, variables);
        const denialsBefore = server.logs.lines.filter((line) => line.msg === 'access denied' && line.field === key).length;
        const response: GraphQLResponse = await (await clientFor(kind, ENDS_OWN_SESSION.has(key))).request(query, variables);
        calls += 1;
        const deniedByRule = server.logs.lines.filter((line) => line.msg === 'access denied' && line.field === key).length > denialsBefore;
        const rootErrors = (response.body.errors ?? []).filter((error) => error.path?.length === 1 && error.path[0] === field.name);
        const codes = rootErrors.map((error) => error.extensions?.code);
        const label = `${kind} ${key}`;
        if (expected.fieldDenied) {
          if (deniedByRule || codes.length !== 1 || codes[0] !== 'FORBIDDEN')
            mismatches.push(`${label}: expected FORBIDDEN from the write's field check, got ${JSON.stringify(codes)}`);
        } else if (expected.allowed) {
          if (deniedByRule || codes.some((code) => code === 'FORBIDDEN' || (code === 'MFA_REQUIRED' && rule?.name !== 'isAuthenticated')))
            mismatches.push(`${label}: expected allowed, got ${JSON.stringify(codes)}`);
          if (codes.includes('INTERNAL_SERVER_ERROR'))
            mismatches.push(`${label}: allowed, but failed inside: ${JSON.stringify(response.body.errors)}`);
          if (expected.rowInScope === false && !codes.includes('NOT_FOUND'))
            mismatches.push(`${label}: another user's row must be NOT_FOUND, got ${JSON.stringify(response.body)}`);
          if (expected.rowInScope === true && codes.includes('NOT_FOUND')) mismatches.push(`${label}: the row is in scope, got NOT_FOUND`);
        } else {
          if (codes.length !== 1 || codes[0] !== expected.denial)
            mismatches.push(`${label}: expected ${expected.denial}, got ${JSON.stringify(codes)}`);
          if (!deniedByRule) mismatches.push(`${label}: the denial was not logged by the permission layer`);
          if (DENIALS.has(String(codes[0])) && response.body.data && response.body.data[field.name] != null)
            mismatches.push(`${label}: denied, yet data came back`);
        }
      }
      // Nobody but an admin acting on aal2 may change another user's data (IDOR / BFLA).
      if (kind !== 'adminAal2') expect({ kind, state: await victimState() }).toEqual({ kind, state: before });
    }

    process.stdout.write(`access matrix: ${calls} calls, ${operations.length} operations × ${VIEWERS.length} viewers\n`);
    expect(mismatches).toEqual([]);
    // Every query of the matrix ran compiled and on graphql-js: the answers (data and errors) agree.
    const compared = server.executorComparisons;
    process.stdout.write(`access matrix: ${compared.length} compiled queries compared with graphql-js\n`);
    expect(compared.length).toBeGreaterThanOrEqual(operations.filter((operation) => operation.section === 'Query').length * VIEWERS.length);
    expect(compared.filter((comparison) => !comparison.same)).toEqual([]);
    // The admin on aal2 really could act on the victim (the matrix's allow path did something).
    expect(await victimState()).not.toEqual(before);
  });
});
