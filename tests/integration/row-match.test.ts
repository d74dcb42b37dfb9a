import fc from 'fast-check';
import { Field, Float, ID, Int, ObjectType, getMetadataStorage } from 'type-graphql';
import { Column, DataSource, Entity, PrimaryGeneratedColumn, QueryRunner } from 'typeorm';
import { installKeyring } from '../../src/crypto/active-keyring';
import { Encrypted, blindIndexedProperties, blindIndexesOf } from '../../src/crypto/encrypted-column';
import { Keyring } from '../../src/crypto/keyring';
import { ModelDefinition, ModelField, ModelHandle, defineModel, resolveModel } from '../../src/data/define-model';
import { WhereInput, filterTypeOf, whereSql } from '../../src/data/filters';
import { rowMatchesWhere } from '../../src/data/row-match';
import { createDataSource } from '../../src/db/data-source';
import { SqlParameters } from '../../src/db/sql-parameters';
import { commentModel } from '../../src/models/comment.model';
import { postModel } from '../../src/models/post.model';
import { TestDatabase, createTestDatabase } from '../support/test-database';
import { TEST_KEYS } from '../support/test-keys';

/**
 * A client's `where` is decided two ways: in SQL (whereSql, for queries) and in memory (rowMatchesWhere,
 * for rows already loaded). They must agree on every row. Checked on Post and Comment, and on a test
 * model with a nullable field of every other kind (int, float, a microsecond date-time, an encrypted one),
 * with random where trees and rows, PostgreSQL evaluating the SQL on the real, migrated tables.
 */
@ObjectType({ description: 'Test only: a gauge, with a nullable field of every kind.' })
@Entity('gauges')
class Gauge {
  @Field(() => ID, { description: 'Id.' }) @PrimaryGeneratedColumn('uuid') id!: string;
  @Field(() => ID, { nullable: true, description: 'Part.' }) @Column({ type: 'uuid', nullable: true }) partId!: string | null;
  @Field(() => String, { nullable: true, description: 'Label.' }) @Column({ type: 'text', nullable: true }) label!: string | null;
  @Field(() => Int, { nullable: true, description: 'Count.' }) @Column({ type: 'integer', nullable: true }) count!: number | null;
  @Field(() => Float, { nullable: true, description: 'Reading.' }) @Column({ type: 'double precision', nullable: true }) reading!:
    number | null;
  @Field(() => Boolean, { nullable: true, description: 'Active.' }) @Column({ type: 'boolean', nullable: true }) active!: boolean | null;
  /** Microsecond precision: compared through date_trunc. */
  @Field(() => Date, { nullable: true, description: 'Seen.' }) @Column({ type: 'timestamptz', nullable: true }) seenAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'Checked.' })
  @Column({ type: 'timestamptz', precision: 3, nullable: true })
  checkedAt!: Date | null;
  @Field(() => String, { nullable: true, description: 'Code.' }) @Encrypted({ nullable: true, blindIndex: {} }) code!: string | null;
  codeIndex!: string | null;
}

const gaugeModel = defineModel(Gauge, {
  writable: [],
  filterable: ['partId', 'label', 'count', 'reading', 'active', 'seenAt', 'checkedAt', 'code'],
  defaults: [],
});

/** The encrypted `code` is not stored encrypted here: whereSql reads only its blind index. */
const GAUGES_TABLE_SQL = `CREATE TABLE gauges (id uuid PRIMARY KEY, part_id uuid, label text, count integer, reading double precision,
  active boolean, seen_at timestamptz, checked_at timestamptz(3), code text, code_index text)`;

/** Resolved as dataFeatures resolves them (it hands out only their access specs). */
const MODELS = new Map<string, ModelDefinition>();
for (const handle of [postModel, commentModel, gaugeModel] as ModelHandle[]) {
  const model = resolveModel(handle, (entity) => [...MODELS.values()].find((candidate) => candidate.entity === entity)!);
  MODELS.set(model.name, model);
}

