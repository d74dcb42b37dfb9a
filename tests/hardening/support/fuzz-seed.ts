/** A fuzzer's seed: FUZZ_SEED when given (a replay), the fuzzer's fixed one in CI, a random one locally. */
export function fuzzSeed(ciSeed: number): number {
  if (process.env.FUZZ_SEED) return Number(process.env.FUZZ_SEED);
  return process.env.CI ? ciSeed : Math.floor(Math.random() * 0x7fffffff);
}
