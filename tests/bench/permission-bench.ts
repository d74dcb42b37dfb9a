import { rulesOf } from '../../src/schema';
import http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import type { GraphQLSchema } from 'graphql';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Policy } from '../../src/access/policy';
import { AccessView } from '../../src/access/access-view';
import { protectSchema } from '../../src/shield/shield';
import type { Context } from '../../src/context';
import { dataFeature } from '../../src/data/data.feature';
import { defineModel } from '../../src/data/define-model';
import { formatClientError } from '../../src/errors';
import { FEATURES } from '../../src/features';
import { Feature } from '../../src/feature';
import { CompiledExecutor, executorGateway } from '../../src/graphql/executor';
import { requestIds } from '../../src/http/request-id';
import { buildGraphQLSchema } from '../../src/schema';
import { contextStepsOf, graphqlContext } from '../../src/server';
import type { Services } from '../../src/feature';
import type { RunningBastion } from '../../src/main';
import { closeAtOnce, listenOnLoopback } from './loopback';
import { Measurement, alternating, probe } from './measure';
import type { CostRow } from './report';
import { BenchRequest, graphqlRequest, withBearer } from './scenarios';

/**
 * What the permission layer costs on a list: the same data-API list against two servers built
 * from the same schema code and the same store, one with the permission layer (graphql-shield
 * over the schema, the viewer's OWN scope in SQL, each row's fields decided by their rules) and
 * one without it (no shield, and a decision that lets the viewer read every row and field, so no
 * row is placed or decided), measured in the same run.
 */

/**
 * Bench only: ten times the public page cap (100), so the cost's growth with the page shows. The
 * bench's own model is the only one generated with this cap; no public list goes past 100.
 */
const BENCH_MAX_ROWS = 1000;

