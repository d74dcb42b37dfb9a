import { GraphQLClient, GraphQLResponse, TestAccount, codesOf, makeClient, makeUser } from '../support/factories';
import { download, pdfOf, pngImage, startUpload, uploadFile } from '../support/files';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * Who sees a file: read access to a File is the read access to its row's field, so a viewer who
 * may not read the field (or the row) gets no URL, no bytes and no metadata, through any query;
 * attaching and removing need update on the row and write on the field.
 */

const CREATE_ROLE = 'mutation($input: CreateRoleInput!) { createRole(input: $input) { name } }';
const GRANT = 'mutation($input: GrantPermissionInput!) { grantPermission(input: $input) { id } }';
const ASSIGN = 'mutation($input: AssignRoleInput!) { assignRole(input: $input) { id roles } }';
const REMOVE_FILE = 'mutation($id: ID!) { removeFile(id: $id) }';
const FILE_FIELDS = 'id contentType byteSize sha256 createdAt url thumb: url(variant: THUMB_256)';
const POST = `query($id: ID!) { post(id: $id) { id title attachments { ${FILE_FIELDS} } } }`;
const POSTS = `{ posts(first: 10) { edges { node { id title attachments { ${FILE_FIELDS} } } } } }`;
const PROFILE = `query($id: ID!) { profile(id: $id) { id displayName avatar { ${FILE_FIELDS} } } }`;

interface FileJson {
  id: string;
  contentType: string;
  byteSize: number;
  sha256: string;
  url: string;
  thumb: string | null;
}
interface PostJson {
  id: string;
  title: string | null;
  attachments: FileJson[] | null;
}

let server: TestServer;
let author: TestAccount;
let other: TestAccount;
/** Holds a custom role granted READ ALL on Post without the attachments field. */
let auditor: TestAccount;
/** Holds a custom role granted UPDATE ALL on Post, title only (not the attachments field). */
let editor: TestAccount;
let admin: TestAccount;
let anonymous: GraphQLClient;

let published: string;
let draft: string;
let profileId: string;
/** Every file attached in beforeAll: none of their ids, digests or URLs may reach a viewer who may not read them. */
const secrets: { id: string; sha256: string }[] = [];
let publishedFiles: FileJson[];
let draftFiles: FileJson[];
let avatar: FileJson;

async function createPost(account: TestAccount, title: string, isPublished: boolean): Promise<string> {
  const { body } = await account.client.request<{ createPost: { id: string } }>(
    'mutation($input: CreatePostInput!) { createPost(input: $input) { id } }',
    { input: { title, body: 'text', published: isPublished } },
  );
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data.createPost.id;
}

/** A PDF and a PNG of their own (no two files share a digest, so a leaked one would show). */
async function attach(account: TestAccount, postId: string, width: number): Promise<void> {
  for (const [bytes, type] of [
    [pdfOf(4_000), 'application/pdf'],
    [await pngImage(width, 48), 'image/png'],
  ] as const) {
    const sent = await uploadFile(account.client, 'startPostAttachmentsUpload', postId, bytes, type);
    if (sent.status !== 204) throw new Error(`upload failed: ${sent.status} ${sent.body}`);
  }
}

async function postAs(client: GraphQLClient, id: string): Promise<GraphQLResponse<{ post: PostJson | null }>> {
  return client.request<{ post: PostJson | null }>(POST, { id });
}

/** Nothing of any file in the answer: no id, no digest, no URL, no type or size of one. */
function expectNoFileIn(response: GraphQLResponse, except: readonly string[] = []): void {
  const text = JSON.stringify(response.body);
  for (const secret of secrets.filter((file) => !except.includes(file.id))) {
    expect(text).not.toContain(secret.id);
    expect(text).not.toContain(secret.sha256);
  }
  if (except.length === 0) {
    expect(text).not.toContain('/files/');
    expect(text).not.toContain('application/pdf');
    expect(text).not.toContain('image/png');
  }
}

