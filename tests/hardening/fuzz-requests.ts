import { GraphQLArgument, GraphQLSchema, getNamedType, isInputObjectType } from 'graphql';
import { mutateDocument, structuralAttack } from './fuzz-mutations';
import { FuzzIds, GraphQLBody, OperationBuilder, variableOperations } from './fuzz-documents';
import type { FuzzRequest } from './fuzz-http';
import { Draw, EDGE_NUMBERS, EDGE_STRINGS, prototypeKeys, wrongValue } from './fuzz-values';

/**
 * The fuzzer's GraphQL requests, each a JSON POST the way a mobile app sends one: generated
 * operations, plausible ones with edge cases inside, mutated ones, structural attacks, and hostile
 * variables. Every family draws from fast-check, so a seed reproduces the run.
 */

export interface FuzzContext {
  readonly schema: GraphQLSchema;
  readonly corpus: readonly string[];
  readonly names: readonly string[];
  readonly ids: FuzzIds;
  readonly tokens: { readonly user: string; readonly admin: string };
  readonly host: string;
}

export type Auth = 'anonymous' | 'user' | 'admin';
export type Headers = [string, string][];

/**
 * Operations that would end the fuzzer's own sessions or lock its address out (signOut, suspending
 * the user, an IP rule on 127.0.0.1): sent anonymously, where they are refused, so the rest of the
 * run keeps exercising signed-in paths. The attack suite covers them with a token.
 */
const ENDS_THE_RUN_FIELDS = /\b(signOut|signOutEverywhere|deleteAccount|setUserStatus|adminRevokeSessions|unassignRole)\b/;
/** An IP rule is harmless unless it could cover the fuzzer's own address (loopback, or everything). */
const COVERS_LOOPBACK = /127\.|::1|0\.0\.0\.0|::\/|\/0\b|::ffff|::"/;

export function endsTheRun(text: string): boolean {
  return ENDS_THE_RUN_FIELDS.test(text) || (/\baddFirewallRule\b/.test(text) && COVERS_LOOPBACK.test(text));
}

export function pickAuth(draw: Draw): Auth {
  const roll = draw.int(0, 9);
  return roll < 4 ? 'anonymous' : roll < 7 ? 'user' : 'admin';
}

export function authHeaders(context: FuzzContext, auth: Auth): Headers {
  return auth === 'anonymous' ? [] : [['authorization', `Bearer ${context.tokens[auth]}`]];
}

/** A JSON POST to /graphql, the way a mobile client sends one. */
export function graphqlPost(context: FuzzContext, kind: string, auth: Auth, body: GraphQLBody | Buffer | string): FuzzRequest {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  const safeAuth: Auth = endsTheRun(bytes.toString('latin1')) ? 'anonymous' : auth;
  return {
    kind,
    auth: safeAuth,
    method: 'POST',
    path: '/graphql',
    headers: [['content-type', 'application/json'], ...authHeaders(context, safeAuth)],
    body: bytes,
  };
}

export function generatedOperation(draw: Draw, context: FuzzContext): FuzzRequest {
  return graphqlPost(context, 'generated', pickAuth(draw), new OperationBuilder(context.schema, draw, context.ids).operation());
}

/**
 * A plausible call of one root field, every argument and input field set, with one to three
 * values swapped for edge cases: the request gets past validation, so the edge cases reach the
 * resolver, the service and the database.
 */
export function edgesInPlausible(draw: Draw, context: FuzzContext): FuzzRequest {
  const operation = draw.pick(variableOperations(context.schema));
  const builder = new OperationBuilder(context.schema, draw, context.ids, true);
  const variables: Record<string, unknown> = Object.fromEntries(
    operation.args.map((arg) => [arg.name, builder.value(arg.type, arg.name, 0)]),
  );
  const leaves: { holder: Record<string, unknown>; key: string }[] = [];
  const pending: unknown[] = [variables];
  while (pending.length > 0) {
    const holder = pending.pop() as Record<string, unknown>;
    for (const [key, value] of Object.entries(holder)) {
      if (value !== null && typeof value === 'object') pending.push(value);
      else if (typeof value === 'string' || typeof value === 'number') leaves.push({ holder, key });
    }
  }
  for (let edges = draw.int(1, 3); edges > 0 && leaves.length > 0; edges -= 1) {
    const { holder, key } = draw.pick(leaves);
    holder[key] = typeof holder[key] === 'number' ? draw.pick(EDGE_NUMBERS) : draw.pick(EDGE_STRINGS);
  }
  const roll = draw.int(0, 9);
  const auth: Auth = roll < 5 ? 'admin' : roll < 8 ? 'user' : 'anonymous';
  return graphqlPost(context, 'edges', auth, { query: operation.query, variables });
}

