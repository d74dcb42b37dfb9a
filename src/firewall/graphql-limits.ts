import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { NextFunction, Request, Response } from 'express';
import {
  DocumentNode,
  GraphQLError,
  GraphQLSchema,
  Kind,
  Lexer,
  OperationDefinitionNode,
  Source,
  TokenKind,
  ValidationRule,
  buildSchema,
  isListType,
  isNonNullType,
  parse,
  validate,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values';
import { ComplexityEstimatorArgs, getComplexity } from 'graphql-query-complexity';
import type { Config } from '../config';
import type { OperationCheck } from '../feature';
import { AppError } from '../errors';
import { sendError } from '../http/http-errors';

/** A list field without `first` is counted as this many items. */
const UNBOUNDED_LIST_ITEMS = 10;
/** Costs remembered per document (one per operation and set of variables). */
const MAX_COSTS_PER_DOCUMENT = 64;

/** Refusals look like every other validation failure: HTTP 400, and no limit is named (docs/security.md#gql-5). */
function tooMuch(what: string): AppError {
  return new AppError('GRAPHQL_VALIDATION_FAILED', `The query is too ${what}: ask for less.`, { stopsRequest: true });
}

/** How often one selection set may select the same field (by response key) before the document is refused. */
export const MAX_FIELD_REPEATS = 3;

/**
 * Hardened graphql-armor (docs/security.md#gql-3, #gql-4): depth with fragments flattened, aliases with an
 * empty allowlist, directives ≤ 5, limits not exposed. Its cost and token plugins are replaced:
 * armor's cost does not multiply lists by `first`, and its token plugin's rejection is a 500.
 * Introspection is exempt from depth (and from cost, below): only admins may run it at all (the
 * gate refuses everyone else before execution), and Sandbox's introspection query is 13 deep.
 */
function armorValidationRules(config: Config): ValidationRule[] {
  const armor = new ApolloArmor({
    maxDepth: {
      n: config.graphqlMaxDepth,
      flattenFragments: true,
      ignoreIntrospection: true,
      exposeLimits: false,
      errorMessage: 'The query is too deep.',
    },
    maxAliases: { n: config.graphqlMaxAliases, allowList: [], exposeLimits: false, errorMessage: 'The query has too many aliases.' },
    maxDirectives: { n: config.graphqlMaxDirectives, exposeLimits: false, errorMessage: 'The query has too many directives.' },
    costLimit: { enabled: false },
    maxTokens: { enabled: false },
    // Apollo's hideSchemaDetailsFromClientErrors already hides suggestions, without armor's stray "?".
    blockFieldSuggestion: { enabled: false },
  });
  return armor.protect().validationRules;
}

/**
 * Field duplication (`{ __typename __typename … }` 500 times): legal GraphQL, merged into one
 * result, so it costs nothing to execute, but each copy is validated against every other, and
 * scanners (graphql-cop) count a served flood as a finding. A field written twice in one selection
 * set happens by accident; more than MAX_FIELD_REPEATS times is not an app's query. Only direct
 * selections count: the same field in several fragments or type conditions is how clients ask.
 */
export const fieldRepeatsRule: ValidationRule = (context) => {
  let reported = false;
  return {
    SelectionSet(node) {
      if (reported) return;
      const times = new Map<string, number>();
      for (const selection of node.selections) {
        if (selection.kind !== Kind.FIELD) continue;
        const key = (selection.alias ?? selection.name).value;
        const count = (times.get(key) ?? 0) + 1;
        times.set(key, count);
        if (count > MAX_FIELD_REPEATS) {
          reported = true;
          context.reportError(new GraphQLError('The query repeats a field too often.'));
          return;
        }
      }
    },
  };
};

/** The limits on a document's shape: depth, aliases, directives, repeated fields. */
export function documentLimitRules(config: Config): ValidationRule[] {
  return [...armorValidationRules(config), fieldRepeatsRule];
}

/**
 * What the document limits are checked against before Apollo: they read only the document (its
 * operations and fragments), never a type, and graphql-js validates against some schema. The real
 * one is not built yet when the HTTP stages are.
 */
const DOCUMENT_ONLY = buildSchema('type Query { _: Boolean }');

/**
 * Documents found within the limits are remembered by their text, up to this many of this length
 * (≤ 4 MB): an app sends the same few documents, and graphql-js's validate walk costs 20–50 µs
 * for a small one and ~0.6 ms at the token limit, where the parse alone is 3 µs.
 */
const MAX_KNOWN_DOCUMENTS = 500;
const MAX_KNOWN_LENGTH = 8_192;

/**
 * The document limits, once the body is parsed and before Apollo (docs/security.md#gql-4): a
 * document over one of them is refused with that one error. Left to Apollo, every other
 * validation rule ran first and reported per copy (ten `@aa` were ten "Unknown directive"
 * errors, fifty `@include` forty-nine), so the limit never even ran. It cannot move into Apollo:
 * with maxRecursiveSelections on, Apollo runs our rules only after its own pass came back clean,
 * and a throw from its parsing or validation hooks becomes a 500. Apollo still validates with the
 * same rules, for documents that reach it another way (automatic persisted queries come out of its
 * own cache); a document that passes here passes there. Syntax errors are left to Apollo's parser.
 */
export function documentLimitGate(rules: readonly ValidationRule[], maxTokens: number) {
  const withinLimits = new Set<string>();
  return (req: Request, res: Response, next: NextFunction): void => {
    const { query } = requestParts(req);
    if (typeof query !== 'string' || withinLimits.has(query)) {
      next();
      return;
    }
    const refusal = firstBrokenLimit(query, rules, maxTokens);
    if (refusal) {
      sendError(res, 'GRAPHQL_VALIDATION_FAILED', refusal.message);
      return;
    }
    if (query.length <= MAX_KNOWN_LENGTH) {
      // A client sending ever new documents cannot grow this without bound.
      if (withinLimits.size >= MAX_KNOWN_DOCUMENTS) withinLimits.clear();
      withinLimits.add(query);
    }
    next();
  };
}

function firstBrokenLimit(query: string, rules: readonly ValidationRule[], maxTokens: number): GraphQLError | undefined {
  let document: DocumentNode;
  try {
    // The token gate ran first; maxTokens only keeps this parse bounded should it be left out.
    document = parse(query, { noLocation: true, maxTokens });
  } catch {
    return undefined;
  }
  // maxErrors 1: the walk stops at the second error, the first is the answer.
  return validate(DOCUMENT_ONLY, document, rules, { maxErrors: 1 })[0];
}

/**
 * Refuses an operation type the schema has no root for (subscriptions, where no model has them).
 * graphql-js 16 validates such an operation all the same and fails only in execute, with an
 * uncoded error that became a masked INTERNAL_SERVER_ERROR; graphql 17 has this rule built in.
 */
export const knownOperationTypeRule: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (!context.getSchema().getRootType(node.operation))
      context.reportError(new GraphQLError(`This API has no ${node.operation} operations.`, { nodes: node }));
  },
});

