import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  DefinitionNode,
  DocumentNode,
  ExecutionResult,
  GraphQLError,
  GraphQLScalarType,
  GraphQLSchema,
  Kind,
  OperationDefinitionNode,
  OperationTypeNode,
  execute,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values';
import { CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';

/** graphql-js's own bound on variable errors (execute's default); the same answer either way. */
const MAX_VARIABLE_ERRORS = 50;

/** Which executor ran an operation: `compiled` (graphql-jit) or `graphql-js`. */
export type ExecutorKind = 'compiled' | 'graphql-js';

export interface ExecutionRequest {
  readonly document: DocumentNode;
  /** The operation Apollo resolved from the document; undefined when none matches the name. */
  readonly operation: OperationDefinitionNode | undefined;
  readonly operationName: string | null;
  readonly variables: Record<string, unknown> | undefined;
  readonly contextValue: unknown;
  /** Apollo's hash of the query text: with the operation name, the cache key. */
  readonly queryHash: string;
}

/** A bounded least-recently-used map (insertion order of a Map is its recency). */
class Lru<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as K);
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Runs queries through graphql-jit: each document and operation is compiled once into a function
 * that reads the response shape directly (no per-field dispatch, no promise for a synchronous
 * value), kept in a bounded LRU. Validation, the limits, error masking and the response format stay
 * Apollo's: this only replaces `execute`. graphql-js runs what the compiler does not take (its
 * compile errors, no operation by that name) and every mutation: a mutation's time is its
 * transaction, and running writes on one proven executor keeps the surface small.
 *
 * Variables are coerced by graphql-js, never by the compiled code: a bad variable is answered
 * exactly as graphql-js answers it, and a good one reaches the resolvers exactly as graphql-js
 * would hand it over. The compiled operation declares every variable as a pass-through scalar and
 * receives graphql-js's coerced values. (graphql-jit 0.8 also generates its variable parsers
 * without end for a recursive input type such as a model's `where`: zalando-incubator/graphql-jit#81.)
 */
export class CompiledExecutor {
  private readonly compiled: Lru<string, CompiledQuery | 'graphql-js'>;
  /** The same schema (the same types, fields and resolvers) plus the pass-through scalar, for compiling only. */
  private readonly compilationSchema: GraphQLSchema;

  constructor(
    private readonly schema: GraphQLSchema,
    options: { readonly cacheSize?: number } = {},
  ) {
    this.compiled = new Lru(options.cacheSize ?? 1_000);
    const config = schema.toConfig();
    this.compilationSchema = new GraphQLSchema({ ...config, types: [...config.types, COERCED_VARIABLE] });
  }

  /** How many compiled operations the cache holds (for tests and the bench). */
  get cached(): number {
    return this.compiled.size;
  }

  /** Which executor `request` runs on. */
  kindOf(request: ExecutionRequest): ExecutorKind {
    return this.compiledFor(request) === 'graphql-js' ? 'graphql-js' : 'compiled';
  }

  execute(request: ExecutionRequest): Promise<ExecutionResult> | ExecutionResult {
    const compiled = this.compiledFor(request);
    if (compiled === 'graphql-js') return runGraphqlJs(this.schema, request);
    const definitions = request.operation!.variableDefinitions ?? [];
    let variables: Record<string, unknown> = {};
    if (definitions.length > 0) {
      const coerced = getVariableValues(this.schema, definitions, request.variables ?? {}, { maxErrors: MAX_VARIABLE_ERRORS });
      if (coerced.errors) return { errors: coerced.errors };
      variables = coerced.coerced;
    }
    const result = compiled.query(undefined, request.contextValue, variables);
    return result instanceof Promise ? result.then(withGraphqlJsErrors) : withGraphqlJsErrors(result);
  }

  private compiledFor(request: ExecutionRequest): CompiledQuery | 'graphql-js' {
    const { operation } = request;
    if (!operation || operation.operation !== OperationTypeNode.QUERY) return 'graphql-js';
    const key = `${request.queryHash}:${request.operationName ?? ''}`;
    let compiled = this.compiled.get(key);
    if (compiled === undefined) {
      const result = compileQuery(this.compilationSchema, withCoercedVariables(request.document), request.operationName ?? undefined, {
        disablingCapturingStackErrors: true,
      });
      compiled = isCompiledQuery(result) ? result : 'graphql-js';
      this.compiled.set(key, compiled);
    }
    return compiled;
  }
}

/**
 * graphql-jit's errors as graphql-js makes them: Apollo reads `error.extensions.code` of every
 * error, and graphql-jit leaves `extensions` undefined when the original error has none (a driver
 * error), which Apollo's formatting would trip over. Message, path, locations and the original
 * error are the same.
 */
