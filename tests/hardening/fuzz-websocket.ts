import fc from 'fast-check';
import {
  GraphQLInputObjectType,
  GraphQLOutputType,
  GraphQLSchema,
  getNamedType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
} from 'graphql';
import WebSocket from 'ws';
import { FuzzIds, literal } from './fuzz-documents';
import { mutateDocument } from './fuzz-mutations';
import { Draw, UNICODE_EDGES, dateTime, hostileInt, hostileString, prototypeKeys, wrongValue } from './fuzz-values';
import { leaksIn } from '../support/leaks';
import { WsClosed, errorsOf, rawSocket } from '../support/raw-socket';

/**
 * The fuzzer's WebSocket mode: scripts of graphql-transport-ws messages on real sockets to
 * /graphql. Text that is not JSON, messages of the wrong shape or an unknown type, subscribe
 * before connection_init, duplicate and huge ids, binary frames and text frames that are not
 * UTF-8, odd connection_init payloads (forged, expired, garbage tokens), floods, and generated
 * (and mutated) subscription documents with hostile `where`s and variables, some of them kept
 * open while a change is delivered. Every family draws from fast-check, so a seed replays a run.
 */

export interface WsFuzzContext {
  readonly schema: GraphQLSchema;
  readonly names: readonly string[];
  readonly ids: FuzzIds;
  /** HTTP operations of the integration tests (queries and mutations: refused over WebSocket). */
  readonly corpus: readonly string[];
  readonly tokens: { readonly user: string; readonly admin: string; readonly expired: string; readonly forged: string };
}

export type WsAuth = 'none' | 'anonymous' | 'user' | 'admin' | 'expired' | 'forged' | 'odd';

export interface WsFrame {
  readonly data: string | Buffer;
  /** A Buffer sent as a text frame (bytes that may not be UTF-8) unless `binary`. */
  readonly binary?: boolean;
}

export interface WsScript {
  readonly kind: string;
  readonly auth: WsAuth;
  /** The connection_init frame (or whatever stands in for it); none when the script never initialises. */
  readonly init: WsFrame | null;
  /** Wait for the ack (or the close) before the frames: otherwise a subscribe races the authentication and is refused with 4401. */
  readonly awaitAck: boolean;
  readonly frames: readonly WsFrame[];
  /** Cause a change (and wait for its delivery) once the frames are sent, so open subscriptions execute their selections. */
  readonly provoke: boolean;
}

const text = (message: unknown): WsFrame => ({ data: typeof message === 'string' ? message : JSON.stringify(message) });

function tokenFor(context: WsFuzzContext, auth: WsAuth, draw: Draw): unknown {
  switch (auth) {
    case 'user':
    case 'admin':
    case 'expired':
    case 'forged':
      return `Bearer ${context.tokens[auth]}`;
    case 'odd':
      return draw.pick<unknown>([
        'Bearer',
        'Bearer ',
        'bearer x.y.z',
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        `Bearer ${'A'.repeat(20_000)}`,
        `Bearer ${context.tokens.user}${draw.pick(UNICODE_EDGES)}`,
        `Bearer ${context.tokens.user.split('.').slice(0, 2).join('.')}.`,
        `Bearer e30.e30.${'x'.repeat(draw.int(0, 100))}`,
        ` Bearer  ${context.tokens.user} `,
        42,
        [`Bearer ${context.tokens.user}`],
        { token: context.tokens.user },
        null,
        true,
        draw.from(hostileString),
      ]);
    default:
      return undefined;
  }
}

function initFrame(context: WsFuzzContext, auth: WsAuth, draw: Draw): WsFrame | null {
  if (auth === 'none') return null;
  const authorization = tokenFor(context, auth, draw);
  return text({ type: 'connection_init', payload: authorization === undefined ? {} : { authorization } });
}

function pickAuth(draw: Draw): WsAuth {
  const roll = draw.int(0, 19);
  return roll < 7 ? 'anonymous' : roll < 13 ? 'user' : roll < 16 ? 'admin' : roll < 18 ? 'expired' : roll < 19 ? 'forged' : 'odd';
}

