import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import WebSocket from 'ws';
import { TestServer, startTestServer } from '../support/test-server';

interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function httpsPost(url: string, ca: string, body: string): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

describe('HTTPS with a certificate configured', () => {
  let server: TestServer;
  let cert: string;
  let certFile: string;
  let keyFile: string;
  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      extensions: [
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-tls-'));
    certFile = path.join(dir, 'cert.pem');
    keyFile = path.join(dir, 'key.pem');
    fs.writeFileSync(certFile, pems.cert);
    fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
    cert = pems.cert;
    server = await startTestServer({ config: { tlsCertFile: certFile, tlsKeyFile: keyFile } });
  });
  afterAll(() => server.close());

  it('serves subscriptions over wss:// on the same port, with the certificate', async () => {
    const socket = new WebSocket(server.url.replace(/^https/, 'wss'), 'graphql-transport-ws', { ca: cert });
    const acknowledged = await new Promise<string>((resolve, reject) => {
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} })));
      socket.once('message', (data: Buffer) => resolve((JSON.parse(data.toString('utf8')) as { type: string }).type));
      socket.once('error', reject);
    });
    socket.close();
    expect(acknowledged).toBe('connection_ack');
  });

  it('serves GraphQL over HTTPS with HSTS', async () => {
    expect(server.url).toMatch(/^https:\/\//);
    const response = await httpsPost(server.url, cert, JSON.stringify({ query: '{ serverInfo { name } }' }));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ data: { serverInfo: { name: 'Bastion' } } });
    expect(response.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
  });

  it('does not answer plain HTTP', async () => {
    await expect(fetch(server.url.replace('https:', 'http:'))).rejects.toThrow();
  });

  it('refuses TLS 1.1, which the same client negotiates with a server that allows it', async () => {
    const legacyClient = (port: number) =>
      new Promise<string>((resolve) => {
        // SECLEVEL=0: without it OpenSSL 3 clients refuse TLS 1.1 themselves, and the test would prove nothing.
        const socket = tls.connect({
          host: '127.0.0.1',
          port,
          ca: cert,
          servername: 'localhost',
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          ciphers: 'DEFAULT@SECLEVEL=0',
        });
        socket.on('secureConnect', () => {
          resolve(`connected ${socket.getProtocol()}`);
          socket.destroy();
        });
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      });

    const permissive = tls.createServer(
      { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
      (socket) => socket.end(),
    );
    await new Promise<void>((resolve) => permissive.listen(0, '127.0.0.1', resolve));
    try {
      expect(await legacyClient((permissive.address() as AddressInfo).port)).toBe('connected TLSv1.1');
    } finally {
      permissive.close();
    }
    expect(await legacyClient(Number(new URL(server.url).port))).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });
});

describe('plain HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('sends no HSTS and ignores a spoofed X-Forwarded-For and X-Forwarded-Proto from an untrusted client', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': '203.0.113.66',
        'x-forwarded-proto': 'https',
        'x-request-id': 'spoof-check-1',
      },
      body: JSON.stringify({ query: '{ serverInfo { name } }' }),
    });
    expect(response.headers.get('strict-transport-security')).toBeNull();
    expect(server.logs.find((line) => line.msg === 'request' && line.requestId === 'spoof-check-1')).toMatchObject({ ip: '127.0.0.1' });
  });
});

describe('behind a trusted TLS proxy', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { trustProxy: ['127.0.0.1', '::1'] } });
  });
  afterAll(() => server.close());

  it('believes the proxy: the client address and HSTS for HTTPS clients', async () => {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': '198.51.100.23',
        'x-forwarded-proto': 'https',
        'x-request-id': 'proxy-check-1',
      },
      body: JSON.stringify({ query: '{ serverInfo { name } }' }),
    });
    expect(response.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect(server.logs.find((line) => line.msg === 'request' && line.requestId === 'proxy-check-1')).toMatchObject({ ip: '198.51.100.23' });
  });
});
