/**
 * Timing primitives: process.hrtime.bigint(), warm-up, batch calibration and the median of
 * per-batch means (robust against GC pauses and other one-off stalls).
 */

/** Consumes the loops' checksums so that no timed work is dead code. */
let sink = 0;

export function consume(checksum: number): void {
  sink = (sink + checksum) | 0;
}

/** The accumulated checksum. Writes to this module-level binding are never dead code. */
export function checksum(): number {
  return sink;
}

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Median of the first `count` entries (sorts that prefix in place). */
export function median(values: Float64Array, count: number): number {
  if (count === 0) return Number.NaN;
  const v = values.subarray(0, count).sort();
  const mid = count >> 1;
  return count & 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** The cost of one back-to-back pair of hrtime.bigint() reads (median), subtracted from samples. */
export function timerOverheadNs(): number {
  const samples = new Float64Array(2001);
  for (let i = 0; i < samples.length; i++) {
    const t0 = process.hrtime.bigint();
    const t1 = process.hrtime.bigint();
    samples[i] = Number(t1 - t0);
  }
  return median(samples, samples.length);
}

/** A growable column of samples; growth happens between timed regions only. */
export class SampleBuffer {
  values: Float64Array = new Float64Array(1024);
  count = 0;

  push(v: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = v;
  }

  median(): number {
    return median(this.values, this.count);
  }
}

export interface Measurement {
  /** Median over samples of (batch time − timer overhead) / batch size. */
  nsPerOp: number;
  /** Timed operations behind the median (warm-up excluded). */
  ops: number;
}

export interface TimingPlan {
  /** Measured time per cell, ms. */
  minTimeMs: number;
  /** Warm-up time per cell before measuring, ms. */
  warmupMs: number;
  /** Aimed-at duration of one lookup batch, ns. */
  targetBatchNs: number;
  /** The largest lookup batch. */
  maxBatch: number;
  /** hrtime.bigint() pair overhead, ns. */
  timerOverheadNs: number;
}

/** The fewest samples a cell takes, whatever minTimeMs says. */
const MIN_SAMPLES = 5;

/** Divides, subtracting the timer overhead; never below a tiny positive floor. */
function perOp(elapsedNs: number, iters: number, plan: TimingPlan): number {
  return Math.max(elapsedNs - plan.timerOverheadNs, 0.01) / iters;
}

/**
 * A lookup cell: `batch(start, iters)` runs `iters` lookups from position `start` of its input
 * sequence and returns a checksum. The batch size doubles during warm-up until one batch takes
 * about targetBatchNs; then batches run until minTimeMs has passed.
 */
export function measureBatched(batch: (start: number, iters: number) => number, plan: TimingPlan): Measurement {
  let iters = 1;
  let pos = 0;
  const warmEnd = nowNs() + BigInt(Math.round(plan.warmupMs * 1e6));
  for (;;) {
    const t0 = nowNs();
    consume(batch(pos, iters));
    const t1 = nowNs();
    pos += iters;
    const elapsed = Number(t1 - t0);
    if (elapsed < plan.targetBatchNs && iters < plan.maxBatch) iters = Math.min(iters * 2, plan.maxBatch);
    else if (t1 >= warmEnd) break;
  }
  const samples = new SampleBuffer();
  let ops = 0;
  const end = nowNs() + BigInt(Math.round(plan.minTimeMs * 1e6));
  for (;;) {
    const t0 = nowNs();
    const sum = batch(pos, iters);
    const t1 = nowNs();
    consume(sum);
    pos += iters;
    ops += iters;
    samples.push(perOp(Number(t1 - t0), iters, plan));
    if (t1 >= end && samples.count >= MIN_SAMPLES) break;
  }
  return { nsPerOp: samples.median(), ops };
}

/**
 * An update cell: `first()` then `second()` is a round trip that restores the VM (delete then
 * create, move away then back, flags on then off). Each op is timed on its own; `reset()` runs
 * untimed after every round trip. The samples of both halves are returned separately.
 */
export function measurePaired(
  first: () => void,
  second: () => void,
  reset: () => void,
  plan: TimingPlan,
): { first: Measurement; second: Measurement } {
  const warmEnd = nowNs() + BigInt(Math.round(plan.warmupMs * 1e6));
  do {
    first();
    second();
    reset();
  } while (nowNs() < warmEnd);
  const a = new SampleBuffer();
  const b = new SampleBuffer();
  const end = nowNs() + BigInt(Math.round(plan.minTimeMs * 1e6));
  for (;;) {
    const t0 = nowNs();
    first();
    const t1 = nowNs();
    second();
    const t2 = nowNs();
    reset();
    a.push(perOp(Number(t1 - t0), 1, plan));
    b.push(perOp(Number(t2 - t1), 1, plan));
    if (t2 >= end && a.count >= MIN_SAMPLES) break;
  }
  return { first: { nsPerOp: a.median(), ops: a.count }, second: { nsPerOp: b.median(), ops: b.count } };
}
