import fc from 'fast-check';
import { Client } from 'pg';
import { ALL_FIELDS, ModelAccessSpec, RowScope } from '../../src/access/model-access';
import { AccessClause } from '../../src/access/decision';
import { commentModel } from '../../src/models/comment.model';
import { postModel } from '../../src/models/post.model';
import { profileModel } from '../../src/models/profile.model';
import { dataFeature } from '../../src/data/data.feature';
import { TestDatabase, createTestDatabase } from '../support/test-database';

/**
 * A model's scope is one structure rendered two ways: to SQL (the queries) and in memory (each
 * row's field mask, the write checks, and later the realtime decisions). They must agree on every
 * row, or a row the SQL returns could show fields it should not (or the reverse). Checked on the
 * sample models' specs and random policies, viewers and rows, with PostgreSQL evaluating the SQL.
 */
const SPECS: readonly ModelAccessSpec[] = dataFeature([profileModel, postModel, commentModel]).models!.filter((spec) =>
  ['Post', 'Profile', 'Comment'].includes(spec.name),
);

/** A few owners, so rows are sometimes the viewer's and sometimes not. */
const USERS = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003'];

/** Columns of a throwaway table: one per field a policy can compare, by type. */
function columnsOf(spec: ModelAccessSpec): { field: string; type: 'uuid' | 'boolean' | 'text' }[] {
  const compared = new Set<string>([
    ...(spec.ownerField ? [spec.ownerField] : []),
    ...Object.values(spec.filters).flatMap((filter) => Object.keys(filter)),
  ]);
  return [...compared].map((field) => ({
    field,
    type:
      field === spec.ownerField
        ? 'uuid'
        : typeof Object.values(spec.filters).find((filter) => field in filter)?.[field] === 'boolean'
          ? 'boolean'
          : 'text',
  }));
}

function clauseArbitrary(spec: ModelAccessSpec): fc.Arbitrary<AccessClause> {
  const filters = [null, ...Object.keys(spec.filters), 'no-such-filter', 'constructor'];
  return fc.record({
    own: fc.boolean(),
    filter: fc.constantFrom(...filters),
    fields: fc.option(
      fc.subarray([...spec.readableFields], { minLength: 1 }).map((fields) => new Set(fields)),
      { nil: null },
    ),
  });
}

function rowArbitrary(spec: ModelAccessSpec): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    Object.fromEntries(
      columnsOf(spec).map(({ field, type }) => [
        field,
        type === 'uuid'
          ? fc.option(fc.constantFrom(...USERS), { nil: null })
          : type === 'boolean'
            ? fc.option(fc.boolean(), { nil: null })
            : fc.option(fc.string({ maxLength: 3 }), { nil: null }),
      ]),
    ),
  );
}

describe('RowScope: the SQL and the in-memory decision agree', () => {
  let database: TestDatabase;
  let client: Client;
  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
    client = new Client({ connectionString: database.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  for (const spec of SPECS) {
    it(`for ${spec.name}: toSql selects exactly the rows matches() admits, and showing(field) the rows whose mask has it`, async () => {
      const columns = columnsOf(spec);
      const table = `scope_${spec.name.toLowerCase()}`;
      await client.query(`CREATE TABLE ${table} (n int PRIMARY KEY${columns.map(({ field, type }) => `, "${field}" ${type}`).join('')})`);
      let checked = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(clauseArbitrary(spec), { maxLength: 4 }),
          fc.option(fc.constantFrom(...USERS), { nil: null }),
          fc.array(rowArbitrary(spec), { minLength: 1, maxLength: 12 }),
          fc.constantFrom(...spec.readableFields),
          async (clauses, viewer, rows, field) => {
            const scope = RowScope.of(spec, clauses, viewer);
            await client.query(`TRUNCATE ${table}`);
            for (const [index, row] of rows.entries()) {
              await client.query(
                `INSERT INTO ${table} (n${columns.map(({ field: name }) => `, "${name}"`).join('')}) ` +
                  `VALUES ($1${columns.map((_column, at) => `, $${at + 2}`).join('')})`,
                [index, ...columns.map(({ field: name }) => row[name])],
              );
            }
            const selected = async (rendered: RowScope | null): Promise<number[]> => {
              if (rendered === null) return rows.map((_row, index) => index).filter((index) => scope.matches(rows[index]));
              const values: unknown[] = [];
              const sql = rendered.toSql(
                't',
                (value) => {
                  values.push(value);
                  return `$${values.length}`;
                },
                (name) => name,
              );
              if (sql === null) return [];
              return (await client.query(`SELECT n FROM ${table} "t" WHERE ${sql} ORDER BY n`, values)).rows.map(
                (row: { n: number }) => row.n,
              );
            };
            const inMemory = rows.map((_row, index) => index).filter((index) => scope.matches(rows[index]));
            expect(await selected(scope)).toEqual(inMemory);
            // The rows in scope whose `field` is readable: SQL (showing) and the in-memory mask agree.
            const masked = inMemory.filter((index) => {
              const mask = scope.fieldsOf(scope.matching(rows[index]));
              return mask === ALL_FIELDS || mask.has(field);
            });
            expect(await selected(scope.showing(field))).toEqual(masked);
            checked += rows.length;
          },
        ),
        { numRuns: 150, seed: 4242 },
      );
      process.stdout.write(`row scope ${spec.name}: ${checked} rows decided both ways\n`);
    });
  }
});