beforeAll(async () => {
  server = await startTestServer();
  [author, other, auditor, editor, admin] = await Promise.all([
    makeUser(server),
    makeUser(server),
    makeUser(server),
    makeUser(server),
    makeUser(server, { roles: ['admin'] }),
  ]);
  anonymous = makeClient(server);
  for (const [role, action, fields] of [
    ['auditor', 'READ', ['id', 'title', 'published', 'authorId']],
    ['editor', 'UPDATE', ['title']],
  ] as const) {
    const created = await admin.client.request(CREATE_ROLE, { input: { name: role } });
    expect(created.body.errors).toBeUndefined();
    const granted = await admin.client.request(GRANT, { input: { role, model: 'Post', action, scope: 'ALL', fields } });
    expect(granted.body.errors).toBeUndefined();
  }
  expect((await admin.client.request(ASSIGN, { input: { userId: auditor.id, role: 'auditor' } })).body.errors).toBeUndefined();
  expect((await admin.client.request(ASSIGN, { input: { userId: editor.id, role: 'editor' } })).body.errors).toBeUndefined();

  published = await createPost(author, 'published post', true);
  draft = await createPost(author, 'draft post', false);
  await attach(author, published, 64);
  await attach(author, draft, 65);
  const profile = await author.client.request<{ createProfile: { id: string } }>(
    'mutation($input: CreateProfileInput!) { createProfile(input: $input) { id } }',
    { input: { displayName: 'Author', phone: '+447700900123' } },
  );
  profileId = profile.body.data!.createProfile.id;
  const sent = await uploadFile(author.client, 'startProfileAvatarUpload', profileId, await pngImage(300, 300), 'image/png');
  expect(sent.status).toBe(204);

  publishedFiles = (await postAs(author.client, published)).body.data!.post!.attachments!;
  draftFiles = (await postAs(author.client, draft)).body.data!.post!.attachments!;
  avatar = (await author.client.request<{ profile: { avatar: FileJson } }>(PROFILE, { id: profileId })).body.data!.profile.avatar;
  expect(publishedFiles).toHaveLength(2);
  expect(draftFiles).toHaveLength(2);
  secrets.push(...publishedFiles, ...draftFiles, avatar);
});
afterAll(() => server?.close());

