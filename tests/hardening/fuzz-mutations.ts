import fc from 'fast-check';
import { GraphQLSchema, Lexer, Source, TokenKind, isInputObjectType, isObjectType } from 'graphql';
import { FuzzIds, GraphQLBody, literal } from './fuzz-documents';
import { Draw, NUMBER_TOKENS, hostileString } from './fuzz-values';

/**
 * Documents taken apart: token-level mutations of any document (drop, duplicate, insert, swap,
 * rename, re-value, truncate), and the structural attacks of docs/security.md#gql at random sizes
 * (depth, aliases, fragment cycles and fan-out, directives, lengths, numbers).
 */

/** The source text of each token, as graphql's own lexer splits it (comments dropped). */
export function tokensOf(text: string): string[] {
  const lexer = new Lexer(new Source(text));
  const tokens: string[] = [];
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance())
      tokens.push(text.slice(token.start, token.end));
  } catch {
    return text.split(/\s+/).filter(Boolean);
  }
  return tokens;
}

/** Names a mutation may insert: the schema's own, so mutated documents stay close to valid ones. */
export function schemaNames(schema: GraphQLSchema): string[] {
  const names = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    names.add(type.name);
    if (isObjectType(type) || isInputObjectType(type)) for (const field of Object.values(type.getFields())) names.add(field.name);
  }
  return [...names];
}

const PUNCTUATORS = ['{', '}', '(', ')', '[', ']', ':', '!', '=', '$', '@', '...', '|', '&', ','];
const KEYWORDS = [
  'query',
  'mutation',
  'subscription',
  'fragment',
  'on',
  'true',
  'false',
  'null',
  '__typename',
  '__schema',
  '__type',
  'schema',
  'extend',
  'type',
  'directive',
];
const DIRECTIVES = [
  '@skip(if: true)',
  '@include(if: false)',
  '@include(if: $v)',
  '@deprecated',
  '@specifiedBy(url: "x")',
  '@defer',
  '@stream',
  '@oneOf',
  '@nope(a: 1)',
];

