import { hash } from 'node:crypto';

/**
 * A binary fuse filter (Graf & Lemire, "Binary Fuse Filters: Fast and Smaller Than Xor Filters",
 * 2022) with 24-bit fingerprints: a set of strings answered "maybe in it" or "certainly not", in
 * about 27 bits per member, with a false-positive rate of 2^-24 per lookup; three reads per lookup.
 * 24 bits rather than the usual 16: at 2^-16 about one sign-up in 30,000 would be refused a
 * password nobody ever leaked, and the test suite, which signs up thousands of random ones, would
 * now and then fail for it.
 *
 * Keys are hashed with SHA-256 rather than a fast non-cryptographic hash: the bytes must be the same
 * on every platform and Node version for a committed filter to stay valid, and one digest costs
 * under a microsecond, a rounding error beside the argon2 hash that follows every password check.
 */

const ARITY = 3;
const FINGERPRINT_BYTES = 3;
const MAGIC = 'BFF3';
const HEADER_BYTES = 20;
/** The paper's bound: beyond this, longer segments stop helping the construction succeed. */
const MAX_SEGMENT_LENGTH = 1 << 18;
/** Each failed peeling retries with the next seed; a handful of failures in a row do not happen in practice. */
const MAX_ATTEMPTS = 100;

interface Layout {
  readonly seed: number;
  readonly segmentLength: number;
  readonly segmentCount: number;
}

export class BinaryFuseFilter {
  private constructor(
    private readonly layout: Layout,
    /** Number of distinct keys it was built from, kept for reporting. */
    readonly size: number,
    /** One little-endian 24-bit fingerprint per slot, read in place: loading copies nothing. */
    private readonly fingerprints: Buffer,
  ) {}

  /** Builds the filter of distinct keys; the same keys in any order give the same bytes. */
  static build(keys: Iterable<string>): BinaryFuseFilter {
    const sorted = [...new Set(keys)].sort();
    const shape = layoutFor(sorted.length);
    for (let seed = 0; seed < MAX_ATTEMPTS; seed += 1) {
      const layout = { seed, ...shape };
      const fingerprints = tryConstruct(layout, sorted);
      if (fingerprints) return new BinaryFuseFilter(layout, sorted.length, fingerprints);
    }
    throw new Error(`binary fuse construction failed ${MAX_ATTEMPTS} times`);
  }

  /** Reads what `serialize` wrote; refuses anything else rather than answer from garbage. */
  static parse(bytes: Buffer): BinaryFuseFilter {
    if (bytes.length < HEADER_BYTES || bytes.toString('latin1', 0, 4) !== MAGIC) throw new Error('not a binary fuse filter file');
    const layout = { seed: bytes.readUInt32LE(4), segmentLength: bytes.readUInt32LE(8), segmentCount: bytes.readUInt32LE(12) };
    if (!isPowerOfTwo(layout.segmentLength) || bytes.length !== HEADER_BYTES + FINGERPRINT_BYTES * arrayLengthOf(layout)) {
      throw new Error('binary fuse filter file is truncated or damaged');
    }
    return new BinaryFuseFilter(layout, bytes.readUInt32LE(16), bytes.subarray(HEADER_BYTES));
  }

  serialize(): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    header.write(MAGIC, 0, 'latin1');
    header.writeUInt32LE(this.layout.seed, 4);
    header.writeUInt32LE(this.layout.segmentLength, 8);
    header.writeUInt32LE(this.layout.segmentCount, 12);
    header.writeUInt32LE(this.size, 16);
    return Buffer.concat([header, this.fingerprints]);
  }

  /** True for every key it was built from; for any other key, true with probability 2^-24. */
  has(key: string): boolean {
    const { positions, fingerprint } = locate(this.layout, key);
    const [first, second, third] = positions.map((slot) => readFingerprint(this.fingerprints, slot));
    return (fingerprint ^ first ^ second ^ third) === 0;
  }
}

function readFingerprint(table: Buffer, slot: number): number {
  const offset = slot * FINGERPRINT_BYTES;
  return table[offset] | (table[offset + 1] << 8) | (table[offset + 2] << 16);
}

