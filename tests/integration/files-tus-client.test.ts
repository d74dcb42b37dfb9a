import net, { type AddressInfo } from 'node:net';
import { Upload, type HttpRequest, type HttpResponse, type UploadOptions } from 'tus-js-client';
import { eventually } from '../support/eventually';
import { TestAccount, makeUser } from '../support/factories';
import { download, pdfOf, startUpload, tusHead } from '../support/files';
import { TestServer, startTestServer } from '../support/test-server';

/**
 * A real tus client (tus-js-client, as a React Native or web app would use it) against the upload
 * URL startUpload returns: a 3 MB file in 1 MB chunks, interrupted and resumed three ways (the app
 * pauses, the network drops mid-request, the app restarts with the saved URL).
 */

const MIB = 1024 * 1024;

let server: TestServer;
let account: TestAccount;
let postId: string;

beforeAll(async () => {
  server = await startTestServer();
  account = await makeUser(server);
  const post = await account.client.request<{ createPost: { id: string } }>(
    'mutation($input: CreatePostInput!) { createPost(input: $input) { id } }',
    { input: { title: 'tus', published: true } },
  );
  postId = post.body.data!.createPost.id;
});
afterAll(() => server?.close());

/** Each call, a new PDF of 3 MB (stored as sent, so the bytes can be compared) and its upload URL. */
async function newUpload(): Promise<{ file: Buffer; url: string }> {
  const file = pdfOf(3 * MIB);
  const started = await startUpload(account.client, 'startPostAttachmentsUpload', postId, file, 'application/pdf');
  if (!started.url) throw new Error(JSON.stringify(started.errors));
  return { file, url: started.url };
}

/** The requests a client made: method and the Upload-Offset it was answered with. */
type Exchange = { method: string; status: number; offset: number | null };

function clientOptions(exchanges: Exchange[], options: UploadOptions): UploadOptions {
  return {
    chunkSize: MIB,
    retryDelays: [0, 0, 0],
    storeFingerprintForResuming: false,
    onAfterResponse: (req: HttpRequest, res: HttpResponse) => {
      const offset = res.getHeader('Upload-Offset');
      exchanges.push({ method: req.getMethod(), status: res.getStatus(), offset: offset ? Number(offset) : null });
    },
    ...options,
  };
}

function finished(upload: Upload): Promise<void> {
  return new Promise((resolve, reject) => {
    upload.options.onSuccess = () => resolve();
    upload.options.onError = reject;
  });
}

/** The post's file for this upload, downloaded: it must be the bytes sent. */
async function expectStored(file: Buffer): Promise<void> {
  const { body } = await account.client.request<{ post: { attachments: { byteSize: number; url: string }[] } }>(
    'query($id: ID!) { post(id: $id) { id attachments { byteSize url } } }',
    { id: postId },
  );
  const stored = body.data!.post.attachments.filter((attachment) => attachment.byteSize === file.length);
  const downloads = await Promise.all(stored.map((attachment) => download(attachment.url)));
  expect(downloads.filter((got) => got.bytes.equals(file))).toHaveLength(1);
}

it('uploads 3 MB in 1 MB chunks, paused after the first and resumed by the same client from the offset the server kept', async () => {
  const { file, url } = await newUpload();
  const exchanges: Exchange[] = [];
  let paused!: () => void;
  const pausedAfterFirst = new Promise<void>((resolve) => (paused = resolve));
  const upload = new Upload(
    file,
    clientOptions(exchanges, {
      endpoint: url,
      onChunkComplete: (_size, accepted) => {
        if (accepted === MIB && exchanges.filter((exchange) => exchange.method === 'PATCH').length === 1) {
          void upload.abort().then(paused);
        }
      },
    }),
  );
  upload.start();
  await pausedAfterFirst;
  expect(exchanges).toEqual([
    { method: 'POST', status: 201, offset: null },
    { method: 'PATCH', status: 204, offset: MIB },
  ]);
  expect((await tusHead(url)).offset).toBe(MIB);

  const done = finished(upload);
  upload.start();
  await done;
  expect(exchanges.slice(2)).toEqual([
    { method: 'HEAD', status: 200, offset: MIB },
    { method: 'PATCH', status: 204, offset: 2 * MIB },
    { method: 'PATCH', status: 204, offset: 3 * MIB },
  ]);
  await expectStored(file);
  expect((await tusHead(url)).status).toBe(404);
});