/** One to five token edits: drop, duplicate, insert, swap, rename, re-value, truncate. */
export function mutateDocument(draw: Draw, text: string, names: readonly string[]): string {
  const tokens = tokensOf(text);
  const edits = draw.int(1, 5);
  for (let edit = 0; edit < edits && tokens.length > 0; edit += 1) {
    const at = draw.int(0, tokens.length - 1);
    switch (draw.int(0, 7)) {
      case 0:
        tokens.splice(at, 1);
        break;
      case 1:
        tokens.splice(at, 0, ...new Array<string>(draw.chance(0.1) ? draw.int(2, 300) : 1).fill(tokens[at]));
        break;
      case 2:
        tokens.splice(at, 0, randomToken(draw, names));
        break;
      case 3: {
        const other = draw.int(0, tokens.length - 1);
        [tokens[at], tokens[other]] = [tokens[other], tokens[at]];
        break;
      }
      case 4:
        if (/^[_A-Za-z]/.test(tokens[at])) tokens[at] = draw.chance(0.5) ? draw.pick(names) : randomName(draw);
        break;
      case 5:
        if (/^["\d-]/.test(tokens[at])) tokens[at] = draw.chance(0.5) ? literal(draw.from(hostileString)) : draw.pick(NUMBER_TOKENS);
        break;
      case 6:
        tokens.splice(at, 0, draw.pick(DIRECTIVES));
        break;
      default:
        tokens.length = at;
    }
  }
  return tokens.join(' ');
}

function randomToken(draw: Draw, names: readonly string[]): string {
  switch (draw.int(0, 5)) {
    case 0:
      return draw.pick(PUNCTUATORS);
    case 1:
      return draw.pick(KEYWORDS);
    case 2:
      return draw.pick(names);
    case 3:
      return literal(draw.from(hostileString));
    case 4:
      return draw.pick(NUMBER_TOKENS);
    default:
      return `$${randomName(draw)}`;
  }
}

function randomName(draw: Draw): string {
  if (draw.chance(0.05)) return `n${'a'.repeat(draw.int(1_000, 60_000))}`;
  return draw.from(fc.stringMatching(/^[_A-Za-z][_0-9A-Za-z]{0,20}$/));
}

// ---------------------------------------------------------------------------------------------
// Structural attacks (docs/security.md#gql)

/** A selection path that really recurses in the schema: Post → comments → edges → node → post → comments … */
const RECURSIVE_PATH = ['comments(first: 2)', 'edges', 'node', 'post'];

/** Documents built to hit a limit or a recursion: depth, aliases, fragments, directives, sizes. */
export function structuralAttack(draw: Draw, ids: FuzzIds): GraphQLBody {
  const depth = draw.chance(0.5) ? draw.int(7, 40) : draw.int(40, 500);
  const count = draw.chance(0.5) ? draw.int(14, 40) : draw.int(40, 3_000);
  const postId = JSON.stringify(draw.pick(ids.postIds));
  switch (draw.int(0, 15)) {
    case 0: {
      // Deep nesting along a real recursion of the schema.
      const path = Array.from({ length: depth }, (_, index) => RECURSIVE_PATH[index % RECURSIVE_PATH.length]);
      return { query: `{ post(id: ${postId}) { ${path.join(' { ')} { __typename }${' }'.repeat(depth)} } }` };
    }
    case 1:
      return { query: `{ ${'me { '.repeat(depth)}id${' }'.repeat(depth)} }` };
    case 2:
      // Deep list and object literals in arguments.
      return { query: `{ posts(where: { id: { in: ${'['.repeat(depth)}"x"${']'.repeat(depth)} } }) { totalCount } }` };
    case 3:
      return { query: `{ posts(where: ${'{ AND: [ '.repeat(depth)}{ title: { eq: "x" } }${' ] }'.repeat(depth)}) { totalCount } }` };
    case 4:
      return { query: `${'{'.repeat(depth)}${'}'.repeat(draw.int(0, depth))}` };
    case 5:
      // Alias overloading (GQL-4), and brute force through aliases (MFA-6).
      return { query: `{ ${Array.from({ length: count }, (_, index) => `a${index}: __typename`).join(' ')} }` };
    case 6: {
      const aliases = Array.from(
        { length: Math.min(count, 300) },
        (_, index) => `a${index}: signIn(input: { email: "nobody@example.com", password: "guess-${index}" }) { __typename }`,
      );
      return { query: `mutation { ${aliases.join(' ')} }` };
    }
    case 7: {
      // Fragment cycles (GQL-7): self, pair, and a long ring.
      const ring = Math.min(count, 200);
      return {
        query: draw.pick([
          '{ ...A } fragment A on Query { ...A }',
          '{ ...A } fragment A on Query { serverInfo { name } ...B } fragment B on Query { ...A }',
          `{ ...F0 } ${Array.from({ length: ring }, (_, index) => `fragment F${index} on Query { ...F${(index + 1) % ring} }`).join(' ')}`,
        ]),
      };
    }
    case 8: {
      // Fragment fan-out (GQL-7): each fragment spreads the next one twice.
      const fragments = Array.from(
        { length: Math.min(depth, 60) },
        (_, index) => `fragment F${index} on Query { serverInfo { name } ...F${index + 1} ...F${index + 1} }`,
      );
      return { query: `{ ...F0 } ${fragments.join(' ')} fragment F${Math.min(depth, 60)} on Query { __typename }` };
    }
    case 9:
      // Directive overloading (GQL-4), known and unknown.
      return { query: `{ __typename ${Array.from({ length: Math.min(count, 500) }, () => draw.pick(DIRECTIVES)).join(' ')} }` };
    case 10:
      return { query: `{ serverInfo { name } } # ${'x'.repeat(draw.int(1_000, 99_000))}` };
    case 11:
      return { query: `{ posts(where: { title: { contains: ${JSON.stringify('y'.repeat(draw.int(1_000, 90_000)))} } }) { totalCount } }` };
    case 12:
      return { query: `{ posts(first: ${draw.pick(NUMBER_TOKENS)}) { totalCount } }` };
    case 13:
      // Many operations in one document, with a wrong or missing operationName.
      return {
        query: Array.from({ length: Math.min(count, 200) }, (_, index) => `query Q${index} { __typename }`).join(' '),
        operationName: draw.pick([undefined, 'Q0', 'Nope', 7, ['Q0'], { name: 'Q0' }, '']),
      };
    case 14:
      // Variables declared many times, or of an unknown type, or used where undeclared.
      return {
        query: draw.pick([
          `query(${Array.from({ length: Math.min(count, 300) }, () => '$a: Int').join(', ')}) { __typename }`,
          'query($a: Nope) { __typename }',
          '{ post(id: $undeclared) { id } }',
          'query($a: [[[[[Int]]]]] = [[[[[1]]]]]) { __typename }',
        ]),
        variables: { a: 1 },
      };
    default:
      return {
        query: draw.pick([
          '{ __schema { types { name fields { name } } } }',
          '{ __type(name: "User") { fields { name } } }',
          'subscription { me { id } }',
          'query { me { id } } mutation { signOut }',
          '',
          ' ',
          '#',
          '{}',
          '{ }',
          'query',
          '"""',
          '"\\u',
          '\uFEFF{ __typename }',
        ]),
      };
  }
}
