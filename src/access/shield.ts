import { GraphQLResolveInfo, GraphQLSchema } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import { IRules, chain, deny, shield } from 'graphql-shield';
import type { Context } from '../context';
import { AppError } from '../errors';

/** A single rule or a logic rule (chain, and, or), as graphql-shield accepts them. */
export type ShieldRule = Parameters<typeof chain>[0];
export type RuleTree = Record<string, Record<string, ShieldRule>>;

/** Merges the rule trees each feature exports; a field ruled twice is a bug, not an override. */
export function mergeRuleTrees(trees: readonly RuleTree[]): RuleTree {
  const merged: RuleTree = {};
  for (const tree of trees) {
    for (const [typeName, fields] of Object.entries(tree)) {
      merged[typeName] ??= {};
      for (const [fieldName, rule] of Object.entries(fields)) {
        if (merged[typeName][fieldName]) throw new Error(`Two features rule ${typeName}.${fieldName}`);
        merged[typeName][fieldName] = rule;
      }
    }
  }
  return merged;
}

/**
 * Denied: anonymous viewers are told to sign in, signed-in ones that they may not. The denial is
 * logged (ASVS 16.3.2) with the field, never the arguments.
 */
function denied(_thrown: unknown, _parent: unknown, _args: unknown, context: Context, info: GraphQLResolveInfo): AppError {
  context.logger.info({ field: `${info.parentType.name}.${info.fieldName}`, userId: context.viewer.userId }, 'access denied');
  return context.viewer.userId === null
    ? new AppError('UNAUTHENTICATED', 'Sign in to do this.')
    : new AppError('FORBIDDEN', 'You are not allowed to do this.');
}

/**
 * Wraps the schema in graphql-shield, deny by default (SECURITY.md §4): every field without a
 * rule is refused; a rule that throws fails closed; thrown errors are passed to formatError,
 * which masks everything that is not an AppError.
 */
export function protectSchema(schema: GraphQLSchema, rules: RuleTree): GraphQLSchema {
  const permissions = shield<unknown, Context>(rules as IRules, {
    fallbackRule: deny,
    allowExternalErrors: true,
    debug: false,
    fallbackError: denied as never,
  });
  return applyMiddleware(schema, permissions);
}
