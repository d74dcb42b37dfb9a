import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { ChunkMissingError, ChunkStore } from '../../src/files/chunk-store';
import { PostgresChunkStore } from '../../src/files/postgres-chunk-store';
import { READ_AHEAD, S3ChunkStore, s3ClientConfig, S3StoreError } from '../../src/files/s3-chunk-store';
import { parseStorageUrl, S3StorageTarget } from '../../src/files/storage-url';
import { createDataSource } from '../../src/db/data-source';
import { eventually } from '../support/eventually';
import { inParallel } from '../support/leaks';
import { keysUnder, startS3Server, TestS3Server } from '../support/s3-server';
import { createTestDatabase, TestDatabase } from '../support/test-database';

/** PostgresChunkStore's chunks per statement (CHUNKS_PER_READ, not exported). */
/** The PostgreSQL store reads one chunk per statement, the next one asked for while the reader has the current one. */
const POSTGRES_CHUNKS_AHEAD = 1;

/** What the store asked its backend for, counted outside the store. */
class ReadMeter {
  /** Chunks requested from the backend so far. */
  requested = 0;
  inFlight = 0;
  maxInFlight = 0;
  aborted = 0;

  async measure<T>(chunks: number, work: () => Promise<T>): Promise<T> {
    this.requested += chunks;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      return await work();
    } catch (error) {
      if ((error as Error).name === 'AbortError') this.aborted += 1;
      throw error;
    } finally {
      this.inFlight -= 1;
    }
  }

  reset(): void {
    this.requested = 0;
    this.maxInFlight = 0;
    this.aborted = 0;
  }
}

interface Harness {
  readonly store: ChunkStore;
  readonly reads: ReadMeter;
  /** Most chunks the store may have asked for beyond those its reader took. */
  readonly chunksAhead: number;
  /** Backend requests a read keeps in flight at once, at the most and at the least (fewer: no read-ahead). */
  readonly requestsInFlight: { readonly min: number; readonly max: number };
  /** A content the store may hold chunks of (the database needs its file_contents row). */
  newContent(): Promise<string>;
  /** The chunk indexes the backend holds for a content, read around the store. */
  storedIndexes(contentId: string): Promise<number[]>;
  close(): Promise<void>;
}

let database: TestDatabase;
let s3: TestS3Server;
const PREFIX = 'bastion/';

beforeAll(async () => {
  [database, s3] = await Promise.all([createTestDatabase(), startS3Server()]);
});
afterAll(async () => {
  await Promise.all([database?.drop(), s3?.close()]);
});

function s3Target(overrides: Partial<S3StorageTarget> = {}): S3StorageTarget {
  const target = parseStorageUrl(`s3://${s3.bucket}?endpoint=${s3.endpoint}&prefix=${PREFIX}`);
  if (target.kind !== 's3') throw new Error('expected an s3 target');
  return { ...target, ...overrides };
}

/** A client configured as production does, with the test server's credentials (never process.env). */
function s3Client(target: S3StorageTarget, credentials = s3.credentials): S3Client {
  return new S3Client({ ...s3ClientConfig(target), credentials });
}

/** Counts the client's requests of one command (started, in flight, aborted) and hands over each one's input. */
function meterCommand(client: S3Client, commandName: string, meter: ReadMeter, onInput?: (input: unknown) => void): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== commandName) return next(args);
      onInput?.(args.input);
      return meter.measure(1, () => next(args));
    },
    { step: 'initialize', name: `meter${commandName}` },
  );
}

