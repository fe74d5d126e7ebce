// Test helper: a small seeded PRNG (mulberry32), so a failing random case can be replayed from
// the seed printed with it. CASTLE_TEST_SEED fixes the seed of a whole run.

export interface Random {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  bool(p?: number): boolean;
}

export function seedFromEnv(): number {
  const fixed = Number(process.env.CASTLE_TEST_SEED);
  return Number.isInteger(fixed) ? fixed : Math.floor(Math.random() * 2 ** 31);
}

export function random(seed = seedFromEnv()): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    bool: (p = 0.5) => next() < p,
  };
}

/** True when the slow loops should run at full length (CI sets CASTLE_SLOW_TESTS=1). */
export const SLOW = process.env.CASTLE_SLOW_TESTS === "1";