/** A script that initialises as `auth` (awaiting the ack) and then sends `frames`. */
function afterInit(context: WsFuzzContext, draw: Draw, kind: string, frames: WsFrame[], provoke = false): WsScript {
  const auth = pickAuth(draw);
  return { kind, auth, init: initFrame(context, auth, draw), awaitAck: true, frames, provoke };
}

let idCounter = 0;
function freshId(draw: Draw): string {
  idCounter += 1;
  return draw.chance(0.9)
    ? `f${idCounter}`
    : draw.pick(['', '0', ' ', '__proto__', 'constructor', '\u0000', '\uD800', 'é', 'x'.repeat(200)]);
}

// ---------------------------------------------------------------------------------------------
// Subscription documents

/** A value for one leaf input type: plausible (real ids, real values) more often than not. */
function leafValue(draw: Draw, context: WsFuzzContext, typeName: string, field: string): unknown {
  if (draw.chance(0.1)) return draw.from(wrongValue);
  switch (typeName) {
    case 'ID':
      return draw.chance(0.7)
        ? draw.pick([...context.ids.userIds, ...context.ids.postIds, ...context.ids.commentIds])
        : draw.from(hostileString);
    case 'Boolean':
      return draw.chance(0.5);
    case 'Int':
    case 'Float':
      return draw.from(hostileInt);
    case 'DateTimeISO':
      return draw.from(dateTime);
    default:
      return field === 'title' && draw.chance(0.5) ? 'fuzz' : draw.from(hostileString);
  }
}

/** A `where` of the input type: conditions, AND/OR nesting, filter operators, with edge values. */
function whereValue(draw: Draw, context: WsFuzzContext, type: GraphQLInputObjectType, depth: number): Record<string, unknown> {
  const fields = Object.values(type.getFields());
  const value: Record<string, unknown> = {};
  const count = draw.int(0, Math.min(3, fields.length));
  for (let index = 0; index < count; index += 1) {
    const field = draw.pick(fields);
    const named = getNamedType(field.type);
    const list = isListType(isNonNullType(field.type) ? field.type.ofType : field.type);
    if (isInputObjectType(named)) {
      if (named === type) {
        if (depth >= 3) continue;
        const items = Array.from({ length: draw.int(0, 2) }, () => whereValue(draw, context, type, depth + 1));
        value[field.name] = list ? items : (items[0] ?? {});
      } else value[field.name] = whereValue(draw, context, named, depth + 1);
    } else {
      const single = () => leafValue(draw, context, named.name, field.name);
      value[field.name] = list ? Array.from({ length: draw.int(0, 3) }, single) : single();
    }
  }
  if (draw.chance(0.03)) prototypeKeys({ isAdmin: true }, value);
  return value;
}

/** A selection of the output type, to a small depth, sometimes with a list argument at its edges. */
function selectionOf(draw: Draw, type: GraphQLOutputType, depth: number): string {
  const named = getNamedType(type);
  if (isLeafType(named) || !isObjectType(named)) return '';
  const fields = Object.values(named.getFields());
  const candidates = depth >= 4 ? fields.filter((field) => isLeafType(getNamedType(field.type))) : fields;
  if (candidates.length === 0) return ' { __typename }';
  const chosen = new Set(Array.from({ length: draw.int(1, Math.min(4, candidates.length)) }, () => draw.pick(candidates)));
  const parts = [...chosen].map((field) => {
    const args =
      field.args.length > 0 && draw.chance(0.4)
        ? `(${field.args.map((arg) => `${arg.name}: ${String(draw.from(hostileInt))}`).join(', ')})`
        : '';
    return `${draw.chance(0.05) ? 'x: ' : ''}${field.name}${args}${selectionOf(draw, field.type, depth + 1)}`;
  });
  if (draw.chance(0.1)) parts.push('__typename');
  return ` { ${parts.join(' ')} }`;
}

