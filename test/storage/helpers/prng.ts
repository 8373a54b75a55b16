// A seeded PRNG for storage tests (mulberry32): a failing test prints its seed, and
// STORAGE_TEST_SEED=<seed> replays it.

export type Random = () => number;

export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max). */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min));
}

/** The seed from STORAGE_TEST_SEED, else the fallback (fixed, so runs are reproducible). */
export function testSeed(fallback: number): number {
  const fromEnv = process.env.STORAGE_TEST_SEED;
  return fromEnv === undefined || fromEnv === '' ? fallback : Number(fromEnv);
}

/**
 * Runs body with a PRNG seeded from `seed` (and `stream`, so one seed can drive several tests
 * independently); on failure rethrows with the seed that replays it.
 */
export async function withSeed<T>(seed: number, body: (random: Random) => Promise<T>, stream = 0): Promise<T> {
  try {
    return await body(mulberry32(seed + stream * 0x9e3779b9));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const wrapped = new Error(`seed=${seed} (replay with STORAGE_TEST_SEED=${seed}): ${message}`);
    if (error instanceof Error && error.stack !== undefined) wrapped.stack = `${wrapped.message}\n${error.stack}`;
    throw wrapped;
  }
}
