import { randomUUID } from 'node:crypto';
import {
  GraphQLArgument,
  GraphQLField,
  GraphQLInputObjectType,
  GraphQLInputType,
  GraphQLObjectType,
  GraphQLSchema,
  getNamedType,
  isCompositeType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
} from 'graphql';

/**
 * Builds operations from the schema itself, so the attack suite grows with it: a value the schema
 * accepts for any input type, literals and variables for any root field, a route to every object
 * type, and every place an input object can be sent.
 */

export type RootSection = 'Query' | 'Mutation';

export interface RootField {
  readonly section: RootSection;
  readonly field: GraphQLField<unknown, unknown>;
  /** `Query.posts` */
  readonly key: string;
}

/** Realistic values by input type name (a real email and password for signIn, say), merged over the sample. */
export type SampleOverrides = Readonly<Record<string, () => Record<string, unknown>>>;

/** A path into an argument's value: field names, and 0 for "the first item of this list". */
export type ValuePath = readonly (string | 0)[];

export function rootFields(schema: GraphQLSchema): RootField[] {
  return (['Query', 'Mutation'] as const).flatMap((section) => {
    const type = schema.getType(section) as GraphQLObjectType | undefined;
    return type ? Object.values(type.getFields()).map((field) => ({ section, field, key: `${section}.${field.name}` })) : [];
  });
}

/** A value the schema accepts: required fields only, custom values where `overrides` name the type. */
export function sampleValue(type: GraphQLInputType, overrides: SampleOverrides = {}): unknown {
  if (isNonNullType(type)) return sampleValue(type.ofType, overrides);
  if (isListType(type)) return [sampleValue(type.ofType, overrides)];
  if (isEnumType(type)) return type.getValues()[0].name;
  if (isInputObjectType(type)) {
    const value: Record<string, unknown> = {};
    for (const field of Object.values(type.getFields())) {
      if (isNonNullType(field.type) && field.defaultValue === undefined) value[field.name] = sampleValue(field.type, overrides);
    }
    return { ...value, ...overrides[type.name]?.() };
  }
  switch (type.name) {
    case 'ID':
      return randomUUID();
    case 'Int':
    case 'Float':
      return 1;
    case 'Boolean':
      return false;
    case 'DateTimeISO':
      return '2026-03-01T12:00:00.000Z';
    case 'JSON':
      return {};
    default:
      return 'attack-suite';
  }
}

/** The arguments an operation must pass (non-null, no default), with sample values. */
export function requiredArguments(field: GraphQLField<unknown, unknown>, overrides: SampleOverrides = {}): Map<GraphQLArgument, unknown> {
  return new Map(
    field.args
      .filter((arg) => isNonNullType(arg.type) && arg.defaultValue === undefined)
      .map((arg) => [arg, sampleValue(arg.type, overrides)]),
  );
}

/** `value` with the input objects along `path` filled in (sampled where missing). */
export function materialise(type: GraphQLInputType, value: unknown, path: ValuePath): unknown {
  const inner = isNonNullType(type) ? type.ofType : type;
  if (path.length === 0) return value ?? sampleValue(inner);
  const [step, ...rest] = path;
  if (isListType(inner)) {
    const list = Array.isArray(value) ? [...value] : [];
    list[0] = materialise(inner.ofType, list[0], rest);
    return list;
  }
  if (!isInputObjectType(inner) || typeof step !== 'string') throw new Error(`cannot follow ${String(step)} into ${String(inner)}`);
  const object = { ...((value ?? sampleValue(inner)) as Record<string, unknown>) };
  object[step] = materialise(inner.getFields()[step].type, object[step], rest);
  return object;
}

/**
 * A deep copy of `value` whose object at `path` has one more own key. Defined, not assigned, so
 * that `__proto__` becomes a real key (as JSON.parse makes it) instead of a prototype.
 */
export function withExtraKey(value: unknown, path: ValuePath, name: string, extra: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let target: Record<string | number, unknown> = copy;
  for (const step of path) target = target[step] as Record<string | number, unknown>;
  Object.defineProperty(target, name, { value: extra, enumerable: true, configurable: true, writable: true });
  return copy;
}

