import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import {
  GraphQLArgument,
  GraphQLField,
  GraphQLInputType,
  GraphQLNamedType,
  GraphQLObjectType,
  GraphQLOutputType,
  GraphQLSchema,
  buildSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  isUnionType,
  parse,
} from 'graphql';
import { PROJECT_ROOT } from '../../src/project';
import { REFRESH, SIGN_IN, SIGN_UP } from '../support/factories';
import { CIDR_EDGES, Draw, dateTime, email, hostileInt, hostileString, prototypeKeys, wrongValue } from './fuzz-values';

/**
 * GraphQL operations for the fuzzer: generated from schema/schema.graphql (the contract mobile
 * clients build from) with values mostly right and sometimes wrong, or all plausible; and the
 * operations the integration tests send.
 */

export interface GraphQLBody {
  readonly query: string;
  readonly variables?: unknown;
  readonly operationName?: unknown;
}

/** Real ids of rows the fuzz server holds, so generated operations reach the database, not only validation. */
export interface FuzzIds {
  readonly userIds: readonly string[];
  readonly postIds: readonly string[];
  readonly commentIds: readonly string[];
  readonly profileIds: readonly string[];
}

export function loadContractSchema(): GraphQLSchema {
  return buildSchema(fs.readFileSync(path.join(PROJECT_ROOT, 'schema', 'schema.graphql'), 'utf8'));
}

