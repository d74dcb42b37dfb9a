import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Client } from 'pg';
import sharp from 'sharp';
import { Field, ID, ObjectType } from 'type-graphql';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { Config } from '../../src/config';
import { dataFeature } from '../../src/data/data.feature';
import { defineModel } from '../../src/data/define-model';
import type { Feature } from '../../src/feature';
import { fileFieldsFeatures } from '../../src/files/files.feature';
import { fileTriggerSql } from '../../src/files/files-upkeep';
import { makeVariant, reencodeImage } from '../../src/files/image-processor';
import { startFilesFloor, type FilesFloor } from './files-floor';
import { formatColumns } from './report';
import { BenchUser, createBenchUser, graphql } from './sign-in-bench';
import { percentile } from './statistics';
import { withClient } from './harness';

/**
 * Files (src/files), on a Bastion of its own whose only data model is BenchFile (a file field
 * taking video/mp4 up to 2 GiB), the sample models off, quotas and concurrency limits raised, no
 * rate limits. Every transfer is a real client's: a start mutation, the tus creation POST and one
 * PATCH of the whole file, streamed from a generator (the client never holds the file); downloads
 * fetch File.url through GraphQL, then stream the signed URL, hashing and counting as bytes arrive.
 *
 * 1. throughput: a BENCH_FILES_MB file (default 100 MB; MB = 10⁶ bytes) up and down through
 *    Bastion and through the floor (files-floor.ts: the same bytes into 512 KiB rows of a table
 *    like file_chunks and back, no encryption or checks, a bare node http server), the same
 *    client code both ways; FILES_RUNS rounds in turn (floor up, Bastion up, floor down, Bastion
 *    down), the best of each kept. Goal: Bastion ≥ 0.5× the floor each way.
 * 2. memory: a BENCH_FILES_BIG_MB file (default 1,024 MB) up, then down, through Bastion; this
 *    process's RSS (Bastion, the floor and the client share it) sampled every RSS_SAMPLE_MS, its
 *    largest value above the RSS before the upload (after a full GC). Goal: ≤ 30 MB. Then the
 *    same through the floor: what the client, node and pg cost on their own, for comparison.
 * 3. concurrency: 50 uploads of 1 MB at once (each its own row, one account: start mutation +
 *    POST + PATCH, to the 204 that says it is attached), after a warm-up of 10; latency per upload.
 * 4. image variants: a 12-megapixel JPEG (4000×3000, smooth gradients under noise, about 5 MB at
 *    quality 90), re-encoded, then THUMB_256 and MEDIUM_1024 made of the result (what an upload to
 *    a field with both variants does), one image at a time: images/s and ms per step.
 *
 * The payload is incompressible: a 1 MiB random block repeated, each 64 KiB piece stamped with its
 * index, behind an ftyp box with brand isom, so the sniffer reads video/mp4 (no image processing).
 * Each transfer's result is checked (status, offset, File.sha256, contentType, the bytes read back
 * and their SHA-256 against the payload's); the rows are deleted between runs, out of the timings.
 */

export const FILES_GOAL_RATIO = 0.5;
export const FILES_RSS_GOAL_BYTES = 30e6;
export const FILES_RUNS = 2;
export const CONCURRENT_UPLOADS = 50;
const CONCURRENT_WARM_UP = 10;
const CONCURRENT_BYTES = 1e6;
const WARM_UP_BYTES = 8e6;
export const VARIANT_IMAGES = 5;
const IMAGE_WIDTH = 4000;
const IMAGE_HEIGHT = 3000;
/** BASTION_FILES_MAX_IMAGE_PIXELS's default, which the upload path passes to the image processor. */
const MAX_IMAGE_PIXELS = 50_000_000;
const RSS_SAMPLE_MS = 20;
/** The largest file the field (and StartUploadInput.byteSize, an Int) takes. */
const MAX_FILE_BYTES = 2 ** 31 - 1;
/** The client writes the payload in pieces of this size, waiting for the socket to drain. */
const PIECE_BYTES = 64 * 1024;
/** The random block the payload repeats (a multiple of PIECE_BYTES, larger than a chunk, so no chunk repeats another). */
const BLOCK_BYTES = 1024 * 1024;

