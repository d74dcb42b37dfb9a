import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ObjectLiteral, Repository } from 'typeorm';
import { installKeyring } from '../../src/crypto/active-keyring';
import { open, seal } from '../../src/crypto/envelope';
import { Keyring } from '../../src/crypto/keyring';
import { createDataSource } from '../../src/db/data-source';
import { EncryptedRow, PlainRow } from './crypto-models';

const ROWS = 100;

export interface CryptoBenchResult {
  /** seal + open of one 64-byte value per second. */
  readonly sealOpenPerSecond: number;
  readonly plainReadMs: number;
  readonly encryptedReadMs: number;
}

function benchKeyring(): Keyring {
  return new Keyring({ keys: new Map([['bench', randomBytes(32)]]), currentKid: 'bench', blindIndexKey: randomBytes(32) });
}

/** Runs `work` repeatedly for `seconds`; returns the mean milliseconds per call. */
async function meanMs(seconds: number, work: () => Promise<unknown> | unknown): Promise<number> {
  let calls = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  while (performance.now() < deadline) {
    await work();
    calls += 1;
  }
  return (performance.now() - started) / calls;
}

/**
 * The encryption costs: the envelope alone, and reading 100 rows with 2 encrypted columns against
 * the same rows in plain text, through TypeORM, from the same database, interleaved in rounds so
 * that noise on the machine hits both sides alike.
 */
export async function runCryptoBench(databaseUrl: string, seconds: number): Promise<CryptoBenchResult> {
  const keyring = benchKeyring();
  installKeyring(keyring);

  const field = randomBytes(48).toString('base64'); // 64 characters
  const sealOpenMs = await meanMs(Math.min(seconds, 3), () => open(keyring, seal(keyring, Buffer.from(field), 'bench.field'), 'bench.field'));

  const dataSource = createDataSource({ url: databaseUrl, poolSize: 2, extraEntities: [EncryptedRow, PlainRow] });
  await dataSource.initialize();
  try {
    await dataSource.synchronize();
    const encrypted = dataSource.getRepository(EncryptedRow);
    const plain = dataSource.getRepository(PlainRow);
    await encrypted.clear();
    await plain.clear();
    const rows = Array.from({ length: ROWS }, (_unused, index) => ({ email: `user${index}@example.com`, phone: `+1 555 010 ${String(index).padStart(4, '0')}`, label: `row ${index}` }));
    await encrypted.save(rows.map((row) => Object.assign(new EncryptedRow(), row)));
    await plain.save(rows.map((row) => Object.assign(new PlainRow(), row)));

    const read = (repository: Repository<ObjectLiteral>) => () => repository.find({ take: ROWS });
    let plainTotal = 0;
    let encryptedTotal = 0;
    const rounds = 5;
    for (let round = 0; round < rounds; round += 1) {
      plainTotal += await meanMs(seconds / (2 * rounds), read(plain));
      encryptedTotal += await meanMs(seconds / (2 * rounds), read(encrypted));
    }
    return { sealOpenPerSecond: 1000 / sealOpenMs, plainReadMs: plainTotal / rounds, encryptedReadMs: encryptedTotal / rounds };
  } finally {
    await dataSource.destroy();
  }
}
