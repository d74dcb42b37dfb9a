import type { Socket } from 'node:net';
import { CLI_ACTOR } from '../../src/audit/actor';
import { FirewallAction } from '../../src/firewall/firewall-rule.entity';
import { eventually } from '../support/eventually';
import { TestAccount, makeUser } from '../support/factories';
import { liveClient } from '../support/live-client';
import { leaksIn } from '../support/leaks';
import { RawSocket, RawSocketOptions, errorsOf, rawSocket } from '../support/raw-socket';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * Attacks on the WebSocket endpoint (graphql-transport-ws on /graphql): each refused as
 * README "Realtime" documents, with the server healthy afterwards (a fresh socket still hears a
 * change, /healthz answers) and no message or close reason carrying a stack trace or SQL.
 */

const ALLOWED_ORIGIN = 'https://app.example.com';
const POST_CHANGED = 'subscription { postChanged { kind id node { id title } } }';

let server: TestServer;
let author: TestAccount;
/** Every socket a test opened, to check what the server sent on all of them (and to close them). */
const sockets: RawSocket[] = [];
let addresses = 0;

/** A fresh client address (X-Forwarded-For from the trusted loopback), so the per-address limit is the test's own. */
function nextAddress(): string {
  addresses += 1;
  return `10.77.${Math.floor(addresses / 250)}.${(addresses % 250) + 1}`;
}

function open(options: RawSocketOptions = {}): RawSocket {
  const socket = rawSocket(server, { address: nextAddress(), ...options });
  sockets.push(socket);
  return socket;
}

let ids = 0;
function subscribe(socket: RawSocket, query: string, variables?: Record<string, unknown>): string {
  ids += 1;
  const id = `s${ids}`;
  socket.send({ id, type: 'subscribe', payload: { query, ...(variables ? { variables } : {}) } });
  return id;
}

/** The first answer to subscription `id` that carries errors (an `error` message, or a `next` with errors). */
async function errorsFor(socket: RawSocket, id: string): Promise<{ message: string; extensions?: { code?: string } }[]> {
  const answer = await socket.waitFor((message) => message.id === id && (message.type === 'error' || errorsOf(message).length > 0));
  return errorsOf(answer);
}

const hub = () => server.bastion.services.subscriptionHub;

/** A fresh signed-in socket hears its author's new post, and /healthz answers 200. */
async function expectHealthy(): Promise<void> {
  expect((await fetch(`${server.origin}/healthz`)).status).toBe(200);
  const writer = await makeUser(server);
  const live = liveClient(server, writer.accessToken, { 'x-forwarded-for': nextAddress() });
  try {
    await live.connected;
    const changes = live.subscribe(
      'subscription($author: ID) { postChanged(where: { authorId: { eq: $author } }) { kind id node { title } } }',
      {
        author: writer.id,
      },
    );
    await eventually(() =>
      hub()
        .connections()
        .some((connection) => connection.userId === writer.id),
    );
    const created = await writer.client.request<{ createPost: { id: string } }>(
      'mutation { createPost(input: { title: "still alive" }) { id } }',
    );
    const id = created.body.data!.createPost.id;
    const [first] = await changes.next(1);
    expect(first).toEqual({ data: { postChanged: { kind: 'CREATED', id, node: { title: 'still alive' } } } });
  } finally {
    await live.dispose();
  }
}

beforeAll(async () => {
  server = await startTestServer({
    config: {
      // Each socket speaks from an address of its own (X-Forwarded-For from loopback).
      trustProxy: ['127.0.0.1/32', '::1/128'],
      corsOrigins: [ALLOWED_ORIGIN],
      wsInitTimeoutMs: 300,
      wsMaxSubscriptions: 3,
      wsMaxSocketsPerAddress: 3,
      wsMaxBufferedBytes: 16 * 1024,
    },
  });
  author = await makeUser(server);
});

afterEach(async () => {
  const texts = sockets.flatMap((socket) => socket.texts);
  const reasons = await Promise.all(
    sockets.splice(0).map(async (socket) => {
      const closed = await socket.close();
      return closed.reason;
    }),
  );
  expect([...texts, ...reasons].flatMap((text) => leaksIn(text))).toEqual([]);
});

afterAll(() => server?.close());

