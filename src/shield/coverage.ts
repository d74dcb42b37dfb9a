import { GraphQLSchema, buildSchema, execute, isObjectType, parse } from 'graphql';
import type { Context } from '../context';
import { createLogger } from '../logging';
import { RuleTree, protectSchema } from './shield';

/** Every field of every object type without an explicit rule (docs/security.md#perm-2): the list must be empty. */
export function unruledFields(schema: GraphQLSchema, rules: RuleTree): string[] {
  const unruled: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.keys(type.getFields())) {
      if (!rules[type.name]?.[field] && !rules[type.name]?.['*']) unruled.push(`${type.name}.${field}`);
    }
  }
  return unruled;
}

/**
 * Proves the permission wrapper denies by default: a field with no rule at all, wrapped exactly
 * as the real schema is, must come back refused.
 */
export async function fallbackDenies(): Promise<boolean> {
  const schema = buildSchema('type Query { unruled: String }');
  schema.getQueryType()!.getFields().unruled.resolve = () => 'served';
  const context = { viewer: { userId: null }, logger: createLogger({ level: 'silent', pretty: false }) } as unknown as Context;
  const result = await execute({ schema: protectSchema(schema, {}), document: parse('{ unruled }'), contextValue: context });
  return result.data?.unruled === null && result.errors?.length === 1;
}
