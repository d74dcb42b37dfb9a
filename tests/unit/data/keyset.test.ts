import { SqlParameters } from '../../../src/db/sql-parameters';
import { Keyset, SortDirection, SortKey, isIsoInstant } from '../../../src/db/keyset';
import type { FieldKind } from '../../../src/data/define-model';

const key = (name: string, kind: FieldKind, direction: SortDirection, column = name): SortKey => ({
  field: { name, column, kind },
  direction,
});

const ID_ASC = key('id', 'id', 'ASC');
const ID_DESC = key('id', 'id', 'DESC');
const CREATED_ASC = key('createdAt', 'datetime', 'ASC', 'created_at');
const TITLE_DESC = key('title', 'string', 'DESC', 'title_text');

const DATE = `date_trunc('milliseconds', "m"."created_at")`;
const TITLE = '"m"."title_text"';
const ID = '"m"."id"';

const UUID = '3f2b6c1e-8d4a-4b7e-9c2f-1a2b3c4d5e6f';
const ROW = { id: UUID, createdAt: new Date('2024-05-06T07:08:09.123Z'), title: 'Hello', rank: 7, score: 0.25, published: false };

/** What a client sees inside a cursor (it is only base64url JSON), and how it would write one back. */
const peek = (cursor: string): unknown[] => JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
const forge = (content: unknown): string => Buffer.from(JSON.stringify(content), 'utf8').toString('base64url');

const INVALID_CURSOR = expect.objectContaining({ code: 'BAD_USER_INPUT', extensions: expect.objectContaining({ field: 'after' }) });