/** Hex letters in every id, so an upper-case spelling is a different string for the same uuid. */
const USERS = ['a0000000-0000-4000-8000-00000000000a', 'b0000000-0000-4000-8000-00000000000b', 'c0000000-0000-4000-8000-00000000000c'];
const POSTS = ['d0000000-0000-4000-8000-00000000000d', 'e0000000-0000-4000-8000-00000000000e'];
const MAX_ROWS = 10;
const rowId = (index: number) => `f0000000-0000-4000-8000-${String(index).padStart(12, '0')}`;
const NOT_UUIDS = ['not-a-uuid', '', USERS[0].replaceAll('-', ''), `{${USERS[0]}}`];

const BASE = Date.UTC(2024, 0, 1, 12);
/** Instants a millisecond apart, so lt/lte/eq/gte/gt all split them. */
const TIMES = [0, 1, 2, 999, 1000, 3_600_000].map((offset) => BASE + offset);
const INTS = [-2147483648, -1, 0, 1, 2, 2147483647];
const FLOATS = [-1e300, -2.5, -0, 0, 0.1, 0.3, 0.30000000000000004, 1, 2.5];
/** A client cannot send these (GraphQL Float), but a float8 column can hold them; PostgreSQL sorts NaN above all. */
const STORED_FLOATS = [...FLOATS, NaN, Infinity, -Infinity];
/** NFKC makes ｱ and ア one value for the blind index. */
const CODES = ['+447700900123', '+447700900124', 'ｱ', 'ア'];

/** LIKE's wildcards and escape, 😀 vs ｱ (code point and UTF-16 order differ), U+FFFD (what a lone surrogate becomes). */
const CASELESS = ['a', 'b', 'A', 'B', '%', '_', '\\', ' ', 'ß', 'ｱ', '😀', '\ufffd'];
/** Non-ASCII letters in both cases, and a final sigma: case-insensitive only where LC_CTYPE is not "C". */
const CASED = ['é', 'É', 'ẞ', 'σ', 'Σ', 'ς'];

type Values = Record<string, unknown>;

/** Titles and needles where a plausible in-memory shortcut goes wrong; each needle with each text operator, tried first. */
const TRAP_TITLES = ['aΣ', 'Aς', 'σ', '😀', 'ｱ', '\ufffd', 'ba', 'AB', 'a%_\\b', '%', '_', '\\', 'Éé', 'ẞ', ''];
const TRAP_NEEDLES = ['ς', 'σ', 'Σ', '\ud83d', '😀', 'ｱ', 'a', 'B', '%', '_', '\\', '%_', 'é', 'ß', ''];

/** The trap rows and wheres the database can decide as rowMatchesWhere does (no non-ASCII case folding under LC_CTYPE C). */
function trapExamples(unicodeCase: boolean): [Values[], WhereInput, string[], boolean[]][] {
  const decidable = (text: string) => unicodeCase || !CASED.some((letter) => text.includes(letter));
  const rows = TRAP_TITLES.filter(decidable).map((title) => ({
    author_id: USERS[0],
    title,
    published: true,
    created_at: storedTime(BASE, ''),
  }));
  return TRAP_NEEDLES.filter(decidable).flatMap((needle) =>
    ['contains', 'startsWith', 'lt', 'gte', 'eq'].map((operator): [Values[], WhereInput, string[], boolean[]] => [
      rows,
      { title: { [operator]: needle } },
      [],
      [],
    ]),
  );
}

/** The operators a field's filter input type declares: all of them, whatever is added later. */
function operatorsOf(field: ModelField): string[] {
  const filterType = filterTypeOf(field);
  return getMetadataStorage()
    .fields.filter((candidate) => candidate.target === filterType)
    .map((candidate) => candidate.name);
}

interface Alphabet {
  readonly rows: fc.Arbitrary<string>;
  readonly values: fc.Arbitrary<string>;
}

function valueArbitrary(field: ModelField, text: Alphabet): fc.Arbitrary<unknown> {
  if (field.encrypted) return fc.constantFrom(...CODES);
  switch (field.kind) {
    case 'id': {
      const uuid = fc.constantFrom(...USERS, ...POSTS);
      return fc.oneof(
        uuid,
        uuid.map((id) => id.toUpperCase()),
        fc.constantFrom(...NOT_UUIDS),
      );
    }
    case 'string':
      return text.values;
    case 'int':
      return fc.constantFrom(...INTS);
    case 'float':
      return fc.constantFrom(...FLOATS);
    case 'boolean':
      return fc.boolean();
    case 'datetime':
      return fc.tuple(fc.constantFrom(...TIMES), fc.boolean()).map(([time, iso]) => (iso ? new Date(time).toISOString() : new Date(time)));
  }
}

