import { appTables } from '../support/test-tables';
import { DataSource, In } from 'typeorm';
import { installKeyring } from '../../src/crypto/active-keyring';
import { EncryptedColumnMisuseError, blindIndexOf } from '../../src/crypto/encrypted-column';
import { DecryptionFailedError } from '../../src/crypto/envelope';
import { createDataSource } from '../../src/db/data-source';
import { conflictOnDuplicate } from '../../src/db/unique-violation';
import { AppError } from '../../src/errors';
import { SecretNote } from '../support/test-models';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { testKeyring } from '../support/test-keys';

describe('encrypted columns on real PostgreSQL', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  const notes = () => dataSource.getRepository(SecretNote);

  beforeAll(async () => {
    installKeyring(testKeyring('k1'));
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 2, ...appTables(SecretNote) });
    await dataSource.initialize();
    await dataSource.synchronize(); // the test-only table; Bastion's own schema comes from migrations
  });
  afterAll(async () => {
    await dataSource.destroy();
    await database.drop();
  });

  const save = (email: string, extra: Partial<SecretNote> = {}) =>
    notes().save(
      Object.assign(new SecretNote(), {
        email,
        phone: '+44 20 7946 0000',
        profile: { city: 'Leeds', tags: ['a'] },
        label: 'plain label',
        ...extra,
      }),
    );

  it('stores no plaintext: the raw table holds only envelopes', async () => {
    const note = await save('ada.lovelace@example.com');
    const [raw] = await dataSource.query('SELECT * FROM secret_notes WHERE id = $1', [note.id]);
    const dump = JSON.stringify(raw);
    for (const secret of ['ada.lovelace', 'example.com', '7946', 'Leeds']) expect(dump).not.toContain(secret);
    expect(raw.email).toMatch(/^v1\.k1\./);
    expect(raw.profile).toMatch(/^v1\.k1\./);
    expect(raw.label).toBe('plain label');
  });

  it('reads values back, including JSON and NULL', async () => {
    const note = await save('grace@example.com', { phone: null, profile: null });
    const loaded = await notes().findOneByOrFail({ id: note.id });
    expect(loaded).toMatchObject({ email: 'grace@example.com', phone: null, profile: null });
    const withJson = await save('katherine@example.com');
    expect((await notes().findOneByOrFail({ id: withJson.id })).profile).toEqual({ city: 'Leeds', tags: ['a'] });
  });

  it('finds a row through the blind index only, normalised', async () => {
    const note = await save('Alan.Turing@Example.com');
    const found = await notes().findOneBy({ emailIndex: blindIndexOf(SecretNote, 'email', '  alan.turing@EXAMPLE.com ') });
    expect(found?.id).toBe(note.id);
    expect(found?.email).toBe('Alan.Turing@Example.com');
  });

  it('gives equal values the same index, and the UNIQUE index turns a duplicate into CONFLICT', async () => {
    await save('dup@example.com');
    const attempt = conflictOnDuplicate(() => save('DUP@example.com'), 'That email is already registered.');
    await expect(attempt).rejects.toBeInstanceOf(AppError);
    await expect(attempt).rejects.toMatchObject({ code: 'CONFLICT', message: 'That email is already registered.' });
    const [{ count }] = await dataSource.query('SELECT count(*) FROM secret_notes WHERE email_index = $1', [
      blindIndexOf(SecretNote, 'email', 'dup@example.com'),
    ]);
    expect(Number(count)).toBe(1);
  });

  it('keeps the index in step when the value changes through update()', async () => {
    const note = await save('old@example.com');
    await notes().update({ id: note.id }, { email: 'new@example.com' });
    expect((await notes().findOneBy({ emailIndex: blindIndexOf(SecretNote, 'email', 'new@example.com') }))?.id).toBe(note.id);
    expect(await notes().findOneBy({ emailIndex: blindIndexOf(SecretNote, 'email', 'old@example.com') })).toBeNull();
    note.email = 'newest@example.com';
    await notes().save(note);
    expect((await notes().findOneBy({ emailIndex: blindIndexOf(SecretNote, 'email', 'newest@example.com') }))?.email).toBe(
      'newest@example.com',
    );
  });

  it('refuses an encrypted column in a where clause, loudly', async () => {
    await expect(notes().findOneBy({ email: 'ada.lovelace@example.com' })).rejects.toThrow(EncryptedColumnMisuseError);
    await expect(notes().findOneBy({ email: 'ada.lovelace@example.com' })).rejects.toThrow(/blindIndexOf\(SecretNote, 'email', value\)/);
    await expect(notes().findBy({ phone: In(['+44 20 7946 0000']) })).rejects.toThrow(/cannot be compared in a where clause/);
    await expect(notes().update({ email: 'ada.lovelace@example.com' }, { label: 'x' })).rejects.toThrow(EncryptedColumnMisuseError);
    await expect(notes().delete({ email: 'ada.lovelace@example.com' })).rejects.toThrow(EncryptedColumnMisuseError);
    // The query builder throws as the criteria are added, before any query runs.
    expect(() => notes().createQueryBuilder().where({ email: 'ada.lovelace@example.com' })).toThrow(EncryptedColumnMisuseError);
    expect(() => notes().createQueryBuilder().update().set({ label: 'y' }).where({ phone: '+44 20 7946 0000' })).toThrow(
      EncryptedColumnMisuseError,
    );
  });

  it('fails the whole read when a ciphertext was moved to another column or altered', async () => {
    const moved = await save('moved@example.com');
    await dataSource.query('UPDATE secret_notes SET phone = email WHERE id = $1', [moved.id]);
    await expect(notes().findOneBy({ id: moved.id })).rejects.toThrow(DecryptionFailedError);

    const altered = await save('altered@example.com');
    await dataSource.query(
      "UPDATE secret_notes SET phone = overlay(phone placing (CASE WHEN substr(phone, 20, 1) = 'A' THEN 'B' ELSE 'A' END) from 20 for 1) WHERE id = $1",
      [altered.id],
    );
    await expect(notes().findOneBy({ id: altered.id })).rejects.toThrow('decryption failed');
  });

  it('refuses a non-string in a string column', async () => {
    await expect(save('typed@example.com', { phone: 42 as unknown as string })).rejects.toThrow(/use @Encrypted\(\{ kind: 'json' \}\)/);
  });
});
