import http from 'node:http';
import { Pool } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { FILE_CHUNK_BYTES } from '../../src/files/content-cipher';
import { firstBinaryCopyField } from '../../src/files/postgres-chunk-store';
import { closeAtOnce, listenOnLoopback } from './loopback';

/**
 * The floor of the files section: the same bytes written to and read from the same store
 * (PostgreSQL, rows of 512 KiB in a table shaped like file_chunks) with nothing else: no
 * encryption, no hash, no type check, no tus, no express, no signed URL, no offset claimed per
 * chunk. What Bastion adds on top of it is what the ratio shows.
 *
 * - PUT /chunks/<uuid>: the request body, cut into FILE_CHUNK_BYTES pieces as it arrives (the
 *   receiver's way), one INSERT each in a transaction of its own (so a commit per chunk, as the
 *   store's claim transaction has); 204 with the bytes stored in X-Stored-Bytes.
 * - GET /chunks/<uuid>: the rows back in order, one per binary COPY (as the PostgreSQL store
 *   reads), the next COPY under way while the last chunk is written to the response, waiting for
 *   the socket to drain: two chunks in memory at most.
 */
export interface FilesFloor {
  /** Origin, e.g. http://127.0.0.1:54321 */
  readonly origin: string;
  /** Deletes a content's rows (between runs, so the table does not grow with the section). */
  remove(contentId: string): Promise<void>;
  /** Stops the server and drops the table. */
  close(): Promise<void>;
}

const FLOOR_TABLE = 'bench_files_floor_chunks';
const UUID = /^\/chunks\/([0-9a-f-]{36})$/;

/**
 * The table as file_chunks is (the same key, the same `STORAGE EXTERNAL`: no compression is tried),
 * minus its foreign key to file_contents: the floor checks nothing. Fresh each run.
 */
const FLOOR_TABLE_SQL = [
  `DROP TABLE IF EXISTS ${FLOOR_TABLE}`,
  `CREATE TABLE ${FLOOR_TABLE} (content_id uuid NOT NULL, chunk_index integer NOT NULL, data bytea NOT NULL, PRIMARY KEY (content_id, chunk_index))`,
  `ALTER TABLE ${FLOOR_TABLE} ALTER COLUMN data SET STORAGE EXTERNAL`,
];

/** Waits until the response can take more, or is gone (a client that left emits no 'drain'). */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export async function startFilesFloor(options: { readonly databaseUrl: string }): Promise<FilesFloor> {
  // Two transfers at most run at once (none in the section does): a small pool is enough.
  const pool = new Pool({ connectionString: options.databaseUrl, max: 4, application_name: 'bastion-bench-files-floor' });
  // An idle client's error would otherwise be an unhandled 'error' event and kill the run.
  pool.on('error', () => undefined);
  for (const statement of FLOOR_TABLE_SQL) await pool.query(statement);

  const insert = (contentId: string, index: number, data: Buffer) =>
    pool.query(`INSERT INTO ${FLOOR_TABLE} (content_id, chunk_index, data) VALUES ($1, $2, $3)`, [contentId, index, data]);

  const write = async (contentId: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let index = 0;
    let stored = 0;
    for await (const piece of req as AsyncIterable<Buffer>) {
      pending.push(piece);
      pendingBytes += piece.length;
      while (pendingBytes >= FILE_CHUNK_BYTES) {
        const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
        await insert(contentId, index, all.subarray(0, FILE_CHUNK_BYTES));
        index += 1;
        stored += FILE_CHUNK_BYTES;
        const rest = all.subarray(FILE_CHUNK_BYTES);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
      }
    }
    if (pendingBytes > 0) {
      await insert(contentId, index, pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes));
      stored += pendingBytes;
    }
    res.writeHead(204, { 'x-stored-bytes': String(stored) });
    res.end();
  };

  // As the PostgreSQL store reads: one chunk per binary COPY (bytea as itself, not as hex text).
  const copyChunk = async (contentId: string, index: number): Promise<Buffer | undefined> => {
    const client = await pool.connect();
    try {
      const stream = client.query(
        copyTo(
          `COPY (SELECT data FROM ${FLOOR_TABLE} WHERE content_id = '${contentId}' AND chunk_index = ${index}) TO STDOUT (FORMAT binary)`,
        ),
      );
      const parts: Buffer[] = [];
      for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
      return firstBinaryCopyField(Buffer.concat(parts));
    } finally {
      client.release();
    }
  };

  // The next chunk is under way while the last one is written: Bastion's download reads ahead too,
  // and a floor that waited would flatter it.
  const read = async (contentId: string, res: http.ServerResponse): Promise<void> => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let next: Promise<Buffer | undefined> | undefined = copyChunk(contentId, 0);
    try {
      for (let index = 0; next; index += 1) {
        const data: Buffer | undefined = await next;
        next = data ? copyChunk(contentId, index + 1) : undefined;
        if (!data) break;
        if (res.destroyed) return;
        if (!res.write(data)) await drained(res);
      }
    } finally {
      // A client gone midway leaves a COPY in flight: its outcome no longer matters.
      void next?.catch(() => undefined);
    }
    res.end();
  };

  const server = http.createServer((req, res) => {
    const contentId = UUID.exec(req.url ?? '')?.[1];
    const work =
      contentId === undefined
        ? Promise.resolve(void res.writeHead(404).end())
        : req.method === 'PUT'
          ? write(contentId, req, res)
          : req.method === 'GET'
            ? read(contentId, res)
            : Promise.resolve(void res.writeHead(405).end());
    work.catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      const message = error instanceof Error ? error.message : String(error);
      res.writeHead(500, { 'content-type': 'text/plain' }).end(message);
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
    remove: async (contentId) => {
      await pool.query(`DELETE FROM ${FLOOR_TABLE} WHERE content_id = $1`, [contentId]);
    },
    close: async () => {
      await closeAtOnce(server);
      try {
        await pool.query(`DROP TABLE IF EXISTS ${FLOOR_TABLE}`);
      } finally {
        await pool.end();
      }
    },
  };
}
