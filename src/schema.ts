import 'reflect-metadata';
import { GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { ContainerType, NonEmptyArray, buildSchema, getMetadataStorage } from 'type-graphql';
import type { Feature } from './feature';
import { unruledFields } from './shield/coverage';
import { RuleTree, mergeRuleTrees } from './shield/shield';

/** Resolves resolver classes to the instances the composition root built. */
class InstanceContainer implements ContainerType {
  constructor(private readonly instances: ReadonlyMap<Function, object>) {}

  get(resolverClass: Function): object {
    const instance = this.instances.get(resolverClass);
    if (!instance) throw new Error(`No instance wired for resolver ${resolverClass.name}`);
    return instance;
  }
}

/**
 * A plain `@Field` (a property, no middleware, no auth roles, its own name) is read with graphql's
 * default resolver, as type-graphql's `simple` option does: type-graphql's basic resolver would
 * only return the same property, at the cost of a call and an object per field per row. Bastion
 * uses no type-graphql middleware or auth checker, so this holds for every such field.
 */
function readPlainFieldsDirectly(): void {
  for (const field of getMetadataStorage().fields) {
    if (
      field.simple === undefined &&
      !field.middlewares?.length &&
      !field.roles?.length &&
      !field.params?.length &&
      field.name === field.schemaName
    )
      field.simple = true;
  }
}

/** Builds the (unprotected) type-graphql schema; `instances` may be empty when only the SDL is wanted. */
export async function buildGraphQLSchema(features: readonly Feature[], instances: readonly object[] = []): Promise<GraphQLSchema> {
  const resolvers = features.flatMap((feature) => feature.resolvers ?? []) as unknown as NonEmptyArray<Function>;
  readPlainFieldsDirectly();
  const schema = await buildSchema({
    resolvers,
    container: new InstanceContainer(new Map(instances.map((instance) => [instance.constructor, instance]))),
    validate: { forbidUnknownValues: true },
    // type-graphql insists on a PubSub once a schema has subscriptions, though each of Bastion's brings its own
    // subscribe (the realtime feature's per-subscriber delivery): one that nothing may use.
    pubSub: {
      publish: () => {
        throw new Error('Bastion publishes changes through the realtime feature, not type-graphql');
      },
      subscribe: () => {
        throw new Error('Bastion subscriptions bring their own subscribe');
      },
    },
  });
  describeRootTypes(schema);
  return schema;
}

/** The rules of these features, merged (two rules for one field is an error). */
export function rulesOf(features: readonly Feature[]): RuleTree {
  return mergeRuleTrees(features.map((feature) => feature.rules ?? {}));
}

/** The coverage walk over these features' schema and rules (the self-audit's access_control.schema_coverage). */
export async function unruledFieldsOf(features: readonly Feature[]): Promise<string[]> {
  return unruledFields(await buildGraphQLSchema(features), rulesOf(features));
}

/** type-graphql has no decorator for the root types' descriptions; the SDL should still explain them. */
function describeRootTypes(schema: GraphQLSchema): void {
  const descriptions = {
    Query: 'Reads. Every field is checked by the permission layer; fields a viewer may not use fail with UNAUTHENTICATED or FORBIDDEN.',
    Mutation: 'Changes. Each runs in one transaction: it happens completely or not at all.',
    Subscription:
      'Live changes, over WebSocket (graphql-transport-ws) at /graphql only. Each change is decided for you with your rights at that moment.',
  };
  const query = schema.getQueryType();
  const mutation = schema.getMutationType();
  const subscription = schema.getSubscriptionType();
  if (query) query.description ??= descriptions.Query;
  if (mutation) mutation.description ??= descriptions.Mutation;
  if (subscription) subscription.description ??= descriptions.Subscription;
}

const SDL_HEADER = `# Bastion GraphQL API. Generated from the code by \`npx bastion schema emit\`; do not edit.
# Mobile clients build their types from this file. CI fails when it is stale.

`;

/** The committed SDL text: sorted, so a reordering in code does not churn the file. */
export function printSDL(schema: GraphQLSchema): string {
  return `${SDL_HEADER}${printSchema(lexicographicSortSchema(schema))}\n`;
}