async function postgresHarness(): Promise<Harness> {
  // The store runs SQL only: no entities needed.
  const dataSource = createDataSource({ url: database.url, poolSize: 4, entities: [] });
  await dataSource.initialize();
  const reads = new ReadMeter();
  // The store reads each chunk by a COPY on a connection of its own from the pool: one connection asked for, one chunk.
  // (TypeORM and pool.query ask with a callback: those pass through unmetered.)
  const pool = (dataSource.driver as unknown as { master: { connect: (...args: unknown[]) => Promise<unknown> } }).master;
  const connect = pool.connect.bind(pool);
  pool.connect = (...args: unknown[]) => (args.length > 0 ? connect(...args) : reads.measure(1, () => connect()));
  const query = (sql: string, parameters?: unknown[]) => dataSource.query(sql, parameters);
  // The data source itself but for query(), which counts the chunk reads.
  const metered = new Proxy(dataSource, {
    get: (target, property) => {
      if (property === 'query') return query;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store: new PostgresChunkStore(metered),
    reads,
    chunksAhead: POSTGRES_CHUNKS_AHEAD,
    requestsInFlight: { min: 1, max: 1 },
    newContent: async () => {
      const id = randomUUID();
      await dataSource.query(
        'INSERT INTO file_contents (id, store, kid, salt, nonce_prefix, chunk_bytes, byte_size) ' +
          "VALUES ($1, 'postgres', 'k1', $2, $3, 65536, 0)",
        [id, randomBytes(32), randomBytes(7)],
      );
      return id;
    },
    storedIndexes: async (contentId) => {
      const rows: { chunk_index: number }[] = await dataSource.query(
        'SELECT chunk_index FROM file_chunks WHERE content_id = $1 ORDER BY chunk_index',
        [contentId],
      );
      return rows.map((row) => row.chunk_index);
    },
    close: async () => {
      await dataSource.destroy();
    },
  };
}

async function s3Harness(): Promise<Harness> {
  const target = s3Target();
  const client = s3Client(target);
  const reads = new ReadMeter();
  meterCommand(client, 'GetObjectCommand', reads);
  const lister = s3Client(target);
  return {
    store: new S3ChunkStore(target, client),
    reads,
    chunksAhead: READ_AHEAD,
    // "A couple ahead": concurrency for throughput, within the read-ahead bound for memory.
    requestsInFlight: { min: 2, max: READ_AHEAD },
    newContent: async () => randomUUID(),
    storedIndexes: async (contentId) => (await listKeys(lister, `${PREFIX}contents/${contentId}/`)).map(Number).sort((a, b) => a - b),
    close: async () => {
      lister.destroy();
    },
  };
}

/** The keys under `prefix`, without it. */
async function listKeys(client: S3Client, prefix: string): Promise<string[]> {
  return (await keysUnder(client, s3.bucket, prefix)).map((key) => key.slice(prefix.length));
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const read: Buffer[] = [];
  for await (const chunk of chunks) read.push(chunk);
  return read;
}

/** The chunks read before the read failed, and its error (undefined when it did not fail). */
async function collectUntilError(chunks: AsyncIterable<Buffer>): Promise<{ read: Buffer[]; error: unknown }> {
  const read: Buffer[] = [];
  try {
    for await (const chunk of chunks) read.push(chunk);
  } catch (error) {
    return { read, error };
  }
  return { read, error: undefined };
}

/** Distinct sealed chunks, of distinct lengths so a swapped or cut chunk shows. */
function sealedChunks(count: number, bytes = 100): Buffer[] {
  return Array.from({ length: count }, (_, index) => randomBytes(bytes + index));
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe.each([
  ['PostgresChunkStore', postgresHarness],
  ['S3ChunkStore', s3Harness],
])('%s (the ChunkStore contract)', (_name, open) => {
  let harness: Harness;
  let store: ChunkStore;
  beforeAll(async () => {
    harness = await open();
    store = harness.store;
  });
  afterAll(async () => {
    await harness?.store.close();
    await harness?.close();
  });

  it('reads back what was put, in index order whatever order it was written in', async () => {
    const content = await harness.newContent();
    const chunks = sealedChunks(6);
    for (const index of [3, 0, 5, 1, 4, 2]) await store.put(content, index, chunks[index]);
    expect(await collect(store.read(content, 0, 5))).toEqual(chunks);
    expect(await harness.storedIndexes(content)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('reads a sub-range, and a single chunk', async () => {
    const content = await harness.newContent();
    const chunks = sealedChunks(8);
    await Promise.all(chunks.map((chunk, index) => store.put(content, index, chunk)));
    expect(await collect(store.read(content, 2, 6))).toEqual(chunks.slice(2, 7));
    expect(await collect(store.read(content, 7, 7))).toEqual([chunks[7]]);
  });

  it('replaces a chunk written again (a retried upload)', async () => {
    const content = await harness.newContent();
    await store.put(content, 0, Buffer.from('first attempt, longer than the second'));
    await store.put(content, 1, Buffer.from('one'));
    await store.put(content, 0, Buffer.from('retry'));
    expect(await collect(store.read(content, 0, 1))).toEqual([Buffer.from('retry'), Buffer.from('one')]);
    expect(await harness.storedIndexes(content)).toEqual([0, 1]);
  });

  it('yields the chunks before a missing one, then throws ChunkMissingError naming it', async () => {
    const content = await harness.newContent();
    const chunks = sealedChunks(6);
    for (const index of [0, 1, 3, 4, 5]) await store.put(content, index, chunks[index]);
    const { read, error } = await collectUntilError(store.read(content, 0, 5));
    expect(read).toEqual(chunks.slice(0, 2));
    expect(error).toBeInstanceOf(ChunkMissingError);
    expect(error).toMatchObject({ contentId: content, chunkIndex: 2 });
  });

  it('throws ChunkMissingError for a content with no chunks at all', async () => {
    const content = await harness.newContent();
    const { read, error } = await collectUntilError(store.read(content, 0, 2));
    expect(read).toEqual([]);
    expect(error).toBeInstanceOf(ChunkMissingError);
    expect(error).toMatchObject({ contentId: content, chunkIndex: 0 });
  });

  it("removes every chunk of the given contents and nothing of another's, and again without error", async () => {
    const [gone, alsoGone, kept, neverWritten] = await Promise.all([1, 2, 3, 4].map(() => harness.newContent()));
    const keptChunks = sealedChunks(2);
    for (let index = 0; index < 3; index += 1) await store.put(gone, index, randomBytes(10));
    for (let index = 0; index < 2; index += 1) await store.put(alsoGone, index, randomBytes(10));
    for (let index = 0; index < 2; index += 1) await store.put(kept, index, keptChunks[index]);

    const removed = [
      { contentId: gone, chunkCount: 3 },
      { contentId: alsoGone, chunkCount: 2 },
      { contentId: neverWritten, chunkCount: 5 },
    ];
    await store.remove(removed);
    expect(await harness.storedIndexes(gone)).toEqual([]);
    expect(await harness.storedIndexes(alsoGone)).toEqual([]);
    expect(await harness.storedIndexes(kept)).toEqual([0, 1]);
    expect(await collect(store.read(kept, 0, 1))).toEqual(keptChunks);
    await expect(collect(store.read(gone, 0, 0))).rejects.toBeInstanceOf(ChunkMissingError);

    await expect(store.remove(removed)).resolves.toBeUndefined();
    await expect(store.remove([])).resolves.toBeUndefined();
    expect(await harness.storedIndexes(kept)).toEqual([0, 1]);
  });

  it('passes its probe', async () => {
    await expect(store.probe()).resolves.toBeUndefined();
  });

  it('round-trips 200 chunks of 64 KiB, reading a bounded number ahead of a slow reader', async () => {
    const content = await harness.newContent();
    const chunks = sealedChunks(200, 64 * 1024);
    await inParallel(chunks, 8, (chunk, index) => store.put(content, index, chunk));

    harness.reads.reset();
    const digests: string[] = [];
    let taken = 0;
    for await (const chunk of store.read(content, 0, 199)) {
      digests.push(sha256(chunk));
      taken += 1;
      if (taken % 50 === 0) {
        // Let the store run as far ahead as it would: a store without a bound fetches to the end here.
        await eventually(() => harness.reads.inFlight === 0);
      }
      expect(harness.reads.requested - taken).toBeLessThanOrEqual(harness.chunksAhead);
    }
    expect(digests).toEqual(chunks.map(sha256));
    expect(harness.reads.requested).toBe(200);
    expect(harness.reads.maxInFlight).toBeGreaterThanOrEqual(harness.requestsInFlight.min);
    expect(harness.reads.maxInFlight).toBeLessThanOrEqual(harness.requestsInFlight.max);
  });
});

describe('S3ChunkStore on an S3-compatible server', () => {
  const credentialSecret = 'S3RVER';
  const stores: ChunkStore[] = [];
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  function storeFor(target: S3StorageTarget, credentials = s3.credentials): S3ChunkStore {
    const store = new S3ChunkStore(target, s3Client(target, credentials));
    stores.push(store);
    return store;
  }

  /** The error `work` rejects with (fails the test when it resolves). */
  async function rejectionOf(work: Promise<unknown>): Promise<Error> {
    const outcome = await work.then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!(outcome instanceof Error)) throw new Error('expected a rejection');
    return outcome;
  }

  function expectOperatorMessage(error: Error): void {
    expect(error).toBeInstanceOf(S3StoreError);
    expect(error.message).not.toMatch(/\n\s+at /);
    expect(error.message).not.toContain(credentialSecret);
    expect(error).not.toHaveProperty('cause');
  }

  it('keeps chunks at <prefix>contents/<content id>/<index>, and its probe leaves nothing behind', async () => {
    const target = s3Target();
    const store = storeFor(target);
    const content = randomUUID();
    await store.put(content, 0, Buffer.from('a'));
    await store.put(content, 12, Buffer.from('b'));
    await store.probe();
    const lister = s3Client(target);
    try {
      expect((await listKeys(lister, `${PREFIX}contents/${content}/`)).sort()).toEqual(['0', '12']);
      expect(await listKeys(lister, `${PREFIX}probe/`)).toEqual([]);
      expect(await listKeys(lister, `contents/${content}/`)).toEqual([]);
    } finally {
      lister.destroy();
    }
  });

  it('fails its probe saying the bucket does not exist', async () => {
    const error = await rejectionOf(storeFor(s3Target({ bucket: 'no-such-bucket' })).probe());
    expectOperatorMessage(error);
    expect(error.message).toContain('bucket "no-such-bucket" does not exist');
    expect(error.message).toContain(s3.endpoint);
    expect(error.message).toContain('could not write a probe object');
  });

  it('fails its probe saying the endpoint cannot be reached when nothing listens there', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const error = await rejectionOf(storeFor(s3Target({ endpoint })).probe());
    expectOperatorMessage(error);
    expect(error.message).toContain(`cannot reach ${endpoint} (ECONNREFUSED)`);
  });

  it('fails its probe saying the server does not know the access key, without the secret', async () => {
    const error = await rejectionOf(storeFor(s3Target(), { accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'wJalrXUtnFEMI' }).probe());
    expectOperatorMessage(error);
    expect(error.message).toContain('could not write a probe object: access denied: the server does not know the access key');
    expect(error.message).toContain('AWS_ACCESS_KEY_ID');
    expect(error.message).not.toContain('wJalrXUtnFEMI');
  });

  it('fails its probe saying which permissions are missing when the server denies access', async () => {
    const proxy = await startRefusingProxy(s3.endpoint, (method) => (method === 'GET' ? ACCESS_DENIED : undefined));
    try {
      const error = await rejectionOf(storeFor(s3Target({ endpoint: proxy.endpoint })).probe());
      expectOperatorMessage(error);
      expect(error.message).toContain('could not read back the probe object: access denied (AccessDenied)');
      expect(error.message).toContain('s3:GetObject');
      expect(error.message).toContain(`"${s3.bucket}/${PREFIX}*"`);
      expect(proxy.refused).toBe(1);
      // The probe object was still deleted after the failed read.
      const lister = s3Client(s3Target());
      try {
        expect(await listKeys(lister, `${PREFIX}probe/`)).toEqual([]);
      } finally {
        lister.destroy();
      }
    } finally {
      await proxy.close();
    }
  });

  it('reports a missing bucket on read as a store failure, not as a missing chunk', async () => {
    const error = await rejectionOf(collect(storeFor(s3Target({ bucket: 'no-such-bucket' })).read(randomUUID(), 0, 0)));
    expect(error).not.toBeInstanceOf(ChunkMissingError);
    expectOperatorMessage(error);
    expect(error.message).toContain('does not exist');
  });

  it('aborts the chunks it fetched ahead when the reader stops early', async () => {
    const target = s3Target();
    const client = s3Client(target);
    const reads = new ReadMeter();
    meterCommand(client, 'GetObjectCommand', reads);
    const store = new S3ChunkStore(target, client);
    stores.push(store);
    const content = randomUUID();
    const chunks = sealedChunks(10, 1024);
    await Promise.all(chunks.map((chunk, index) => store.put(content, index, chunk)));

    for await (const chunk of store.read(content, 0, 9)) {
      expect(chunk).toEqual(chunks[0]);
      break;
    }
    await eventually(() => reads.inFlight === 0);
    expect(reads.requested).toBe(1 + READ_AHEAD);
    expect(reads.aborted).toBeGreaterThan(0);
  });

  it('deletes in batches of at most 1000 keys', async () => {
    const target = s3Target();
    const client = s3Client(target);
    const deletes = new ReadMeter();
    const batchSizes: number[] = [];
    meterCommand(client, 'DeleteObjectsCommand', deletes, (input) =>
      batchSizes.push((input as { Delete: { Objects: unknown[] } }).Delete.Objects.length),
    );
    const store = new S3ChunkStore(target, client);
    stores.push(store);
    const [large, small] = [randomUUID(), randomUUID()];
    for (const index of [0, 999, 1000, 1499]) await store.put(large, index, Buffer.from([index % 256]));
    await store.put(small, 0, Buffer.from('s'));

    await store.remove([
      { contentId: large, chunkCount: 1500 },
      { contentId: small, chunkCount: 1 },
    ]);
    expect(batchSizes).toEqual([1000, 501]);
    const lister = s3Client(target);
    try {
      expect(await listKeys(lister, `${PREFIX}contents/${large}/`)).toEqual([]);
      expect(await listKeys(lister, `${PREFIX}contents/${small}/`)).toEqual([]);
    } finally {
      lister.destroy();
    }
  });

  it('falls back to deleting key by key when the server rejects DeleteObjects, and stops trying it', async () => {
    const proxy = await startRefusingProxy(s3.endpoint, (method, query) =>
      method === 'POST' && query.has('delete') ? NOT_IMPLEMENTED : undefined,
    );
    try {
      const target = s3Target({ endpoint: proxy.endpoint });
      const client = s3Client(target);
      const multiDeletes = new ReadMeter();
      const singleDeletes = new ReadMeter();
      meterCommand(client, 'DeleteObjectsCommand', multiDeletes);
      meterCommand(client, 'DeleteObjectCommand', singleDeletes);
      const store = new S3ChunkStore(target, client);
      stores.push(store);
      const [first, second] = [randomUUID(), randomUUID()];
      for (const content of [first, second]) for (let index = 0; index < 3; index += 1) await store.put(content, index, randomBytes(8));

      await store.remove([{ contentId: first, chunkCount: 3 }]);
      expect(proxy.refused).toBe(1);
      expect(multiDeletes.requested).toBe(1);
      expect(singleDeletes.requested).toBe(3);
      await store.remove([{ contentId: second, chunkCount: 3 }]);
      expect(multiDeletes.requested).toBe(1);
      expect(singleDeletes.requested).toBe(6);

      const lister = s3Client(s3Target());
      try {
        expect(await listKeys(lister, `${PREFIX}contents/${first}/`)).toEqual([]);
        expect(await listKeys(lister, `${PREFIX}contents/${second}/`)).toEqual([]);
      } finally {
        lister.destroy();
      }
    } finally {
      await proxy.close();
    }
  });
});

/** A loopback port nothing listens on (it did a moment ago). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  return port;
}

interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}
const ACCESS_DENIED: Refusal = { status: 403, code: 'AccessDenied', message: 'Access Denied' };
const NOT_IMPLEMENTED: Refusal = {
  status: 501,
  code: 'NotImplemented',
  message: 'A header you provided implies functionality that is not implemented',
};

/**
 * A pass-through to `upstream` that answers the requests `refuse` picks with an S3 error, as a
 * server would that denies access or lacks an operation. Headers go through unchanged, so the
 * signed Host still matches upstream.
 */
async function startRefusingProxy(
  upstream: string,
  refuse: (method: string, query: URLSearchParams) => Refusal | undefined,
): Promise<{ endpoint: string; readonly refused: number; close(): Promise<void> }> {
  const target = new URL(upstream);
  let refused = 0;
  const server = http.createServer((request, response) => {
    const refusal = refuse(request.method ?? 'GET', new URL(request.url ?? '/', 'http://proxy').searchParams);
    if (refusal !== undefined) {
      refused += 1;
      request.resume();
      response.writeHead(refusal.status, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message></Error>`,
      );
      return;
    }
    const forwarded = http.request(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get refused() {
      return refused;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