/** A GraphQL literal for `value`; keys the type does not know are printed as plain JSON-like literals. */
export function printLiteral(type: GraphQLInputType | undefined, value: unknown): string {
  const inner = type && isNonNullType(type) ? type.ofType : type;
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value))
    return `[${value.map((item) => printLiteral(inner && isListType(inner) ? inner.ofType : undefined, item)).join(', ')}]`;
  if (typeof value === 'object') {
    const fields = inner && isInputObjectType(inner) ? inner.getFields() : {};
    return `{ ${Object.entries(value)
      .map(([name, item]) => `${name}: ${printLiteral(fields[name]?.type, item)}`)
      .join(', ')} }`;
  }
  if (inner && isEnumType(inner) && typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** `{ __typename }` when the field's type has fields to select, else nothing. */
export function minimalSelection(field: GraphQLField<unknown, unknown>): string {
  return isCompositeType(getNamedType(field.type)) ? ' { __typename }' : '';
}

export interface Operation {
  readonly query: string;
  readonly variables: Record<string, unknown>;
}

/** One root field with the given arguments, passed as variables or inline as literals. */
export function rootOperation(root: RootField, args: Map<GraphQLArgument, unknown>, form: 'variables' | 'literals'): Operation {
  const entries = [...args.entries()];
  const keyword = root.section.toLowerCase();
  const selection = minimalSelection(root.field);
  if (form === 'literals') {
    const passed = entries.map(([arg, value]) => `${arg.name}: ${printLiteral(arg.type, value)}`).join(', ');
    return { query: `${keyword} { ${root.field.name}${passed ? `(${passed})` : ''}${selection} }`, variables: {} };
  }
  const declared = entries.map(([arg]) => `$${arg.name}: ${String(arg.type)}`).join(', ');
  const passed = entries.map(([arg]) => `${arg.name}: $${arg.name}`).join(', ');
  return {
    query: `${keyword}${declared ? `(${declared})` : ''} { ${root.field.name}${passed ? `(${passed})` : ''}${selection} }`,
    variables: Object.fromEntries(entries.map(([arg, value]) => [arg.name, value])),
  };
}

/** Wraps a selection on some object type into a whole document that reaches that type from a root. */
export type Route = (selection: string) => string;

/** A route from Query or Mutation to every object type reachable from them (through unions and interfaces too). */
export function routesToObjectTypes(schema: GraphQLSchema): Map<GraphQLObjectType, Route> {
  const routes = new Map<GraphQLObjectType, Route>();
  const queue: [GraphQLObjectType, Route][] = [];
  const reach = (type: GraphQLObjectType, route: Route) => {
    if (routes.has(type)) return;
    routes.set(type, route);
    queue.push([type, route]);
  };
  const query = schema.getQueryType();
  const mutation = schema.getMutationType();
  if (query) reach(query, (selection) => `query { ${selection} }`);
  if (mutation) reach(mutation, (selection) => `mutation { ${selection} }`);
  while (queue.length > 0) {
    const [type, route] = queue.shift()!;
    for (const field of Object.values(type.getFields())) {
      const named = getNamedType(field.type);
      const args = [...requiredArguments(field).entries()]
        .map(([arg, value]) => `${arg.name}: ${printLiteral(arg.type, value)}`)
        .join(', ');
      const call = `${field.name}${args ? `(${args})` : ''}`;
      if (isObjectType(named)) reach(named, (selection) => route(`${call} { ${selection} }`));
      const members = isUnionType(named) ? named.getTypes() : isInterfaceType(named) ? schema.getPossibleTypes(named) : [];
      for (const member of members) reach(member, (selection) => route(`${call} { ... on ${member.name} { ${selection} } }`));
    }
  }
  return routes;
}

/** One place an input object is sent: a root field's argument, and the path to it inside the argument's value. */
export interface InputPosition {
  readonly root: RootField;
  readonly arg: GraphQLArgument;
  readonly path: ValuePath;
  readonly type: GraphQLInputObjectType;
}

/** Every input-object argument of every root field, then each input type only reachable nested, at its first position. */
export function inputPositions(schema: GraphQLSchema): InputPosition[] {
  const positions: InputPosition[] = [];
  const covered = new Set<string>();
  const roots = rootFields(schema);
  for (const root of roots) {
    for (const arg of root.field.args) {
      const named = getNamedType(arg.type);
      if (!isInputObjectType(named)) continue;
      positions.push({ root, arg, path: listSteps(arg.type), type: named });
      covered.add(named.name);
    }
  }
  const nested = (root: RootField, arg: GraphQLArgument, type: GraphQLInputObjectType, path: ValuePath) => {
    for (const field of Object.values(type.getFields())) {
      const named = getNamedType(field.type);
      if (!isInputObjectType(named) || covered.has(named.name)) continue;
      covered.add(named.name);
      const fieldPath = [...path, field.name, ...listSteps(field.type)];
      positions.push({ root, arg, path: fieldPath, type: named });
      nested(root, arg, named, fieldPath);
    }
  };
  for (const position of [...positions]) nested(position.root, position.arg, position.type, position.path);
  return positions;
}

/** [0] when a type is a list (of input objects), so a path steps into its first item. */
function listSteps(type: GraphQLInputType): ValuePath {
  const inner = isNonNullType(type) ? type.ofType : type;
  return isListType(inner) ? [0] : [];
}

/** The arguments of `position.root` with the input object at `position` present, plus `extra` (name → value) in it. */
export function argumentsWithExtra(
  position: InputPosition,
  overrides: SampleOverrides,
  extra?: { name: string; value: unknown },
): Map<GraphQLArgument, unknown> {
  const args = requiredArguments(position.root.field, overrides);
  let value = materialise(position.arg.type, args.get(position.arg), position.path);
  if (extra) value = withExtraKey(value, position.path, extra.name, extra.value);
  args.set(position.arg, value);
  return args;
}
