import { createHmac } from 'node:crypto';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { installKeyring } from '../../../src/crypto/active-keyring';
import { Encrypted } from '../../../src/crypto/encrypted-column';
import { Keyring } from '../../../src/crypto/keyring';
import type { FieldKind, ModelDefinition, ModelField } from '../../../src/data/define-model';
import { WhereInput, whereSql } from '../../../src/data/filters';
import { SqlParameters, fieldExpression } from '../../../src/db/sql-parameters';
import { AppError } from '../../../src/errors';
import { TEST_KEYS, testKeyring } from '../../support/test-keys';

/** A real entity for the encrypted fields: the blind index is keyed per "table.column". */
@Entity('filter_vault')
class FilterVault {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Encrypted({ blindIndex: {} })
  secret!: string;

  @Encrypted({ blindIndex: { normalize: 'email' } })
  email!: string;

  @Column({ type: 'text' })
  label!: string;
}

const field = (name: string, kind: FieldKind, overrides: Partial<ModelField> = {}): ModelField => ({
  name,
  column: name,
  kind,
  nullable: true,
  millisecondPrecision: false,
  encrypted: false,
  blindIndexColumn: null,
  description: name,
  filterable: true,
  sortable: false,
  writable: false,
  requiredOnCreate: false,
  ...overrides,
});

// Column names differ from field names on purpose: the SQL must take them from the definition.
const MODEL: ModelDefinition = {
  entity: FilterVault,
  name: 'FilterVault',
  description: 'Test only.',
  table: 'filter_vault',
  singular: 'filterVault',
  plural: 'filterVaults',
  ownerField: null,
  subscriptions: false,
  changeColumns: [],
  fields: [
    field('id', 'id', { nullable: false }),
    field('title', 'string', { column: 'title_text' }),
    field('rank', 'int'),
    field('score', 'float'),
    field('published', 'boolean'),
    field('createdAt', 'datetime', { column: 'created_at' }),
    field('authorId', 'id', { column: 'author_id' }),
    field('notes', 'string', { filterable: false }),
    field('secret', 'string', { encrypted: true, blindIndexColumn: 'secret_index' }),
    field('email', 'string', { encrypted: true, blindIndexColumn: 'email_index' }),
  ],
  relations: [],
  files: [],
  access: { name: 'FilterVault', ownerField: null, readableFields: [], writableFields: [], filters: {}, defaults: [] },
};

const UUID = '3f2b6c1e-8d4a-4b7e-9c2f-1a2b3c4d5e6f';
const OTHER_UUID = 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d';

/** The SQL and the parameters of one where, on fresh parameters. */
function translate(where: WhereInput | null | undefined, readableWhere?: (field: string, parameters: SqlParameters) => string | null) {
  const parameters = new SqlParameters();
  const sql = whereSql(MODEL, 'm', where, parameters, readableWhere && ((name) => readableWhere(name, parameters)));
  return { sql, values: parameters.values };
}

/** A where nested `levels` times below the root through `key`, with one condition at the bottom. */
function nested(levels: number, key: 'AND' | 'OR' = 'AND'): WhereInput {
  let node: WhereInput = { rank: { eq: 1 } };
  for (let level = 0; level < levels; level += 1) node = { [key]: [node] };
  return node;
}

describe('SqlParameters', () => {
  it('names parameters in order and keeps each value under its name', () => {
    const parameters = new SqlParameters();
    expect(parameters.add('a')).toBe(':p0');
    expect(parameters.add(0)).toBe(':p1');
    expect(parameters.addList(['x', 'y'])).toBe('(:...p2)');
    expect(parameters.add(null)).toBe(':p3');
    expect(parameters.values).toEqual({ p0: 'a', p1: 0, p2: ['x', 'y'], p3: null });
  });

  it('numbers each statement from p0 on its own', () => {
    const first = new SqlParameters();
    first.add('a');
    expect(new SqlParameters().add('b')).toBe(':p0');
  });
});

describe('fieldExpression', () => {
  it('quotes alias and column; date-times compare at millisecond precision', () => {
    expect(fieldExpression('m', { column: 'title_text', kind: 'string' })).toBe('"m"."title_text"');
    expect(fieldExpression('row', { column: 'id', kind: 'id' })).toBe('"row"."id"');
    expect(fieldExpression('m', { column: 'created_at', kind: 'datetime' })).toBe(`date_trunc('milliseconds', "m"."created_at")`);
  });
});