function withGraphqlJsErrors(result: ExecutionResult): ExecutionResult {
  if (!result.errors?.length) return result;
  const errors = result.errors.map((error) => {
    const converted = new GraphQLError(error.message, {
      path: error.path,
      originalError: error.originalError ?? undefined,
      extensions: error.extensions,
    });
    (converted as { locations?: unknown }).locations = error.locations;
    return converted;
  });
  return { ...result, errors };
}

/** A variable graphql-js has already coerced: the compiled parser hands it on as it is. */
const COERCED_VARIABLE = new GraphQLScalarType({
  name: 'BastionCoercedVariable',
  description: 'Never in the API: the type the compiled executor gives every variable, coerced beforehand by graphql-js.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: () => undefined,
});

/** The document with each operation's variables declared as COERCED_VARIABLE (no default: graphql-js applied it). Selections are the same nodes. */
function withCoercedVariables(document: DocumentNode): DocumentNode {
  const definitions = document.definitions.map((definition): DefinitionNode => {
    if (definition.kind !== Kind.OPERATION_DEFINITION || !definition.variableDefinitions?.length) return definition;
    return {
      ...definition,
      variableDefinitions: definition.variableDefinitions.map((variable) => ({
        ...variable,
        type: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: COERCED_VARIABLE.name } },
        defaultValue: undefined,
      })),
    };
  });
  return { ...document, definitions };
}

export function runGraphqlJs(schema: GraphQLSchema, request: ExecutionRequest): Promise<ExecutionResult> | ExecutionResult {
  return execute({
    schema,
    document: request.document,
    operationName: request.operationName,
    variableValues: request.variables,
    contextValue: request.contextValue,
  });
}

/**
 * The executor as Apollo Server 5 takes one: through its gateway interface, the supported hook for
 * replacing execution (the schema is served as given; Apollo still parses, validates, runs every
 * plugin hook and formats the response).
 */
export function executorGateway(
  schema: GraphQLSchema,
  run: (request: ExecutionRequest) => Promise<ExecutionResult> | ExecutionResult,
): GatewayInterface {
  const executor: GatewayExecutor = async (requestContext) =>
    run({
      document: requestContext.document,
      operation: requestContext.operation,
      // The name the client sent, as graphql-js needs it: Apollo's own operationName is the resolved
      // operation's, null when the sent name matches none (graphql-js must then refuse, not run another).
      operationName: requestContext.request.operationName ?? null,
      variables: requestContext.request.variables,
      contextValue: requestContext.context,
      queryHash: requestContext.queryHash,
    });
  return {
    onSchemaLoadOrUpdate(callback) {
      // A supergraph's SDL means nothing here; Apollo reads the schema only.
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => undefined;
    },
    load: async () => ({ executor }),
    stop: async () => undefined,
  };
}

/** One operation answered by both executors (tests run both: `comparingExecutors`). */
export interface ExecutorComparison {
  readonly operationName: string | null;
  readonly query: string;
  /** The two answers are the same. */
  readonly same: boolean;
  readonly compiled: unknown;
  readonly graphqlJs: unknown;
}

/** An answer as a client sees it, minus the order of errors (each executor reports them in the order it meets them). */
function comparable(result: ExecutionResult): unknown {
  const errors = result.errors?.map((error) => ({
    message: error.message,
    path: error.path,
    locations: error.locations,
    extensions: error.extensions,
  }));
  return JSON.parse(
    JSON.stringify({
      data: result.data,
      errors: errors?.sort((a, b) => JSON.stringify(a.path).localeCompare(JSON.stringify(b.path)) || a.message.localeCompare(b.message)),
    }),
  );
}

/** For tests: where comparisons go, and whether to make them now (a test counting statements pauses them). */
export interface ExecutorComparisonHook {
  active(): boolean;
  report(comparison: ExecutorComparison): void;
}

/**
 * For tests: every query that runs compiled runs on graphql-js too, after it, and the two answers
 * (data, and errors with their messages, paths, locations and codes) are compared and reported.
 * The client gets the compiled answer.
 */
export function comparingExecutors(
  schema: GraphQLSchema,
  compiled: CompiledExecutor,
  hook: ExecutorComparisonHook,
): (request: ExecutionRequest) => Promise<ExecutionResult> {
  return async (request) => {
    const answer = await compiled.execute(request);
    if (hook.active() && compiled.kindOf(request) === 'compiled') {
      const reference = await runGraphqlJs(schema, request);
      const [ours, theirs] = [comparable(answer), comparable(reference)];
      hook.report({
        operationName: request.operationName,
        query: request.document.loc?.source.body ?? '',
        same: JSON.stringify(ours) === JSON.stringify(theirs),
        compiled: ours,
        graphqlJs: theirs,
      });
    }
    return answer;
  };
}