/** Every string literal of the integration tests that parses as a GraphQL document (template literals with substitutions skipped). */
export function corpusOperations(): string[] {
  const directory = path.join(PROJECT_ROOT, 'tests', 'integration');
  const literal = /'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`|"((?:[^"\\\n]|\\.)*)"/g;
  const found = new Set<string>([SIGN_UP, SIGN_IN, REFRESH]);
  for (const file of fs.readdirSync(directory).filter((name) => name.endsWith('.ts'))) {
    const source = fs.readFileSync(path.join(directory, file), 'utf8');
    for (const match of source.matchAll(literal)) {
      const text = (match[1] ?? match[2] ?? match[3]).replace(/\\(['"`\\])/g, '$1');
      if (text.includes('${') || !/^\s*(\{|query\b|mutation\b|fragment\b)/.test(text)) continue;
      try {
        parse(text);
        found.add(text);
      } catch {
        // Not GraphQL after all (a JSON string, a message).
      }
    }
  }
  return [...found];
}

// ---------------------------------------------------------------------------------------------
// Valid operations from the schema

/** Values that pass each named argument's own checks, so a request reaches the code behind them. */
const PLAUSIBLE_STRINGS: Readonly<Record<string, readonly string[]>> = {
  email: ['fuzz@example.com', 'nobody@example.com'],
  password: ['violet-harbor-123456'],
  currentPassword: ['violet-harbor-123456'],
  newPassword: ['amber-lantern-654321'],
  code: ['123456', 'abcde-fghjk-mnpqr-stvwx'],
  currentCode: ['123456'],
  cidr: ['203.0.113.0/24', '2001:db8::/32'],
  note: ['fuzz rule'],
  role: ['user', 'admin', 'anonymous', 'editor'],
  name: ['editor', 'fuzz-role'],
  description: ['Edits posts'],
  model: ['Post', 'Comment', 'Profile'],
  filter: ['published'],
  fields: ['title', 'body'],
  action: ['sign_in_failed', 'grant_added'],
  outcome: ['success', 'failure', 'denied'],
  targetId: ['0f3c3c52-0000-4000-8000-000000000000'],
  phone: ['+447700900123'],
  birthDate: ['1990-01-01'],
  avatarUrl: ['https://example.com/avatar.png'],
  displayName: ['Fuzz'],
  title: ['A title'],
  body: ['Some text'],
  bio: ['About me'],
};

/** How deep generated selections go; the server refuses 9 and more (BASTION_GRAPHQL_MAX_DEPTH). */
const SELECTION_DEPTH = 6;

/**
 * Builds operations that follow the schema (fields, arguments, fragments on unions), with values
 * that are mostly of the right type and sometimes not, inline or as variables.
 */
export class OperationBuilder {
  private variables: Record<string, unknown> = {};
  private declarations: string[] = [];

  /** `strict`: every value of the right type and plausible, every optional input field set, so a request gets past validation to the resolvers. */
  constructor(
    private readonly schema: GraphQLSchema,
    private readonly draw: Draw,
    private readonly ids: FuzzIds,
    private readonly strict = false,
  ) {}

  operation(): GraphQLBody {
    this.variables = {};
    this.declarations = [];
    const mutation = this.draw.chance(0.3);
    const root = (mutation ? this.schema.getMutationType() : this.schema.getQueryType())!;
    const fields = Object.values(root.getFields());
    const selections: string[] = [];
    const count = this.draw.chance(0.8) ? 1 : this.draw.int(2, 3);
    for (let index = 0; index < count; index += 1)
      selections.push(this.field(this.draw.pick(fields), 1, index > 0 ? `r${index}` : undefined));
    const name = this.draw.chance(0.3) ? ` Fuzz${this.draw.int(0, 99)}` : '';
    const declared = this.declarations.length > 0 ? `(${this.declarations.join(', ')})` : '';
    const keyword = mutation ? 'mutation' : this.draw.chance(0.5) && !declared && !name ? '' : 'query';
    return {
      query: `${keyword}${name}${declared} { ${selections.join(' ')} }`,
      variables: this.draw.chance(0.97) ? this.variables : undefined,
      operationName: name ? name.trim() : undefined,
    };
  }

  private field(field: GraphQLField<unknown, unknown>, depth: number, alias?: string): string {
    const args = field.args.filter((arg) => (isNonNullType(arg.type) && arg.defaultValue === undefined ? true : this.draw.chance(0.35)));
    const argumentText = args.map((arg) => `${arg.name}: ${this.argument(arg.name, arg.type)}`).join(', ');
    const directive = this.draw.chance(0.05)
      ? this.draw.pick([' @include(if: true)', ' @skip(if: false)', ' @skip(if: true)', ' @include(if: false)'])
      : '';
    return `${alias ? `${alias}: ` : ''}${field.name}${argumentText ? `(${argumentText})` : ''}${directive}${this.selection(field.type, depth + 1)}`;
  }

  private selection(type: GraphQLOutputType, depth: number): string {
    const named = getNamedType(type);
    if (isLeafType(named)) return '';
    if (isUnionType(named)) {
      return ` { __typename ${named
        .getTypes()
        .map((member) => `... on ${member.name}${this.selection(member, depth + 1)}`)
        .join(' ')} }`;
    }
    const objectType = named as GraphQLObjectType;
    const fields = Object.values(objectType.getFields());
    const candidates = depth >= SELECTION_DEPTH ? fields.filter((field) => isLeafType(getNamedType(field.type))) : fields;
    if (candidates.length === 0) return ' { __typename }';
    const chosen = new Set<GraphQLField<unknown, unknown>>();
    const wanted = this.draw.int(1, Math.min(4, candidates.length));
    while (chosen.size < wanted) chosen.add(this.draw.pick(candidates));
    const parts = [...chosen].map((field, index) => this.field(field, depth, this.draw.chance(0.08) ? `a${index}` : undefined));
    if (this.draw.chance(0.15)) parts.push('__typename');
    return ` { ${parts.join(' ')} }`;
  }

  /** An argument as an inline literal or a declared variable. */
  private argument(name: string, type: GraphQLInputType): string {
    const value = this.value(type, name, 0);
    if (this.draw.chance(0.5)) return literal(value, type);
    const variable = `v${this.declarations.length}`;
    // Sometimes the declaration does not match the argument: validation must say so, not crash.
    const declaredType = this.draw.chance(0.02) ? this.draw.pick(['String', 'Int!', '[ID]', 'Boolean', 'PostWhere', 'Nope']) : String(type);
    this.declarations.push(`$${variable}: ${declaredType}`);
    if (!this.draw.chance(0.01)) this.variables[variable] = value;
    return `$${variable}`;
  }

  value(type: GraphQLInputType, name: string, depth: number): unknown {
    if (this.strict) return this.plausible(type, name, depth);
    if (this.draw.chance(0.02)) return this.draw.from(wrongValue);
    if (isNonNullType(type)) return this.draw.chance(0.01) ? null : this.value(type.ofType, name, depth);
    if (this.draw.chance(0.05)) return null;
    if (isListType(type)) {
      const length = this.draw.chance(0.02) ? this.draw.int(101, 3000) : this.draw.int(0, 3);
      // The same item repeated: a long list tests the limit on its length, not the generator.
      if (length > 3) return new Array(length).fill(this.value(type.ofType, name, depth + 1));
      return Array.from({ length }, () => this.value(type.ofType, name, depth + 1));
    }
    if (isEnumType(type)) return this.draw.chance(0.02) ? 'NOT_A_VALUE' : this.draw.pick(type.getValues()).name;
    if (isInputObjectType(type)) {
      const input: Record<string, unknown> = {};
      for (const field of Object.values(type.getFields())) {
        const required = isNonNullType(field.type) && field.defaultValue === undefined;
        if (required || (depth < 3 && this.draw.chance(0.3))) input[field.name] = this.value(field.type, field.name, depth + 1);
      }
      if (this.draw.chance(0.02))
        input[this.draw.pick(['role', 'roles', 'userId', 'ownerId', 'isAdmin', 'id'])] = this.draw.pick([
          'admin',
          true,
          this.draw.pick(this.ids.userIds),
        ]);
      if (this.draw.chance(0.02)) prototypeKeys({ role: 'admin' }, input);
      return input;
    }
    return this.scalar(getNamedType(type), name);
  }

  private plausible(type: GraphQLInputType, name: string, depth: number): unknown {
    if (isNonNullType(type)) return this.plausible(type.ofType, name, depth);
    // AND/OR below the first level would only add more of the same.
    if (isListType(type))
      return Array.from({ length: depth < 2 ? this.draw.int(1, 2) : 0 }, () => this.plausible(type.ofType, name, depth + 1));
    if (isEnumType(type)) return this.draw.pick(type.getValues()).name;
    if (isInputObjectType(type)) {
      const fields = Object.values(type.getFields()).filter(
        (field) => depth < 2 || (isNonNullType(field.type) && field.defaultValue === undefined),
      );
      return Object.fromEntries(fields.map((field) => [field.name, this.plausible(field.type, field.name, depth + 1)]));
    }
    const named = getNamedType(type);
    if (named.name === 'String') return this.draw.pick(PLAUSIBLE_STRINGS[name] ?? ['fuzz', 'hello world', 'Zoë']);
    if (named.name === 'Int') return this.draw.int(1, 50);
    if (named.name === 'Float') return this.draw.int(0, 1000) / 10;
    if (named.name === 'DateTimeISO')
      return this.draw.pick(['2026-03-01T12:00:00.000Z', '2025-12-31T23:59:59.999Z', '2027-01-01T00:00:00.000Z']);
    return this.scalar(named, name);
  }

  private scalar(type: GraphQLNamedType, name: string): unknown {
    switch (type.name) {
      case 'ID':
        return this.draw.chance(0.6)
          ? this.draw.pick([...this.ids.userIds, ...this.ids.postIds, ...this.ids.commentIds, ...this.ids.profileIds])
          : this.draw.from(fc.oneof(fc.uuid(), hostileString));
      case 'Int':
        return this.draw.from(hostileInt);
      case 'Float':
        return this.draw.from(fc.oneof(fc.double(), hostileInt));
      case 'Boolean':
        return this.draw.chance(0.95) ? this.draw.from(fc.boolean()) : this.draw.from(wrongValue);
      case 'DateTimeISO':
        return this.draw.from(dateTime);
      default:
        if (/email/i.test(name)) return this.draw.from(email);
        if (/cidr/i.test(name)) return this.draw.pick(CIDR_EDGES);
        if (/^(after|before|cursor)$/.test(name)) return this.draw.from(fc.oneof(fc.base64String(), hostileString));
        return this.draw.from(hostileString);
    }
  }
}

/** A value as a GraphQL literal: enums bare, strings quoted (sometimes as block strings), objects and lists by their shape. */
export function literal(value: unknown, type?: GraphQLInputType): string {
  const named = type ? getNamedType(type) : undefined;
  const inner = type && isNonNullType(type) ? type.ofType : type;
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') {
    if (named && isEnumType(named) && /^[A-Za-z_]\w*$/.test(value)) return value;
    // One string in seven as a block string, chosen by length so a value always prints the same.
    if (value.length % 7 === 3 && !value.includes('\\')) return `"""${value.replace(/"""/g, '\\"""')}"""`;
    return JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value))
    return `[${value.map((item) => literal(item, inner && isListType(inner) ? inner.ofType : undefined)).join(', ')}]`;
  const fields = named && isInputObjectType(named) ? named.getFields() : {};
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([key, item]) => `${key}: ${literal(item, fields[key]?.type)}`)
    .join(', ')}}`;
}

export interface VariableOperation {
  readonly query: string;
  readonly args: readonly GraphQLArgument[];
}

/** One operation per argument-taking root field, every argument a variable: the values are the attack. */
function variableOperationsOf(schema: GraphQLSchema): VariableOperation[] {
  const operations: VariableOperation[] = [];
  for (const root of [schema.getQueryType()!, schema.getMutationType()!] as GraphQLObjectType[]) {
    for (const field of Object.values(root.getFields())) {
      if (field.args.length === 0) continue;
      const args = field.args;
      const selection = isLeafType(getNamedType(field.type)) ? '' : ' { __typename }';
      const keyword = root === schema.getQueryType() ? 'query' : 'mutation';
      operations.push({
        query:
          `${keyword}(${args.map((arg) => `$${arg.name}: ${String(arg.type)}`).join(', ')}) ` +
          `{ ${field.name}(${args.map((arg) => `${arg.name}: $${arg.name}`).join(', ')})${selection} }`,
        args,
      });
    }
  }
  return operations;
}

const operationsBySchema = new WeakMap<GraphQLSchema, VariableOperation[]>();

export function variableOperations(schema: GraphQLSchema): VariableOperation[] {
  let operations = operationsBySchema.get(schema);
  if (!operations) operationsBySchema.set(schema, (operations = variableOperationsOf(schema)));
  return operations;
}