/** Bench only: a row with a handful of scalar columns, like a typical app model. */
@ObjectType({ description: 'Bench only: an item.' })
@Entity('bench_items')
export class BenchItem {
  @Field(() => ID, { description: 'Id.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field(() => ID, { nullable: true, description: 'Owner.' })
  @Column({ type: 'uuid' })
  ownerId!: string;

  @Field({ nullable: true, description: 'Name.' })
  @Column({ type: 'text' })
  name!: string;

  @Field(() => Int, { nullable: true, description: 'Price.' })
  @Column({ type: 'integer' })
  price!: number;

  @Field({ nullable: true, description: 'Stock keeping unit.' })
  @Column({ type: 'text' })
  sku!: string;

  @Field(() => Int, { nullable: true, description: 'Stock.' })
  @Column({ type: 'integer' })
  stock!: number;

  @Field({ nullable: true, description: 'On sale.' })
  @Column({ type: 'boolean' })
  active!: boolean;

  @Field({ nullable: true, description: 'Created.' })
  @Column({ type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}

// The indexes a real "my items, oldest first" list would have (and one for the list without an
// owner condition), so the query plan is not what is measured.
const BENCH_ITEMS_SQL = [
  `CREATE TABLE IF NOT EXISTS bench_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name text NOT NULL,
    price integer NOT NULL,
    sku text NOT NULL,
    stock integer NOT NULL,
    active boolean NOT NULL,
    created_at timestamptz(3) NOT NULL)`,
  'CREATE INDEX IF NOT EXISTS bench_items_owner_created ON bench_items (owner_id, created_at, id)',
  'CREATE INDEX IF NOT EXISTS bench_items_created ON bench_items (created_at, id)',
];

const ITEM_FIELDS = ['id', 'ownerId', 'name', 'price', 'sku', 'stock', 'active', 'createdAt'] as const;

/** A signed-in user reads their own rows: OWN is decided per row, so every row is placed and decided, as for any model. */
const benchItemModel = defineModel(BenchItem, {
  owner: 'ownerId',
  writable: ['name'],
  defaults: [{ role: 'user', action: 'read', scope: 'own' }],
});

/** Given to startBastion, so the model's grant is seeded and TypeORM knows the entity; the data API serves it. */
export const benchItemsFeature: Feature = {
  ...dataFeature([benchItemModel], { maxPageSize: BENCH_MAX_ROWS }),
  name: 'bench-items',
  entities: [BenchItem],
};

/** Creates bench_items (migrations know nothing of it) and fills it with BENCH_MAX_ROWS rows of `ownerId`. */
export async function seedBenchItems(dataSource: DataSource, ownerId: string): Promise<void> {
  for (const statement of BENCH_ITEMS_SQL) await dataSource.query(statement);
  // Emptied first: with DATABASE_URL set, the table outlives runs, and a grown one would not compare.
  await dataSource.query('TRUNCATE bench_items');
  await dataSource.query(
    `INSERT INTO bench_items (owner_id, name, price, sku, stock, active, created_at)
     SELECT $1, 'item ' || n, n * 100, 'SKU-' || lpad(n::text, 6, '0'), n % 50, n % 3 <> 0, date_trunc('milliseconds', now()) - make_interval(secs => $2 - n)
     FROM generate_series(1, $2) AS n`,
    [ownerId, BENCH_MAX_ROWS],
  );
  await dataSource.query('ANALYZE bench_items');
}

/** The two servers of the comparison, by origin. */
export interface ShieldTwins {
  readonly withShield: string;
  readonly withoutShield: string;
  close(): Promise<void>;
}

/**
 * A GraphQL server as createServer builds one, minus what does not differ between the twins
 * (CORS, HSTS, health routes, plugins): express.json, a context factory, the same Apollo options
 * and executor. requestIds is kept because the context's logger comes from it (a denial logs).
 */
async function startGraphQLServer(
  schema: GraphQLSchema,
  services: Services,
  context: (integration: { req: express.Request }) => Promise<Context>,
): Promise<{ origin: string; close(): Promise<void> }> {
  const compiled = new CompiledExecutor(schema);
  const apollo = new ApolloServer<Context>({
    gateway: executorGateway(schema, (request) => compiled.execute(request)),
    stringifyResult: (value) => JSON.stringify(value),
    logger: services.logger,
    formatError: formatClientError,
    includeStacktraceInErrorResponses: false,
    hideSchemaDetailsFromClientErrors: true,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    // The bench owns SIGINT: Apollo's own handler would stop the server under a running measurement.
    stopOnTerminationSignals: false,
  });
  await apollo.start();
  const app = express();
  app.use('/graphql', requestIds(services.logger), express.json(), expressMiddleware(apollo, { context }));
  const server = http.createServer(app);
  let origin: string;
  try {
    origin = await listenOnLoopback(server);
  } catch (error) {
    await apollo.stop();
    throw error;
  }
  return {
    origin,
    close: async () => {
      await closeAtOnce(server);
      await apollo.stop();
    },
  };
}

/**
 * Both twins from the same features and resolver instances. With: the protected schema and the
 * real context. Without: the bare schema, and the viewer's decision on BenchItem is READ ALL with
 * every field (the SQL has no scope condition, and every row shares one all-fields decision).
 */
export async function startShieldTwins(bastion: RunningBastion): Promise<ShieldTwins> {
  const { services } = bastion;
  const features = [...FEATURES, benchItemsFeature];
  const instances = features.flatMap((feature) => feature.wire?.(bastion.servicesFor(feature)) ?? []);
  const realContext = graphqlContext(services.clock, contextStepsOf(features, bastion.servicesFor));
  const unrestricted = async (integration: { req: express.Request }): Promise<Context> => {
    const context = await realContext(integration);
    const policy = new Policy(context.access.policy.roles, [
      { id: 'bench', role: 'user', model: 'BenchItem', action: 'read', scope: 'all', fields: null, filter: null },
    ]);
    return Object.assign(Object.create(Object.getPrototypeOf(context) as object) as Context, context, {
      access: new AccessView(policy, context.viewer),
    });
  };
  const without = await startGraphQLServer(await buildGraphQLSchema(features, instances), services, unrestricted);
  try {
    const protectedSchema = protectSchema(await buildGraphQLSchema(features, instances), rulesOf(features));
    const withShield = await startGraphQLServer(protectedSchema, services, realContext);
    return {
      withShield: withShield.origin,
      withoutShield: without.origin,
      close: async () => {
        await withShield.close();
        await without.close();
      },
    };
  } catch (error) {
    await without.close();
    throw error;
  }
}

/** The lists measured, with the goal for each: the cost grows with the rows decided. */
const SHIELD_LISTS = [
  { rows: 100, goal: 1.1 },
  { rows: BENCH_MAX_ROWS, goal: 1.2 },
] as const;

function benchItemsRequest(rows: number): BenchRequest {
  return graphqlRequest(`{ benchItems(first: ${rows}) { edges { node { ${ITEM_FIELDS.join(' ')} } } } }`);
}

/** A page as long as asked, every field present: a shield that nulled fields, or missing grants, would flatter the cost. */
function fullPageOf(rows: number): (body: unknown) => string | undefined {
  return (body) => {
    const items = ((body as { data?: { benchItems?: { edges?: { node: Record<string, unknown> }[] } } }).data?.benchItems?.edges ?? []).map(
      (edge) => edge.node,
    );
    if (items.length !== rows) return `expected ${rows} items, got ${items.length}`;
    const gap = ITEM_FIELDS.find((field) => items.some((item) => item[field] === null || item[field] === undefined));
    return gap ? `field ${gap} is missing from some items` : undefined;
  };
}

/** The harness's measurement (warm-up included), the same as for every other row. */
type Measure = (origin: string, request: BenchRequest) => Promise<Measurement | undefined>;

/** Every list on both twins answers in full; throws otherwise, before any load. */
export async function probeShieldTwins(twins: ShieldTwins, accessToken: string): Promise<void> {
  for (const { rows } of SHIELD_LISTS) {
    for (const [shield, origin] of [
      ['with', twins.withShield],
      ['without', twins.withoutShield],
    ] as const) {
      const problem = await probe(origin, withBearer(benchItemsRequest(rows), accessToken), fullPageOf(rows));
      if (problem) throw new Error(`benchItems(first: ${rows}) ${shield} the permission layer: ${problem}`);
    }
  }
}

/** Measured in turn this many times each, so a drift of the machine is not read as a cost. */
export const COST_ROUNDS = 2;

/** Each list without and with the permission layer, in turn; stops at the first measurement cut short (Ctrl-C). */
export async function runShieldBench(twins: ShieldTwins, accessToken: string, measure: Measure): Promise<CostRow[]> {
  const rows: CostRow[] = [];
  for (const list of SHIELD_LISTS) {
    const request = withBearer(benchItemsRequest(list.rows), accessToken);
    process.stderr.write(`running benchItems(first: ${list.rows}) without and with the permission layer…\n`);
    const runs = await alternating(
      COST_ROUNDS,
      () => measure(twins.withoutShield, request),
      () => measure(twins.withShield, request),
    );
    if (!runs) break;
    rows.push({ label: `${list.rows} rows`, base: runs.a, measured: runs.b, goal: list.goal });
  }
  return rows;
}
