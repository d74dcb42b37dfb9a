import { randomBytes } from 'node:crypto';
import { Algorithm, Version, hash as argon2Hash, parseOptions, verify as argon2Verify } from '@node-rs/argon2';
import { AppError } from '../errors';

/**
 * docs/security.md#pwd-1 (OWASP Password Storage minimum). Raising any of these makes every stored hash
 * report `needsRehash`, so the sign-in flow upgrades each one the next time its owner signs in.
 */
const CURRENT_PARAMETERS = {
  algorithm: Algorithm.Argon2id,
  version: Version.V0x13,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
} as const;

/** @node-rs/argon2 draws 16-byte salts; an imported hash with a shorter one is upgraded too. */
const SALT_BYTES = 16;

export interface PasswordVerification {
  valid: boolean;
  /** The stored hash uses other parameters than today's: store a fresh `hash()` of the password. */
  needsRehash: boolean;
}

/**
 * argon2id hashing behind a bounded pool. Each hash holds ~19 MiB and a core for tens of
 * milliseconds, so an unbounded flood of sign-ins would exhaust memory and CPU (docs/security.md#pwd-5): beyond
 * `maxConcurrent` running and `maxQueued` waiting, a call fails at once with RATE_LIMITED.
 */
export class PasswordHasher {
  private readonly pool: BoundedPool;
  private dummyHash: Promise<string> | undefined;

  constructor(options: { maxConcurrent: number; maxQueued: number }) {
    this.pool = new BoundedPool(options.maxConcurrent, options.maxQueued);
  }

  /** The PHC string (algorithm, parameters, salt and hash), so parameters can be raised later. */
  hash(password: string): Promise<string> {
    const normalized = normalize(password);
    return this.pool.run(() => argon2Hash(normalized, CURRENT_PARAMETERS));
  }

  /** Never throws for a bad stored hash: a corrupt row must read as a failed sign-in, not a 500. */
  verify(phc: string, password: string): Promise<PasswordVerification> {
    const normalized = normalize(password);
    return this.pool.run(async () => {
      const stored = readParameters(phc);
      if (stored === null) {
        // Spend the same time as a real check, so a corrupt row is not told apart by timing.
        await this.verifyDummy(normalized);
        return { valid: false, needsRehash: true };
      }
      let valid: boolean;
      try {
        valid = await argon2Verify(phc, normalized);
      } catch {
        return { valid: false, needsRehash: true };
      }
      return { valid, needsRehash: !isCurrent(stored) };
    });
  }

  /**
   * For a sign-in with an unknown email: does the work of a real verify so that the answer takes
   * as long as for a wrong password, and timing does not tell which emails have accounts.
   */
  verifyAgainstDummy(password: string): Promise<false> {
    const normalized = normalize(password);
    return this.pool.run(async () => {
      await this.verifyDummy(normalized);
      return false as const;
    });
  }

  /** Runs inside a pool slot already taken by the caller. */
  private async verifyDummy(normalizedPassword: string): Promise<void> {
    await argon2Verify(await this.getDummyHash(), normalizedPassword);
  }

  private getDummyHash(): Promise<string> {
    // A random password nobody knows, hashed with today's parameters so verifying costs the same.
    this.dummyHash ??= argon2Hash(randomBytes(32).toString('base64url'), CURRENT_PARAMETERS).catch((error: unknown) => {
      this.dummyHash = undefined;
      throw error;
    });
    return this.dummyHash;
  }
}

/** NIST SP 800-63B-4 (SHOULD): the same password typed on another keyboard or OS must match. */
function normalize(password: string): string {
  return password.normalize('NFKC');
}

type StoredParameters = ReturnType<typeof parseOptions>;

function readParameters(phc: string): StoredParameters | null {
  try {
    return parseOptions(phc);
  } catch {
    return null;
  }
}

function isCurrent(stored: StoredParameters): boolean {
  return (
    stored.algorithm === CURRENT_PARAMETERS.algorithm &&
    stored.version === CURRENT_PARAMETERS.version &&
    stored.memoryCost === CURRENT_PARAMETERS.memoryCost &&
    stored.timeCost === CURRENT_PARAMETERS.timeCost &&
    stored.parallelism === CURRENT_PARAMETERS.parallelism &&
    stored.outputLen === CURRENT_PARAMETERS.outputLen &&
    stored.saltLen >= SALT_BYTES
  );
}

/** At most `maxConcurrent` tasks at once, then a FIFO queue of `maxQueued`, then RATE_LIMITED. */
class BoundedPool {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueued: number,
  ) {
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new RangeError('maxConcurrent must be an integer of at least 1');
    if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new RangeError('maxQueued must be an integer of at least 0');
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.maxConcurrent) {
      this.running += 1;
    } else if (this.waiting.length < this.maxQueued) {
      // The finishing task hands its slot over directly, so a newcomer cannot jump the queue.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      throw new AppError('RATE_LIMITED', 'The server is busy; try again in a moment.', { details: { retryAfterSeconds: 1 } });
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
