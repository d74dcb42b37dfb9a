import { loadConfig } from '../../src/settings';
import { codesOf, makeClient, makeUser } from '../support/factories';
import { TestServer, startTestServer } from '../support/test-server';

const SAMPLE_TYPES = ['Profile', 'Post', 'Comment'];
const SAMPLE_FIELDS = ['profile', 'profiles', 'post', 'posts', 'comment', 'comments', 'createPost', 'deleteComment', 'updateProfile'];
const SCHEMA = '{ __schema { types { name } queryType { fields { name } } mutationType { fields { name } } } }';
const MATRIX = '{ permissionMatrix { role model action scope filter } }';
const GRANT_ON_POST = 'mutation { grantPermission(input: { role: "user", model: "Post", action: READ, scope: ALL }) { id } }';

interface SchemaNames {
  __schema: {
    types: { name: string }[];
    queryType: { fields: { name: string }[] };
    mutationType: { fields: { name: string }[] };
  };
}

/** What the API shows of the sample models, asked as an admin (introspection and permissionMatrix are admin-only). */
async function sampleSurface(server: TestServer) {
  const admin = await makeUser(server, { roles: ['admin'] });
  const schema = (await admin.client.request<SchemaNames>(SCHEMA)).body.data!.__schema;
  const types = schema.types.map((type) => type.name).filter((name) => SAMPLE_TYPES.some((sample) => name.startsWith(sample)));
  const fields = [...schema.queryType.fields, ...schema.mutationType.fields]
    .map((field) => field.name)
    .filter((name) => SAMPLE_FIELDS.includes(name));
  const matrix = await admin.client.request<{ permissionMatrix: { model: string }[] }>(MATRIX);
  const grants = matrix.body.data!.permissionMatrix.filter((grant) => SAMPLE_TYPES.includes(grant.model));
  const seeded = await server.bastion.database.dataSource.query<{ model: string }[]>('SELECT model FROM policy_seeds ORDER BY model');
  return { admin, types, fields, grants, seeded: seeded.map((row) => row.model) };
}

describe('BASTION_SAMPLE_MODELS', () => {
  it('is off in production and on elsewhere by default; production may turn it on', () => {
    const production = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://u:p@db:5432/app?sslmode=verify-full',
      BASTION_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
      BASTION_BLIND_INDEX_KEY: Buffer.alloc(32, 2).toString('base64'),
      SMTP_URL: 'smtps://bastion:pw@mail.example.com:465',
    };
    expect(loadConfig(production, '/srv/app').sampleModels).toBe(false);
    expect(loadConfig({ ...production, BASTION_SAMPLE_MODELS: 'true' }, '/srv/app').sampleModels).toBe(true);
    expect(loadConfig({ NODE_ENV: 'development' }, '/srv/app').sampleModels).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }, '/srv/app').sampleModels).toBe(true);
  });

  describe('off (the production default)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({ config: { sampleModels: false } });
    });
    afterAll(() => server?.close());

    it('serves no sample type, operation or grant, and seeds none', async () => {
      const { admin, types, fields, grants, seeded } = await sampleSurface(server);
      expect({ types, fields, grants, seeded }).toEqual({ types: [], fields: [], grants: [], seeded: [] });
      // Not in the schema at all: the same answer for everyone, before any permission is weighed.
      const posts = await makeClient(server).request('{ posts(first: 1) { totalCount } }');
      expect({ status: posts.status, codes: codesOf(posts) }).toEqual({ status: 400, codes: ['GRAPHQL_VALIDATION_FAILED'] });
      // An admin cannot grant on a model the server does not serve.
      const grant = await admin.client.request(GRANT_ON_POST);
      expect(codesOf(grant)).toEqual(['BAD_USER_INPUT']);
      // The tables are the migrations' and stay: turning the setting on later needs no migration.
      const [{ posts: table }] = await server.bastion.database.dataSource.query<{ posts: string | null }[]>(
        "SELECT to_regclass('posts')::text AS posts",
      );
      expect(table).toBe('posts');
    });
  });

  describe('on (the development and test default)', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({ config: { sampleModels: true } });
    });
    afterAll(() => server?.close());

    it('serves the sample models with their default grants', async () => {
      const { types, fields, grants, seeded } = await sampleSurface(server);
      expect(types).toEqual(expect.arrayContaining(SAMPLE_TYPES));
      expect([...fields].sort()).toEqual([...SAMPLE_FIELDS].sort());
      expect(grants).toContainEqual({ role: 'anonymous', model: 'Post', action: 'READ', scope: 'ALL', filter: 'published' });
      expect(seeded).toEqual(expect.arrayContaining(SAMPLE_TYPES));
      const posts = await makeClient(server).request<{ posts: { totalCount: number } }>('{ posts(first: 1) { totalCount } }');
      expect({ status: posts.status, data: posts.body.data }).toEqual({ status: 200, data: { posts: { totalCount: 0 } } });
    });
  });
});