/** The paper's sizing for arity 3: about 1.125 slots per key for large sets, more for small ones. */
function layoutFor(size: number): Omit<Layout, 'seed'> {
  const segmentLength = size === 0 ? 4 : Math.min(MAX_SEGMENT_LENGTH, 2 ** Math.floor(Math.log(size) / Math.log(3.33) + 2.25));
  const sizeFactor = size <= 1 ? 0 : Math.max(1.125, 0.875 + (0.25 * Math.log(1_000_000)) / Math.log(size));
  const capacity = size <= 1 ? 0 : Math.round(size * sizeFactor);
  return { segmentLength, segmentCount: Math.max(1, Math.ceil(capacity / segmentLength) - (ARITY - 1)) };
}

function arrayLengthOf(layout: Omit<Layout, 'seed'>): number {
  return (layout.segmentCount + ARITY - 1) * layout.segmentLength;
}

function isPowerOfTwo(value: number): boolean {
  return value > 0 && (value & (value - 1)) === 0;
}

/**
 * A key's three slots, one in each of three consecutive segments, and its fingerprint. SHA-256's
 * words are independent and uniform, so each plays the part of a separately mixed hash.
 */
function locate(layout: Layout, key: string): { positions: [number, number, number]; fingerprint: number } {
  // One-shot hash(): half the time of createHash().update().digest() for keys this short.
  const digest = hash('sha256', `${layout.seed}\u0000${key}`, 'buffer');
  const mask = layout.segmentLength - 1;
  // Exact in a double: segmentCount × segmentLength stays far below 2^21, so the product below 2^53.
  const start = Math.floor((digest.readUInt32LE(0) * layout.segmentCount * layout.segmentLength) / 2 ** 32);
  return {
    positions: [
      start,
      (start + layout.segmentLength) ^ (digest.readUInt32LE(4) & mask),
      (start + 2 * layout.segmentLength) ^ (digest.readUInt32LE(8) & mask),
    ],
    fingerprint: digest.readUIntLE(12, FINGERPRINT_BYTES),
  };
}

/** Hypergraph peeling, then fingerprints assigned in reverse peeling order; null if some key could not be peeled. */
function tryConstruct(layout: Layout, keys: readonly string[]): Buffer | null {
  const arrayLength = arrayLengthOf(layout);
  const slots = new Uint32Array(keys.length * ARITY);
  const keyFingerprints = new Uint32Array(keys.length);
  // Per slot: how many keys still use it, and the XOR of their indexes (the last one left is that XOR).
  const degree = new Uint32Array(arrayLength);
  const xorOfKeys = new Uint32Array(arrayLength);
  keys.forEach((key, keyIndex) => {
    const { positions, fingerprint } = locate(layout, key);
    keyFingerprints[keyIndex] = fingerprint;
    for (let arm = 0; arm < ARITY; arm += 1) {
      slots[keyIndex * ARITY + arm] = positions[arm];
      degree[positions[arm]] += 1;
      xorOfKeys[positions[arm]] ^= keyIndex;
    }
  });

  const queue: number[] = [];
  for (let slot = 0; slot < arrayLength; slot += 1) if (degree[slot] === 1) queue.push(slot);
  const peeledKeys = new Uint32Array(keys.length);
  const peeledSlots = new Uint32Array(keys.length);
  let peeled = 0;
  while (queue.length > 0) {
    const slot = queue.pop()!;
    if (degree[slot] !== 1) continue;
    const keyIndex = xorOfKeys[slot];
    peeledKeys[peeled] = keyIndex;
    peeledSlots[peeled] = slot;
    peeled += 1;
    for (let arm = 0; arm < ARITY; arm += 1) {
      const other = slots[keyIndex * ARITY + arm];
      degree[other] -= 1;
      xorOfKeys[other] ^= keyIndex;
      if (degree[other] === 1) queue.push(other);
    }
  }
  if (peeled !== keys.length) return null;

  const fingerprints = new Uint32Array(arrayLength);
  for (let index = peeled - 1; index >= 0; index -= 1) {
    const keyIndex = peeledKeys[index];
    const base = keyIndex * ARITY;
    // The key's own slot is still 0 here, so XOR-ing all three slots leaves the other two.
    fingerprints[peeledSlots[index]] =
      keyFingerprints[keyIndex] ^ fingerprints[slots[base]] ^ fingerprints[slots[base + 1]] ^ fingerprints[slots[base + 2]];
  }
  const table = Buffer.alloc(arrayLength * FINGERPRINT_BYTES);
  fingerprints.forEach((fingerprint, slot) => table.writeUIntLE(fingerprint, slot * FINGERPRINT_BYTES, FINGERPRINT_BYTES));
  return table;
}