/** Bench only: a row with one large file. */
@ObjectType({ description: 'Bench only: a row with a large file.' })
@Entity('bench_files')
export class BenchFile {
  @Field(() => ID, { description: 'Id.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field(() => ID, { nullable: true, description: 'Owner.' })
  @Column({ type: 'uuid' })
  ownerId!: string;

  @Field({ nullable: true, description: 'Name.' })
  @Column({ type: 'text' })
  name!: string;
}

const benchFileModel = defineModel(BenchFile, {
  owner: 'ownerId',
  writable: ['name'],
  files: { blob: { description: 'Bench only: a large file.', maxBytes: MAX_FILE_BYTES, types: ['video/mp4'] } },
  defaults: [
    { role: 'user', action: 'create', scope: 'own' },
    { role: 'user', action: 'read', scope: 'own' },
    { role: 'user', action: 'update', scope: 'own' },
  ],
});

const benchFilesData: Feature = { ...dataFeature([benchFileModel]), name: 'bench-files', entities: [BenchFile] };
const benchFileFields: Feature = {
  ...fileFieldsFeatures(benchFilesData.dataModels ?? [])(benchFilesData.dataModels ?? []),
  name: 'bench-file-fields',
};

/** Given to the section's startBastion: the model's data API (its grants seeded at start) and its file field's GraphQL. */
export const BENCH_FILES_FEATURES: readonly Feature[] = [benchFilesData, benchFileFields];

/** The section's Bastion, beside the harness's settings and RATE_LIMITS_OFF: no sample models, room for the files and uploads. */
export const FILES_BASTION_SETTINGS: Partial<Config> = {
  sampleModels: false,
  filesAccountQuotaBytes: 64 * 1024 ** 3,
  filesMaxUploadsPerAccount: 100,
  filesMaxUploadsPerAddress: 100,
};

/**
 * bench_files and its files trigger (the server refuses to start without it), before the
 * section's Bastion starts; rows an interrupted run left are deleted (their files with them).
 */
const BENCH_FILES_SQL = [
  `CREATE TABLE IF NOT EXISTS bench_files (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name text NOT NULL)`,
  'DROP TRIGGER IF EXISTS bastion_delete_row_files ON bench_files',
  fileTriggerSql('bench_files'),
  'DELETE FROM bench_files',
];

export async function prepareBenchFiles(databaseUrl: string): Promise<void> {
  await withClient(databaseUrl, 'bastion-bench-files', async (client) => {
    for (const statement of BENCH_FILES_SQL) await client.query(statement);
  });
}

/** Megabytes (10⁶ bytes) from the environment, within what one file may be. */
export function fileMegabytes(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value * 1e6 > MAX_FILE_BYTES)
    throw new Error(`${name} must be a whole number of MB from 1 to ${Math.floor(MAX_FILE_BYTES / 1e6)} (got ${JSON.stringify(raw)})`);
  return value;
}

export interface Timing {
  readonly seconds: number;
  /** CPU time of this process meanwhile: client, Bastion and floor alike (PostgreSQL is another process). */
  readonly cpuSeconds: number;
}

export interface TransferRuns {
  readonly bytes: number;
  readonly runs: readonly Timing[];
}

/** At the sample with the largest RSS: RSS, the V8 heap's size and the memory outside it (Buffers), each above its value before the upload. */
export interface MemoryGrowth {
  readonly rssBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
}

/** One file up, then down, the memory watched throughout. */
export interface WatchedTransfer {
  readonly upload: Timing;
  readonly download: Timing;
  readonly uploading: MemoryGrowth;
  readonly downloading: MemoryGrowth;
}

export interface BigTransfer {
  readonly bytes: number;
  readonly bastion: WatchedTransfer;
  /** The same file through the floor: what the client, node and pg cost without Bastion. */
  readonly floor: WatchedTransfer;
}

export interface ConcurrentUploads {
  readonly uploads: number;
  readonly bytesEach: number;
  readonly succeeded: number;
  readonly latenciesMs: readonly number[];
  readonly seconds: number;
  readonly failures: ReadonlyMap<string, number>;
}

export interface VariantRuns {
  readonly inputBytes: number;
  readonly images: number;
  readonly reencodeMs: readonly number[];
  readonly thumbMs: readonly number[];
  readonly mediumMs: readonly number[];
  readonly concurrency: number;
}

export interface FilesBenchResult {
  readonly upload: { readonly floor: TransferRuns; readonly bastion: TransferRuns };
  readonly download: { readonly floor: TransferRuns; readonly bastion: TransferRuns };
  readonly big: BigTransfer;
  readonly concurrent: ConcurrentUploads;
  readonly variants: VariantRuns;
  /** Wrong results (a status, a hash, a count): a run with any measures a failure, not Bastion. */
  readonly problems: readonly string[];
}

export interface FilesBenchOptions {
  /** The origin of the section's own Bastion (BENCH_FILES_FEATURES, FILES_BASTION_SETTINGS). */
  readonly origin: string;
  /** The bench database: the floor's table goes beside Bastion's. */
  readonly databaseUrl: string;
  readonly megabytes: number;
  readonly bigMegabytes: number;
  readonly teardown: { add(step: () => Promise<void>): void };
  readonly signal: AbortSignal;
}

const TUS = { 'tus-resumable': '1.0.0' };
const CREATE_ROW = 'mutation($input: CreateBenchFileInput!) { createBenchFile(input: $input) { id } }';
const START_UPLOAD =
  'mutation($id: ID!, $input: StartUploadInput!) { startBenchFileBlobUpload(id: $id, input: $input) { id url expiresAt } }';
// With the row's id: without it the file field fails (INTERNAL_SERVER_ERROR; the data API reads only the columns asked for).
const READ_FILE = 'query($id: ID!) { benchFile(id: $id) { id blob { byteSize sha256 contentType url } } }';

/** An ftyp box of 24 bytes: brand isom, compatible isom and iso2 (what the sniffer reads as video/mp4). */
const FTYP = Buffer.concat([
  Buffer.from([0, 0, 0, 24]),
  Buffer.from('ftypisom', 'latin1'),
  Buffer.from([0, 0, 2, 0]),
  Buffer.from('isomiso2'),
]);

/** `size` bytes in pieces: the ftyp box, then the random block over and over, each piece stamped with its index. */
function* payload(size: number, block: Buffer): Generator<Buffer> {
  for (let offset = 0, index = 0; offset < size; offset += PIECE_BYTES, index += 1) {
    const length = Math.min(PIECE_BYTES, size - offset);
    const piece = Buffer.allocUnsafe(length);
    const from = offset % BLOCK_BYTES;
    block.copy(piece, 0, from, from + length);
    if (length >= FTYP.length + 4) piece.writeUInt32BE(index, FTYP.length);
    if (offset === 0) FTYP.copy(piece, 0, 0, Math.min(FTYP.length, length));
    yield piece;
  }
}

function sha256Of(pieces: Iterable<Buffer>): string {
  const hash = createHash('sha256');
  for (const piece of pieces) hash.update(piece);
  return hash.digest('hex');
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; timing: Timing }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const value = await work();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { value, timing: { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 } };
}

interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
}

/** Waits until the request can take more (or is gone). */
function drained(request: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      request.off('drain', done);
      request.off('close', done);
      resolve();
    };
    request.on('drain', done);
    request.on('close', done);
  });
}

/** One request; a body of pieces is written as the socket takes them, so no more than a piece or two is ever held. */
function send(url: string, method: string, headers: Record<string, string>, body?: Buffer | Iterable<Buffer>): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers }, (response) => {
      const parts: Buffer[] = [];
      response.on('data', (part: Buffer) => parts.push(part));
      response.on('error', reject);
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(parts).toString() }),
      );
    });
    request.on('error', reject);
    const write = async () => {
      if (body === undefined || Buffer.isBuffer(body)) return void request.end(body);
      for (const piece of body) {
        if (request.destroyed) return;
        if (!request.write(piece)) await drained(request);
      }
      request.end();
    };
    write().catch((error: unknown) => request.destroy(error as Error));
  });
}

/** GET, the body hashed and counted as it arrives, never kept. */
async function download(url: string): Promise<{ status: number; bytes: number; sha256: string }> {
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(url, resolve).on('error', reject));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const piece of response as AsyncIterable<Buffer>) {
    hash.update(piece);
    bytes += piece.length;
  }
  return { status: response.statusCode ?? 0, bytes, sha256: hash.digest('hex') };
}

interface StoredBlob {
  readonly byteSize: number;
  readonly sha256: string;
  readonly contentType: string;
  readonly url: string;
}

/** The section's client: one account on the section's Bastion, and the floor. */
class FilesClient {
  readonly problems: string[] = [];

  constructor(
    private readonly endpoint: string,
    private readonly user: BenchUser,
    private readonly floor: FilesFloor,
    private readonly databaseUrl: string,
    readonly block: Buffer,
  ) {}

  private problem(what: string): void {
    if (this.problems.length < 20) this.problems.push(what);
  }