function operandArbitrary(field: ModelField, operator: string, text: Alphabet): fc.Arbitrary<unknown> {
  const value = valueArbitrary(field, text);
  return operator === 'isNull' ? fc.boolean() : operator === 'in' ? fc.array(value, { maxLength: 3 }) : value;
}

function filterArbitrary(field: ModelField, text: Alphabet): fc.Arbitrary<Values> {
  const operators = operatorsOf(field);
  return fc
    .subarray(operators, { minLength: 1, maxLength: Math.min(2, operators.length) })
    .chain((chosen) =>
      fc
        .tuple(...chosen.map((operator) => fc.option(operandArbitrary(field, operator, text), { nil: null, freq: 6 })))
        .map((operands) => Object.fromEntries(chosen.map((operator, at) => [operator, operands[at]]))),
    );
}

/**
 * A tree: a node's field conditions, then (above the deepest level) AND and OR lists of nodes one
 * level down. Or a single condition, so each operator alone decides many rows too.
 */
function whereArbitrary(model: ModelDefinition, text: Alphabet, levels: number): fc.Arbitrary<WhereInput> {
  const filterable = model.fields.filter((field) => field.filterable);
  const single = fc
    .constantFrom(...filterable)
    .chain((field) =>
      fc
        .constantFrom(...operatorsOf(field))
        .chain((operator) => operandArbitrary(field, operator, text).map((operand) => ({ [field.name]: { [operator]: operand } }))),
    );
  return fc.oneof({ arbitrary: treeArbitrary(model.fields, text, levels), weight: 3 }, { arbitrary: single, weight: 2 });
}

function treeArbitrary(fields: readonly ModelField[], text: Alphabet, levels: number): fc.Arbitrary<WhereInput> {
  // Fields that are not filterable are in too: whereSql ignores them, and so must rowMatchesWhere.
  const conditions = fc
    .tuple(
      ...fields.map((field) =>
        fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 6 },
          { arbitrary: fc.constant(null), weight: 1 },
          { arbitrary: filterArbitrary(field, text), weight: field.filterable ? 4 : 1 },
        ),
      ),
    )
    .map((filters) => Object.fromEntries(fields.flatMap((field, at) => (filters[at] === undefined ? [] : [[field.name, filters[at]]]))));
  if (levels === 1) return conditions;
  const list = fc.oneof(
    { arbitrary: fc.constantFrom(undefined, null), weight: 3 },
    { arbitrary: fc.array(treeArbitrary(fields, text, levels - 1), { maxLength: 2 }), weight: 2 },
  );
  return fc
    .tuple(conditions, list, list)
    .map(([node, and, or]) => ({ ...node, ...(and === undefined ? {} : { AND: and }), ...(or === undefined ? {} : { OR: or }) }));
}

/** A stored instant, sometimes with microseconds (a timestamptz(3) rounds them, date_trunc drops them, pg's parser truncates). */
function storedTime(time: number, micros: string): string {
  return new Date(time).toISOString().replace('Z', `${micros}Z`);
}
const storedTimes = fc
  .tuple(fc.constantFrom(...TIMES), fc.constantFrom('', '499', '500', '999'))
  .map(([time, micros]) => storedTime(time, micros));

/** A row's columns as inserted, by column name (ids are added by position). */
function rowArbitrary(model: ModelDefinition, text: Alphabet): fc.Arbitrary<Values> {
  const nullable = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: null, freq: 4 });
  switch (model.name) {
    case 'Post':
      return fc.record({ author_id: fc.constantFrom(...USERS), title: text.rows, published: fc.boolean(), created_at: storedTimes });
    case 'Comment':
      return fc.record({
        post_id: fc.constantFrom(...POSTS),
        author_id: fc.constantFrom(...USERS),
        body: text.rows,
        created_at: storedTimes,
      });
    default:
      return fc
        .record({
          part_id: nullable(fc.constantFrom(...USERS, ...POSTS)),
          label: nullable(text.rows),
          count: nullable(fc.constantFrom(...INTS)),
          reading: nullable(fc.constantFrom(...STORED_FLOATS)),
          active: nullable(fc.boolean()),
          seen_at: nullable(storedTimes),
          checked_at: nullable(storedTimes),
          code: nullable(fc.constantFrom(...CODES)),
          // Written under the old or the new blind-index key: a rotation is under way.
          indexKey: fc.constantFrom(0, 1),
        })
        .map(({ indexKey, ...row }) => ({
          ...row,
          code_index: row.code === null ? null : blindIndexesOf(Gauge, 'code', row.code)[indexKey],
        }));
  }
}