/**
 * A GET request's parameter as Apollo will read it: from the raw URL, every key. Express's parsed
 * `req.query` keeps only the first 1000 keys, so padding the URL with empty pairs would hide the
 * query and variables from the gates below while Apollo still runs them.
 */
function urlParameter(req: Request, name: string): string | undefined {
  const search = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '';
  return new URLSearchParams(search).get(name) ?? undefined;
}

/** The document and variables Apollo will execute, from a POST body or a GET URL. */
export function requestParts(req: Request): { query: unknown; variables: unknown } {
  if (req.method === 'GET') return { query: urlParameter(req, 'query'), variables: urlParameter(req, 'variables') };
  const body = req.body as { query?: unknown; variables?: unknown } | undefined;
  return { query: body?.query, variables: body?.variables };
}

/**
 * The token limit, counted by graphql's own lexer before Apollo parses anything: a refusal is a
 * 400 like every other validation failure (armor's Apollo plugin throws from parsingDidStart,
 * which Apollo turns into a 500). A document that does not lex is left for Apollo to report.
 */
export function tokenLimitGate(maxTokens: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const { query } = requestParts(req);
    // Every token is at least one character: a shorter document cannot exceed the limit.
    if (typeof query === 'string' && query.length > maxTokens && exceedsTokens(query, maxTokens)) {
      sendError(res, 'GRAPHQL_VALIDATION_FAILED', 'The query is too long: ask for less.');
      return;
    }
    next();
  };
}

/**
 * The deepest JSON nesting variables may have. graphql-js coerces input values recursively, so a
 * `where` nested thousands of AND levels deep (30,000 fit in the body limit) overflowed the stack
 * before any resolver could refuse it. The deepest legitimate input, a where at its 5 AND/OR
 * levels (filters.ts) around a list filter, is about 15.
 */
