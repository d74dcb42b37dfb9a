import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

/**
 * An S3-compatible server on loopback for tests: s3rver 3.7.1, a Koa app keeping objects in a
 * temporary directory. Checked with @aws-sdk/client-s3 3.1178 on Node 20: PutObject, GetObject
 * (NoSuchKey 404 for a missing key, NoSuchBucket 404 for a missing bucket), DeleteObject,
 * DeleteObjects and ListObjectsV2 work with path-style addressing and the SDK's
 * WHEN_REQUIRED checksum settings. It knows one access key (S3RVER, secret S3RVER) and refuses
 * any other (InvalidAccessKeyId, 403), but it does not verify SigV4 signatures: a wrong secret
 * key goes unnoticed.
 *
 * What it does not cover: real AWS authentication and authorization (signatures, IAM and bucket
 * policies, AccessDenied for a known key without permission, STS session tokens, instance roles),
 * region redirects, S3's consistency and durability, server-side encryption, throttling
 * (SlowDown, 503), per-key failures inside a DeleteObjects answer, payload checksum
 * verification, and virtual-hosted-style addressing. Tests that need a refusal s3rver cannot give
 * (AccessDenied, no DeleteObjects) put a proxy in front of it.
 */
export interface TestS3Server {
  /** http://127.0.0.1:port */
  readonly endpoint: string;
  /** A bucket that exists (created empty at start). */
  readonly bucket: string;
  /** The only credentials s3rver accepts; give them to an S3Client, never through process.env. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  close(): Promise<void>;
}

/** The part of s3rver's (untyped) API used here. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

export async function startS3Server(bucket = 'bastion-test'): Promise<TestS3Server> {
  // s3rver ships no type declarations.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const S3rver = require('s3rver') as S3rverConstructor;
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'bastion-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (error) {
    fs.rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    close: async () => {
      try {
        await server.close();
      } finally {
        fs.rmSync(directory, { recursive: true, force: true });
      }
    },
  };
}

/** Every key under `prefix` in `bucket`, whole and sorted, read page by page. */
export async function keysUnder(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys.sort();
}
