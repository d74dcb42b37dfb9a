import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { DataSource } from 'typeorm';
import { User } from '../../src/accounts/user.entity';
import { SCHEDULE_ACTOR } from '../../src/audit/actor';
import { open, seal } from '../../src/crypto/envelope';
import { Keyring } from '../../src/crypto/keyring';
import { Profile } from '../../src/models/profile.model';
import type { Services } from '../../src/feature';
import type { Measurement } from './measure';
import { alternating, probe } from './measure';
import { COST_ROUNDS } from './permission-bench';
import { BenchRequest, graphqlRequest, withBearer } from './scenarios';
import { BenchUser, createBenchUser } from './sign-in-bench';

const PROFILES = 100;
/** Dated before every other profile: the list's default order is oldest first. */
const PROFILES_FROM = '1998-01-01';
const READER_ROLE = 'bench-profiles';

/** Two encrypted columns selected, and the same query on two plain columns holding values of the same lengths. */
export const ENCRYPTED = graphqlRequest(`{ profiles(first: ${PROFILES}) { edges { node { id phone birthDate } } } }`);
export const PLAIN = graphqlRequest(`{ profiles(first: ${PROFILES}) { edges { node { id displayName bio } } } }`);

export interface CryptoBenchResult {
  /** seal + open of one 64-byte value per second. */
  readonly sealOpenPerSecond: number;
  readonly plain: Measurement;
  readonly encrypted: Measurement;
}

function benchKeyring(): Keyring {
  return new Keyring({ keys: new Map([['bench', randomBytes(32)]]), currentKid: 'bench', blindIndexKey: randomBytes(32) });
}

/** Runs `work` repeatedly for `seconds`; returns the mean milliseconds per call. */
function meanMs(seconds: number, work: () => unknown): number {
  let calls = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  while (performance.now() < deadline) {
    work();
    calls += 1;
  }
  return (performance.now() - started) / calls;
}

/**
 * 100 profiles of 100 accounts, with a phone and a birth date (encrypted) and, in displayName and
 * bio, plain values of the same lengths; and a reader whose role reads every profile with every
 * field. Saved through TypeORM, so the columns are encrypted and indexed as the app writes them.
 */
export async function seedProfiles(endpoint: string, dataSource: DataSource, services: Services): Promise<BenchUser> {
  await dataSource.query(
    "DELETE FROM users WHERE email_index IN (SELECT email_index FROM users u JOIN profiles p ON p.user_id = u.id WHERE p.display_name LIKE '+1555%')",
  );
  const users = await dataSource.getRepository(User).save(
    Array.from({ length: PROFILES }, (_unused, index) =>
      Object.assign(new User(), {
        email: `bench-profile-${index}-${randomBytes(4).toString('hex')}@example.com`,
        passwordHash: 'not a password: these accounts never sign in',
        status: 'active',
        emailVerifiedAt: null,
      }),
    ),
  );
  const profiles = await dataSource.getRepository(Profile).save(
    users.map((user, index) => {
      const phone = `+1555${String(1_000_000 + index).padStart(7, '0')}`;
      const birthDate = `19${String(50 + (index % 50))}-0${1 + (index % 9)}-1${index % 10}`;
      return Object.assign(new Profile(), { userId: user.id, displayName: phone, bio: birthDate, phone, birthDate });
    }),
  );
  await dataSource.query(
    `UPDATE profiles SET created_at = $1::timestamptz + (SELECT count(*) FROM profiles q WHERE q.id < profiles.id) * interval '1 minute' WHERE id = ANY($2)`,
    [PROFILES_FROM, profiles.map((profile) => profile.id)],
  );
  await dataSource.query('ANALYZE profiles');
  const reader = await createBenchUser(endpoint);
  const roles = await services.policy.current();
  if (!roles.role(READER_ROLE)) {
    await services.policy.createRole({ name: READER_ROLE, description: 'Bench only: reads every profile.' }, SCHEDULE_ACTOR);
    await services.policy.grantPermission({ role: READER_ROLE, model: 'Profile', action: 'read', scope: 'all' }, SCHEDULE_ACTOR);
  }
  await services.policy.assignRole(reader.id, READER_ROLE, SCHEDULE_ACTOR);
  return reader;
}

/** A page of 100 profiles with both selected fields present: a denial or a short page would flatter the numbers. */
function fullPage(body: unknown): string | undefined {
  const nodes = ((body as { data?: { profiles?: { edges?: { node: Record<string, unknown> }[] } } }).data?.profiles?.edges ?? []).map(
    (edge) => edge.node,
  );
  if (nodes.length !== PROFILES) return `expected ${PROFILES} profiles, got ${nodes.length}`;
  return nodes.some((node) => Object.values(node).some((value) => value === null)) ? 'a selected field is null' : undefined;
}

export async function probeProfiles(origin: string, reader: BenchUser): Promise<void> {
  for (const request of [ENCRYPTED, PLAIN]) {
    const problem = await probe(origin, withBearer(request, reader.accessToken), fullPage);
    if (problem) throw new Error(`profiles: ${problem}`);
  }
}

/**
 * The encryption costs: the envelope alone, and the same 100-profile page through the API with
 * two encrypted columns selected against two plain ones, each measured as every other row is.
 */
export async function runCryptoBench(
  origin: string,
  reader: BenchUser,
  seconds: number,
  measure: (origin: string, request: BenchRequest) => Promise<Measurement | undefined>,
): Promise<CryptoBenchResult | undefined> {
  const keyring = benchKeyring();
  const field = randomBytes(48).toString('base64'); // 64 characters
  const sealOpenMs = meanMs(Math.min(seconds, 3), () => open(keyring, seal(keyring, Buffer.from(field), 'bench.field'), 'bench.field'));
  const runs = await alternating(
    COST_ROUNDS,
    () => measure(origin, withBearer(PLAIN, reader.accessToken)),
    () => measure(origin, withBearer(ENCRYPTED, reader.accessToken)),
  );
  if (!runs) return undefined;
  return { sealOpenPerSecond: 1000 / sealOpenMs, plain: runs.a, encrypted: runs.b };
}