describe('reading files: the viewer matrix', () => {
  it('the owner reads both posts’ files in full, and every URL serves the bytes', async () => {
    for (const id of [published, draft]) {
      const response = await postAs(author.client, id);
      expect(response.body.errors).toBeUndefined();
      const files = response.body.data!.post!.attachments!;
      expect(files.map((file) => file.contentType).sort()).toEqual(['application/pdf', 'image/png']);
      for (const file of files) {
        const got = await download(file.url);
        expect({ status: got.status, length: got.bytes.length }).toEqual({ status: 200, length: file.byteSize });
        expect(file.thumb === null).toBe(file.contentType === 'application/pdf');
      }
    }
  });

  it.each([
    ['anonymous', () => anonymous],
    ['another user', () => other.client],
    ['an admin', () => admin.client],
    ['a custom role (its grant lacks the field; the implicit grants give published posts in full)', () => auditor.client],
  ])('%s reads the published post’s files, the same ones the owner sees', async (_who, client) => {
    const response = await postAs(client(), published);
    expect(response.body.errors).toBeUndefined();
    const files = response.body.data!.post!.attachments!;
    expect(files.map((file) => [file.id, file.sha256, file.byteSize])).toEqual(
      publishedFiles.map((file) => [file.id, file.sha256, file.byteSize]),
    );
    expect((await download(files[0].url)).status).toBe(200);
  });

  it.each([
    ['anonymous', () => anonymous],
    ['another user', () => other.client],
  ])('%s cannot read the draft: NOT_FOUND, and nothing of its files', async (_who, client) => {
    const response = await postAs(client(), draft);
    expect(codesOf(response)).toEqual(['NOT_FOUND']);
    expect(response.body.data).toEqual({ post: null });
    expectNoFileIn(response);
  });

  it('a custom role granted the draft’s row but not its attachments field reads the title, and gets FORBIDDEN and null for the files', async () => {
    const response = await postAs(auditor.client, draft);
    expect(response.body.data).toEqual({ post: { id: draft, title: 'draft post', attachments: null } });
    expect(codesOf(response)).toEqual(['FORBIDDEN']);
    expect(response.body.errors![0].path).toEqual(['post', 'attachments']);
    expectNoFileIn(response);
  });

  it('an admin reads the draft’s files', async () => {
    const response = await postAs(admin.client, draft);
    expect(response.body.errors).toBeUndefined();
    expect(response.body.data!.post!.attachments!.map((file) => file.id)).toEqual(draftFiles.map((file) => file.id));
  });

  it('lists: anonymous and other users see only the published post’s files; the custom role sees the draft without them', async () => {
    const publishedIds = publishedFiles.map((file) => file.id);
    for (const client of [anonymous, other.client]) {
      const response = await client.request<{ posts: { edges: { node: PostJson }[] } }>(POSTS);
      expect(response.body.errors).toBeUndefined();
      expect(response.body.data!.posts.edges.map((edge) => edge.node.id)).toEqual([published]);
      expectNoFileIn(response, publishedIds);
      expect(JSON.stringify(response.body)).not.toContain(draftFiles[0].id);
    }
    const asAuditor = await auditor.client.request<{ posts: { edges: { node: PostJson }[] } }>(POSTS);
    const byId = new Map(asAuditor.body.data!.posts.edges.map((edge) => [edge.node.id, edge.node]));
    expect(byId.get(draft)).toEqual({ id: draft, title: 'draft post', attachments: null });
    expect(byId.get(published)!.attachments!.map((file) => file.id)).toEqual(publishedIds);
    expect(codesOf(asAuditor)).toEqual(['FORBIDDEN']);
    for (const file of [...draftFiles, avatar]) {
      expect(JSON.stringify(asAuditor.body)).not.toContain(file.id);
      expect(JSON.stringify(asAuditor.body)).not.toContain(file.sha256);
    }
  });

  it('Profile.avatar is public like the name: anonymous, other users and admins read it; the phone stays hidden', async () => {
    for (const client of [anonymous, other.client, admin.client, auditor.client]) {
      const response = await client.request<{ profile: { avatar: FileJson } }>(PROFILE, { id: profileId });
      expect(response.body.errors).toBeUndefined();
      expect(response.body.data!.profile.avatar).toMatchObject({ id: avatar.id, sha256: avatar.sha256, contentType: 'image/png' });
      const thumb = await download(response.body.data!.profile.avatar.thumb!);
      expect(thumb.status).toBe(200);
    }
    const phone = await anonymous.request('query($id: ID!) { profile(id: $id) { phone } }', { id: profileId });
    expect({ data: phone.body.data, codes: codesOf(phone) }).toEqual({ data: { profile: { phone: null } }, codes: ['UNAUTHENTICATED'] });
  });
  it('a file field answers when the query does not ask for the row’s id (a page of posts, a profile)', async () => {
    const post = await anonymous.request<{ post: { attachments: { id: string }[] } }>(
      'query($id: ID!) { post(id: $id) { attachments { id } } }',
      { id: published },
    );
    expect(post.body).toEqual({ data: { post: { attachments: publishedFiles.map((file) => ({ id: file.id })) } } });
    const page = await anonymous.request('{ posts(first: 10) { edges { node { attachments { id } } } } }');
    expect(page.body).toEqual({ data: { posts: { edges: [{ node: { attachments: publishedFiles.map((file) => ({ id: file.id })) } }] } } });
    const profile = await anonymous.request('query($id: ID!) { profile(id: $id) { avatar { id } } }', { id: profileId });
    expect(profile.body).toEqual({ data: { profile: { avatar: { id: avatar.id } } } });
  });
});