/**
 * A TCP proxy in front of the server that, once, forwards exactly `holdAt` bytes of what clients
 * send and holds the rest back; `cut()` then ends the server's side of that connection and drops
 * the client's: a phone going into a tunnel mid-request. Everything else passes through.
 */
async function tunnel(
  target: URL,
  holdAt: number,
): Promise<{ url: (url: string) => string; holding: () => boolean; cut: () => void; close(): Promise<void> }> {
  let forwarded = 0;
  let held: { client: net.Socket; upstream: net.Socket } | undefined;
  let done = false;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    upstream.pipe(client);
    client.on('end', () => upstream.end());
    client.on('data', (data: Buffer) => {
      if (held?.client === client) return;
      if (done || held || forwarded + data.length <= holdAt) {
        forwarded += data.length;
        upstream.write(data);
        return;
      }
      upstream.write(data.subarray(0, holdAt - forwarded));
      forwarded = holdAt;
      held = { client, upstream };
      client.pause();
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: (url) => {
      const through = new URL(url);
      through.host = `127.0.0.1:${port}`;
      return through.href;
    },
    holding: () => held !== undefined && !done,
    cut: () => {
      done = true;
      held!.upstream.end();
      held!.client.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}

it('a connection dropped midway through a chunk: the client retries, resumes where the server’s kept bytes end, and completes', async () => {
  const { file, url } = await newUpload();
  const uploadId = new URL(url).pathname.split('/').pop()!.split('.')[0];
  // The POST, the first 1 MiB PATCH, then 3/4 of the second: the cut falls inside a 512 KiB storage chunk.
  const proxy = await tunnel(new URL(server.origin), MIB + (3 * MIB) / 4);
  try {
    const exchanges: Exchange[] = [];
    const upload = new Upload(file, clientOptions(exchanges, { endpoint: proxy.url(url) }));
    const done = finished(upload);
    upload.start();
    // The server has stored the storage chunk that ends at 1.5 MiB when the network goes.
    await eventually(async () => {
      if (!proxy.holding()) return false;
      const [row] = await server.bastion.database.dataSource.query('SELECT received_bytes FROM uploads WHERE id = $1', [uploadId]);
      return Number(row.received_bytes) >= MIB + MIB / 2;
    });
    proxy.cut();
    await done;
    const resumedAt = exchanges.find((exchange) => exchange.method === 'HEAD');
    expect(resumedAt).toBeDefined();
    // More than the first request's MiB: what the cut request delivered was kept (whole storage chunks, and what the
    // server had read of the next one, sealed in the upload).
    expect(resumedAt!.offset).toBeGreaterThanOrEqual(MIB + MIB / 2);
    expect(resumedAt!.offset).toBeLessThan(MIB + (3 * MIB) / 4);
    expect(exchanges.at(-1)).toEqual({ method: 'PATCH', status: 204, offset: 3 * MIB });
    await expectStored(file);
  } finally {
    await proxy.close();
  }
});

it('an app restarted with the saved upload URL resumes with a new client and completes', async () => {
  const { file, url } = await newUpload();
  const exchanges: Exchange[] = [];
  let paused!: () => void;
  const pausedAfterTwo = new Promise<void>((resolve) => (paused = resolve));
  const first = new Upload(
    file,
    clientOptions(exchanges, {
      endpoint: url,
      onChunkComplete: (_size, accepted) => {
        if (accepted === 2 * MIB) void first.abort().then(paused);
      },
    }),
  );
  first.start();
  await pausedAfterTwo;
  const savedUrl = first.url!;
  expect(new URL(savedUrl).pathname).toBe(new URL(url).pathname);

  const restarted = new Upload(file, clientOptions(exchanges, { uploadUrl: savedUrl }));
  const done = finished(restarted);
  restarted.start();
  await done;
  expect(exchanges.slice(-2)).toEqual([
    { method: 'HEAD', status: 200, offset: 2 * MIB },
    { method: 'PATCH', status: 204, offset: 3 * MIB },
  ]);
  await expectStored(file);
});

it('sends the first chunk with the creation request (creation-with-upload), then the rest', async () => {
  const { file, url } = await newUpload();
  const exchanges: Exchange[] = [];
  const upload = new Upload(file, clientOptions(exchanges, { endpoint: url, uploadDataDuringCreation: true }));
  const done = finished(upload);
  upload.start();
  await done;
  expect(exchanges).toEqual([
    { method: 'POST', status: 201, offset: MIB },
    { method: 'PATCH', status: 204, offset: 2 * MIB },
    { method: 'PATCH', status: 204, offset: 3 * MIB },
  ]);
  await expectStored(file);
});
