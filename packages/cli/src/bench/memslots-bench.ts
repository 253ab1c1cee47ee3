/**
 * `kvmsim bench memslots`: per-op cost of the memslot stores of @kvmsim/kvm-core.
 *
 * For each store config and slot count N, a VM with N slots is set up (untimed); then memslot
 * updates (create, delete, move, flags) and lookups (uncached gfn search, cached gfn lookup,
 * 4 KiB hva-range walk) are timed, along with a bare binary search over the same N base gfns
 * (`bsearch-floor`), the floor every gfn lookup is compared against. The four targets are
 * judged from the rows of the same run (targets.ts).
 *
 * This is a benchmark, not a test: nothing here asserts on timings.
 */
import { availableParallelism, cpus, release, totalmem, type as osType, arch as osArch } from 'node:os';
import { KVM_MEM_LOG_DIRTY_PAGES, type Kvm, type LegacyMemslotSet, type ScalableMemslotSet } from '@kvmsim/kvm-core';
import {
  bsearchFloorLoop,
  cachedLoopLegacy,
  cachedLoopScalable,
  hvaRangeLoopLegacy,
  hvaRangeLoopScalable,
  searchLoopLegacy,
  searchLoopScalable,
} from './lookup-loops.js';
import {
  cachedSlotGfns,
  clearHookLog,
  freeGfnAbove,
  MAX_BENCH_SLOTS,
  middleSlot,
  randomSlotGfns,
  randomSlotHvaPfns,
  setupVm,
  slotBaseGfn,
  slotRegion,
  sortedBaseGfns,
  type StoreConfig,
} from './slot-layout.js';
import { evaluateTargets } from './targets.js';
import { measureBatched, measurePaired, nowNs, timerOverheadNs, type Measurement, type TimingPlan } from './timing.js';

export { mulberry32, deriveSeed, randomBelow, type Prng } from './prng.js';
export { randomSlotGfns, randomSlotHvaPfns, cachedSlotGfns } from './slot-layout.js';
export { evaluateTargets } from './targets.js';

export interface MemslotsBenchOptions {
  /** Slot counts to measure. Default DEFAULT_SLOT_COUNTS. */
  slotCounts?: number[];
  /** Configs to measure (a subset of MEMSLOTS_BENCH_CONFIGS). Default: all. */
  configs?: string[];
  /** Measured time per cell, ms (after a warm-up of a quarter of that). Default 200. */
  minTimeMs?: number;
  /** Seed of every random choice (lookup sequences). Default 1. */
  seed?: number;
}

export interface BenchRow {
  config: string;
  n: number;
  op: string;
  /** Median over batches of the mean time per op, ns. */
  nsPerOp: number;
  /** Operations timed for this row (warm-up excluded). */
  ops: number;
}

export interface TargetVerdict {
  target: string;
  met: boolean;
  detail: string;
}

export interface MemslotsBenchResult {
  machine: Record<string, string | number>;
  rows: BenchRow[];
  targets: TargetVerdict[];
  startedAt: string;
  durationMs: number;
}

export const MEMSLOTS_BENCH_CONFIGS: readonly string[] = Object.freeze([
  'scalable',
  'legacy',
  'scalable-no-hva-tree',
  'bsearch-floor',
]);

export const DEFAULT_SLOT_COUNTS: readonly number[] = Object.freeze([1, 10, 100, 509, 4096, 32764]);

/** The ops of the store configs, in row order. bsearch-floor has only lookup-uncached. */
export const MEMSLOTS_BENCH_OPS: readonly string[] = Object.freeze([
  'create',
  'delete',
  'move',
  'flags',
  'lookup-uncached',
  'lookup-cached',
  'hva-range',
]);

export const DEFAULT_MIN_TIME_MS = 200;
export const DEFAULT_SEED = 1;

/**
 * Run order. It differs from the row order on purpose: both scalable configs and the bare search
 * run before legacy, so kvm-core's store call sites are still monomorphic while the scalable
 * store is measured (the legacy VM makes them polymorphic).
 */
const RUN_ORDER: readonly string[] = ['scalable', 'scalable-no-hva-tree', 'bsearch-floor', 'legacy'];