describe('attaching and removing: update on the row and write on the field', () => {
  const bytes = { length: 1000 };

  it('upload start is NOT_FOUND for another user’s row, a read-only role, and a role that may update the row but not the field', async () => {
    const missing = await startUpload(
      other.client,
      'startPostAttachmentsUpload',
      '00000000-0000-4000-8000-000000000000',
      bytes,
      'application/pdf',
    );
    expect(missing.errors?.map((error) => error.extensions?.code)).toEqual(['NOT_FOUND']);
    const cases: [GraphQLClient, 'startPostAttachmentsUpload' | 'startProfileAvatarUpload', string][] = [
      [other.client, 'startPostAttachmentsUpload', published],
      [other.client, 'startPostAttachmentsUpload', draft],
      [other.client, 'startProfileAvatarUpload', profileId],
      [auditor.client, 'startPostAttachmentsUpload', draft],
      [editor.client, 'startPostAttachmentsUpload', published],
      // Admins read every profile but may not change one.
      [admin.client, 'startProfileAvatarUpload', profileId],
    ];
    const before = await server.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM uploads');
    for (const [client, mutation, id] of cases) {
      const refused = await startUpload(
        client,
        mutation,
        id,
        bytes,
        mutation === 'startProfileAvatarUpload' ? 'image/png' : 'application/pdf',
      );
      expect({ url: refused.url, codes: refused.errors?.map((error) => error.extensions?.code) }).toEqual({
        url: undefined,
        codes: ['NOT_FOUND'],
      });
      // The same answer as for a row that does not exist: the refusal says nothing about the row.
      expect(refused.errors![0].message).toBe(
        missing.errors![0].message.replace('Post', mutation === 'startProfileAvatarUpload' ? 'Profile' : 'Post'),
      );
    }
    const signedOut = await startUpload(anonymous, 'startPostAttachmentsUpload', published, bytes, 'application/pdf');
    expect({ url: signedOut.url, codes: signedOut.errors?.map((error) => error.extensions?.code) }).toEqual({
      url: undefined,
      codes: ['UNAUTHENTICATED'],
    });
    expect(await server.bastion.database.dataSource.query('SELECT count(*)::int AS n FROM uploads')).toEqual(before);
  });

  it('an admin (update on every post) may attach to another user’s post', async () => {
    const started = await startUpload(admin.client, 'startPostAttachmentsUpload', draft, bytes, 'application/pdf');
    expect(started.errors).toBeUndefined();
    expect(started.url).toContain('/files/uploads/');
    // Given up at once (tus termination): the draft keeps its two files.
    expect((await fetch(started.url!, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1000' } })).status).toBe(
      201,
    );
    expect((await fetch(started.url!, { method: 'DELETE', headers: { 'tus-resumable': '1.0.0' } })).status).toBe(204);
  });

  it('removeFile is NOT_FOUND for anyone who may not update the row and write the field, and the file stays', async () => {
    const target = publishedFiles[0];
    const missing = await other.client.request(REMOVE_FILE, { id: '00000000-0000-4000-8000-000000000000' });
    expect(codesOf(missing)).toEqual(['NOT_FOUND']);
    for (const [client, id] of [
      [other.client, target.id],
      [other.client, draftFiles[0].id],
      [auditor.client, draftFiles[0].id],
      [editor.client, target.id],
      [admin.client, avatar.id],
      [other.client, avatar.id],
    ] as const) {
      const refused = await client.request(REMOVE_FILE, { id });
      expect(codesOf(refused)).toEqual(['NOT_FOUND']);
      expect(refused.body.errors![0].message).toBe(missing.body.errors![0].message);
      expect(refused.body.data).toBeNull();
    }
    expect(codesOf(await anonymous.request(REMOVE_FILE, { id: target.id }))).toEqual(['UNAUTHENTICATED']);
    const still = await postAs(author.client, published);
    expect(still.body.data!.post!.attachments!.map((file) => file.id)).toEqual(publishedFiles.map((file) => file.id));
    expect((await download(still.body.data!.post!.attachments![0].url)).status).toBe(200);
  });

  it('the owner removes a file: it leaves the post, and its URL no longer serves it', async () => {
    const target = draftFiles[0];
    expect((await author.client.request(REMOVE_FILE, { id: target.id })).body).toEqual({ data: { removeFile: true } });
    const after = await postAs(author.client, draft);
    expect(after.body.data!.post!.attachments!.map((file) => file.id)).toEqual([draftFiles[1].id]);
    expect((await download(target.url)).status).toBe(404);
    // Removing it again: as if it never existed.
    expect(codesOf(await author.client.request(REMOVE_FILE, { id: target.id }))).toEqual(['NOT_FOUND']);
  });
});