  async createRow(name: string): Promise<string> {
    const body = await graphql<{ createBenchFile: { id: string } }>(this.endpoint, CREATE_ROW, { input: { name } }, this.user.accessToken);
    if (!body.data?.createBenchFile) throw new Error(`createBenchFile failed: ${JSON.stringify(body.errors)}`);
    return body.data.createBenchFile.id;
  }

  /** A statement of the bench's own, on a connection without the server pool's statement timeout. */
  sql<T>(work: (client: Client) => Promise<T>): Promise<T> {
    return withClient(this.databaseUrl, 'bastion-bench-files', work);
  }

  /** Deletes rows (the files trigger deletes their files, contents and chunks), out of the timings. */
  async removeRows(ids: readonly string[]): Promise<void> {
    await this.sql((client) => client.query('DELETE FROM bench_files WHERE id = ANY($1::uuid[])', [ids]));
  }

  async removeFloor(contentId: string): Promise<void> {
    await this.floor.remove(contentId);
  }

  /** Start mutation, tus creation, one PATCH of the whole body; undefined when attached, else what went wrong. */
  async upload(rowId: string, size: number, body: Buffer | Iterable<Buffer>): Promise<string | undefined> {
    const started = await graphql<{ startBenchFileBlobUpload: { url: string } }>(
      this.endpoint,
      START_UPLOAD,
      { id: rowId, input: { byteSize: size, contentType: 'video/mp4' } },
      this.user.accessToken,
    );
    const url = started.data?.startBenchFileBlobUpload?.url;
    if (!url) return `start mutation: ${started.errors ? JSON.stringify(started.errors).slice(0, 200) : 'no url'}`;
    const created = await send(url, 'POST', { ...TUS, 'upload-length': String(size) });
    if (created.status !== 201) return `tus POST: HTTP ${created.status} ${created.text.slice(0, 200)}`;
    const patched = await send(
      url,
      'PATCH',
      { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(size) },
      body,
    );
    if (patched.status !== 204) return `tus PATCH: HTTP ${patched.status} ${patched.text.slice(0, 200)}`;
    if (patched.headers['upload-offset'] !== String(size)) return `tus PATCH: Upload-Offset ${String(patched.headers['upload-offset'])}`;
    return undefined;
  }

  /** A streamed upload of the payload, timed from the start mutation to the PATCH's 204. */
  async timedUpload(rowId: string, size: number): Promise<Timing> {
    const { value: failure, timing } = await timed(() => this.upload(rowId, size, payload(size, this.block)));
    if (failure) this.problem(`Bastion upload of ${size} bytes: ${failure}`);
    return timing;
  }

  /** File.url through GraphQL, then the signed URL streamed: timed from the query to the last byte, and checked against `sha256`. */
  async timedDownload(rowId: string, size: number, sha256: string): Promise<Timing> {
    const { value, timing } = await timed(async () => {
      const body = await graphql<{ benchFile: { blob: StoredBlob | null } | null }>(
        this.endpoint,
        READ_FILE,
        { id: rowId },
        this.user.accessToken,
      );
      const blob = body.data?.benchFile?.blob;
      return { blob, errors: body.errors, fetched: blob ? await download(blob.url) : undefined };
    });
    const { blob, errors, fetched } = value;
    if (!blob || !fetched) {
      this.problem(`Bastion file of row ${rowId}: ${errors ? JSON.stringify(errors).slice(0, 200) : 'no file attached'}`);
      return timing;
    }
    if (blob.byteSize !== size || blob.sha256 !== sha256 || blob.contentType !== 'video/mp4')
      this.problem(
        `Bastion file: byteSize ${blob.byteSize}, ${blob.contentType}, sha256 ${blob.sha256.slice(0, 12)}…; sent ${size} bytes, ${sha256.slice(0, 12)}…`,
      );
    if (fetched.status !== 200 || fetched.bytes !== size || fetched.sha256 !== sha256)
      this.problem(
        `Bastion download: HTTP ${fetched.status}, ${fetched.bytes} bytes, sha256 ${fetched.sha256.slice(0, 12)}…; expected ${size}`,
      );
    return timing;
  }

  async timedFloorUpload(contentId: string, size: number): Promise<Timing> {
    const { value: answer, timing } = await timed(() =>
      send(`${this.floor.origin}/chunks/${contentId}`, 'PUT', { 'content-length': String(size) }, payload(size, this.block)),
    );
    if (answer.status !== 204 || answer.headers['x-stored-bytes'] !== String(size))
      this.problem(
        `floor upload: HTTP ${answer.status}, ${String(answer.headers['x-stored-bytes'])} bytes stored of ${size} ${answer.text.slice(0, 200)}`,
      );
    return timing;
  }