function opsOf(config: string): readonly string[] {
  return config === 'bsearch-floor' ? ['lookup-uncached'] : MEMSLOTS_BENCH_OPS;
}

function validate(options: MemslotsBenchOptions): { slotCounts: number[]; configs: string[]; minTimeMs: number; seed: number } {
  const configs = options.configs ?? [...MEMSLOTS_BENCH_CONFIGS];
  for (const c of configs) {
    if (!MEMSLOTS_BENCH_CONFIGS.includes(c)) {
      throw new RangeError(`unknown memslots bench config '${c}' (known: ${MEMSLOTS_BENCH_CONFIGS.join(', ')})`);
    }
  }
  const slotCounts = [...new Set(options.slotCounts ?? DEFAULT_SLOT_COUNTS)].sort((a, b) => a - b);
  for (const n of slotCounts) {
    if (!Number.isInteger(n) || n < 1 || n > MAX_BENCH_SLOTS) {
      throw new RangeError(`slot count ${n}: must be an integer in [1, ${MAX_BENCH_SLOTS}]`);
    }
  }
  const minTimeMs = options.minTimeMs ?? DEFAULT_MIN_TIME_MS;
  if (!(minTimeMs > 0) || !Number.isFinite(minTimeMs)) throw new RangeError(`minTimeMs ${minTimeMs}: must be a positive number`);
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw new RangeError(`seed ${seed}: must be an integer`);
  return { slotCounts, configs, minTimeMs, seed };
}

function machineInfo(plan: TimingPlan): Record<string, string | number> {
  const cpuList = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    os: `${osType()} ${release()} ${osArch()}`,
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    totalMemoryMiB: Math.round(totalmem() / 2 ** 20),
    timerOverheadNs: Math.round(plan.timerOverheadNs * 10) / 10,
  };
}

type Sink = (op: string, m: Measurement) => void;

/** The four update ops on the slot in the middle of the gfn order. */
function measureUpdates(kvm: Kvm, n: number, plan: TimingPlan, record: Sink): void {
  const id = middleSlot(n);
  const base = slotBaseGfn(id);
  const present = slotRegion(id, base, 0);
  const absent = slotRegion(id, base, 0, 0);
  const movedAway = slotRegion(id, freeGfnAbove(n), 0);
  const logging = slotRegion(id, base, KVM_MEM_LOG_DIRTY_PAGES);
  const reset = (): void => clearHookLog(kvm);

  const cd = measurePaired(
    () => kvm.setUserMemoryRegion(absent),
    () => kvm.setUserMemoryRegion(present),
    reset,
    plan,
  );
  record('create', cd.second);
  record('delete', cd.first);

  const mv = measurePaired(
    () => kvm.setUserMemoryRegion(movedAway),
    () => kvm.setUserMemoryRegion(present),
    reset,
    plan,
  );
  record('move', pool(mv.first, mv.second));

  const fl = measurePaired(
    () => kvm.setUserMemoryRegion(logging),
    () => kvm.setUserMemoryRegion(present),
    reset,
    plan,
  );
  record('flags', pool(fl.first, fl.second));
}

/** One row from the two directions of a round trip (each direction is one op of the same kind). */
function pool(a: Measurement, b: Measurement): Measurement {
  return { nsPerOp: (a.nsPerOp + b.nsPerOp) / 2, ops: a.ops + b.ops };
}

function measureLookupsScalable(set: ScalableMemslotSet, seed: number, n: number, plan: TimingPlan, record: Sink): void {
  const gfns = randomSlotGfns(seed, n);
  const cached = cachedSlotGfns(seed, n);
  const pfns = randomSlotHvaPfns(seed, n);
  record('lookup-uncached', measureBatched((s, k) => searchLoopScalable(set, gfns, s, k), plan));
  set.gfnToMemslot(cached[0]!); // prime the last-used cache
  record('lookup-cached', measureBatched((s, k) => cachedLoopScalable(set, cached, s, k), plan));
  record('hva-range', measureBatched((s, k) => hvaRangeLoopScalable(set, pfns, s, k), plan));
}

