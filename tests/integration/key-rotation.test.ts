import { appTables } from '../support/test-tables';
import { DataSource } from 'typeorm';
import { FrozenClock } from '../../src/clock';
import { installKeyring } from '../../src/crypto/active-keyring';
import { KeyService, MissingKeyError } from '../../src/crypto/key.service';
import { Keyring } from '../../src/crypto/keyring';
import { createDataSource } from '../../src/db/data-source';
import { SecretNote } from '../support/test-models';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { TEST_KEYS, testKeyring } from '../support/test-keys';

describe('key rotation on real PostgreSQL', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const clock = new FrozenClock('2026-06-01T00:00:00.000Z');
  const notes = () => dataSource.getRepository(SecretNote);
  const service = (keyring: Keyring) => {
    installKeyring(keyring);
    return new KeyService(dataSource, keyring, clock);
  };
  const expected = new Map<string, { email: string; phone: string | null; profile: SecretNote['profile'] }>();

  async function write(count: number, keyring: Keyring, prefix: string) {
    installKeyring(keyring);
    for (let index = 0; index < count; index += 1) {
      const note = await notes().save(
        Object.assign(new SecretNote(), {
          email: `${prefix}${index}@example.com`,
          phone: index % 2 ? null : `+1 555 01${index}`,
          profile: { city: `City ${index}`, tags: [prefix] },
          label: prefix,
        }),
      );
      expected.set(note.id, { email: note.email, phone: note.phone, profile: note.profile });
    }
  }

  beforeAll(async () => {
    installKeyring(testKeyring('k1', ['k1']));
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 2, ...appTables(SecretNote) });
    await dataSource.initialize();
    await dataSource.synchronize();

    await service(testKeyring('k1', ['k1'])).assertKeyringCoversData();
    await write(5, testKeyring('k1', ['k1']), 'old');
    // Rotation step 1: add k2 and make it current; old rows stay readable under k1.
    await service(testKeyring('k2')).assertKeyringCoversData();
    await write(3, testKeyring('k2'), 'new');
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });

  it('reports rows per key id for every encrypted column', async () => {
    const status = await service(testKeyring('k2')).status();
    expect(status.currentKid).toBe('k2');
    expect(status.columns.filter((column) => column.table === 'secret_notes')).toEqual([
      { table: 'secret_notes', column: 'email', rowsByKid: { k1: 5, k2: 3 } },
      { table: 'secret_notes', column: 'phone', rowsByKid: { k1: 3, k2: 2 } },
      { table: 'secret_notes', column: 'profile', rowsByKid: { k1: 5, k2: 3 } },
    ]);
    expect(status.keys).toEqual([
      { kid: 'k1', inKeyring: true, retiredAt: null },
      { kid: 'k2', inKeyring: true, retiredAt: null },
    ]);
  });

  it('refuses to start with a keyring that dropped a key rows still use', async () => {
    await expect(
      service(
        new Keyring({ keys: new Map([['k2', TEST_KEYS.k2]]), currentKid: 'k2', blindIndexKey: TEST_KEYS.blindIndex }),
      ).assertKeyringCoversData(),
    ).rejects.toThrow(MissingKeyError);
  });

  it('finishes after being killed halfway, leaves nothing on the old key, and reads back every value', async () => {
    const keys = service(testKeyring('k2'));
    let batches = 0;
    const interrupted = keys.reencrypt({
      batchSize: 2,
      onProgress: ({ done }) => {
        if (done > 0 && ++batches === 2) throw new Error('killed halfway');
      },
    });
    await expect(interrupted).rejects.toThrow('killed halfway');
    const midway = await keys.status();
    const midwayEmail = midway.columns.find((column) => column.table === 'secret_notes' && column.column === 'email')!;
    expect(midwayEmail.rowsByKid.k1).toBeGreaterThan(0);
    expect(midwayEmail.rowsByKid.k1).toBeLessThan(5);

    const progress: number[] = [];
    const { rewritten, unreadable } = await keys.reencrypt({ batchSize: 2, onProgress: ({ done, total }) => progress.push(total - done) });
    expect(rewritten).toBeGreaterThan(0);
    expect(unreadable).toEqual([]);
    expect(progress[progress.length - 1]).toBe(0);

    const after = await keys.status();
    const noteColumns = after.columns.filter((column) => column.table === 'secret_notes');
    expect(noteColumns).toHaveLength(3);
    for (const column of noteColumns) expect(Object.keys(column.rowsByKid)).toEqual(['k2']);
    expect(after.keys.find((key) => key.kid === 'k1')?.retiredAt).toEqual(clock.now());

    installKeyring(testKeyring('k2', ['k2']));
    const loaded = await notes().find();
    expect(loaded).toHaveLength(8);
    for (const note of loaded) expect({ email: note.email, phone: note.phone, profile: note.profile }).toEqual(expected.get(note.id));
  });

  it('changes nothing on a second run, and the old key may now leave the keyring', async () => {
    const before: { id: string; email: string }[] = await dataSource.query('SELECT id, email FROM secret_notes ORDER BY id');
    expect(await service(testKeyring('k2')).reencrypt({ batchSize: 2 })).toEqual({ rewritten: 0, unreadable: [] });
    expect(await dataSource.query('SELECT id, email FROM secret_notes ORDER BY id')).toEqual(before);
    await expect(service(testKeyring('k2', ['k2'])).assertKeyringCoversData()).resolves.toBeUndefined();
  });

  it('a refused keyring leaves no trace: its current key is not recorded', async () => {
    const k3 = Buffer.alloc(32, 3);
    const missingK2 = new Keyring({ keys: new Map([['k3', k3]]), currentKid: 'k3', blindIndexKey: TEST_KEYS.blindIndex });
    await expect(service(missingK2).assertKeyringCoversData()).rejects.toThrow(MissingKeyError);
    expect(await dataSource.query("SELECT kid FROM encryption_keys WHERE kid = 'k3'")).toEqual([]);
  });

  it('lets an operator forget a key deliberately; re-encryption then skips and reports what no key opens', async () => {
    await service(testKeyring('k1')).assertKeyringCoversData(); // k1 current again: in use
    await write(2, testKeyring('k1'), 'late');
    const withoutK1 = new Keyring({ keys: new Map([['k2', TEST_KEYS.k2]]), currentKid: 'k2', blindIndexKey: TEST_KEYS.blindIndex });
    await expect(service(withoutK1).assertKeyringCoversData()).rejects.toThrow(/"k1" missing/);
    await expect(service(withoutK1).forget('k2')).rejects.toThrow(/current key/);
    await expect(service(withoutK1).forget('k9')).rejects.toThrow(/no key "k9"/);
    await service(withoutK1).forget('k1');
    await expect(service(withoutK1).assertKeyringCoversData()).resolves.toBeUndefined();

    const { unreadable } = await service(withoutK1).reencrypt({ batchSize: 3 });
    expect(unreadable.filter((value) => value.column === 'email')).toHaveLength(2);
    expect(unreadable.every((value) => value.table === 'secret_notes')).toBe(true);
  });

  it('records the key it re-encrypts with, even before any server booted with it', async () => {
    const k4 = Buffer.alloc(32, 4);
    const withK4 = new Keyring({
      keys: new Map([
        ['k2', TEST_KEYS.k2],
        ['k4', k4],
      ]),
      currentKid: 'k4',
      blindIndexKey: TEST_KEYS.blindIndex,
    });
    await service(withK4).reencrypt({ batchSize: 50 });
    expect(await dataSource.query("SELECT kid, retired_at FROM encryption_keys WHERE kid = 'k4'")).toEqual([
      { kid: 'k4', retired_at: null },
    ]);
  });
});
