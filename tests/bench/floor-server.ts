import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { SignJWT, generateKeyPair, jwtVerify } from 'jose';
import { Pool } from 'pg';
import { closeAtOnce, listenOnLoopback } from './loopback';

/**
 * The least a real authenticated endpoint can do: check an access token, ask PostgreSQL once and
 * write JSON. Bastion's rows are measured against it, so what the ratio shows is the cost of
 * express, Apollo, the shield and the resolvers on top of work no implementation can skip.
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

export async function startFloorServer(options: { databaseUrl: string; version: string; poolSize: number }): Promise<FloorServer> {
  // Not extractable: the keys never leave this process.
  const { privateKey, publicKey } = await generateKeyPair('EdDSA');
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('bench-user')
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
    try {
      await jwtVerify(bearer, publicKey, {
        algorithms: ['EdDSA'],
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      });
    } catch {
      return reply(res, 401, { errors: [{ message: 'invalid token' }] });
    }
    try {
      // Bastion has to parse the body too; skipping it would flatter the floor.
      JSON.parse(body);
    } catch {
      return reply(res, 400, { errors: [{ message: 'body is not JSON' }] });
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