function measureLookupsLegacy(set: LegacyMemslotSet, seed: number, n: number, plan: TimingPlan, record: Sink): void {
  const gfns = randomSlotGfns(seed, n);
  const cached = cachedSlotGfns(seed, n);
  const pfns = randomSlotHvaPfns(seed, n);
  record('lookup-uncached', measureBatched((s, k) => searchLoopLegacy(set, gfns, s, k), plan));
  set.gfnToMemslot(cached[0]!);
  record('lookup-cached', measureBatched((s, k) => cachedLoopLegacy(set, cached, s, k), plan));
  record('hva-range', measureBatched((s, k) => hvaRangeLoopLegacy(set, pfns, s, k), plan));
}

/**
 * Collect the previous cells' garbage before building a VM (when node runs with --expose-gc), so
 * every cell starts from a compact heap: otherwise the slot objects of a large VM end up scattered
 * among earlier cells' garbage and lookups pay extra cache misses that depend on the run order.
 */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function measureStoreConfig(config: StoreConfig, n: number, seed: number, plan: TimingPlan, record: Sink): void {
  collectGarbage();
  const kvm = setupVm(config, n);
  // Updates restore the VM after every round trip, so the lookups see the same N slots.
  measureUpdates(kvm, n, plan, record);
  const set = kvm.kvmMemslots(0);
  if (set.size !== n) throw new Error(`memslots bench: ${config} VM has ${set.size} slots after the updates, expected ${n}`);
  if (config === 'legacy') measureLookupsLegacy(set as LegacyMemslotSet, seed, n, plan, record);
  else measureLookupsScalable(set as ScalableMemslotSet, seed, n, plan, record);
}

function measureBsearchFloor(n: number, seed: number, plan: TimingPlan, record: Sink): void {
  const bases = sortedBaseGfns(n);
  const gfns = randomSlotGfns(seed, n);
  record('lookup-uncached', measureBatched((s, k) => bsearchFloorLoop(bases, gfns, s, k), plan));
}

const rowKey = (config: string, n: number, op: string): string => `${config}\u0000${n}\u0000${op}`;

export function runMemslotsBench(
  options: MemslotsBenchOptions,
  onProgress?: (done: number, total: number, label: string) => void,
): MemslotsBenchResult {
  const { slotCounts, configs, minTimeMs, seed } = validate(options);
  const startedAt = new Date().toISOString();
  const t0 = nowNs();
  const plan: TimingPlan = {
    minTimeMs,
    warmupMs: minTimeMs / 4,
    // About 50 batches per cell, 10 µs – 1 ms each (≈ 10k–100k fast lookups per batch).
    targetBatchNs: Math.min(1e6, Math.max(1e4, (minTimeMs * 1e6) / 50)),
    maxBatch: 1 << 17,
    timerOverheadNs: timerOverheadNs(),
  };

  let total = 0;
  for (const c of configs) total += opsOf(c).length * slotCounts.length;
  let done = 0;
  const measured = new Map<string, BenchRow>();
  const recorder =
    (config: string, n: number): Sink =>
    (op, m) => {
      measured.set(rowKey(config, n, op), { config, n, op, nsPerOp: m.nsPerOp, ops: m.ops });
      done++;
      onProgress?.(done, total, `${config} N=${n} ${op}`);
    };

  for (const config of RUN_ORDER) {
    if (!configs.includes(config)) continue;
    for (const n of slotCounts) {
      const record = recorder(config, n);
      if (config === 'bsearch-floor') measureBsearchFloor(n, seed, plan, record);
      else measureStoreConfig(config as StoreConfig, n, seed, plan, record);
    }
  }

  // Rows in the canonical order: config (MEMSLOTS_BENCH_CONFIGS), N ascending, op.
  const rows: BenchRow[] = [];
  for (const config of MEMSLOTS_BENCH_CONFIGS) {
    if (!configs.includes(config)) continue;
    for (const n of slotCounts) {
      for (const op of opsOf(config)) {
        const row = measured.get(rowKey(config, n, op));
        if (row !== undefined) rows.push(row);
      }
    }
  }

  return {
    machine: machineInfo(plan),
    rows,
    targets: evaluateTargets(rows),
    startedAt,
    durationMs: Number(nowNs() - t0) / 1e6,
  };
}
