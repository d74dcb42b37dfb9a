import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { SignJWT, generateKeyPair, jwtVerify } from 'jose';
import { Pool } from 'pg';
import { closeAtOnce, listenOnLoopback } from './loopback';

/**
 * The least a real authenticated endpoint can do: check an access token, ask PostgreSQL once and
 * write JSON. Bastion's rows are measured against it, so what the ratio shows is the cost of
 * express, Apollo, the shield and the resolvers on top of work no implementation can skip.
 *
 * Two floors: POST /graphql answers serverInfo from `SELECT now()` (the trivial floor); POST /posts
 * answers the reader's first 100 posts from one statement, the rows the policy lets them read
 * (published, or their own) in the list's default order, shaped as the GraphQL answer (floor-100).
 */
export interface FloorServer {
  /** Origin, e.g. http://127.0.0.1:54321 */
  readonly origin: string;
  /** A valid access token for the Authorization header. */
  readonly token: string;
  close(): Promise<void>;
}

const ISSUER = 'bastion-bench';
const AUDIENCE = 'bastion-bench-floor';

interface ServerTimeRow {
  server_time: Date;
}

interface PostRow {
  id: string;
  title: string;
  author_id: string;
}

/** The reader's visible posts, as Bastion's scope for them reads (anonymous: published; user: own). */
const READER_PAGE_SQL = 'SELECT id, title, author_id FROM posts WHERE published = true OR author_id = $1 ORDER BY created_at, id LIMIT 100';

/** `subject`: the user id the token speaks for (the bench reader), whose posts floor-100 lists. */
export async function startFloorServer(options: {
  databaseUrl: string;
  version: string;
  poolSize: number;
  subject: string;
}): Promise<FloorServer> {
  // Not extractable: the keys never leave this process.
  const { privateKey, publicKey } = await generateKeyPair('EdDSA');
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(options.subject)
    .setJti(randomUUID())
    .setIssuedAt()
    // Outlives any sensible BENCH_DURATION; an expired token would turn the floor into 401s.
    .setExpirationTime('6h')
    .sign(privateKey);

  const pool = new Pool({ connectionString: options.databaseUrl, max: options.poolSize });
  // An idle client's error would otherwise be an unhandled 'error' event and kill the run.
  pool.on('error', () => undefined);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer) return reply(res, 401, { errors: [{ message: 'missing bearer token' }] });
    let subject: string;
    try {
      const { payload } = await jwtVerify(bearer, publicKey, {
        algorithms: ['EdDSA'],
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      });
      subject = payload.sub!;
    } catch {
      return reply(res, 401, { errors: [{ message: 'invalid token' }] });
    }
    try {
      // Bastion has to parse the body too; skipping it would flatter the floor.
      JSON.parse(body);
    } catch {
      return reply(res, 400, { errors: [{ message: 'body is not JSON' }] });
    }
    if (req.url === '/posts') {
      const { rows } = await pool.query<PostRow>(READER_PAGE_SQL, [subject]);
      return reply(res, 200, {
        data: { posts: { edges: rows.map((row) => ({ node: { id: row.id, title: row.title, authorId: row.author_id } })) } },
      });
    }
    const { rows } = await pool.query<ServerTimeRow>('SELECT now() AS server_time');
    reply(res, 200, { data: { serverInfo: { name: 'Bastion', version: options.version, serverTime: rows[0].server_time.toISOString() } } });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) reply(res, 500, { errors: [{ message: 'internal error' }] });
      else res.destroy();
    });
  });
  let origin: string;
  try {
    origin = await listenOnLoopback(server);
  } catch (error) {
    await pool.end();
    throw error;
  }

  return {
    origin,
    token,
    close: async () => {
      await closeAtOnce(server);
      await pool.end();
    },
  };
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function reply(res: http.ServerResponse, status: number, payload: unknown): void {
  const json = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}