describe('whereSql', () => {
  beforeAll(() => installKeyring(testKeyring()));

  it('is null (no condition) for no where, an empty one, or one whose values are all null', () => {
    expect(translate(undefined)).toEqual({ sql: null, values: {} });
    expect(translate(null)).toEqual({ sql: null, values: {} });
    expect(translate({})).toEqual({ sql: null, values: {} });
    expect(translate({ title: null, rank: { eq: null, gt: undefined } })).toEqual({ sql: null, values: {} });
    expect(translate({ AND: [], OR: null })).toEqual({ sql: null, values: {} });
  });

  describe('operators', () => {
    it.each([
      ['eq', { title: { eq: 'Hello' } }, '"m"."title_text" = :p0', { p0: 'Hello' }],
      ['ne', { title: { ne: 'Hello' } }, '"m"."title_text" IS DISTINCT FROM :p0', { p0: 'Hello' }],
      ['in', { title: { in: ['a', 'b'] } }, '"m"."title_text" IN (:...p0)', { p0: ['a', 'b'] }],
      ['lt', { rank: { lt: 3 } }, '"m"."rank" < :p0', { p0: 3 }],
      ['lte', { rank: { lte: 3 } }, '"m"."rank" <= :p0', { p0: 3 }],
      ['gt', { score: { gt: 1.5 } }, '"m"."score" > :p0', { p0: 1.5 }],
      ['gte', { score: { gte: 1.5 } }, '"m"."score" >= :p0', { p0: 1.5 }],
      ['contains', { title: { contains: 'ell' } }, '"m"."title_text" ILIKE :p0', { p0: '%ell%' }],
      ['startsWith', { title: { startsWith: 'He' } }, '"m"."title_text" ILIKE :p0', { p0: 'He%' }],
      ['isNull: true', { title: { isNull: true } }, '"m"."title_text" IS NULL', {}],
      ['isNull: false', { title: { isNull: false } }, '"m"."title_text" IS NOT NULL', {}],
    ])('%s', (_operator, where, sql, values) => {
      expect(translate(where as WhereInput)).toEqual({ sql, values });
    });

    it('keeps falsy values (false, 0, the empty string) as conditions', () => {
      expect(translate({ published: { eq: false } })).toEqual({ sql: '"m"."published" = :p0', values: { p0: false } });
      expect(translate({ rank: { eq: 0 } })).toEqual({ sql: '"m"."rank" = :p0', values: { p0: 0 } });
      expect(translate({ title: { eq: '' } })).toEqual({ sql: '"m"."title_text" = :p0', values: { p0: '' } });
    });

    it('ANDs several operators on one field, in the order given', () => {
      expect(translate({ rank: { gte: 1, lt: 10, ne: 5 } })).toEqual({
        sql: '"m"."rank" >= :p0 AND "m"."rank" < :p1 AND "m"."rank" IS DISTINCT FROM :p2',
        values: { p0: 1, p1: 10, p2: 5 },
      });
    });

    it('is FALSE for an empty in list, with no parameter', () => {
      expect(translate({ title: { in: [] } })).toEqual({ sql: 'FALSE', values: {} });
      expect(translate({ rank: { in: [] }, title: { eq: 'a' } })).toEqual({ sql: '"m"."title_text" = :p0 AND FALSE', values: { p0: 'a' } });
    });

    it('refuses an operator no filter input type has (a server bug, not a client error)', () => {
      const attempt = () => translate({ title: { matches: '.*' } });
      expect(attempt).toThrow('unknown filter operator matches');
      expect(attempt).not.toThrow(AppError);
    });
  });

  describe('client values travel only as parameters', () => {
    const HOSTILE = `x' OR '1'='1'; DROP TABLE users; --`;

    it.each(['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'contains', 'startsWith'])('%s on text', (operator) => {
      const { sql, values } = translate({ title: { [operator]: HOSTILE } });
      expect(sql).toMatch(/^"m"\."title_text" [A-Z <>=]+ :p0$/);
      expect(sql).not.toContain('DROP');
      expect(sql).not.toContain("'");
      expect(Object.values(values)).toHaveLength(1);
      expect(String(values.p0)).toContain(HOSTILE); // as given (it holds no LIKE wildcard)
    });

    it('in, on text and ids', () => {
      const text = translate({ title: { in: [HOSTILE, 'ok'] } });
      expect(text).toEqual({ sql: '"m"."title_text" IN (:...p0)', values: { p0: [HOSTILE, 'ok'] } });
      const ids = translate({ authorId: { in: [UUID, HOSTILE] } });
      expect(ids).toEqual({ sql: '"m"."author_id" IN (:...p0)', values: { p0: [UUID] } });
    });

    it('nested in AND/OR, and encrypted equality', () => {
      const { sql, values } = translate({ OR: [{ title: { eq: HOSTILE } }, { AND: [{ secret: { eq: HOSTILE } }] }] });
      expect(sql).not.toContain('DROP');
      expect(sql).toBe('("m"."title_text" = :p0 OR ("m"."secret_index" = :p1))');
      expect(values.p0).toBe(HOSTILE);
      expect(values.p1).not.toContain('DROP'); // the blind index, not the text
    });

    it('takes column names from the definition, never from the input keys', () => {
      const { sql } = translate({ title: { eq: 'a' }, "title_text\" = 'a' OR TRUE --": { eq: 'b' } });
      expect(sql).toBe('"m"."title_text" = :p0');
    });
  });

  describe('LIKE wildcards', () => {
    it.each([
      ['100%', '%100\\%%', '100\\%%'],
      ['snake_case', '%snake\\_case%', 'snake\\_case%'],
      ['C:\\temp', '%C:\\\\temp%', 'C:\\\\temp%'],
      ['\\%_', '%\\\\\\%\\_%', '\\\\\\%\\_%'],
      ['plain', '%plain%', 'plain%'],
    ])('%s matches itself in contains and startsWith', (text, contains, startsWith) => {
      expect(translate({ title: { contains: text } }).values.p0).toBe(contains);
      expect(translate({ title: { startsWith: text } }).values.p0).toBe(startsWith);
    });

    it('are not escaped where they mean nothing (eq, in)', () => {
      expect(translate({ title: { eq: '50%_\\' } }).values.p0).toBe('50%_\\');
      expect(translate({ title: { in: ['50%'] } }).values.p0).toEqual(['50%']);
    });
  });

  describe('id fields', () => {
    it('compare valid uuids (any case) as parameters', () => {
      expect(translate({ authorId: { eq: UUID } })).toEqual({ sql: '"m"."author_id" = :p0', values: { p0: UUID } });
      expect(translate({ authorId: { eq: UUID.toUpperCase() } })).toEqual({
        sql: '"m"."author_id" = :p0',
        values: { p0: UUID.toUpperCase() },
      });
      expect(translate({ authorId: { ne: UUID } })).toEqual({ sql: '"m"."author_id" IS DISTINCT FROM :p0', values: { p0: UUID } });
      expect(translate({ authorId: { in: [UUID, OTHER_UUID] } })).toEqual({
        sql: '"m"."author_id" IN (:...p0)',
        values: { p0: [UUID, OTHER_UUID] },
      });
      expect(translate({ authorId: { isNull: true } })).toEqual({ sql: '"m"."author_id" IS NULL', values: {} });
    });

    it('turn a value that is not a uuid into FALSE (eq) or TRUE (ne), never a cast error', () => {
      for (const bad of ['42', 'not-a-uuid', `${UUID}x`, ` ${UUID}`, '']) {
        expect(translate({ authorId: { eq: bad } })).toEqual({ sql: 'FALSE', values: {} });
        expect(translate({ authorId: { ne: bad } })).toEqual({ sql: 'TRUE', values: {} });
      }
      expect(translate({ id: { eq: '1' } })).toEqual({ sql: 'FALSE', values: {} });
    });

    it('drop values that are not uuids from in lists; FALSE when none is left', () => {
      expect(translate({ authorId: { in: ['nope', UUID, '1', OTHER_UUID] } })).toEqual({
        sql: '"m"."author_id" IN (:...p0)',
        values: { p0: [UUID, OTHER_UUID] },
      });
      expect(translate({ authorId: { in: ['nope', '1'] } })).toEqual({ sql: 'FALSE', values: {} });
    });

    it('leave text fields alone: a non-uuid string is an ordinary value there', () => {
      expect(translate({ title: { eq: 'nope' } })).toEqual({ sql: '"m"."title_text" = :p0', values: { p0: 'nope' } });
    });
  });

  describe('date-time fields', () => {
    const instant = new Date('2024-05-06T07:08:09.123Z');
    const DATE = `date_trunc('milliseconds', "m"."created_at")`;

    it('compare at millisecond precision with every operator', () => {
      expect(translate({ createdAt: { eq: instant } })).toEqual({ sql: `${DATE} = :p0`, values: { p0: instant } });
      expect(translate({ createdAt: { ne: instant } })).toEqual({ sql: `${DATE} IS DISTINCT FROM :p0`, values: { p0: instant } });
      expect(translate({ createdAt: { gt: instant, lte: instant } })).toEqual({
        sql: `${DATE} > :p0 AND ${DATE} <= :p1`,
        values: { p0: instant, p1: instant },
      });
      expect(translate({ createdAt: { in: [instant] } })).toEqual({ sql: `${DATE} IN (:...p0)`, values: { p0: [instant] } });
    });
  });

  describe('encrypted fields', () => {
    /** The blind index as docs/security.md#enc-7 defines it, computed here independently of the code under test. */
    const expectedIndex = (keyring: Keyring, domain: string, normalised: string) =>
      createHmac('sha256', keyring.blindIndexKey(domain)).update(normalised, 'utf8').digest('base64url');

    afterEach(() => installKeyring(testKeyring()));

    it('compare the blind index column with the index of the value, never the ciphertext column or the plaintext', () => {
      const { sql, values } = translate({ secret: { eq: 'Sesame' } });
      expect(sql).toBe('"m"."secret_index" = :p0');
      expect(values.p0).toBe(expectedIndex(testKeyring(), 'filter_vault.secret', 'Sesame'));
      expect(values.p0).not.toContain('Sesame');
    });

    it("index under the column's own key and normaliser", () => {
      const email = translate({ email: { eq: '  Ada@Example.COM ' } }).values.p0;
      expect(email).toBe(expectedIndex(testKeyring(), 'filter_vault.email', 'ada@example.com'));
      expect(translate({ email: { eq: 'ada@example.com' } }).values.p0).toBe(email);
      // Same text, another column: another index (no cross-column linking).
      expect(translate({ secret: { eq: 'ada@example.com' } }).values.p0).not.toBe(email);
      // secret uses the exact normaliser: case matters.
      expect(translate({ secret: { eq: 'sesame' } }).values.p0).not.toBe(translate({ secret: { eq: 'Sesame' } }).values.p0);
    });

    it('use the installed keyring', () => {
      const before = translate({ secret: { eq: 'Sesame' } }).values.p0;
      installKeyring(testKeyring('k2'));
      expect(translate({ secret: { eq: 'Sesame' } }).values.p0).toBe(before); // data-key rotation keeps the index
      installKeyring(new Keyring({ keys: new Map([['k1', TEST_KEYS.k1]]), currentKid: 'k1', blindIndexKey: Buffer.alloc(32, 7) }));
      expect(translate({ secret: { eq: 'Sesame' } }).values.p0).not.toBe(before);
    });
  });

  describe('AND / OR', () => {
    it('ANDs the fields of a node (in model order), then its AND list, then its OR list', () => {
      const where: WhereInput = {
        OR: [{ rank: { gt: 1 } }, { AND: [{ published: { eq: true } }, { score: { lt: 2 } }] }],
        AND: [{ authorId: { eq: UUID } }],
        title: { eq: 'a' },
        rank: { lt: 9 },
      };
      expect(translate(where)).toEqual({
        sql: '"m"."title_text" = :p0 AND "m"."rank" < :p1 AND ("m"."author_id" = :p2) AND ("m"."rank" > :p3 OR ("m"."published" = :p4 AND "m"."score" < :p5))',
        values: { p0: 'a', p1: 9, p2: UUID, p3: 1, p4: true, p5: 2 },
      });
    });

    it('joins conditions of one child with AND inside its OR alternative', () => {
      expect(translate({ OR: [{ title: { eq: 'a' }, rank: { eq: 1 } }, { rank: { eq: 2 } }] })).toEqual({
        sql: '("m"."title_text" = :p0 AND "m"."rank" = :p1 OR "m"."rank" = :p2)',
        values: { p0: 'a', p1: 1, p2: 2 },
      });
    });

    it('treats an empty child as TRUE (no condition)', () => {
      expect(translate({ OR: [{}, { title: { eq: 'a' } }] }).sql).toBe('(TRUE OR "m"."title_text" = :p0)');
      expect(translate({ AND: [{}, { title: null }] }).sql).toBe('(TRUE AND TRUE)');
    });

    it(`allows the root and 4 levels below it; a 5th level below is BAD_USER_INPUT`, () => {
      expect(translate(nested(4)).sql).toBe('(((("m"."rank" = :p0))))');
      expect(translate(nested(4, 'OR')).sql).toBe('(((("m"."rank" = :p0))))');
      for (const key of ['AND', 'OR'] as const) {
        expect(() => translate(nested(5, key))).toThrow(
          expect.objectContaining({
            code: 'BAD_USER_INPUT',
            message: expect.stringContaining('more than 5 levels'),
            extensions: expect.objectContaining({ field: 'where' }),
          }),
        );
      }
      // Mixed nesting counts the same, and an empty node at the bottom still counts as a level.
      expect(() => translate({ AND: [{ OR: [{ AND: [{ OR: [{ AND: [{}] }] }] }] }] })).toThrow(AppError);
    });

    it('allows 50 conditions in all; the 51st anywhere in the tree is BAD_USER_INPUT', () => {
      const children = (count: number, from = 0) => Array.from({ length: count }, (_, index) => ({ rank: { eq: from + index } }));
      const fifty = translate({ AND: children(50) });
      expect(Object.keys(fifty.values)).toHaveLength(50);
      const tooMany = {
        code: 'BAD_USER_INPUT',
        message: expect.stringContaining('more than 50 conditions'),
        extensions: expect.objectContaining({ field: 'where' }),
      };
      expect(() => translate({ AND: children(51) })).toThrow(expect.objectContaining(tooMany));
      // Spread over levels and operators: 2 at the root + 24 in AND + 25 in a nested OR.
      expect(() => translate({ title: { eq: 'a', ne: 'b' }, AND: [...children(24), { OR: children(25, 100) }] })).toThrow(
        expect.objectContaining(tooMany),
      );
      expect(() => translate({ title: { eq: 'a' }, AND: [...children(24), { OR: children(25, 100) }] })).not.toThrow();
      // Null values are no conditions.
      expect(() => translate({ AND: [...children(50), { rank: { eq: null, gt: undefined } }] })).not.toThrow();
      // isNull counts, though it takes no parameter.
      expect(() => translate({ AND: [...children(50), { title: { isNull: true } }] })).toThrow(expect.objectContaining(tooMany));
    });
  });

  describe('readableWhere', () => {
    const OWN = (parameters: SqlParameters) => `"m"."owner_id" = ${parameters.add('viewer-1')}`;

    it('wraps each condition on a field the viewer may not read everywhere as (condition AND readable)', () => {
      const asked: string[] = [];
      const result = translate({ title: { eq: 'a', ne: 'b' }, rank: { gt: 1 } }, (name, parameters) => {
        asked.push(name);
        return name === 'title' ? OWN(parameters) : null;
      });
      expect(result).toEqual({
        sql: '("m"."title_text" = :p0 AND "m"."owner_id" = :p1) AND ("m"."title_text" IS DISTINCT FROM :p2 AND "m"."owner_id" = :p3) AND "m"."rank" > :p4',
        values: { p0: 'a', p1: 'viewer-1', p2: 'b', p3: 'viewer-1', p4: 1 },
      });
      expect(asked).toEqual(['title', 'title', 'rank']);
    });

    it('also inside OR, so no alternative tests an unreadable value', () => {
      expect(
        translate({ OR: [{ secret: { eq: 'x' } }, { title: { isNull: true } }] }, (name) => (name === 'rank' ? null : 'FALSE')).sql,
      ).toBe('(("m"."secret_index" = :p0 AND FALSE) OR ("m"."title_text" IS NULL AND FALSE))');
    });

    it('wraps the constant conditions too (a non-uuid ne is TRUE only where readable)', () => {
      expect(translate({ authorId: { ne: 'x' } }, () => 'R').sql).toBe('(TRUE AND R)');
    });

    it('is not consulted for ignored fields or null values', () => {
      const asked: string[] = [];
      translate({ notes: { eq: 'x' }, title: { eq: null } }, (name) => {
        asked.push(name);
        return 'R';
      });
      expect(asked).toEqual([]);
    });
  });

  it('ignores fields that are not filterable, and keys that are no field', () => {
    expect(translate({ notes: { eq: 'x' } })).toEqual({ sql: null, values: {} });
    expect(translate({ nosuch: { eq: 'x' } })).toEqual({ sql: null, values: {} });
    expect(translate({ notes: { contains: 'x' }, rank: { eq: 1 } })).toEqual({ sql: '"m"."rank" = :p0', values: { p0: 1 } });
    // Still ignored in nested nodes, where the node then counts as TRUE.
    expect(translate({ OR: [{ notes: { eq: 'x' } }] }).sql).toBe('(TRUE)');
  });
});
