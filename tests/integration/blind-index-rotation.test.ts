import { DataSource, In } from 'typeorm';
import { FrozenClock } from '../../src/clock';
import { installKeyring } from '../../src/crypto/active-keyring';
import { NORMALIZERS, computeBlindIndex } from '../../src/crypto/blind-index';
import { blindIndexOf, blindIndexesOf } from '../../src/crypto/encrypted-column';
import { KeyService, NoBlindIndexRotationError } from '../../src/crypto/key.service';
import { Keyring } from '../../src/crypto/keyring';
import { createDataSource } from '../../src/db/data-source';
import { SIGN_IN, SIGN_UP, codesOf, makeClient, makeUser, strongPassword } from '../support/factories';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { TEST_KEYS } from '../support/test-keys';
import { SecretNote } from '../support/test-models';
import { TestServer, startTestServer } from '../support/test-server';
import { appTables } from '../support/test-tables';

const NEXT_ROOT = Buffer.alloc(32, 8);
const keyringWith = (blindIndexKey: Buffer, nextBlindIndexKey?: Buffer) =>
  new Keyring({ keys: new Map([['k1', TEST_KEYS.k1]]), currentKid: 'k1', blindIndexKey, nextBlindIndexKey });
const before = keyringWith(TEST_KEYS.blindIndex);
const rotating = keyringWith(TEST_KEYS.blindIndex, NEXT_ROOT);
const after = keyringWith(NEXT_ROOT);

describe('blind-index key rotation on real PostgreSQL', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const clock = new FrozenClock('2026-06-01T00:00:00.000Z');
  const notes = () => dataSource.getRepository(SecretNote);
  const write = async (keyring: Keyring, emails: string[]) => {
    installKeyring(keyring);
    for (const email of emails)
      await notes().save(Object.assign(new SecretNote(), { email, phone: null, profile: null, label: 'rotation' }));
  };
  const findByEmail = (email: string) => notes().findOneBy({ emailIndex: In(blindIndexesOf(SecretNote, 'email', email)) });

  beforeAll(async () => {
    installKeyring(before);
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 2, ...appTables(SecretNote) });
    await dataSource.initialize();
    await dataSource.synchronize();
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });

  it('refuses to rotate without a next key', async () => {
    await expect(new KeyService(dataSource, before, clock).rotateBlindIndexes()).rejects.toThrow(NoBlindIndexRotationError);
  });

  it('finds every row under either key while rotating, rewrites them all, then finds them under the new key alone', async () => {
    const old = Array.from({ length: 7 }, (_, index) => `old${index}@example.com`);
    await write(before, old);
    await write(rotating, ['new0@example.com']);

    installKeyring(rotating);
    expect(blindIndexesOf(SecretNote, 'email', 'x@example.com')).toHaveLength(2);
    for (const email of [...old, 'NEW0@example.com ']) expect((await findByEmail(email))?.email).toBe(email.trim().toLowerCase());
    // A new row is written under the next root already.
    const written = await notes().findOneByOrFail({ emailIndex: blindIndexOf(SecretNote, 'email', 'new0@example.com') });
    expect(written.emailIndex).toBe(computeBlindIndex(after, 'secret_notes.email', 'new0@example.com', NORMALIZERS.email));

    const progress: number[] = [];
    const service = new KeyService(dataSource, rotating, clock);
    const result = await service.rotateBlindIndexes({
      batchSize: 3,
      onProgress: ({ table, done }) => table === 'secret_notes' && progress.push(done),
    });
    expect(result).toEqual({ rewritten: 7, unreadable: [] });
    expect(progress).toEqual([0, 3, 6, 8]);
    expect(await service.rotateBlindIndexes()).toEqual({ rewritten: 0, unreadable: [] }); // resumable: nothing left

    installKeyring(after);
    expect(blindIndexesOf(SecretNote, 'email', 'x@example.com')).toHaveLength(1);
    for (const email of [...old, 'new0@example.com']) expect((await findByEmail(email))?.email).toBe(email);
  });
});

describe('accounts while the blind-index key rotates', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { blindIndexKeyNext: NEXT_ROOT } });
  });
  afterAll(() => server?.close());

  it('signs in an account not yet rewritten, finds it by email, and refuses its email to a new sign-up', async () => {
    const account = await makeUser(server);
    // As if it signed up before the rotation: its index under the old root.
    const oldIndex = computeBlindIndex(before, 'users.email', account.email, NORMALIZERS.email);
    await server.bastion.database.dataSource.query('UPDATE users SET email_index = $1 WHERE id = $2', [oldIndex, account.id]);

    const signIn = await makeClient(server).request<{ signIn: { __typename: string } }>(SIGN_IN, {
      input: { email: account.email, password: account.password },
    });
    expect(signIn.body.data?.signIn.__typename).toBe('AuthPayload');
    const signUp = await makeClient(server).request(SIGN_UP, { input: { email: account.email.toUpperCase(), password: strongPassword() } });
    expect(codesOf(signUp)).toEqual(['CONFLICT']);
    const [{ accounts }] = await server.bastion.database.dataSource.query(
      'SELECT count(*)::int AS accounts FROM users WHERE id <> $1 AND email_index = ANY($2)',
      [account.id, [oldIndex, computeBlindIndex(after, 'users.email', account.email, NORMALIZERS.email)]],
    );
    expect(accounts).toBe(0);
  });
});