/** A subscription on a root field of the schema, its `where` inline or as a variable (sometimes of the wrong shape). */
export function subscriptionDocument(draw: Draw, context: WsFuzzContext): { query: string; variables?: unknown; operationName?: unknown } {
  const root = context.schema.getSubscriptionType()!;
  const field = draw.pick(Object.values(root.getFields()));
  const whereArg = field.args.find((arg) => arg.name === 'where');
  let declared = '';
  let args = '';
  let variables: unknown;
  if (whereArg && draw.chance(0.7)) {
    const whereType = getNamedType(whereArg.type) as GraphQLInputObjectType;
    const where: unknown = draw.chance(0.9) ? whereValue(draw, context, whereType, 0) : draw.from(wrongValue);
    if (draw.chance(0.5)) {
      declared = `($where: ${draw.chance(0.9) ? whereType.name : draw.pick(['String', 'Int', `[${whereType.name}]`, `${whereType.name}!`])})`;
      args = '(where: $where)';
      variables = draw.chance(0.9) ? { where } : draw.pick<unknown>([[where], 'where', 7, null, { where: { where } }]);
    } else {
      args = `(where: ${literal(where, whereArg.type)})`;
    }
  }
  const name = draw.chance(0.3) ? `Live${draw.int(0, 9)}` : '';
  const query = `subscription${name ? ` ${name}` : ''}${declared} { ${field.name}${args}${selectionOf(draw, field.type, 1)} }`;
  const operationName = name && draw.chance(0.8) ? name : draw.chance(0.05) ? draw.pick<unknown>(['Nope', 5, '', null]) : undefined;
  return { query, variables, operationName };
}

const subscribe = (draw: Draw, payload: unknown, id = freshId(draw)) => text({ id, type: 'subscribe', payload });

// ---------------------------------------------------------------------------------------------
// The families

function generatedSubscriptions(draw: Draw, context: WsFuzzContext): WsScript {
  const frames = Array.from({ length: draw.int(1, 3) }, () => subscribe(draw, subscriptionDocument(draw, context)));
  if (draw.chance(0.2)) frames.push(text({ id: `f${idCounter}`, type: 'complete' }));
  return afterInit(context, draw, 'subscription-generated', frames, draw.chance(0.3));
}

function mutatedSubscriptions(draw: Draw, context: WsFuzzContext): WsScript {
  const frames = Array.from({ length: draw.int(1, 3) }, () => {
    const body = subscriptionDocument(draw, context);
    return subscribe(draw, { ...body, query: mutateDocument(draw, body.query, context.names) });
  });
  return afterInit(context, draw, 'subscription-mutated', frames, draw.chance(0.2));
}

function httpOperationsOverSocket(draw: Draw, context: WsFuzzContext): WsScript {
  const frames = Array.from({ length: draw.int(1, 3) }, () => subscribe(draw, { query: draw.pick(context.corpus) }));
  return afterInit(context, draw, 'query-or-mutation', frames);
}

const NOT_JSON = [
  '',
  ' ',
  'null',
  'true',
  '1',
  '"subscribe"',
  '[]',
  '[{"type":"ping"}]',
  '{',
  '{"type":"ping"',
  '{"type":"ping"}}',
  '{"type":"ping"} {"type":"ping"}',
  "{'type':'ping'}",
  '{"type":"ping",}',
  '{"type":"subscribe","id":"1","payload":{"query":"subscription { postChanged { id } }"}} trailing',
  '\u0000',
  '\uFEFF{"type":"ping"}',
  '{"type":"\\ud800"}',
  `${'['.repeat(5_000)}${']'.repeat(5_000)}`,
  `${'{"a":'.repeat(2_000)}1${'}'.repeat(2_000)}`,
];

function notJson(draw: Draw, context: WsFuzzContext): WsScript {
  const frames = Array.from({ length: draw.int(1, 3) }, () =>
    text(draw.chance(0.5) ? draw.pick(NOT_JSON) : draw.from(fc.oneof(hostileString, fc.string({ maxLength: 200 })))),
  );
  return draw.chance(0.5)
    ? afterInit(context, draw, 'not-json', frames)
    : { kind: 'not-json-before-init', auth: 'none', init: null, awaitAck: false, frames, provoke: false };
}