export function mutatedOperation(draw: Draw, context: FuzzContext): FuzzRequest {
  const fromCorpus = draw.chance(0.5);
  const original = fromCorpus
    ? { query: draw.pick(context.corpus), variables: undefined }
    : new OperationBuilder(context.schema, draw, context.ids).operation();
  return graphqlPost(context, fromCorpus ? 'mutated-corpus' : 'mutated-generated', pickAuth(draw), {
    ...original,
    query: mutateDocument(draw, original.query, context.names),
  });
}

export function structural(draw: Draw, context: FuzzContext): FuzzRequest {
  return graphqlPost(context, 'structural', pickAuth(draw), structuralAttack(draw, context.ids));
}

// ---------------------------------------------------------------------------------------------
// Variables

/**
 * Deep JSON is written as text: JSON.stringify (the fuzzer's own) would overflow its stack on it.
 * The value stands in as a placeholder string that `withRawJson` swaps for the text.
 */
function deepObject(depth: number, key: string, raw: string[]): string {
  const [open, close] = key === 'AND' || key === 'OR' ? [`{"${key}":[`, ']}'] : [`{"${key}":`, '}'];
  raw.push(`${open.repeat(depth)}{"title":{"eq":"x"}}${close.repeat(depth)}`);
  return `\u0000raw${raw.length - 1}`;
}

function deepArray(depth: number, raw: string[]): string {
  raw.push(`${'['.repeat(depth)}1${']'.repeat(depth)}`);
  return `\u0000raw${raw.length - 1}`;
}

function withRawJson(json: string, raw: readonly string[]): string {
  return json.replace(/"\\u0000raw(\d+)"/g, (_, index: string) => raw[Number(index)]);
}

/** An argument whose input type contains itself (a where's AND/OR): the one place input nests without bound. */
function isRecursive(arg: GraphQLArgument): boolean {
  const type = getNamedType(arg.type);
  return isInputObjectType(type) && 'AND' in type.getFields();
}

export function hostileVariables(draw: Draw, context: FuzzContext): FuzzRequest {
  const operations = variableOperations(context.schema);
  // A quarter of them at the operations that take a recursive input, the rest at any.
  const recursive = operations.filter((operation) => operation.args.some(isRecursive));
  const operation = draw.pick(draw.chance(0.25) ? recursive : operations);
  const builder = new OperationBuilder(context.schema, draw, context.ids);
  const variables: Record<string, unknown> = {};
  const raw: string[] = [];
  for (const arg of operation.args) {
    switch (draw.int(0, 9)) {
      case 0:
        variables[arg.name] = draw.from(wrongValue);
        break;
      case 1:
        // Deep objects, up to what fits in the body limit: through AND/OR where the type recurses.
        variables[arg.name] = deepObject(
          draw.pick([10, 100, 1_000, 5_000, 12_000]),
          isRecursive(arg) ? draw.pick(['AND', 'OR']) : draw.pick(['a', '__proto__']),
          raw,
        );
        break;
      case 2:
        variables[arg.name] = deepArray(draw.int(10, 40_000), raw);
        break;
      case 3:
        // Long arrays and long strings, under and over the body limit (1 MB must be a 4xx).
        variables[arg.name] = draw.chance(0.5)
          ? new Array(draw.int(100, 50_000)).fill(draw.chance(0.5) ? 'x' : 1)
          : 'z'.repeat(draw.pick([1_000, 60_000, 99_000, 120_000, 1_048_576]));
        break;
      case 4:
        {
          const value = builder.value(arg.type, arg.name, 0);
          variables[arg.name] =
            value !== null && typeof value === 'object' && !Array.isArray(value)
              ? prototypeKeys({ role: 'admin', isAdmin: true }, value as Record<string, unknown>)
              : prototypeKeys({ role: 'admin' });
        }
        break;
      default:
        variables[arg.name] = builder.value(arg.type, arg.name, 0);
    }
  }
  const body: Record<string, unknown> = { query: operation.query, variables };
  switch (draw.int(0, 7)) {
    case 0:
      prototypeKeys({ query: '{ me { id roles } }' }, variables);
      break;
    case 1:
      prototypeKeys({ query: '{ me { id roles } }', variables: { a: 1 } }, body);
      break;
    case 2:
      body.variables = draw.pick(['{"a":1}', 42, [1, 2], true, 'null', '', JSON.stringify(variables)]);
      break;
    case 3:
      body.extensions = draw.pick<unknown>([
        { persistedQuery: { version: 1, sha256Hash: 'abc' } },
        { persistedQuery: { version: 2, sha256Hash: 'a'.repeat(64) } },
        { persistedQuery: { version: 1, sha256Hash: '0'.repeat(64) } },
        { persistedQuery: 'yes' },
        'x',
        prototypeKeys({ persistedQuery: true }),
      ]);
      if (draw.chance(0.3)) delete body.query;
      break;
    default:
  }
  return graphqlPost(context, 'variables', pickAuth(draw), withRawJson(JSON.stringify(body), raw));
}