describe('upgrade: Origin, firewall and the per-address limit', () => {
  it('refuses a foreign Origin with 403; a listed Origin and no Origin pass', async () => {
    expect(await open({ headers: { origin: 'https://evil.example' } }).opened).toBe(403);
    expect(await open({ headers: { origin: 'null' } }).opened).toBe(403);
    expect(await open({ headers: { origin: `${ALLOWED_ORIGIN}.evil.example` } }).opened).toBe(403);
    const listed = open({ headers: { origin: ALLOWED_ORIGIN } });
    await listed.init();
    const native = open();
    await native.init();
    await expectHealthy();
  });

  it('refuses an address denied by a firewall rule with 403', async () => {
    const rule = await server.bastion.services.firewall.add({ cidr: '198.51.100.0/24', action: FirewallAction.DENY }, CLI_ACTOR);
    try {
      expect(await open({ address: '198.51.100.9' }).opened).toBe(403);
      const elsewhere = open({ address: '198.51.101.9' });
      await elsewhere.init();
    } finally {
      await server.bastion.services.firewall.remove(rule.id, CLI_ACTOR);
    }
    await expectHealthy();
  });

  it('refuses the socket past the per-address limit with 429, and takes one again once one closes', async () => {
    const address = nextAddress();
    const held = [open({ address }), open({ address }), open({ address })];
    for (const socket of held) expect(await socket.opened).toBe('open');
    expect(await open({ address }).opened).toBe(429);
    await held[0].close();
    await eventually(async () => {
      const again = open({ address });
      return (await again.opened) === 'open';
    });
    await expectHealthy();
  });
});

describe('connection_init', () => {
  it('closes a socket that never sends connection_init with 4408', async () => {
    const silent = open();
    expect(await silent.opened).toBe('open');
    expect((await silent.closed).code).toBe(4408);
    await expectHealthy();
  });

  it('closes a socket with a forged token (signature changed) with 4403', async () => {
    const [header, payload, signature] = author.accessToken.split('.');
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    const forged = open();
    expect(await forged.opened).toBe('open');
    forged.send({ type: 'connection_init', payload: { authorization: `Bearer ${header}.${payload}.${flipped}` } });
    expect((await forged.closed).code).toBe(4403);
    // Claims changed under the real signature (a forged payload) too.
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const promoted = Buffer.from(JSON.stringify({ ...claims, roles: ['user', 'admin'] })).toString('base64url');
    const tampered = open();
    expect(await tampered.opened).toBe('open');
    tampered.send({ type: 'connection_init', payload: { authorization: `Bearer ${header}.${promoted}.${signature}` } });
    expect((await tampered.closed).code).toBe(4403);
    await expectHealthy();
  });
});

