import http from 'node:http';
import net from 'node:net';

/** One fuzzed HTTP request, as plain data so a failure can be printed and replayed. */
export interface FuzzRequest {
  /** Which generator made it, for the report. */
  readonly kind: string;
  /** Whose token the request carries; 'as-is' leaves the headers alone. */
  readonly auth: 'anonymous' | 'user' | 'admin' | 'as-is';
  readonly method: string;
  /** Path and query string, sent exactly as written. */
  readonly path: string;
  /** In order; a name may repeat. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body?: Buffer;
  /**
   * Bytes written to a fresh socket exactly as they are, for what node's client refuses to send:
   * control bytes in headers, broken framing, bodies cut short.
   */
  readonly raw?: Buffer;
}

export interface FuzzResponse {
  /** 0 when the server closed the connection without an answer (it may, for broken HTTP framing). */
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** Long enough for a 1 MB upload on a busy CI machine; a request still waiting after it has hung. */
const RESPONSE_TIMEOUT_MS = 20_000;

/** Sends through a keep-alive agent (node:http, not fetch: fetch refuses odd methods and duplicate headers). */
export function sendHttp(origin: URL, request: FuzzRequest, agent: http.Agent): Promise<FuzzResponse> {
  if (request.raw) return sendRaw(origin, request.raw);
  return new Promise((resolve, reject) => {
    const flatHeaders = request.headers.flatMap(([name, value]) => [name, value]);
    // Given as a list, headers are sent as they are: node adds neither Host nor Content-Length then.
    const named = new Set(request.headers.map(([name]) => name.toLowerCase()));
    if (!named.has('host')) flatHeaders.push('host', origin.host);
    if (request.body && !named.has('content-length') && !named.has('transfer-encoding'))
      flatHeaders.push('content-length', String(request.body.length));
    const outgoing = http.request({
      host: origin.hostname,
      port: origin.port,
      method: request.method,
      path: request.path,
      headers: flatHeaders,
      agent,
    });
    let answered = false;
    const timer = setTimeout(() => outgoing.destroy(new Error(`no response within ${RESPONSE_TIMEOUT_MS} ms`)), RESPONSE_TIMEOUT_MS);
    outgoing.on('response', (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', () => undefined);
      // A server that answers early (413) may close before all of it is read: what arrived is the answer.
      response.on('close', () => {
        clearTimeout(timer);
        resolve({
          status: response.statusCode ?? 0,
          contentType: String(response.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (answered) return;
      // The server may answer an oversized upload and close while the client is still writing it.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') resolve({ status: 0, contentType: '', body: '' });
      else reject(error);
    });
    outgoing.end(request.body);
  });
}

/** Writes bytes to a fresh connection and reads whatever comes back until the server closes it. */
function sendRaw(origin: URL, bytes: Buffer): Promise<FuzzResponse> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: origin.hostname, port: Number(origin.port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), RESPONSE_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRawResponse(Buffer.concat(chunks)));
    });
    // Half-close after writing: a request cut short is then seen as ended by the client.
    socket.end(bytes);
  });
}

/** The first response on a raw connection: status line, headers, body (chunked bodies decoded). */
function parseRawResponse(bytes: Buffer): FuzzResponse {
  const text = bytes.toString('latin1');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (!status) return { status: 0, contentType: '', body: bytes.toString('utf8') };
  const headerEnd = text.indexOf('\r\n\r\n');
  const head = headerEnd < 0 ? text : text.slice(0, headerEnd);
  let body = headerEnd < 0 ? Buffer.alloc(0) : bytes.subarray(headerEnd + 4);
  if (/^transfer-encoding:\s*chunked/im.test(head)) body = dechunk(body);
  const contentType = /^content-type:\s*(.*)$/im.exec(head)?.[1]?.trim() ?? '';
  return { status: Number(status[1]), contentType, body: body.toString('utf8') };
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < body.length) {
    const lineEnd = body.indexOf('\r\n', offset);
    if (lineEnd < 0) break;
    const size = parseInt(body.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