describe('Keyset', () => {
  it('orders by each key in turn, date-times at millisecond precision', () => {
    expect(new Keyset('m', [CREATED_ASC, TITLE_DESC, ID_ASC]).orderBy()).toEqual([
      [DATE, 'ASC'],
      [TITLE, 'DESC'],
      [ID, 'ASC'],
    ]);
    expect(new Keyset('row', [ID_DESC]).orderBy()).toEqual([['"row"."id"', 'DESC']]);
  });

  describe('after', () => {
    it('builds the lexicographic condition: > for ASC, < for DESC, earlier keys equal', () => {
      const keyset = new Keyset('m', [CREATED_ASC, TITLE_DESC, ID_ASC]);
      const parameters = new SqlParameters();
      const sql = keyset.after(keyset.cursorOf(ROW), parameters);
      expect(sql).toBe(`((${DATE} > :p0) OR (${DATE} = :p0 AND ${TITLE} < :p1) OR (${DATE} = :p0 AND ${TITLE} = :p1 AND ${ID} > :p2))`);
      expect(parameters.values).toEqual({ p0: ROW.createdAt, p1: 'Hello', p2: UUID });
      expect(parameters.values.p0).toBeInstanceOf(Date); // compared as a timestamp, not as text
    });

    it('uses one key alone for an id-only order, in its direction', () => {
      const asc = new Keyset('m', [ID_ASC]);
      const desc = new Keyset('m', [ID_DESC]);
      expect(asc.after(asc.cursorOf(ROW), new SqlParameters())).toBe(`((${ID} > :p0))`);
      expect(desc.after(desc.cursorOf(ROW), new SqlParameters())).toBe(`((${ID} < :p0))`);
    });

    it("continues the numbering of the statement's parameters", () => {
      const keyset = new Keyset('m', [TITLE_DESC, ID_DESC]);
      const parameters = new SqlParameters();
      parameters.add('scope value');
      expect(keyset.after(keyset.cursorOf(ROW), parameters)).toBe(`((${TITLE} < :p1) OR (${TITLE} = :p1 AND ${ID} < :p2))`);
      expect(parameters.values).toEqual({ p0: 'scope value', p1: 'Hello', p2: UUID });
    });

    it("keeps the client's values out of the SQL text", () => {
      const keyset = new Keyset('m', [TITLE_DESC, ID_ASC]);
      const hostile = { ...ROW, title: `x' OR 1=1; DROP TABLE posts; --` };
      const parameters = new SqlParameters();
      const sql = keyset.after(keyset.cursorOf(hostile), parameters);
      expect(sql).not.toContain('DROP');
      expect(sql).not.toContain("'");
      expect(parameters.values.p0).toBe(hostile.title);
    });
  });

  describe('cursorOf', () => {
    it('round-trips every kind of key through after, with its type', () => {
      const keyset = new Keyset('m', [
        key('rank', 'int', 'DESC'),
        key('score', 'float', 'ASC'),
        key('published', 'boolean', 'ASC'),
        CREATED_ASC,
        TITLE_DESC,
        ID_ASC,
      ]);
      const parameters = new SqlParameters();
      keyset.after(keyset.cursorOf(ROW), parameters);
      expect(parameters.values).toEqual({ p0: 7, p1: 0.25, p2: false, p3: ROW.createdAt, p4: 'Hello', p5: UUID });
    });

    it("writes dates as toISOString and nothing but the order's signature and the key values", () => {
      const keyset = new Keyset('m', [CREATED_ASC, ID_ASC]);
      const [signature, ...values] = peek(keyset.cursorOf({ ...ROW, secret: 'not in the cursor' }));
      expect(values).toEqual(['2024-05-06T07:08:09.123Z', UUID]);
      expect(typeof signature).toBe('string');
      expect(keyset.cursorOf(ROW)).toMatch(/^[A-Za-z0-9_-]+$/); // base64url: safe in a URL and a JSON string
    });

    it('depends only on the order, not on the alias or the Keyset instance', () => {
      const cursor = new Keyset('m', [CREATED_ASC, ID_ASC]).cursorOf(ROW);
      const parameters = new SqlParameters();
      expect(new Keyset('other', [CREATED_ASC, ID_ASC]).after(cursor, parameters)).toContain('"other"."created_at"');
      expect(parameters.values).toEqual({ p0: ROW.createdAt, p1: UUID });
    });
  });

  describe('refuses a cursor from another order', () => {
    it.each<[string, SortKey[], SortKey[]]>([
      ['the same keys, another direction', [CREATED_ASC, ID_ASC], [{ ...CREATED_ASC, direction: 'DESC' }, ID_DESC]],
      ['only the tie-break direction differs', [CREATED_ASC, ID_ASC], [CREATED_ASC, ID_DESC]],
      ['other keys of the same shape', [TITLE_DESC, ID_ASC], [key('body', 'string', 'DESC'), ID_ASC]],
      [
        'the same keys, in another order',
        [TITLE_DESC, key('body', 'string', 'DESC'), ID_ASC],
        [key('body', 'string', 'DESC'), TITLE_DESC, ID_ASC],
      ],
      ['fewer keys', [CREATED_ASC, ID_ASC], [ID_ASC]],
      ['more keys', [ID_ASC], [CREATED_ASC, ID_ASC]],
    ])('%s', (_case, from, to) => {
      const cursor = new Keyset('m', from).cursorOf(ROW);
      const parameters = new SqlParameters();
      expect(() => new Keyset('m', to).after(cursor, parameters)).toThrow(INVALID_CURSOR);
      expect(parameters.values).toEqual({});
    });
  });

  describe('refuses forged cursors', () => {
    const keyset = new Keyset('m', [CREATED_ASC, ID_ASC]);
    const [signature] = peek(keyset.cursorOf(ROW));

    it.each<[string, string]>([
      ['empty', ''],
      ['not base64url JSON', 'not-a-cursor'],
      ['punctuation', '!!!!'],
      ['plain JSON, not encoded', JSON.stringify([signature, ROW.createdAt.toISOString(), UUID])],
      ['an object', forge({ signature, createdAt: ROW.createdAt.toISOString(), id: UUID })],
      ['null', forge(null)],
      ['too few values', forge([signature, UUID])],
      ['too many values', forge([signature, ROW.createdAt.toISOString(), UUID, 'extra'])],
      ['no signature', forge([ROW.createdAt.toISOString(), UUID, 'x'])],
      ['a wrong signature', forge(['AAAAAAAA', ROW.createdAt.toISOString(), UUID])],
      ['a number for the date', forge([signature, ROW.createdAt.getTime(), UUID])],
      ['null for the id', forge([signature, ROW.createdAt.toISOString(), null])],
      ['a nested array', forge([signature, [ROW.createdAt.toISOString()], UUID])],
    ])('%s', (_case, cursor) => {
      const parameters = new SqlParameters();
      expect(() => keyset.after(cursor, parameters)).toThrow(INVALID_CURSOR);
      expect(parameters.values).toEqual({});
    });

    it('refuses a cursor missing its last value even where every value present has the right type', () => {
      const byTitle = new Keyset('m', [TITLE_DESC, ID_ASC]);
      const [titleSignature] = peek(byTitle.cursorOf(ROW));
      const parameters = new SqlParameters();
      expect(() => byTitle.after(forge([titleSignature, 'Hello']), parameters)).toThrow(INVALID_CURSOR);
      expect(() => byTitle.after(forge([titleSignature, 'Hello', UUID, UUID]), parameters)).toThrow(INVALID_CURSOR);
      expect(parameters.values).toEqual({});
    });

    it.each([
      ['a date without time', '2024-05-06'],
      ['no milliseconds', '2024-05-06T07:08:09Z'],
      ['microseconds', '2024-05-06T07:08:09.123456Z'],
      ['an offset instead of Z', '2024-05-06T07:08:09.123+00:00'],
      ['another time zone', '2024-05-06T09:08:09.123+02:00'],
      ['a day that does not exist', '2024-02-30T00:00:00.000Z'],
      ['a date in words', 'Mon May 06 2024'],
      ['a number as text', '1714979289123'],
      ['padding', ' 2024-05-06T07:08:09.123Z'],
      ['SQL', "2024-05-06T07:08:09.123Z' OR '1'='1"],
    ])('a date that is not exactly toISOString output: %s', (_case, date) => {
      const parameters = new SqlParameters();
      expect(() => keyset.after(forge([signature, date, UUID]), parameters)).toThrow(INVALID_CURSOR);
      expect(parameters.values).toEqual({});
    });

    it('accepts a well-formed cursor it never handed out (so the SQL must hold for any such values)', () => {
      const parameters = new SqlParameters();
      keyset.after(forge([signature, '1999-12-31T23:59:59.999Z', UUID]), parameters);
      expect(parameters.values).toEqual({ p0: new Date('1999-12-31T23:59:59.999Z'), p1: UUID });
    });

    // BUG: the signature is no secret (anyone can read it from a cursor), and the id key is not
    // checked to be a uuid, so a forged cursor reaches PostgreSQL as `"m"."id" > 'not-a-uuid'`:
    // invalid input syntax for type uuid (an internal error instead of BAD_USER_INPUT). The users
    // directory checks the same thing (user-directory.service.ts: `!isUuid(id)`). Fix in Keyset.decode:
    // `if (kind === 'id' && !isUuid(String(value))) throw invalidCursor();`. Turn into `it` once fixed.
    it('refuses an id that is not a uuid (it would reach PostgreSQL as a cast error)', () => {
      expect(() => keyset.after(forge([signature, ROW.createdAt.toISOString(), 'not-a-uuid']), new SqlParameters())).toThrow(
        INVALID_CURSOR,
      );
    });

    // BUG: an int key accepts any JSON number; `"m"."rank" < '1.5'` (or 1e20) fails in PostgreSQL
    // (invalid input syntax / out of range for type integer). Fix in Keyset.decode:
    // `if (kind === 'int' && !(Number.isInteger(value) && Math.abs(value) <= 2 ** 31 - 1)) throw invalidCursor();`
    it('refuses a fraction or an out-of-range number for an int key (it would reach PostgreSQL as a cast error)', () => {
      const byRank = new Keyset('m', [key('rank', 'int', 'DESC'), ID_ASC]);
      const [rankSignature] = peek(byRank.cursorOf(ROW));
      expect(() => byRank.after(forge([rankSignature, 1.5, UUID]), new SqlParameters())).toThrow(INVALID_CURSOR);
      expect(() => byRank.after(forge([rankSignature, 1e20, UUID]), new SqlParameters())).toThrow(INVALID_CURSOR);
    });
  });
});

describe('isIsoInstant', () => {
  it('accepts exactly what Date.toISOString writes', () => {
    for (const date of [
      new Date(0),
      new Date('2024-05-06T07:08:09.123Z'),
      new Date('2024-02-29T23:59:59.999Z'),
      new Date('0001-01-01T00:00:00.000Z'),
    ]) {
      expect(isIsoInstant(date.toISOString())).toBe(true);
    }
  });

  it('refuses every other spelling of an instant, and non-dates', () => {
    for (const text of [
      '',
      'garbage',
      '2024-05-06',
      '2024-05-06T07:08:09Z',
      '2024-05-06T07:08:09.123',
      '2024-05-06T07:08:09.123z',
      '2024-05-06 07:08:09.123Z',
      '2024-05-06T07:08:09.123+00:00',
      '2024-13-01T00:00:00.000Z',
      '2024-02-30T00:00:00.000Z',
      '2024-05-06T07:08:09.123Z\n',
    ]) {
      expect(isIsoInstant(text)).toBe(false);
    }
  });
});