const MAX_VARIABLE_DEPTH = 32;

/** Refuses variables nested deeper than MAX_VARIABLE_DEPTH, from a POST body or a GET query string, before graphql-js walks them. */
export function variableDepthGate() {
  return (req: Request, res: Response, next: NextFunction): void => {
    let { variables } = requestParts(req);
    if (typeof variables === 'string') {
      try {
        variables = JSON.parse(variables);
      } catch {
        // Not JSON: Apollo reports it.
      }
    }
    if (variablesTooDeep(variables)) {
      sendError(res, 'BAD_USER_INPUT', 'The variables are nested too deeply.');
      return;
    }
    next();
  };
}

/** Variables nested deeper than MAX_VARIABLE_DEPTH: refused with BAD_USER_INPUT before graphql-js walks them (HTTP and WebSocket). */
export function variablesTooDeep(variables: unknown): boolean {
  return nestsDeeperThan(variables, MAX_VARIABLE_DEPTH);
}

/** Walks with its own stack: a recursive walk would overflow on exactly the input it is looking for. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(current)) pending.push([child, depth + 1]);
  }
  return false;
}

function exceedsTokens(query: string, maxTokens: number): boolean {
  const lexer = new Lexer(new Source(query));
  try {
    for (let count = 0; lexer.advance().kind !== TokenKind.EOF; count += 1) {
      if (count >= maxTokens) return true;
    }
  } catch {
    // A syntax error: Apollo's parser reports it.
  }
  return false;
}

/**
 * The cost limit (graphql-query-complexity): each field costs 1 plus its children; a field with
 * `first` multiplies its children by it (a connection's edges, a relation list), any other list
 * by UNBOUNDED_LIST_ITEMS. So `posts(first: 100) { … comments(first: 100) }` costs what it reads.
 */
export function costLimit(schema: GraphQLSchema, maxCost: number): OperationCheck {
  const estimator = ({ type: parent, field, args, childComplexity }: ComplexityEstimatorArgs): number => {
    // Introspection is for admins only (the gate refuses everyone else before execution); the standard query would cost ~50,000.
    if (field.name.startsWith('__')) return 1;
    // A negative `first` must not cancel its siblings' cost (the resolver refuses it, but only later).
    const first = typeof args.first === 'number' ? Math.max(1, args.first) : undefined;
    const type = isNonNullType(field.type) ? field.type.ofType : field.type;
    // A connection's edges are the `first` its field already counted.
    const bounded = parent.name.endsWith('Connection');
    const items = first ?? (isListType(type) && !bounded ? UNBOUNDED_LIST_ITEMS : 1);
    return 1 + items * childComplexity;
  };
  // Per parsed document (Apollo keeps them), per operation and variables: the same request is costed once.
  const costs = new WeakMap<DocumentNode, Map<string, number | 'variables-refused'>>();
  const costOf = (
    document: DocumentNode,
    operation: OperationDefinitionNode | undefined,
    operationName: string | null | undefined,
    variables: Record<string, unknown> | undefined,
  ): number | 'variables-refused' => {
    let known = costs.get(document);
    if (!known) costs.set(document, (known = new Map<string, number | 'variables-refused'>()));
    const key = `${operationName ?? ''}\u0000${variables === undefined ? '' : JSON.stringify(variables)}`;
    let cost = known.get(key);
    if (cost === undefined) {
      // Variables that do not fit the operation: execution refuses them next, with the usual 400.
      // One error is enough to know: unbounded, graphql-js builds an error per bad item, and a
      // 100 kb list of 45,000 wrong values held the event loop for 15 s.
      if (operation && getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}, { maxErrors: 1 }).errors) {
        cost = 'variables-refused';
      } else {
        try {
          cost = getComplexity({
            schema,
            query: document,
            variables: variables ?? {},
            operationName: operationName ?? undefined,
            estimators: [estimator],
          });
        } catch {
          // Anything else (the library's own node limit, for one) means: too much to even count.
          cost = Number.POSITIVE_INFINITY;
        }
      }
      // A client varying its variables cannot grow this without bound.
      if (known.size >= MAX_COSTS_PER_DOCUMENT) known.clear();
      known.set(key, cost);
    }
    return cost;
  };
  return ({ document, operation, operationName, variables }) => {
    const cost = costOf(document, operation, operationName, variables);
    if (cost !== 'variables-refused' && cost > maxCost) throw tooMuch('expensive');
  };
}
