import { Algorithm, hash as argon2Hash } from '@node-rs/argon2';
import { PasswordHasher } from '../../../src/accounts/password-hasher';
import { AppError } from '../../../src/errors';

const PHC_CURRENT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;

describe('PasswordHasher', () => {
  const hasher = new PasswordHasher({ maxConcurrent: 2, maxQueued: 16 });

  it('stores argon2id m=19456 KiB, t=2, p=1 as a salted PHC string (PWD-1)', async () => {
    const first = await hasher.hash('correct horse battery staple');
    const second = await hasher.hash('correct horse battery staple');
    expect(first).toMatch(PHC_CURRENT);
    expect(second).not.toBe(first);
    await expect(hasher.verify(first, 'correct horse battery staple')).resolves.toEqual({ valid: true, needsRehash: false });
    await expect(hasher.verify(first, 'correct horse battery stapler')).resolves.toEqual({ valid: false, needsRehash: false });
  });

  it('neither truncates nor case-folds (ASVS 6.2.8)', async () => {
    const password = 'Ab1-'.repeat(25);
    expect(password).toHaveLength(100);
    const phc = await hasher.hash(password);
    await expect(hasher.verify(phc, `${password.slice(0, 99)}X`)).resolves.toMatchObject({ valid: false });
    await expect(hasher.verify(phc, password.toLowerCase())).resolves.toMatchObject({ valid: false });
    await expect(hasher.verify(phc, password)).resolves.toMatchObject({ valid: true });
  });

  it('applies NFKC, so a full-width variant verifies against the ASCII hash', async () => {
    const phc = await hasher.hash('Correct Horse 42');
    await expect(hasher.verify(phc, 'Ｃｏｒｒｅｃｔ\u3000Ｈｏｒｓｅ\u3000４２')).resolves.toEqual({ valid: true, needsRehash: false });
  });

  it('asks for a rehash of a hash made with weaker parameters or another algorithm', async () => {
    const weaker = await argon2Hash('old password here', { algorithm: Algorithm.Argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    await expect(hasher.verify(weaker, 'old password here')).resolves.toEqual({ valid: true, needsRehash: true });
    const argon2i = await argon2Hash('old password here', { algorithm: Algorithm.Argon2i, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    await expect(hasher.verify(argon2i, 'old password here')).resolves.toEqual({ valid: true, needsRehash: true });
  });

  it('answers a malformed stored hash with invalid, never a throw', async () => {
    const phc = await hasher.hash('some password');
    for (const broken of ['', 'not a hash', '$argon2id$v=19$m=19456,t=2,p=1$', phc.slice(0, -20)]) {
      await expect(hasher.verify(broken, 'some password')).resolves.toEqual({ valid: false, needsRehash: true });
    }
  });

  it('verifyAgainstDummy resolves false', async () => {
    await expect(hasher.verifyAgainstDummy('any password at all')).resolves.toBe(false);
    await expect(hasher.verifyAgainstDummy('')).resolves.toBe(false);
  });

  describe('bounded pool (PWD-5)', () => {
    it('with 1 running and 1 queued, a third call at once is RATE_LIMITED and the other two finish', async () => {
      const small = new PasswordHasher({ maxConcurrent: 1, maxQueued: 1 });
      const results = await Promise.allSettled([small.hash('first'), small.hash('second'), small.hash('third')]);
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      for (const result of results.slice(0, 2)) expect((result as PromiseFulfilledResult<string>).value).toMatch(PHC_CURRENT);
      const error = (results[2] as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({
        code: 'RATE_LIMITED',
        message: 'The server is busy; try again in a moment.',
        extensions: { code: 'RATE_LIMITED', retryAfterSeconds: 1 },
      });
      // The slots were given back: the pool takes work again.
      await expect(small.hash('fourth')).resolves.toMatch(PHC_CURRENT);
    });

    it('limits verify and verifyAgainstDummy too', async () => {
      const phc = await hasher.hash('shared password');
      const small = new PasswordHasher({ maxConcurrent: 2, maxQueued: 0 });
      const results = await Promise.allSettled([
        small.verify(phc, 'shared password'),
        small.verifyAgainstDummy('x'),
        small.verify(phc, 'wrong'),
      ]);
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'RATE_LIMITED' });
    });

    it('runs queued calls in arrival order', async () => {
      const serial = new PasswordHasher({ maxConcurrent: 1, maxQueued: 3 });
      const finished: number[] = [];
      await Promise.all([0, 1, 2, 3].map((index) => serial.hash(`password ${index}`).then(() => finished.push(index))));
      expect(finished).toEqual([0, 1, 2, 3]);
    });

    it('refuses a pool that could never run anything', () => {
      expect(() => new PasswordHasher({ maxConcurrent: 0, maxQueued: 1 })).toThrow(RangeError);
      expect(() => new PasswordHasher({ maxConcurrent: 1, maxQueued: -1 })).toThrow(RangeError);
    });
  });
});
