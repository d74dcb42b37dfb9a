import { GraphQLResolveInfo, GraphQLSchema, defaultFieldResolver, isObjectType } from 'graphql';
import { applyMiddleware } from 'graphql-middleware';
import { chain, deny, shield } from 'graphql-shield';
import type { Context } from '../context';
import { AppError } from '../errors';
import { isPublic, projectionOf } from './rules';

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
 * logged (ASVS 16.3.2) with the field (`Type.field`), never the arguments.
 */
export function accessDenied(context: Context, field: string): AppError {
  context.logger.info({ field, userId: context.viewer.userId }, 'access denied');
  return context.viewer.userId === null
    ? new AppError('UNAUTHENTICATED', 'Sign in to do this.')
    : new AppError('FORBIDDEN', 'You are not allowed to do this.');
}

/** shield's fallbackError: a rule answered false, threw, or the field has no rule. */
function denied(_thrown: unknown, _parent: unknown, _args: unknown, context: Context, info: GraphQLResolveInfo): AppError {
  return accessDenied(context, `${info.parentType.name}.${info.fieldName}`);
}

/**
 * Wraps the schema in graphql-shield, deny by default: every field without a rule is refused; a
 * rule that throws fails closed; thrown errors are passed to formatError, which masks everything
 * that is not an AppError.
 *
 * Then the wrapper is taken off again where running it per field decides nothing new:
 * - `isPublic` fields without a resolver of their own: the rule always allows, so the wrapper only
 *   cost a call per field (graphql's default resolver serves them, a pending value included);
 * - projected row fields (RowFieldRule.projection): the data API decides them with the same rule,
 *   once per distinct mask of a page, and hands the field its value or its denial (an AppError,
 *   which both executors report as the field's error). A `value` is a plain property, read
 *   without any call; a `loaded` one may be pending, so graphql's default resolver serves it.
 *   Those types' objects only ever come from the data API (a test walks the schema for any other
 *   field returning them).
 * Every field keeps its rule in the tree: the coverage walk and the deny-by-default fallback are
 * unchanged; only the place where a row's decision runs moves.
 */
export function protectSchema(schema: GraphQLSchema, rules: RuleTree): GraphQLSchema {
  const permissions = shield<unknown, Context>(rules, {
    fallbackRule: deny,
    allowExternalErrors: true,
    debug: false,
    fallbackError: denied as never,
  });
  const shielded = applyMiddleware(schema, permissions);
  for (const [typeName, fields] of Object.entries(rules)) {
    const original = schema.getType(typeName);
    const wrapped = shielded.getType(typeName);
    if (!isObjectType(original) || !isObjectType(wrapped)) continue;
    for (const [fieldName, rule] of Object.entries(fields)) {
      const field = original.getFields()[fieldName];
      if (!field || field.resolve !== undefined) continue;
      const projection = projectionOf(rule);
      if (projection === 'value') wrapped.getFields()[fieldName].resolve = undefined;
      else if (projection === 'loaded' || rule === isPublic) wrapped.getFields()[fieldName].resolve = defaultFieldResolver;
    }
  }
  return shielded;
}