/** A stored row as a TypeORM entity holds it: values by property, pg's parsed types, the blind index by its property. */
function entityOf(model: ModelDefinition, stored: Values): Values {
  const entity: Values = {};
  for (const field of model.fields) {
    entity[field.name] = stored[field.column];
    if (field.blindIndexColumn) {
      const { indexProperty } = blindIndexedProperties(model.entity).find((indexed) => indexed.property === field.name)!;
      entity[indexProperty] = stored[field.blindIndexColumn];
    }
  }
  return entity;
}

function thrown(decide: () => unknown): { type: string; code: unknown; message: string } | null {
  try {
    decide();
    return null;
  } catch (error) {
    return { type: (error as Error).name, code: (error as { code?: unknown }).code, message: (error as Error).message };
  }
}

describe('rowMatchesWhere: the in-memory decision agrees with whereSql in PostgreSQL', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let runner: QueryRunner;
  let text: Alphabet;
  let unicodeCase: boolean;

  beforeAll(async () => {
    // A blind-index key rotation under way: an encrypted eq looks for two indexes.
    installKeyring(
      new Keyring({
        keys: new Map([['k1', TEST_KEYS.k1]]),
        currentKid: 'k1',
        blindIndexKey: TEST_KEYS.blindIndex,
        nextBlindIndexKey: Buffer.alloc(32, 10),
      }),
    );
    database = await createTestDatabase();
    dataSource = createDataSource({ url: database.url, poolSize: 1, entities: [] });
    await dataSource.initialize();
    runner = dataSource.createQueryRunner();
    const [{ datcollate, datctype }] = (await runner.query(
      'SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()',
    )) as { datcollate: string; datctype: string }[];
    // rowMatchesWhere orders text by code point: only these collations agree (a linguistic one puts "a" before "B").
    expect(['C', 'POSIX', 'C.UTF-8', 'C.utf8']).toContain(datcollate);
    // LC_CTYPE "C" folds ASCII only for ILIKE, where rowMatchesWhere folds every letter (a documented difference).
    unicodeCase = datctype !== 'C' && datctype !== 'POSIX';
    const units = fc.constantFrom(...CASELESS, ...(unicodeCase ? CASED : []));
    text = {
      rows: fc.string({ unit: units, maxLength: 4 }),
      // A lone surrogate travels to PostgreSQL as U+FFFD.
      values: fc.string({
        unit: fc.oneof({ arbitrary: units, weight: 12 }, { arbitrary: fc.constant('\ud83d'), weight: 1 }),
        maxLength: 2,
      }),
    };
    process.stdout.write(`row match: collation ${datcollate}, ctype ${datctype}${unicodeCase ? '' : ' (ASCII case folding only)'}\n`);

    await runner.query(
      "INSERT INTO users (id, email, email_index, password_hash) SELECT id, 'unused', id::text, 'not a hash' FROM unnest($1::uuid[]) id",
      [USERS],
    );
    await runner.query("INSERT INTO posts (id, author_id, title) SELECT id, $2, 'Fixture' FROM unnest($1::uuid[]) id", [POSTS, USERS[0]]);
    await runner.query(GAUGES_TABLE_SQL);
  });
  afterAll(async () => {
    await runner?.release();
    await dataSource?.destroy();
    await database?.drop();
  });

  for (const model of MODELS.values()) {
    it(`for ${model.name}: every row, with and without fields the viewer may not read`, async () => {
      const filterable = model.fields.filter((field) => field.filterable).map((field) => field.name);
      const tally = { rows: 0, matched: 0, refused: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.array(rowArbitrary(model, text), { minLength: 1, maxLength: MAX_ROWS }),
          whereArbitrary(model, text, 3),
          fc.subarray(filterable),
          fc.array(fc.boolean(), { minLength: MAX_ROWS, maxLength: MAX_ROWS }),
          async (rows, where, hidden, visibleFlags) => {
            const refusal = thrown(() => whereSql(model, 'm', where, new SqlParameters()));
            if (refusal) {
              // Too many conditions: refused the same way, whatever the row.
              expect(thrown(() => rowMatchesWhere(model, where, {}))).toEqual(refusal);
              tally.refused += 1;
              return;
            }
            const visible = rows.map((_row, index) => rowId(index)).filter((_id, index) => visibleFlags[index]);
            await runner.startTransaction();
            try {
              const columns = Object.keys(rows[0]);
              const placeholders = rows.map(
                (_row, index) =>
                  `($${index * (columns.length + 1) + 1}${columns.map((_column, at) => `, $${index * (columns.length + 1) + at + 2}`).join('')})`,
              );
              await runner.query(
                `INSERT INTO "${model.table}" (id${columns.map((column) => `, "${column}"`).join('')}) VALUES ${placeholders.join(', ')}`,
                rows.flatMap((row, index) => [rowId(index), ...columns.map((column) => row[column])]),
              );
              const entities = ((await runner.query(`SELECT * FROM "${model.table}"`)) as Values[]).map((stored) =>
                entityOf(model, stored),
              );
              for (const withHidden of [false, true]) {
                const parameters = new SqlParameters();
                const readableWhere = (field: string) =>
                  !withHidden || !hidden.includes(field)
                    ? null
                    : visible.length === 0
                      ? 'FALSE'
                      : `"m"."id" IN ${parameters.addList(visible)}`;
                const sql = whereSql(model, 'm', where, parameters, readableWhere) ?? 'TRUE';
                const [query, values] = dataSource.driver.escapeQueryWithParameters(
                  `SELECT "m"."id" FROM "${model.table}" "m" WHERE ${sql}`,
                  parameters.values,
                );
                const selected = ((await runner.query(query, values)) as { id: string }[]).map((row) => row.id).sort();
                const decided = entities
                  .filter((entity) =>
                    rowMatchesWhere(
                      model,
                      where,
                      entity,
                      (field) => !withHidden || !hidden.includes(field) || visible.includes(String(entity.id)),
                    ),
                  )
                  .map((entity) => String(entity.id))
                  .sort();
                expect(decided).toEqual(selected);
                tally.rows += entities.length;
                tally.matched += decided.length;
              }
            } finally {
              await runner.rollbackTransaction();
            }
          },
        ),
        { numRuns: 600, seed: 20240101, examples: model.name === 'Post' ? trapExamples(unicodeCase) : [] },
      );
      process.stdout.write(
        `row match ${model.name}: ${tally.rows} rows decided both ways (${tally.matched} matched), ${tally.refused} wheres refused both ways\n`,
      );
    });
  }

  it('refuses what whereSql refuses, with the same error', () => {
    const post = MODELS.get('Post')!;
    const nested = (depth: number): WhereInput => (depth === 1 ? { title: { eq: 'x' } } : { AND: [nested(depth - 1)] });
    for (const where of [
      nested(6),
      { OR: Array.from({ length: 51 }, () => ({ title: { eq: 'x' } })) },
      { title: { contains: 'a\u0000' } },
      { authorId: { in: [USERS[0], 'x\u0000'] } },
    ] as WhereInput[]) {
      const refusal = thrown(() => whereSql(post, 'm', where, new SqlParameters()));
      expect(refusal).toMatchObject({ type: 'AppError', code: 'BAD_USER_INPUT' });
      expect(thrown(() => rowMatchesWhere(post, where, { title: 'x' }))).toEqual(refusal);
    }
    // At the limits, both accept.
    expect(rowMatchesWhere(post, nested(5), { title: 'x' })).toBe(true);
    expect(rowMatchesWhere(post, { OR: Array.from({ length: 50 }, () => ({ title: { eq: 'y' } })) }, { title: 'x' })).toBe(false);
  });
});
