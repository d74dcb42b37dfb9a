import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { MaxTokensParserWLexer } from '@escape.tech/graphql-armor-max-tokens';
import { GraphQLSchema, ValidationRule, isListType, isNonNullType } from 'graphql';
import { ComplexityEstimatorArgs, getComplexity } from 'graphql-query-complexity';
import type { Config } from '../config';
import type { Context } from '../context';
import { AppError } from '../errors';

/** A list field without `first` is counted as this many items. */
const UNBOUNDED_LIST_ITEMS = 10;

/** Refusals look like every other validation failure: HTTP 400, and no limit is named (SECURITY.md AR-1). */
function tooMuch(what: string): AppError {
  return new AppError('GRAPHQL_VALIDATION_FAILED', `The query is too ${what}: ask for less.`, { stopsRequest: true });
}

/**
 * Hardened graphql-armor (SECURITY.md §3 AR-1): depth with fragments flattened, aliases with an
 * empty allowlist, directives ≤ 5, limits not exposed. Its cost and token plugins are replaced:
 * armor's cost does not multiply lists by `first`, and its token plugin's rejection is a 500.
 * Introspection is left to the depth rule's exemption: only admins may run it at all (the gate).
 */
export function armorValidationRules(config: Config): ValidationRule[] {
  const armor = new ApolloArmor({
    maxDepth: { n: config.graphqlMaxDepth, flattenFragments: true, ignoreIntrospection: true, exposeLimits: false, errorMessage: 'The query is too deep.' },
    maxAliases: { n: config.graphqlMaxAliases, allowList: [], exposeLimits: false, errorMessage: 'The query has too many aliases.' },
    maxDirectives: { n: config.graphqlMaxDirectives, exposeLimits: false, errorMessage: 'The query has too many directives.' },
    costLimit: { enabled: false },
    maxTokens: { enabled: false },
    // Apollo's hideSchemaDetailsFromClientErrors already hides suggestions, without armor's stray "?".
    blockFieldSuggestion: { enabled: false },
  });
  return armor.protect().validationRules as ValidationRule[];
}

/** The token limit, before the document is parsed for real; a rejection is a 400. */
export function tokenLimitPlugin(maxTokens: number): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async parsingDidStart({ source }) {
          let exceeded = false;
          try {
            new MaxTokensParserWLexer(source, { n: maxTokens, exposeLimits: false, onReject: [() => (exceeded = true)], propagateOnRejection: true } as never).parseDocument();
          } catch {
            // A syntax error is Apollo's own parser's to report; only the limit is ours.
          }
          if (exceeded) throw tooMuch('long');
        },
      };
    },
  };
}

/**
 * The cost limit (graphql-query-complexity): each field costs 1 plus its children; a field with
 * `first` multiplies its children by it (a connection's edges, a relation list), any other list
 * by UNBOUNDED_LIST_ITEMS. So `posts(first: 100) { … comments(first: 100) }` costs what it reads.
 */
export function costLimitPlugin(schema: () => GraphQLSchema, maxCost: number): ApolloServerPlugin<Context> {
  const estimator = ({ type: parent, field, args, childComplexity }: ComplexityEstimatorArgs): number => {
    const first = typeof args.first === 'number' ? args.first : undefined;
    const type = isNonNullType(field.type) ? field.type.ofType : field.type;
    // A connection's edges are the `first` its field already counted.
    const bounded = parent.name.endsWith('Connection');
    const items = first ?? (isListType(type) && !bounded ? UNBOUNDED_LIST_ITEMS : 1);
    return 1 + items * childComplexity;
  };
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request, operationName }) {
          let cost: number;
          try {
            cost = getComplexity({ schema: schema(), query: document, variables: request.variables ?? {}, operationName: operationName ?? undefined, estimators: [estimator] });
          } catch {
            // Variables that do not fit the operation: execution refuses them next, with the usual 400.
            return;
          }
          if (cost > maxCost) throw tooMuch('expensive');
        },
      };
    },
  };
}