function wrongTypes(draw: Draw, context: WsFuzzContext): WsScript {
  const query = 'subscription { postChanged { kind id } }';
  const wrong = () => draw.from(wrongValue);
  const frames = Array.from({ length: draw.int(1, 3) }, () =>
    text(
      draw.pick<unknown>([
        { type: 'subscribe', id: wrong(), payload: { query } },
        { type: 'subscribe', id: freshId(draw), payload: wrong() },
        { type: 'subscribe', id: freshId(draw), payload: { query: wrong() } },
        { type: 'subscribe', id: freshId(draw), payload: { query, variables: wrong() } },
        { type: 'subscribe', id: freshId(draw), payload: { query, operationName: wrong() } },
        { type: 'subscribe', id: freshId(draw), payload: { query, extensions: wrong() } },
        { type: 'subscribe', id: freshId(draw) },
        { type: 'subscribe', payload: { query } },
        { type: wrong(), id: freshId(draw), payload: { query } },
        { type: 'complete', id: wrong() },
        { type: 'ping', payload: wrong() },
        { type: 'pong', payload: wrong() },
        { type: 'connection_init', payload: wrong() },
        prototypeKeys({ type: 'subscribe', id: 'proto', payload: { query } }, { type: 'ping' }),
        {
          type: 'subscribe',
          id: freshId(draw),
          payload: { query: 'subscription($w: PostWhere) { postChanged(where: $w) { id } }', variables: { w: wrong() } },
        },
      ]),
    ),
  );
  return afterInit(context, draw, 'wrong-types', frames);
}

function unknownTypes(draw: Draw, context: WsFuzzContext): WsScript {
  const frames = Array.from({ length: draw.int(1, 2) }, () =>
    text({
      type: draw.pick([
        'start',
        'stop',
        'data',
        'connection_terminate',
        'ka',
        'next',
        'error',
        'connection_ack',
        'SUBSCRIBE',
        'subscribe ',
        draw.from(hostileString),
      ]),
      id: freshId(draw),
      payload: { query: 'subscription { postChanged { id } }' },
    }),
  );
  return afterInit(context, draw, 'unknown-type', frames);
}

function subscribeBeforeInit(draw: Draw, context: WsFuzzContext): WsScript {
  const auth = pickAuth(draw);
  const frames = [subscribe(draw, subscriptionDocument(draw, context))];
  // The init sent (or not) without waiting for its ack: the subscribe races the authentication.
  return {
    kind: 'subscribe-before-init',
    auth,
    init: draw.chance(0.5) ? initFrame(context, auth, draw) : null,
    awaitAck: false,
    frames,
    provoke: false,
  };
}

function duplicateIds(draw: Draw, context: WsFuzzContext): WsScript {
  const id = freshId(draw);
  const query = draw.chance(0.7) ? 'subscription { postChanged { kind id } }' : subscriptionDocument(draw, context).query;
  const frames = [subscribe(draw, { query }, id), subscribe(draw, { query }, id)];
  if (draw.chance(0.3)) frames.push(text({ id, type: 'complete' }), subscribe(draw, { query }, id));
  return afterInit(context, draw, 'duplicate-id', frames);
}

function hugeIds(draw: Draw, context: WsFuzzContext): WsScript {
  const id = draw.pick([
    () => 'i'.repeat(draw.int(1_000, 60_000)),
    () => draw.pick(UNICODE_EDGES).repeat(draw.int(100, 5_000)),
    () => draw.from(hostileString),
  ])();
  return afterInit(context, draw, 'huge-id', [subscribe(draw, { query: 'subscription { postChanged { id } }' }, id)]);
}

function binaryFrames(draw: Draw, context: WsFuzzContext): WsScript {
  const frame = (): WsFrame =>
    draw.chance(0.5)
      ? { data: Buffer.from(draw.from(fc.uint8Array({ maxLength: 2_000 }))), binary: true }
      : {
          data: Buffer.from(
            JSON.stringify({ id: freshId(draw), type: 'subscribe', payload: { query: 'subscription { postChanged { id } }' } }),
          ),
          binary: true,
        };
  if (draw.chance(0.3))
    return {
      kind: 'binary-instead-of-init',
      auth: 'none',
      init: { data: Buffer.from('{"type":"connection_init"}'), binary: true },
      awaitAck: false,
      frames: [],
      provoke: false,
    };
  return afterInit(context, draw, 'binary', [frame()]);
}

/** Text frames whose bytes are not UTF-8 (ws refuses them: 1007). */
function badUtf8(draw: Draw, context: WsFuzzContext): WsScript {
  const bad = draw.pick([[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]]);
  const data = Buffer.concat([
    Buffer.from('{"type":"subscribe","id":"u","payload":{"query":"subscription { postChanged(where: { title: { eq: \\"'),
    Buffer.from(bad),
    Buffer.from('\\" } }) { id } }"}}'),
  ]);
  return afterInit(context, draw, 'not-utf8', [{ data }]);
}

