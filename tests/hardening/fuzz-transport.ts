import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { mutateDocument, structuralAttack } from './fuzz-mutations';
import { OperationBuilder } from './fuzz-documents';
import type { FuzzRequest } from './fuzz-http';
import { FuzzContext, Headers, authHeaders, endsTheRun, pickAuth } from './fuzz-requests';
import { Draw, hostileString } from './fuzz-values';

/**
 * The fuzzer's HTTP-level requests: broken bodies, encodings and content types, GET with odd
 * query strings and paths, odd methods, odd headers (Authorization, X-Forwarded-For,
 * X-Request-Id, sizes), and raw bytes that no HTTP client library would send.
 */

const CONTENT_TYPES = [
  undefined,
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=XyZ',
  'application/graphql',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json; charset=utf-16le',
  'application/json; charset=bogus',
  'application/json;charset="utf-8"',
  'application/graphql-response+json',
  'application/x-json',
  'application/vnd.api+json',
  '*/*',
  ';;;;',
  'application/json; charset=utf-8; charset=bogus',
  `application/json; x=${'y'.repeat(5_000)}`,
  'APPLICATION/JSON',
  'application/json ',
  'json',
  'application/json; boundary=',
  'application/octet-stream',
  'text/html',
];

/** UTF-8 the standard forbids: overlong forms, encoded surrogates, bytes that never occur, sequences cut short. */
const BAD_UTF8 = [
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xf0, 0x80, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xff],
  [0xfe, 0xff],
  [0xc3],
  [0xe2, 0x82],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
].map((bytes) => Buffer.from(bytes));