  async timedFloorDownload(contentId: string, size: number, sha256: string): Promise<Timing> {
    const { value: fetched, timing } = await timed(() => download(`${this.floor.origin}/chunks/${contentId}`));
    if (fetched.status !== 200 || fetched.bytes !== size || fetched.sha256 !== sha256)
      this.problem(
        `floor download: HTTP ${fetched.status}, ${fetched.bytes} bytes, sha256 ${fetched.sha256.slice(0, 12)}…; expected ${size}`,
      );
    return timing;
  }
}

/** A full collection: `global.gc` when node runs with --expose-gc, else the flag set at run time. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Samples this process's memory while transfers run; `peak` is the sample with the largest RSS. */
class MemoryWatch {
  peak: NodeJS.MemoryUsage;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.peak = process.memoryUsage();
    this.timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
  }

  sample(): void {
    const usage = process.memoryUsage();
    if (usage.rss > this.peak.rss) this.peak = usage;
  }

  /** The largest RSS seen from now on (the one before is forgotten). */
  restart(): void {
    this.peak = process.memoryUsage();
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

/** Floor and Bastion in turn, FILES_RUNS rounds: up, up, down, down. */
async function throughput(
  client: FilesClient,
  size: number,
  signal: AbortSignal,
): Promise<Pick<FilesBenchResult, 'upload' | 'download'> | undefined> {
  const sha256 = sha256Of(payload(size, client.block));
  const runs = { floorUp: [] as Timing[], bastionUp: [] as Timing[], floorDown: [] as Timing[], bastionDown: [] as Timing[] };
  for (let round = 0; round < FILES_RUNS; round += 1) {
    process.stderr.write(`  ${size / 1e6} MB up and down, floor and Bastion (${round + 1}/${FILES_RUNS})…\n`);
    const contentId = randomUUID();
    const rowId = await client.createRow(`throughput ${round}`);
    runs.floorUp.push(await client.timedFloorUpload(contentId, size));
    runs.bastionUp.push(await client.timedUpload(rowId, size));
    runs.floorDown.push(await client.timedFloorDownload(contentId, size, sha256));
    runs.bastionDown.push(await client.timedDownload(rowId, size, sha256));
    await client.removeRows([rowId]);
    await client.removeFloor(contentId);
    if (signal.aborted) return undefined;
  }
  return {
    upload: { floor: { bytes: size, runs: runs.floorUp }, bastion: { bytes: size, runs: runs.bastionUp } },
    download: { floor: { bytes: size, runs: runs.floorDown }, bastion: { bytes: size, runs: runs.bastionDown } },
  };
}

/** Up, then down, the memory watched from a full GC before the upload to the end of the download. */
async function watchedTransfer(upload: () => Promise<Timing>, download: () => Promise<Timing>): Promise<WatchedTransfer> {
  const gc = collector();
  // Three rounds with a turn of the loop between: weak callbacks and finalizers free more on the later ones.
  for (let round = 0; round < 3; round += 1) {
    gc();
    await sleep(50);
  }
  const before = process.memoryUsage();
  const growth = (peak: NodeJS.MemoryUsage): MemoryGrowth => ({
    rssBytes: peak.rss - before.rss,
    heapTotalBytes: peak.heapTotal - before.heapTotal,
    externalBytes: peak.external - before.external,
  });
  const watch = new MemoryWatch();
  try {
    const up = await upload();
    watch.sample();
    const uploading = growth(watch.peak);
    watch.restart();
    const down = await download();
    watch.sample();
    return { upload: up, download: down, uploading, downloading: growth(watch.peak) };
  } finally {
    watch.stop();
  }
}

/** One large file up then down through Bastion, then through the floor, the memory watched. */
async function bigTransfer(client: FilesClient, size: number): Promise<BigTransfer> {
  process.stderr.write(`  ${size / 1e6} MB up and down through Bastion, then the floor, memory watched…\n`);
  const sha256 = sha256Of(payload(size, client.block));
  const rowId = await client.createRow('memory');
  const bastion = await watchedTransfer(
    () => client.timedUpload(rowId, size),
    () => client.timedDownload(rowId, size, sha256),
  );
  await client.removeRows([rowId]);
  const contentId = randomUUID();
  const floor = await watchedTransfer(
    () => client.timedFloorUpload(contentId, size),
    () => client.timedFloorDownload(contentId, size, sha256),
  );
  await client.removeFloor(contentId);
  return { bytes: size, bastion, floor };
}

/** `count` uploads of CONCURRENT_BYTES at once, each to its own row. */
async function concurrentUploads(client: FilesClient, count: number): Promise<ConcurrentUploads> {
  const body = Buffer.concat([...payload(CONCURRENT_BYTES, client.block)]);
  const rows: string[] = [];
  for (let index = 0; index < count; index += 1) rows.push(await client.createRow(`concurrent ${index}`));
  const latenciesMs: number[] = [];
  const failures = new Map<string, number>();
  const started = performance.now();
  await Promise.all(
    rows.map(async (rowId) => {
      const begun = performance.now();
      let failure: string | undefined;
      try {
        failure = await client.upload(rowId, body.length, body);
      } catch (error) {
        failure = `request failed (${error instanceof Error ? error.message : String(error)})`;
      }
      if (failure === undefined) latenciesMs.push(performance.now() - begun);
      else {
        const reason = failure.replace(/\s+/g, ' ').trim().slice(0, 120);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  // Every upload that answered 204 must have left its file, with the bytes sent.
  const sha256 = sha256Of([body]);
  const attached = await client.sql((sql) =>
    sql.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM files WHERE table_name = 'bench_files' AND row_id = ANY($1::uuid[]) AND sha256 = $2 AND byte_size = $3",
      [rows, sha256, body.length],
    ),
  );
  if (attached.rows[0].n !== latenciesMs.length)
    client.problems.push(
      `concurrent uploads: ${latenciesMs.length} answered 204, ${attached.rows[0].n} files attached with the bytes sent`,
    );
  await client.removeRows(rows);
  return {
    uploads: count,
    bytesEach: body.length,
    succeeded: latenciesMs.length,
    latenciesMs: latenciesMs.sort((a, b) => a - b),
    seconds,
    failures,
  };
}

/** Smooth gradients under noise (from a seeded generator, the same every run): about 5 MB at quality 90, like a phone's photo. */
async function twelveMegapixelJpeg(): Promise<Buffer> {
  const raw = Buffer.allocUnsafe(IMAGE_WIDTH * IMAGE_HEIGHT * 3);
  let state = 12345;
  for (let y = 0; y < IMAGE_HEIGHT; y += 1) {
    for (let x = 0; x < IMAGE_WIDTH; x += 1) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const noise = ((state >>> 24) - 128) / 6;
      const level = 128 + 60 * Math.sin(x / 97 + y / 61) + 40 * Math.sin((x * y) / 50_000);
      const at = (y * IMAGE_WIDTH + x) * 3;
      raw[at] = Math.max(0, Math.min(255, level + noise));
      raw[at + 1] = Math.max(0, Math.min(255, 255 - level + noise));
      raw[at + 2] = Math.max(0, Math.min(255, ((x ^ y) & 255) / 2 + level / 2 + noise));
    }
  }
  return sharp(raw, { raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** What the upload path does to an image for a field with both variants, one image at a time, after one untimed. */
async function variantRuns(problems: string[]): Promise<VariantRuns> {
  process.stderr.write('  image variants…\n');
  const jpeg = await twelveMegapixelJpeg();
  const runs = { reencodeMs: [] as number[], thumbMs: [] as number[], mediumMs: [] as number[] };
  for (let round = 0; round <= VARIANT_IMAGES; round += 1) {
    const started = performance.now();
    const image = await reencodeImage(jpeg, 'image/jpeg', { keepMetadata: false, maxPixels: MAX_IMAGE_PIXELS });
    const reencoded = performance.now();
    const thumb = await makeVariant(image.data, image.mime, 'THUMB_256', MAX_IMAGE_PIXELS);
    const thumbed = performance.now();
    const medium = await makeVariant(image.data, image.mime, 'MEDIUM_1024', MAX_IMAGE_PIXELS);
    const done = performance.now();
    if (round === 0) {
      const sizes = [image, thumb, medium].map((made) => `${made.width}×${made.height}`).join(', ');
      if (sizes !== '4000×3000, 256×192, 1024×768') problems.push(`image variants: ${sizes}, expected 4000×3000, 256×192, 1024×768`);
      continue;
    }
    runs.reencodeMs.push(reencoded - started);
    runs.thumbMs.push(thumbed - reencoded);
    runs.mediumMs.push(done - thumbed);
  }
  return { inputBytes: jpeg.length, images: VARIANT_IMAGES, ...runs, concurrency: sharp.concurrency() };
}

/** Undefined when interrupted: a cut-short run measures nothing. */
export async function runFilesBench(options: FilesBenchOptions): Promise<FilesBenchResult | undefined> {
  const { origin, signal, teardown } = options;
  const endpoint = new URL('/graphql', origin).toString();
  const floor = await startFilesFloor({ databaseUrl: options.databaseUrl });
  teardown.add(() => floor.close());
  const user = await createBenchUser(endpoint);
  const client = new FilesClient(endpoint, user, floor, options.databaseUrl, randomBytes(BLOCK_BYTES));

  // Warm-up: JIT, both pools, the prepared paths; numbers thrown away, results still checked.
  process.stderr.write('  warming up…\n');
  {
    const sha256 = sha256Of(payload(WARM_UP_BYTES, client.block));
    const contentId = randomUUID();
    const rowId = await client.createRow('warm-up');
    await client.timedFloorUpload(contentId, WARM_UP_BYTES);
    await client.timedUpload(rowId, WARM_UP_BYTES);
    await client.timedFloorDownload(contentId, WARM_UP_BYTES, sha256);
    await client.timedDownload(rowId, WARM_UP_BYTES, sha256);
    await client.removeRows([rowId]);
    await client.removeFloor(contentId);
  }
  if (signal.aborted) return undefined;

  const transfers = await throughput(client, options.megabytes * 1e6, signal);
  if (!transfers || signal.aborted) return undefined;
  const big = await bigTransfer(client, options.bigMegabytes * 1e6);
  if (signal.aborted) return undefined;
  process.stderr.write(`  ${CONCURRENT_UPLOADS} concurrent uploads of ${CONCURRENT_BYTES / 1e6} MB…\n`);
  await concurrentUploads(client, CONCURRENT_WARM_UP);
  const concurrent = await concurrentUploads(client, CONCURRENT_UPLOADS);
  if (signal.aborted) return undefined;
  const problems = client.problems;
  const variants = await variantRuns(problems);
  return { ...transfers, big, concurrent, variants, problems };
}

function fastest(runs: TransferRuns): Timing {
  return runs.runs.reduce((best, run) => (run.seconds < best.seconds ? run : best));
}

/** MB (10⁶ bytes) per second at the fastest run. */
export function transferRate(runs: TransferRuns): number {
  return runs.bytes / 1e6 / fastest(runs).seconds;
}

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The section's report, and what makes the run fail. */
export function formatFiles(result: FilesBenchResult): { lines: string[]; problems: string[] } {
  const rows: string[][] = [];
  for (const direction of ['upload', 'download'] as const) {
    const { floor, bastion } = result[direction];
    const floorRate = transferRate(floor);
    const ratio = transferRate(bastion) / floorRate;
    for (const [path, runs] of [
      ['floor', floor],
      ['Bastion', bastion],
    ] as const) {
      rows.push([
        direction,
        path,
        fastest(runs).seconds.toFixed(2),
        fastest(runs).cpuSeconds.toFixed(2),
        transferRate(runs).toFixed(1),
        runs === floor ? '' : `${ratio.toFixed(2)}×`,
        runs.runs.map((run) => run.seconds.toFixed(2)).join(', '),
        runs === floor ? '' : `≥ ${FILES_GOAL_RATIO}× floor: ${ratio >= FILES_GOAL_RATIO ? 'met' : 'not met'}`,
      ]);
    }
  }
  const { big, concurrent, variants } = result;
  const growth = Math.max(big.bastion.uploading.rssBytes, big.bastion.downloading.rssBytes);
  const rate = (bytes: number, timing: Timing) => `${(bytes / 1e6 / timing.seconds).toFixed(1)} MB/s`;
  const latencies = concurrent.latenciesMs;
  const failures = [...concurrent.failures].map(([reason, count]) => `${reason} ×${count}`).join('; ');
  const reencode = mean(variants.reencodeMs);
  const thumb = mean(variants.thumbMs);
  const medium = mean(variants.mediumMs);
  const perImage = reencode + thumb + medium;
  const lines = [
    `files: a ${megabytes(result.upload.bastion.bytes)} file (video/mp4, incompressible) up (start mutation + tus POST + one streamed PATCH) and down ` +
      '(File.url through GraphQL + the signed URL, hashed as it arrives), on a Bastion of its own; the floor: the same bytes into ' +
      '512 KiB rows of a table like file_chunks and back over a bare node http server, no encryption or checks; ' +
      `best of ${FILES_RUNS} runs in turn, MB = 10⁶ bytes; node CPU = this process (client, server and floor alike)`,
    formatColumns(['direction', 'path', 'best s', 'node CPU s', 'MB/s', 'vs floor', 'runs s', 'goal'], rows, 2, [7]),
    `  memory: a ${megabytes(big.bytes)} file up, then down; this process's largest RSS above its RSS before the upload (after a full GC), ` +
      `sampled every ${RSS_SAMPLE_MS} ms, and at that sample the V8 heap's size and the memory outside it (Buffers):`,
    `    Bastion: up ${rate(big.bytes, big.bastion.upload)}, RSS ${signed(big.bastion.uploading.rssBytes)} ` +
      `(heap ${signed(big.bastion.uploading.heapTotalBytes)}, Buffers ${signed(big.bastion.uploading.externalBytes)}); ` +
      `down ${rate(big.bytes, big.bastion.download)}, RSS ${signed(big.bastion.downloading.rssBytes)} ` +
      `(heap ${signed(big.bastion.downloading.heapTotalBytes)}, Buffers ${signed(big.bastion.downloading.externalBytes)}); ` +
      `goal ≤ ${megabytes(FILES_RSS_GOAL_BYTES)}: ${growth <= FILES_RSS_GOAL_BYTES ? 'met' : 'not met'}`,
    `    the floor, same file: up ${rate(big.bytes, big.floor.upload)}, RSS ${signed(big.floor.uploading.rssBytes)} ` +
      `(heap ${signed(big.floor.uploading.heapTotalBytes)}, Buffers ${signed(big.floor.uploading.externalBytes)}); ` +
      `down ${rate(big.bytes, big.floor.download)}, RSS ${signed(big.floor.downloading.rssBytes)} ` +
      `(heap ${signed(big.floor.downloading.heapTotalBytes)}, Buffers ${signed(big.floor.downloading.externalBytes)})`,
    `  ${concurrent.uploads} concurrent uploads of ${megabytes(concurrent.bytesEach)} (each start mutation + POST + PATCH to its 204, ` +
      `its own row, one account, after ${CONCURRENT_WARM_UP} at once as a warm-up): p50 ${percentile(latencies, 0.5).toFixed(0)} ms, ` +
      `p99 ${percentile(latencies, 0.99).toFixed(0)} ms, max ${(latencies[latencies.length - 1] ?? 0).toFixed(0)} ms; ` +
      `all in ${concurrent.seconds.toFixed(2)} s: ${(concurrent.succeeded / concurrent.seconds).toFixed(1)} uploads/s, ` +
      `${((concurrent.succeeded * concurrent.bytesEach) / 1e6 / concurrent.seconds).toFixed(1)} MB/s; ` +
      `${concurrent.uploads - concurrent.succeeded} failed${failures ? ` (${failures})` : ''}`,
    `  image variants: a 12-megapixel JPEG (${IMAGE_WIDTH}×${IMAGE_HEIGHT}, ${megabytes(variants.inputBytes)}) re-encoded, then THUMB_256 ` +
      `and MEDIUM_1024 made of it, one image at a time (sharp concurrency ${variants.concurrency}): ` +
      `${(1000 / perImage).toFixed(2)} images/s, ${perImage.toFixed(0)} ms each (re-encode ${reencode.toFixed(0)} ms, ` +
      `THUMB_256 ${thumb.toFixed(0)} ms, MEDIUM_1024 ${medium.toFixed(0)} ms; mean of ${variants.images} after one untimed)`,
    `  checked: every upload answered 204 at its full offset, its File has the bytes' SHA-256 and video/mp4, every download read ` +
      `back exactly the bytes sent (floor and Bastion)${result.problems.length > 0 ? ', EXCEPT:' : ''}`,
    ...result.problems.map((problem) => `    ${problem}`),
  ];
  const problems = [...result.problems];
  if (concurrent.succeeded !== concurrent.uploads) problems.push(`${concurrent.uploads - concurrent.succeeded} concurrent uploads failed`);
  return { lines, problems };
}

function signed(bytes: number): string {
  return `${bytes >= 0 ? '+' : '−'}${megabytes(Math.abs(bytes))}`;
}