function oddInit(draw: Draw, context: WsFuzzContext): WsScript {
  const auth: WsAuth = draw.pick(['expired', 'forged', 'odd', 'odd', 'user']);
  const init = initFrame(context, auth, draw)!;
  const payload = draw.from(wrongValue);
  switch (draw.int(0, 3)) {
    case 0:
      // Initialised twice (graphql-ws: 4429).
      return { kind: 'init-twice', auth, init, awaitAck: true, frames: [init], provoke: false };
    case 1:
      return {
        kind: 'init-odd-payload',
        auth: 'odd',
        init: text({ type: 'connection_init', payload }),
        awaitAck: true,
        frames: [],
        provoke: false,
      };
    case 2:
      return {
        kind: 'init-odd-params',
        auth: 'odd',
        init: text({
          type: 'connection_init',
          payload: {
            authorization: tokenFor(context, 'user', draw),
            ...(typeof payload === 'object' && payload !== null ? payload : { extra: payload }),
          },
        }),
        awaitAck: true,
        frames: [],
        provoke: false,
      };
    default:
      return {
        kind: 'init-token',
        auth,
        init,
        awaitAck: true,
        frames: [subscribe(draw, { query: 'subscription { postChanged { id } }' })],
        provoke: false,
      };
  }
}

function pingsAndCompletes(draw: Draw, context: WsFuzzContext): WsScript {
  const frames = Array.from({ length: draw.int(1, 5) }, () =>
    text(
      draw.pick<unknown>([
        { type: 'ping' },
        { type: 'ping', payload: { x: draw.from(hostileString) } },
        { type: 'pong', payload: {} },
        { type: 'complete', id: freshId(draw) },
        { type: 'complete', id: 'never-subscribed' },
      ]),
    ),
  );
  return afterInit(context, draw, 'ping-complete', frames);
}

function flood(draw: Draw, context: WsFuzzContext): WsScript {
  const frames = Array.from({ length: draw.int(25, 60) }, () =>
    draw.chance(0.5) ? text({ type: 'ping' }) : subscribe(draw, { query: 'subscription { postChanged { id } }' }),
  );
  return afterInit(context, draw, 'flood', frames);
}

/** The families and their share of the run. */
export function wsScripts(context: WsFuzzContext): fc.Arbitrary<WsScript> {
  const family = (build: (draw: Draw, context: WsFuzzContext) => WsScript) =>
    fc.gen().map((generate) => build(new Draw(generate), context));
  return fc.oneof(
    { arbitrary: family(generatedSubscriptions), weight: 25 },
    { arbitrary: family(mutatedSubscriptions), weight: 14 },
    { arbitrary: family(httpOperationsOverSocket), weight: 8 },
    { arbitrary: family(notJson), weight: 8 },
    { arbitrary: family(wrongTypes), weight: 10 },
    { arbitrary: family(unknownTypes), weight: 5 },
    { arbitrary: family(subscribeBeforeInit), weight: 5 },
    { arbitrary: family(duplicateIds), weight: 5 },
    { arbitrary: family(hugeIds), weight: 4 },
    { arbitrary: family(binaryFrames), weight: 4 },
    { arbitrary: family(badUtf8), weight: 2 },
    { arbitrary: family(oddInit), weight: 8 },
    { arbitrary: family(pingsAndCompletes), weight: 4 },
    { arbitrary: family(flood), weight: 2 },
  );
}

// ---------------------------------------------------------------------------------------------
// Running a script and judging what came back

export interface WsOutcome {
  readonly opened: 'open' | number;
  readonly texts: readonly string[];
  /** The server's close, or null when the socket was still open once the script's probe was answered (the client then closed it). */
  readonly closedByServer: WsClosed | null;
  /** Neither the probe answered nor the socket closed in time. */
  readonly hung: boolean;
}

/**
 * Sends the script on a fresh socket, then a probe (a subscribe the server always refuses, so
 * always answers or closes for), and waits for the probe's answer or the close.
 */