export function brokenBody(draw: Draw, context: FuzzContext): FuzzRequest {
  const valid = JSON.stringify(new OperationBuilder(context.schema, draw, context.ids).operation());
  const contentType = (type: string | undefined): Headers => (type === undefined ? [] : [['content-type', type]]);
  const send = (body: Buffer, headers: Headers, kind: string): FuzzRequest => {
    // Judged on the text before it was compressed or re-encoded too: a gzipped signOut still signs out.
    const auth = endsTheRun(valid) || endsTheRun(body.toString('latin1')) ? 'anonymous' : pickAuth(draw);
    return { kind, auth, method: 'POST', path: '/graphql', headers: [...headers, ...authHeaders(context, auth)], body };
  };
  switch (draw.int(0, 11)) {
    case 0:
      // A valid body cut anywhere.
      return send(Buffer.from(valid.slice(0, draw.int(0, valid.length - 1))), contentType('application/json'), 'body-truncated');
    case 1:
      return send(
        Buffer.from(draw.from(fc.uint8Array({ minLength: 0, maxLength: 4_000 }))),
        contentType(draw.pick(CONTENT_TYPES)),
        'body-random-bytes',
      );
    case 2:
      return send(
        Buffer.from(
          draw.pick([
            '{"query":}',
            '{"query": "{ __typename }",}',
            "{'query': '{ __typename }'}",
            '{"query": NaN}',
            '{"query": "{ __typename }" /* c */}',
            'null',
            '1',
            '"x"',
            'true',
            '[]',
            '{}',
            '[{"query":"{ __typename }"}]',
            '{"query":"{ __typename }"}{"query":"{ me { id } }"}',
            '{"query":"{ __typename }"} trailing',
            '\u0000',
            '{"query":"\\ud800"}',
            '{"query":"\\u0000"}',
            '{"query":"{ __typename }","query":"{ me { id } }"}',
          ]),
        ),
        contentType(draw.pick(['application/json', 'application/json; charset=utf-8'])),
        'body-malformed-json',
      );
    case 3: {
      const depth = draw.int(1_000, 60_000);
      return send(
        Buffer.from(
          draw.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth / 5)}1${'}'.repeat(depth / 5)}`,
        ),
        contentType('application/json'),
        'body-deep-json',
      );
    }
    case 4: {
      // Bytes that are not UTF-8, inside a string value, or UTF-8 with a BOM, or UTF-16.
      const [head, tail] = [valid.slice(0, valid.indexOf('{', 2) + 1 || 10), valid.slice(valid.indexOf('{', 2) + 1 || 10)];
      const body =
        draw.int(0, 2) === 0
          ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid)])
          : draw.chance(0.5)
            ? Buffer.from(valid, 'utf16le')
            : Buffer.concat([
                Buffer.from(`{"query":"{ posts(where: { title: { eq: \\"`),
                draw.pick(BAD_UTF8),
                Buffer.from('\\" } }) { totalCount } }"}'),
              ]);
      return send(
        draw.chance(0.2) ? Buffer.concat([Buffer.from(head), draw.pick(BAD_UTF8), Buffer.from(tail)]) : body,
        contentType(draw.pick(['application/json', 'application/json; charset=utf-16', 'application/json; charset=utf-8'])),
        'body-encoding',
      );
    }
    case 5:
      return send(Buffer.from(valid), contentType(draw.pick(CONTENT_TYPES)), 'body-content-type');
    case 6: {
      // Compressed bodies: valid, garbage, unknown, and a bomb that inflates past the limit.
      const encoding = draw.pick(['gzip', 'deflate', 'br', 'identity', 'compress', 'x-unknown', 'gzip, gzip', 'GZIP']);
      const body =
        draw.int(0, 2) === 0
          ? gzipSync(Buffer.from(valid))
          : draw.chance(0.5)
            ? Buffer.from(draw.from(fc.uint8Array({ maxLength: 200 })))
            : (encoding === 'deflate' ? deflateSync : gzipSync)(Buffer.alloc(draw.int(50_000, 5_000_000), 0x20));
      return send(body, [...contentType('application/json'), ['content-encoding', encoding]], 'body-compressed');
    }
    case 7:
      return send(
        Buffer.from(
          `--XyZ\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${valid}\r\n` +
            `--XyZ\r\nContent-Disposition: form-data; name="map"\r\n\r\n{"0":["variables.file"]}\r\n` +
            `--XyZ\r\nContent-Disposition: form-data; name="0"; filename="a.txt"\r\n\r\nhello\r\n--XyZ--\r\n`,
        ),
        contentType(draw.pick(['multipart/form-data; boundary=XyZ', 'multipart/form-data'])),
        'body-multipart',
      );
    case 8:
      return send(
        Buffer.from(`query=${encodeURIComponent('{ me { id } }')}&variables=%7B%7D`),
        contentType('application/x-www-form-urlencoded'),
        'body-form',
      );
    case 9:
      return send(
        Buffer.from(new OperationBuilder(context.schema, draw, context.ids).operation().query),
        contentType('application/graphql'),
        'body-graphql',
      );
    case 10:
      return send(Buffer.alloc(0), contentType(draw.pick(['application/json', undefined, 'text/plain'])), 'body-empty');
    default: {
      // Over the limit: must be a 4xx (413), however it is sent.
      const size = draw.pick([102_401, 200_000, 1_048_576, 3_000_000]);
      return send(
        Buffer.from(JSON.stringify({ query: '{ __typename }', variables: { pad: 'p'.repeat(size) } })),
        contentType(draw.pick(['application/json', 'text/plain', undefined])),
        'body-over-limit',
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GET, paths and methods

const ODD_PATHS = [
  '/graphql/',
  '/GRAPHQL',
  '//graphql',
  '/graphql/..%2f',
  '/graphql;x=1',
  '/graphql%00',
  '/graphql%2e',
  '/./graphql',
  '/graphql/../graphql',
  '/%',
  '/%zz',
  '/\u00e9',
  '/.well-known/jwks.json',
  '/.well-known/jwks.json?x=%',
  '/healthz?%',
  '/readyz',
  '/',
  '/graphql#frag',
  '/*',
  `/${'a'.repeat(5_000)}`,
  '/admin',
  '/.git/config',
  '/node_modules/graphql/package.json',
  '/dist/src/server.js',
];

const ODD_QUERY_STRINGS = [
  'query[]=a&query[]=b',
  'query=%7B__typename%7D&query=%7Bme%7Bid%7D%7D',
  'query[a]=1',
  '%',
  'query=%E0%A4%A',
  'query=%00',
  'query=%7B__typename%7D&variables=%7Bbad',
  'query=%7B__typename%7D&variables=%7B%22__proto__%22%3A%7B%22x%22%3A1%7D%7D',
  'extensions=%7B%22persistedQuery%22%3A%7B%22version%22%3A1%2C%22sha256Hash%22%3A%22abc%22%7D%7D',
  '__proto__[x]=1&query=%7B__typename%7D',
  'constructor[prototype][x]=1&query=%7B__typename%7D',
  'query=mutation%7BsignUp(input%3A%7Bemail%3A%22a%40b.c%22%2Cpassword%3A%22x%22%7D)%7B__typename%7D%7D',
  'query=%7B__typename%7D&operationName[]=x',
  'query=%7B__typename%7D&variables=null',
  'query=%7B__typename%7D&variables=%5B%5D',
  'query=',
  '?',
  '&&&',
  'query=%7B__typename%7D&extensions=%7B%7D',
  `q=${'x'.repeat(10_000)}`,
  `query=${'%7B'.repeat(2_000)}`,
  // Variables nested as deep as a URL allows (node refuses headers past 16 KB).
  `query=${encodeURIComponent('query($where: PostWhere) { posts(where: $where) { totalCount } }')}` +
    `&variables=${encodeURIComponent(`{"where":${'{"AND":['.repeat(300)}{}${']}'.repeat(300)}}`)}`,
];

export function getRequest(draw: Draw, context: FuzzContext): FuzzRequest {
  let path: string;
  const roll = draw.int(0, 9);
  if (roll < 4) {
    const operation = draw.chance(0.5)
      ? new OperationBuilder(context.schema, draw, context.ids).operation()
      : { ...structuralAttack(draw, context.ids), variables: undefined };
    const query = draw.chance(0.3) ? mutateDocument(draw, operation.query, context.names) : operation.query;
    const params = new URLSearchParams({ query });
    if (operation.variables !== undefined) params.set('variables', JSON.stringify(operation.variables));
    if (typeof operation.operationName === 'string') params.set('operationName', operation.operationName);
    path = `/graphql?${params.toString()}`;
  } else if (roll < 8) {
    path = `/graphql?${draw.pick(ODD_QUERY_STRINGS)}`;
  } else {
    path = draw.pick(ODD_PATHS);
  }
  const auth = endsTheRun(decodeURIComponentSafe(path)) ? 'anonymous' : pickAuth(draw);
  const headers: Headers = [...authHeaders(context, auth)];
  // CSRF prevention wants one of these on a GET; sometimes they are missing.
  if (draw.chance(0.7)) headers.push(draw.chance(0.5) ? ['apollo-require-preflight', 'true'] : ['content-type', 'application/json']);
  if (draw.chance(0.3))
    headers.push([
      'accept',
      draw.pick([
        'text/html',
        'application/graphql-response+json',
        'multipart/mixed; deferSpec=20220824',
        'application/json;q=0',
        '*/*',
        'text/event-stream',
        'x/y;;;',
      ]),
    ]);
  return { kind: 'get', auth, method: 'GET', path, headers };
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const ODD_METHODS = [
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'HEAD',
  'TRACE',
  'PROPFIND',
  'MKCOL',
  'LOCK',
  'SEARCH',
  'PURGE',
  'FOO',
  'QUERY',
  'M-SEARCH',
  'LINK',
  'REPORT',
  'CHECKOUT',
  'MERGE',
  'NOTIFY',
  'SUBSCRIBE',
];

export function oddMethod(draw: Draw, context: FuzzContext): FuzzRequest {
  const auth = pickAuth(draw);
  const body = draw.chance(0.7) ? Buffer.from(JSON.stringify({ query: '{ me { id } }' })) : undefined;
  const headers: Headers = [['content-type', 'application/json'], ...authHeaders(context, auth)];
  if (draw.chance(0.3))
    headers.push(
      ['origin', draw.pick(['https://sandbox.embed.apollographql.com', 'https://evil.example', 'null', ''])],
      ['access-control-request-method', draw.pick(['POST', 'DELETE', 'X'])],
    );
  return {
    kind: 'method',
    auth,
    method: draw.pick(ODD_METHODS),
    path: draw.chance(0.8) ? '/graphql' : draw.pick(ODD_PATHS),
    headers,
    body,
  };
}

// ---------------------------------------------------------------------------------------------
// Headers

/** A JWT-shaped string from random JSON: the verifier must refuse it without trusting any of it. */
function forgedJwt(draw: Draw, realToken: string): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const [realHeader, realPayload] = realToken.split('.');
  switch (draw.int(0, 5)) {
    case 0:
      return `${part({ alg: 'none', typ: 'at+jwt' })}.${realPayload}.`;
    case 1: {
      const header = part({
        alg: draw.pick(['HS256', 'RS256', 'EdDSA', 'ES256', 'none', '', 'A'.repeat(5_000)]),
        kid: draw.pick(['../../etc/passwd', "' OR 1=1--", '', 'x'.repeat(2_000), 7]),
        typ: draw.pick(['at+jwt', 'JWT', 'x']),
        crit: draw.pick([undefined, ['exp'], ['b64'], 'x']),
        b64: draw.pick([undefined, false]),
      });
      return `${header}.${realPayload}.${Buffer.from(draw.from(fc.uint8Array({ maxLength: 80 }))).toString('base64url')}`;
    }
    case 2:
      return `${realHeader}.${part(draw.from(fc.jsonValue({ maxDepth: 3 })))}.${realToken.split('.')[2]}`;
    case 3:
      return realToken.slice(0, draw.int(0, realToken.length - 1));
    case 4:
      return `${realToken}${draw.pick(['x', '.', '..', '=', '%00'])}`;
    default:
      return (
        `${Buffer.from(draw.from(fc.uint8Array({ maxLength: 200 }))).toString('base64url')}.` +
        `${Buffer.from(draw.from(fc.uint8Array({ maxLength: 200 }))).toString('base64url')}.` +
        `${Buffer.from(draw.from(fc.uint8Array({ maxLength: 100 }))).toString('base64url')}`
      );
  }
}

/** What node's client will send in a header value: latin1 without control characters. */
function latin1Safe(text: string): string {
  return text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');
}

const XFF = [
  'unknown',
  '1.2.3.4, garbage',
  '::1',
  '[::1]:443',
  'fe80::1%eth0',
  'fe80::1%25eth0, 10.0.0.1',
  '999.999.999.999',
  '0.0.0.0',
  '::ffff:127.0.0.1',
  ', , ,',
  '"1.2.3.4"',
  'for=1.2.3.4',
  '203.0.113.7:99999',
  '2001:db8::1, 203.0.113.7',
  `${'1.2.3.4, '.repeat(800)}5.6.7.8`,
  '::',
  '1.2.3',
  '01.02.03.004',
  '1.2.3.4\t',
  '\u00ff\u00fe',
];

export function oddHeaders(draw: Draw, context: FuzzContext): FuzzRequest {
  const auth = pickAuth(draw);
  const realToken = context.tokens[draw.chance(0.5) ? 'user' : 'admin'];
  const drawn = Buffer.from(JSON.stringify(new OperationBuilder(context.schema, draw, context.ids).operation()));
  // Some of these headers carry the real tokens whatever `auth` says: the body must not end the run.
  const body = endsTheRun(drawn.toString('latin1')) ? Buffer.from('{"query":"{ serverInfo { name } }"}') : drawn;
  const headers: Headers = [['content-type', 'application/json']];
  let sentAuth: FuzzRequest['auth'] = auth;
  switch (draw.int(0, 7)) {
    case 0:
      // Malformed Authorization values, and forged tokens.
      sentAuth = 'as-is';
      headers.push([
        'authorization',
        latin1Safe(
          draw.pick([
            () => 'Bearer',
            () => 'Bearer ',
            () => 'Basic dXNlcjpwYXNz',
            () => 'Bearer a.b.c',
            () => `bearer ${realToken}`,
            () => `Bearer  ${realToken}`,
            () => `Bearer ${context.tokens.user} ${context.tokens.admin}`,
            () => `Bearer ${'A'.repeat(draw.int(100, 12_000))}`,
            () => `Bearer ${forgedJwt(draw, realToken)}`,
            () => `Bearer ${forgedJwt(draw, realToken)}`,
            () => `Token ${realToken}`,
            () => draw.from(hostileString),
            () => 'Bearer eyJ.eyJ.x',
            () => `Bearer ${realToken},Bearer ${realToken}`,
          ])(),
        ),
      ]);
      break;
    case 1:
      // Two Authorization headers: the user's and the admin's, or a token and garbage.
      sentAuth = 'as-is';
      headers.push(
        ['authorization', `Bearer ${context.tokens.user}`],
        ['authorization', draw.chance(0.5) ? `Bearer ${context.tokens.admin}` : 'Basic x'],
      );
      break;
    case 2:
      headers.push(
        ...authHeaders(context, auth),
        ['x-forwarded-for', draw.pick(XFF)],
        ...(draw.chance(0.3) ? ([['x-forwarded-for', draw.pick(XFF)]] as Headers) : []),
        ...(draw.chance(0.3) ? ([['x-forwarded-proto', draw.pick(['https', 'http, https', 'gopher', ''])]] as Headers) : []),
      );
      break;
    case 3:
      headers.push(...authHeaders(context, auth), [
        'x-request-id',
        latin1Safe(
          draw.pick([
            () => 'x'.repeat(draw.int(129, 8_000)),
            () => draw.from(hostileString),
            () => '',
            () => '../../etc',
            () => '\u00e9\u00ff',
            () => 'a b',
            () => '{"json":1}',
          ])(),
        ),
      ]);
      if (draw.chance(0.3)) headers.push(['x-request-id', 'second-id']);
      break;
    case 4:
      // Big headers: one over node's 16 KB header limit (431), or many small ones.
      headers.push(...authHeaders(context, auth));
      if (draw.chance(0.5)) headers.push(['x-padding', 'p'.repeat(draw.pick([4_000, 15_000, 17_000, 40_000]))]);
      else for (let index = 0; index < draw.int(50, 2_500); index += 1) headers.push([`x-h${index}`, 'v']);
      break;
    case 5:
      headers.push(...authHeaders(context, auth), [
        'user-agent',
        latin1Safe(draw.chance(0.5) ? 'ua'.repeat(draw.int(300, 6_000)) : draw.from(hostileString)),
      ]);
      break;
    case 6:
      headers.push(
        ...authHeaders(context, auth),
        ['content-type', draw.pick(['text/plain', 'application/json'])],
        ['host', draw.pick(['evil.example', '', 'localhost:0', '[::1', 'a'.repeat(300)])],
      );
      break;
    default:
      headers.push(...authHeaders(context, auth), [
        draw.pick([
          'origin',
          'accept',
          'accept-charset',
          'accept-encoding',
          'cookie',
          'content-language',
          'if-none-match',
          'range',
          'expect',
          'forwarded',
          'x-real-ip',
          'apollo-require-preflight',
          'x-apollo-operation-name',
          'apollographql-client-name',
          'te',
          'upgrade',
          'connection',
        ]),
        latin1Safe(
          draw.from(
            fc.oneof(
              hostileString,
              fc.constantFrom(
                'bytes=0-1',
                '100-continue',
                'websocket',
                'upgrade',
                'close',
                'gzip, br',
                'trailers',
                'for=1.2.3.4;proto=https',
                'null',
              ),
            ),
          ),
        ),
      ]);
      break;
  }
  return { kind: 'headers', auth: sentAuth, method: 'POST', path: '/graphql', headers, body };
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP: what no client library sends

export function rawHttp(draw: Draw, context: FuzzContext): FuzzRequest {
  const body = '{"query":"{ serverInfo { name } }"}';
  const host = `Host: ${context.host}\r\n`;
  const json = 'Content-Type: application/json\r\n';
  const requests = [
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\nX-Request-Id: a\u0000b\r\n\r\n${body}`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\nAuthorization: Bearer x\rInjected: 1\r\n\r\n${body}`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\nX-Folded: a\r\n b\r\n\r\n${body}`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\nBad Name: x\r\n\r\n${body}`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\nContent-Length: ${body.length + 5}\r\n\r\n${body}`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Transfer-Encoding: chunked\r\n\r\nzz\r\n${body}\r\n0\r\n\r\n`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Transfer-Encoding: chunked\r\n\r\n${(body.length + 100).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: -1\r\n\r\n${body}`,
    // Shorter than the body: the rest reads as a second, garbage request on the same connection.
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${draw.int(0, body.length - 1)}\r\n\r\n${body}`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: 99999999999999999999\r\n\r\n${body}`,
    // Cut short: the client stops sending mid-body (a phone losing its connection).
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length + 50}\r\n\r\n${body}`,
    `post /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\n\r\n${body}`,
    `POST http://evil.example/graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\n\r\n${body}`,
    `POST /graphql HTTP/1.0\r\n${json}Content-Length: ${body.length}\r\n\r\n${body}`,
    `GET /graphql\r\n\r\n`,
    `GET /graphql HTTP/9.9\r\n${host}\r\n`,
    `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
    `GET /${'a'.repeat(20_000)} HTTP/1.1\r\n${host}\r\n`,
    `POST /graphql HTTP/1.1\n${host.replace('\r', '')}Content-Length: ${body.length}\n\n${body}`,
    `GET /graphql?query=%7B__typename%7D HTTP/1.1\r\n${host}Apollo-Require-Preflight: true\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
    `POST /graphql HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\nX-Request-Id: \u00e9\u00ff\r\nUser-Agent: \u0001\u007f\r\n\r\n${body}`,
  ];
  const chosen = draw.chance(0.9) ? draw.pick(requests) : Buffer.from(draw.from(fc.uint8Array({ maxLength: 600 }))).toString('latin1');
  return { kind: 'raw', auth: 'as-is', method: 'RAW', path: '', headers: [], raw: Buffer.from(`${chosen}`, 'latin1') };
}
