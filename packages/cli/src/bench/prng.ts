/**
 * The benchmark's only source of randomness: a seeded mulberry32 generator, so that one seed
 * always gives the same lookup sequences (and two configs of one run see the same gfns).
 */

/** A generator of uniform numbers in [0, 1). */
export type Prng = () => number;

/** mulberry32 (T. Ettinger): a 32-bit state, full period 2^32, good enough for benchmark inputs. */
export function mulberry32(seed: number): Prng {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [0, n). */
export function randomBelow(rng: Prng, n: number): number {
  return Math.floor(rng() * n);
}

/**
 * Mixes a base seed with small integers (slot count, sequence kind) into an independent 32-bit
 * seed, so each (N, sequence) gets its own stream whatever else the run measures.
 */
export function deriveSeed(seed: number, ...parts: readonly number[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}