export async function runScript(url: string, script: WsScript, provoke: () => Promise<void>, timeoutMs = 5_000): Promise<WsOutcome> {
  const socket = rawSocket({ url });
  socket.ws.on('error', () => undefined);
  const opened = await socket.opened;
  if (opened !== 'open') return { opened, texts: socket.texts, closedByServer: null, hung: false };
  let closedByServer: WsClosed | null = null;
  socket.ws.on('close', (code, reason) => (closedByServer ??= { code, reason: reason.toString() }));
  const send = (frame: WsFrame) => {
    if (socket.ws.readyState === WebSocket.OPEN) socket.ws.send(frame.data, { binary: frame.binary === true });
  };
  const settledOrClosed = (matches: Parameters<typeof socket.waitFor>[0]) =>
    socket.waitFor(matches, timeoutMs).then(
      () => true,
      () => closedByServer !== null,
    );
  if (script.init) {
    send(script.init);
    if (script.awaitAck && !(await settledOrClosed((message) => message.type === 'connection_ack'))) {
      await socket.close();
      return { opened, texts: socket.texts, closedByServer, hung: true };
    }
  }
  for (const frame of script.frames) send(frame);
  if (script.provoke && closedByServer === null) await provoke();
  const probe = `probe-${Math.random().toString(36).slice(2)}`;
  send(text({ id: probe, type: 'subscribe', payload: { query: 'subscription { __probe }' } }));
  const answered = await settledOrClosed((message) => message.id === probe);
  const closedBefore = closedByServer;
  await socket.close();
  return { opened, texts: socket.texts, closedByServer: closedBefore, hung: !answered };
}

/** Close codes a hostile script may earn: the protocol's refusals and the server's limits. */
const EXPECTED_CLOSES = new Set([
  1000, // the client's own
  1007, // a text frame that is not UTF-8
  1009, // too big
  4400, // graphql-ws: a message it cannot read, binary
  4401, // graphql-ws: subscribe before the ack; the server: expired token
  4403, // forged / bad token
  4408, // no connection_init in time
  4409, // duplicate id
  4429, // init twice; too many messages or sockets
]);

/** What was wrong with one script's outcome (empty when nothing). */
export function problemsOf(script: WsScript, outcome: WsOutcome): string[] {
  const problems: string[] = [];
  if (outcome.opened !== 'open') problems.push(`the upgrade was refused: ${outcome.opened}`);
  if (outcome.hung) problems.push('neither answered the probe nor closed');
  const closed = outcome.closedByServer;
  if (closed && !EXPECTED_CLOSES.has(closed.code)) problems.push(`closed with ${closed.code} (${closed.reason})`);
  const sent = [script.init, ...script.frames].map((frame) => (frame ? frame.data.toString() : '')).join('\n');
  for (const message of [...outcome.texts, closed?.reason ?? '']) {
    for (const leak of leaksIn(message, sent)) problems.push(`leak ${leak}`);
    if (message.includes('INTERNAL_SERVER_ERROR') || /internal server error/i.test(message))
      problems.push(`internal error: ${message.slice(0, 300)}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      continue;
    }
    for (const error of errorsOf(parsed as never)) {
      if (typeof error.extensions?.code !== 'string') problems.push(`an error without a code: ${JSON.stringify(error).slice(0, 300)}`);
    }
  }
  return problems;
}

/** A script as a reader can replay it: the frames, clipped, tokens by name. */
export function describeScript(script: WsScript, context: WsFuzzContext): string {
  const clip = (value: string) => (value.length > 400 ? `${value.slice(0, 400)}… (${value.length} chars)` : value);
  const hide = (value: string) =>
    Object.entries(context.tokens).reduce((shown, [name, token]) => shown.split(token).join(`<${name} token>`), value);
  const show = (frame: WsFrame) =>
    `${frame.binary ? 'binary ' : Buffer.isBuffer(frame.data) ? 'text bytes ' : ''}${clip(hide(frame.data.toString()))}`;
  return [
    `[${script.kind}, ${script.auth}${script.awaitAck ? '' : ', no wait for ack'}${script.provoke ? ', provoked' : ''}]`,
    ...(script.init ? [`  init: ${show(script.init)}`] : []),
    ...script.frames.map((frame) => `  ${show(frame)}`),
  ].join('\n');
}