describe('subscribe: rights, validation and operation type', () => {
  it('refuses a root field the viewer may not subscribe to: anonymous commentChanged is UNAUTHENTICATED', async () => {
    const anonymous = open();
    await anonymous.init();
    const id = subscribe(anonymous, 'subscription { commentChanged { kind id node { body } } }');
    const errors = await errorsFor(anonymous, id);
    expect(errors.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    expect(hub().isFollowed('Comment')).toBe(false);
    await expectHealthy();
  });

  it('never tells an anonymous subscriber a field or a row it may not read', async () => {
    const phone = '+447700900456';
    await author.client.request(
      'mutation { createProfile(input: { displayName: "Author", phone: "+447700900456", birthDate: "1990-01-02" }) { id } }',
    );
    const anonymous = open();
    await anonymous.init();
    const id = subscribe(
      anonymous,
      'subscription { postChanged { kind id node { id title published author { displayName phone birthDate } } } }',
    );
    await eventually(() => hub().isFollowed('Post'));
    // A draft is never mentioned to an anonymous subscriber; the published post is, without the author's private fields.
    await author.client.request('mutation { createPost(input: { title: "secret draft" }) { id } }');
    const published = await author.client.request<{ createPost: { id: string } }>(
      'mutation { createPost(input: { title: "for everyone", published: true }) { id } }',
    );
    const postId = published.body.data!.createPost.id;
    const next = await anonymous.waitFor((message) => message.id === id && message.type === 'next');
    const change = (next.payload as { data: { postChanged: { kind: string; id: string; node: Record<string, unknown> } } }).data
      .postChanged;
    expect(change).toMatchObject({ kind: 'CREATED', id: postId, node: { id: postId, title: 'for everyone', published: true } });
    expect(change.node.author).toMatchObject({ displayName: 'Author' });
    expect(change.node.author).toMatchObject({ phone: null, birthDate: null });
    const everything = anonymous.texts.join('\n');
    expect(everything).not.toContain(phone);
    expect(everything).not.toContain('1990-01-02');
    expect(everything).not.toContain('secret draft');
    await expectHealthy();
  });

  it('refuses an alias bomb and a depth bomb with GRAPHQL_VALIDATION_FAILED', async () => {
    const socket = open();
    await socket.init(author.accessToken);
    const aliases = Array.from({ length: 40 }, (_unused, index) => `a${index}: id`).join(' ');
    const aliasBomb = subscribe(socket, `subscription { postChanged { kind ${aliases} } }`);
    expect((await errorsFor(socket, aliasBomb)).map((error) => error.extensions?.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    // Thousands of aliases do not even parse (the token limit).
    const huge = subscribe(
      socket,
      `subscription { postChanged { ${Array.from({ length: 5_000 }, (_unused, index) => `a${index}: id`).join(' ')} } }`,
    );
    expect((await errorsFor(socket, huge)).map((error) => error.extensions?.code)).toEqual(['GRAPHQL_PARSE_FAILED']);
    let deep = 'id';
    for (let level = 0; level < 30; level += 1) deep = `comments(first: 1) { post { ${deep} } }`;
    const depthBomb = subscribe(socket, `subscription { postChanged { node { ${deep} } } }`);
    expect((await errorsFor(socket, depthBomb)).map((error) => error.extensions?.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    // Many root fields (aliased subscriptions) are refused too.
    const roots = subscribe(
      socket,
      `subscription { ${Array.from({ length: 50 }, (_unused, index) => `p${index}: postChanged { id }`).join(' ')} }`,
    );
    // (graphql-js stops at the first error and says so: two errors, one code.)
    expect(new Set((await errorsFor(socket, roots)).map((error) => error.extensions?.code))).toEqual(
      new Set(['GRAPHQL_VALIDATION_FAILED']),
    );
    expect(
      hub()
        .connections()
        .some((connection) => connection.userId === author.id),
    ).toBe(false);
    // The socket stays usable.
    const fine = subscribe(socket, POST_CHANGED);
    await eventually(() =>
      hub()
        .connections()
        .some((connection) => connection.userId === author.id),
    );
    expect(socket.received.filter((message) => message.id === fine)).toEqual([]);
    await expectHealthy();
  });

  it('refuses variables of the wrong type with BAD_USER_INPUT, not a masked internal error', async () => {
    const socket = open();
    await socket.init(author.accessToken);
    const query = 'subscription($where: PostWhere) { postChanged(where: $where) { id } }';
    for (const where of [
      false,
      'title',
      { createdAt: { lt: 'now' } },
      { titel: { eq: 'x' } },
      JSON.parse('{"__proto__": {"isAdmin": true}}'),
    ]) {
      const id = subscribe(socket, query, { where });
      const errors = await errorsFor(socket, id);
      expect(errors.length).toBeGreaterThan(0);
      expect(new Set(errors.map((error) => error.extensions?.code))).toEqual(new Set(['BAD_USER_INPUT']));
      expect(errors.map((error) => error.message).join(' ')).not.toMatch(/Did you mean/);
    }
    await expectHealthy();
  });

  it('closes a socket that reuses a long subscription id with 4409 (the reason cut to fit a close frame)', async () => {
    const socket = open();
    await socket.init(author.accessToken);
    const id = `${'\u00e9'.repeat(100)}x`;
    subscribe(socket, POST_CHANGED);
    socket.send({ id, type: 'subscribe', payload: { query: POST_CHANGED } });
    socket.send({ id, type: 'subscribe', payload: { query: POST_CHANGED } });
    const closed = await socket.closed;
    expect(closed.code).toBe(4409);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(server.logs.lines.filter((line) => line.msg === 'websocket: a message could not be handled')).toEqual([]);
    await expectHealthy();
  });

  it('closes a socket that sends a message only the server sends (next, error, connection_ack) with 4400', async () => {
    for (const type of ['next', 'error', 'connection_ack']) {
      const socket = open();
      await socket.init();
      socket.send({ id: 'x', type, payload: { data: { postChanged: { id: 'forged' } } } });
      expect(await socket.closed).toEqual({ code: 4400, reason: 'Invalid message received' });
    }
    expect(server.logs.lines.filter((line) => line.msg === 'websocket: a message could not be handled')).toEqual([]);
    await expectHealthy();
  });

  it('refuses queries and mutations with BAD_REQUEST and executes nothing', async () => {
    const socket = open();
    await socket.init(author.accessToken);
    const title = `over-ws-${Date.now()}`;
    const mutation = subscribe(socket, `mutation { createPost(input: { title: "${title}" }) { id } }`);
    expect((await errorsFor(socket, mutation)).map((error) => error.extensions?.code)).toEqual(['BAD_REQUEST']);
    const query = subscribe(socket, '{ me { id email } }');
    expect((await errorsFor(socket, query)).map((error) => error.extensions?.code)).toEqual(['BAD_REQUEST']);
    const signOut = subscribe(socket, 'mutation { signOut }');
    expect((await errorsFor(socket, signOut)).map((error) => error.extensions?.code)).toEqual(['BAD_REQUEST']);
    // A document with a subscription and a mutation, the mutation named.
    const named = subscribe(socket, `subscription S { postChanged { id } } mutation M { createPost(input: { title: "${title}" }) { id } }`);
    socket.send({
      id: `${named}-m`,
      type: 'subscribe',
      payload: { query: `mutation M { createPost(input: { title: "${title}" }) { id } }`, operationName: 'M' },
    });
    expect((await errorsFor(socket, `${named}-m`)).map((error) => error.extensions?.code)).toEqual(['BAD_REQUEST']);
    expect(socket.texts.join('\n')).not.toContain(author.email);
    const rows = await server.bastion.database.dataSource.query<unknown[]>('SELECT id FROM posts WHERE title = $1', [title]);
    expect(rows).toEqual([]);
    // The session is alive: the signOut did not run.
    expect((await author.client.request('{ me { id } }')).body).toEqual({ data: { me: { id: author.id } } });
    await expectHealthy();
  });

  it('refuses the subscription past the per-socket limit with RATE_LIMITED', async () => {
    const socket = open();
    await socket.init(author.accessToken);
    const before = hub().connections().length;
    for (let index = 0; index < 3; index += 1) subscribe(socket, POST_CHANGED);
    await eventually(() =>
      hub()
        .connections()
        .some((connection) => connection.userId === author.id && connection.subscriptions === 3),
    );
    const fourth = subscribe(socket, POST_CHANGED);
    expect((await errorsFor(socket, fourth)).map((error) => error.extensions?.code)).toEqual(['RATE_LIMITED']);
    // Completing one makes room for another.
    socket.send({ id: `s${ids - 1}`, type: 'complete' });
    await eventually(() =>
      hub()
        .connections()
        .some((connection) => connection.userId === author.id && connection.subscriptions === 2),
    );
    const again = subscribe(socket, POST_CHANGED);
    await eventually(() =>
      hub()
        .connections()
        .some((connection) => connection.userId === author.id && connection.subscriptions === 3),
    );
    expect(socket.received.filter((message) => message.id === again)).toEqual([]);
    expect(hub().connections().length).toBe(before + 1);
    await expectHealthy();
  });
});

describe('floods', () => {
  it('closes a socket sending 1,000 subscribe messages in a second with 4429', async () => {
    const socket = open();
    await socket.init(author.accessToken);
    for (let index = 0; index < 1_000; index += 1)
      socket.send({ id: `flood-${index}`, type: 'subscribe', payload: { query: POST_CHANGED } });
    expect((await socket.closed).code).toBe(4429);
    await eventually(
      () =>
        !hub()
          .connections()
          .some((connection) => connection.userId === author.id),
    );
    await expectHealthy();
  });

  it('closes a socket sending a 10 MB message with 1009', async () => {
    const socket = open();
    await socket.init(author.accessToken);
    socket.ws.on('error', () => undefined);
    const query = `subscription { postChanged { id } } # ${'x'.repeat(10 * 1024 * 1024)}`;
    socket.send({ id: 'huge', type: 'subscribe', payload: { query } });
    expect((await socket.closed).code).toBe(1009);
    await expectHealthy();
  });

  it('closes a socket whose client never reads with 1013, its send buffer held near wsMaxBufferedBytes', async () => {
    // The server's end of each upgraded connection: what it buffers for the client is its writableLength.
    const httpServer = server.bastion.server.httpServer;
    const upgraded: Socket[] = [];
    const capture = (_request: unknown, raw: Socket) => upgraded.push(raw);
    httpServer.prependListener('upgrade', capture);
    const socket = open();
    let serverSide: Socket | undefined;
    try {
      await socket.init();
      const localPort = (socket.ws as unknown as { _socket: Socket })._socket.localPort;
      serverSide = upgraded.find((raw) => raw.remotePort === localPort);
    } finally {
      httpServer.off('upgrade', capture);
    }
    if (!serverSide) throw new Error('the server end of the socket was not seen');
    // Watches what the server writes: the largest backlog, and the close frame (0x88, then the code).
    let closeCode: number | null = null;
    let codeNext = false;
    let backlogPeak = 0;
    const write = serverSide.write.bind(serverSide) as (chunk: Buffer | string, ...rest: unknown[]) => boolean;
    (serverSide as unknown as { write: typeof write }).write = (chunk, ...rest) => {
      const bytes = Buffer.from(chunk);
      if (codeNext && bytes.length >= 2) {
        closeCode = bytes.readUInt16BE(0);
        codeNext = false;
      } else if (bytes[0] === 0x88) {
        if (bytes.length >= 4) closeCode = bytes.readUInt16BE(2);
        else codeNext = true;
      }
      const result = write(chunk, ...rest);
      backlogPeak = Math.max(backlogPeak, serverSide.writableLength);
      return result;
    };
    const id = subscribe(socket, 'subscription { postChanged { kind id node { id title body } } }');
    await eventually(() => hub().isFollowed('Post'));
    const connectionsBefore = hub().connections().length;
    // The client stops reading: the kernel buffers fill, then the server's own.
    (socket.ws as unknown as { _socket: Socket })._socket.pause();
    const body = 'b'.repeat(10_000);
    let inserted = 0;
    // A loopback connection's kernel buffers hold a few MB; 10,000 changes of ~10 KB are 100 MB.
    while (closeCode === null && !serverSide.destroyed && inserted < 10_000) {
      await server.bastion.database.dataSource.query(
        `INSERT INTO posts (author_id, title, body, published) SELECT $1, 'flood ' || n || ' ' || repeat('t', 180), $2, true FROM generate_series(1, 200) AS n`,
        [author.id, body],
      );
      inserted += 200;
      await server.bastion.services.changeListener.settled();
    }
    process.stdout.write(
      `slow consumer: closed (${closeCode}) after ${inserted} changes of ~10 KB; the server's backlog peaked at ${backlogPeak} bytes\n`,
    );
    expect(closeCode).toBe(1013);
    // Never more than the limit plus the message that crossed it (and the close frame).
    expect(backlogPeak).toBeLessThan(server.config.wsMaxBufferedBytes + 16 * 1024);
    // The server lets go of it (the close handshake it never answers is cut short) and forgets its subscription.
    await eventually(() => serverSide.destroyed && hub().connections().length < connectionsBefore);
    (socket.ws as unknown as { _socket: Socket })._socket.resume();
    expect([1013, 1006]).toContain((await socket.closed).code);
    expect(socket.received.filter((message) => message.id === id && message.type === 'next').length).toBeLessThan(inserted);
    await expectHealthy();
  }, 120_000);
});

describe('an expired access token', () => {
  it('closes the socket at connection_init with 4401', async () => {
    const holder = await makeUser(server);
    server.clock.advance((server.config.accessTokenTtlSeconds + 60) * 1000);
    const socket = open();
    expect(await socket.opened).toBe('open');
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${holder.accessToken}` } });
    expect((await socket.closed).code).toBe(4401);
    // The author's token, issued at the start, expired as well.
    const other = open();
    expect(await other.opened).toBe('open');
    other.send({ type: 'connection_init', payload: { authorization: `Bearer ${author.accessToken}` } });
    expect((await other.closed).code).toBe(4401);
    await expectHealthy();
  });

  it('closes a socket whose token expires while it is open with 4401, at its next subscribe', async () => {
    const holder = await makeUser(server);
    const socket = open();
    await socket.init(holder.accessToken);
    server.clock.advance((server.config.accessTokenTtlSeconds + 60) * 1000);
    subscribe(socket, POST_CHANGED);
    expect((await socket.closed).code).toBe(4401);
    await expectHealthy();
  });
});
