/**
 * `kvmsim bench perf-test`: memslot_perf_test's workloads, slot setup, the isolated memslot
 * updates and a 4 KiB guest fault, on the model (per store and MMU) and on the real kernel in the
 * same run; rows of cost per op, ratios and the targets.
 *
 * VMs are built once per layout (map: 32 MiB; unmap and unmap-chunked: 128 MiB; move-active,
 * move-inactive and rw: 512 MiB) and reused by the workloads of that layout, on both sides: the
 * legacy store's setup is O(n²) (≈10 s at 32763 slots), and the selftest's own slot-setup figure
 * comes from the 512 MiB layout as well.
 *
 * This is a benchmark, not a test: nothing here asserts on timings.
 */
import { availableParallelism, cpus, release, totalmem, type as osType, arch as osArch } from 'node:os';
import type { ReplayTarget } from '@kvmsim/conformance/targets';
import { measurePaired, timerOverheadNs, nowNs, type TimingPlan } from '../timing.js';
import { deriveSeed } from '../prng.js';
import { isNa, workloadLayout, WORKLOADS, MAX_MEMSLOTS, MEM_EXTRA_SIZE, MEM_TEST_GPA, PAGE_BYTES, type SlotLayout, type Workload } from './layout.js';
import {
  buildModelVm,
  configName,
  modelFault4k,
  runModelWorkload,
  STORES,
  updatePairs,
  type ModelConfig,
  type ModelVm,
  type MmuName,
  type StoreName,
} from './model-side.js';
import { buildKernelVm, kernelFault4k, kernelUpdates, runKernelWorkload } from './kernel-side.js';
import { evaluatePerfTargets, type PerfTarget } from './targets.js';

/** What a row measures; workloads have a per-iteration row and a per-host-op row. */
export const METRICS = [
  'setup',
  'map',
  'map/madvise',
  'unmap',
  'unmap/madvise',
  'unmap-chunked',
  'unmap-chunked/madvise',
  'move-active',
  'move-inactive',
  'rw',
  'create',
  'delete',
  'move',
  'flags',
  'fault-4k',
] as const;
export type Metric = (typeof METRICS)[number];

export const METRIC_UNITS: Readonly<Record<Metric, string>> = {
  setup: 'per slot (KVM_SET_USER_MEMORY_REGION of a new test slot; the best of up to 3 builds of the 512 MiB layout, as the selftest reports it)',
  map: 'per iteration (madvise both halves of 32 MiB, guest refaults them)',
  'map/madvise': 'per madvise(DONTNEED) call of the map loop',
  unmap: 'per iteration (128 MiB, one 4 KiB page per madvise)',
  'unmap/madvise': 'per madvise(DONTNEED) call of one page',
  'unmap-chunked': 'per iteration (128 MiB, 2 MiB per madvise)',
  'unmap-chunked/madvise': 'per madvise(DONTNEED) call of up to 2 MiB',
  'move-active': 'per MOVE pair (the last slot away and back; guest writing an area straddling it)',
  'move-inactive': 'per MOVE pair (guest writing an area below the moved slot)',
  rw: 'per iteration (guest and host write and read 8 bytes of every page of 512 MiB)',
  create: 'per ioctl (create a slot), isolated',
  delete: 'per ioctl (delete a slot), isolated',
  move: 'per ioctl (move a slot), isolated',
  flags: 'per ioctl (toggle KVM_MEM_LOG_DIRTY_PAGES), isolated',
  'fault-4k': 'per guest 4 KiB write fault (first touch minus second touch)',
};

export const KERNEL_CONFIG = 'kernel';

/** The note of a per-iteration figure computed from part of an iteration (detail: hostOps of opsPerIteration). */
const EXTRAPOLATED = 'extrapolated: no whole iteration fit the cell time, so the figure is the time per host op × the host ops of one iteration (detail: hostOps done, opsPerIteration)';

export interface PerfRow {
  metric: Metric;
  /** `scalable/tdp`, `legacy/tdp`, `scalable-no-hva-tree/tdp`, … or `kernel`. */
  config: string;
  /** Slot count asked for (the column). */
  n: number;
  /** Test slots created (n, or 32763 for 32764: slot 0 counts towards KVM_CAP_NR_MEMSLOTS). */
  testSlots: number;
  /** Cost per op, ns; null when the row does not apply (see note). */
  nsPerOp: number | null;
  /** Why n/a, or how the figure was obtained when it is not a plain measurement. */
  note?: string;
  /** Counts behind the figure (iterations, host ops, guest accesses, faults, MMIO exits …). */
  detail?: Record<string, number>;
}

export interface PerfTestOptions {
  slotCounts?: number[];
  workloads?: Workload[];
  stores?: StoreName[];
  mmus?: MmuName[];
  /** Run the kernel side (default true); skipped with a reason when the oracle is unavailable. */
  kernel?: boolean;
  /** Time budget of one workload cell, ms. Default 300. */
  cellMs?: number;
  /** Round trips of each isolated update on the kernel side; measuring time per model update cell = cellMs / 6. */
  updateReps?: number;
  /** Repetitions of the fault measurement; pages per repetition. */
  faultReps?: number;
  faultPages?: number;
  seed?: number;
  /** Opens the kernel side (one call per kernel VM); default: none (kernel side skipped). */
  openKernel?: () => Promise<ReplayTarget | { unavailable: string }>;
}

export interface PerfTestResult {
  machine: Record<string, string | number>;
  kernel: { available: boolean; reason?: string; name?: string };
  /** Model configs run, and the ones skipped with the reason (e.g. the shadow MMU not available). */
  configs: string[];
  skippedConfigs: { config: string; reason: string }[];
  slotCounts: number[];
  workloads: Workload[];
  rows: PerfRow[];
  targets: PerfTarget[];
  violations: string[];
  startedAt: string;
  durationMs: number;
  options: { cellMs: number; updateReps: number; faultReps: number; faultPages: number; seed: number };
}

export const DEFAULT_PERF_SLOT_COUNTS: readonly number[] = Object.freeze([1, 10, 100, 509, 4096, 32764]);
export const DEFAULT_CELL_MS = 300;
const DEFAULT_UPDATE_REPS = 64;
const DEFAULT_FAULT_REPS = 9;
const DEFAULT_FAULT_PAGES = 4096;

type Layouts = 'map' | 'unmap' | 'full';
const LAYOUT_WORKLOADS: Readonly<Record<Layouts, readonly Workload[]>> = {
  map: ['map'],
  unmap: ['unmap', 'unmap-chunked'],
  full: ['move-active', 'move-inactive', 'rw'],
};
/** The layout each group's VM is built with (move-active's extra rule is checked per workload). */
const LAYOUT_OF: Readonly<Record<Layouts, Workload>> = { map: 'map', unmap: 'unmap', full: 'rw' };

function machineInfo(): Record<string, string | number> {
  return {
    node: process.version,
    v8: process.versions.v8,
    os: `${osType()} ${release()} ${osArch()}`,
    kernelRelease: release(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    totalMemoryMiB: Math.round(totalmem() / 2 ** 20),
  };
}

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Can the model run a guest access with this MMU? The reason when it cannot. */
function probeMmu(mmu: MmuName): string | undefined {
  const l = workloadLayout('map', 1);
  if (isNa(l)) return l.na;
  try {
    const { vm } = buildModelVm({ store: 'scalable', mmu }, l);
    vm.vcpu.write(MEM_TEST_GPA, 8, 1n);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

function validate(o: PerfTestOptions): Required<Omit<PerfTestOptions, 'openKernel'>> {
  const slotCounts = [...new Set(o.slotCounts ?? DEFAULT_PERF_SLOT_COUNTS)].sort((a, b) => a - b);
  for (const n of slotCounts) {
    if (!Number.isInteger(n) || n < 1 || n > MAX_MEMSLOTS) throw new RangeError(`slot count ${n}: must be an integer in [1, ${MAX_MEMSLOTS}]`);
  }
  const workloads = o.workloads ?? [...WORKLOADS];
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw new RangeError(`unknown workload '${w}' (known: ${WORKLOADS.join(', ')})`);
  const stores = o.stores ?? [...STORES];
  for (const s of stores) if (!STORES.includes(s)) throw new RangeError(`unknown store '${s}' (known: ${STORES.join(', ')})`);
  const mmus = o.mmus ?? ['tdp'];
  for (const m of mmus) if (m !== 'tdp' && m !== 'shadow') throw new RangeError(`unknown MMU '${String(m)}' (known: tdp, shadow)`);
  const cellMs = o.cellMs ?? DEFAULT_CELL_MS;
  if (!(cellMs > 0)) throw new RangeError(`cell time ${cellMs}: must be a positive number of ms`);
  return {
    slotCounts,
    workloads,
    stores,
    mmus,
    kernel: o.kernel ?? true,
    cellMs,
    updateReps: o.updateReps ?? DEFAULT_UPDATE_REPS,
    faultReps: o.faultReps ?? DEFAULT_FAULT_REPS,
    faultPages: o.faultPages ?? DEFAULT_FAULT_PAGES,
    seed: o.seed ?? 1,
  };
}

/** Which layout groups a run needs, given the workloads asked for (updates and setup ride on 'full', the fault on 'unmap'). */
function groupsOf(workloads: readonly Workload[]): Layouts[] {
  return (['map', 'unmap', 'full'] as const).filter((g) => LAYOUT_WORKLOADS[g].some((w) => workloads.includes(w)) || g !== 'map');
}

export async function runPerfTest(options: PerfTestOptions, onProgress?: (done: number, total: number, label: string) => void): Promise<PerfTestResult> {
  const o = validate(options);
  const startedAt = new Date().toISOString();
  const t0 = nowNs();
  const rows: PerfRow[] = [];
  const violations: string[] = [];
  const skippedConfigs: { config: string; reason: string }[] = [];

  const configs: ModelConfig[] = [];
  const mmuProblem = new Map(o.mmus.map((m) => [m, probeMmu(m)] as const));
  // Store-major, legacy last: kvm-core's call sites stay monomorphic while scalable is measured.
  for (const store of (['scalable', 'scalable-no-hva-tree', 'legacy'] as const).filter((x) => o.stores.includes(x))) {
    for (const mmu of o.mmus) {
      const why = mmuProblem.get(mmu);
      if (why === undefined) configs.push({ store, mmu });
      else skippedConfigs.push({ config: configName({ store, mmu }), reason: `the ${mmu} MMU is not available: ${why}` });
    }
  }

  let kernelInfo: PerfTestResult['kernel'] = { available: false, reason: 'not asked for (--no-kernel)' };
  let firstKernel: ReplayTarget | undefined;
  if (o.kernel) {
    if (options.openKernel === undefined) kernelInfo = { available: false, reason: 'no kernel oracle configured' };
    else {
      const t = await options.openKernel();
      if ('unavailable' in t) kernelInfo = { available: false, reason: t.unavailable };
      else {
        kernelInfo = { available: true, name: t.name };
        firstKernel = t;
      }
    }
  }

  const groups = groupsOf(o.workloads);
  const sides = configs.length + (kernelInfo.available ? 1 : 0);
  const total = sides * o.slotCounts.length * groups.length;
  let done = 0;
  const step = (label: string): void => {
    done++;
    onProgress?.(done, total, label);
  };
  onProgress?.(0, total, 'starting');

  const push = (metric: Metric, config: string, n: number, testSlots: number, nsPerOp: number | null, note?: string, detail?: Record<string, number>): void => {
    const row: PerfRow = { metric, config, n, testSlots, nsPerOp: nsPerOp !== null && Number.isFinite(nsPerOp) ? nsPerOp : null };
    if (note !== undefined) row.note = note;
    if (detail !== undefined) row.detail = detail;
    rows.push(row);
  };
  const naRows = (config: string, n: number, g: Layouts, why: string): void => {
    for (const w of LAYOUT_WORKLOADS[g]) {
      if (!o.workloads.includes(w)) continue;
      push(w, config, n, 0, null, why);
      if (w === 'map' || w === 'unmap' || w === 'unmap-chunked') push(`${w}/madvise`, config, n, 0, null, why);
    }
  };

  const plan = (ms: number): TimingPlan => ({ minTimeMs: ms, warmupMs: ms / 4, targetBatchNs: 1e6, maxBatch: 1, timerOverheadNs: overhead });
  const overhead = timerOverheadNs();

  // ---- the model ----
  for (const c of configs) {
    const name = configName(c);
    warmUp(c, o.seed);
    for (const n of o.slotCounts) {
      for (const g of groups) {
        step(`${name} N=${n} ${g}`);
        const layout = workloadLayout(LAYOUT_OF[g], n);
        if (isNa(layout)) {
          naRows(name, n, g, layout.na);
          continue;
        }
        collectGarbage();
        const buildStart = nowNs();
        const { vm, setupNs } = buildModelVm(c, layout);
        if (g === 'full') {
          const best = await bestSetup(setupNs, Number(nowNs() - buildStart), () => Promise.resolve(buildModelVm(c, layout).setupNs));
          push('setup', name, n, layout.nslots, best.ns / layout.nslots, undefined, { builds: best.builds });
        }
        for (const w of LAYOUT_WORKLOADS[g]) {
          if (!o.workloads.includes(w)) continue;
          const wl = workloadLayout(w, n);
          if (isNa(wl)) {
            // Only this workload (move-active's own rule): the others of the layout still run.
            push(w, name, n, 0, null, wl.na);
            continue;
          }
          if (w === 'rw') warmRw(vm);
          const r = runModelWorkload(vm, w, o.cellMs, deriveSeed(o.seed, n, WORKLOADS.indexOf(w)));
          for (const v of r.violations) violations.push(`${name} N=${n} ${w}: ${v}`);
          const detail: Record<string, number> = { iterations: r.iterations, hostOps: r.hostOps, guestAccesses: r.guestAccesses, guestFaults: r.guestFaults, mmioExits: r.mmioExits };
          if (r.partial) detail['opsPerIteration'] = r.partial.opsPerIteration;
          const note = r.partial ? EXTRAPOLATED : undefined;
          pushWorkload(push, w, name, n, layout, r.nsPerIteration, r.nsPerHostOp, note, detail);
        }
        if (g === 'unmap') push('fault-4k', name, n, layout.nslots, modelFault4k(vm, o.faultPages, o.faultReps), undefined, { pages: o.faultPages, reps: o.faultReps });
        if (g === 'full') modelUpdates(vm, plan(Math.max(5, o.cellMs / 6)), (m, ns) => push(m, name, n, layout.nslots, ns));
      }
    }
  }

  // ---- the kernel ----
  if (kernelInfo.available) {
    let pending = firstKernel;
    for (const n of o.slotCounts) {
      for (const g of groups) {
        step(`kernel N=${n} ${g}`);
        const layout = workloadLayout(LAYOUT_OF[g], n);
        if (isNa(layout)) {
          naRows(KERNEL_CONFIG, n, g, layout.na);
          continue;
        }
        let target = pending;
        pending = undefined;
        if (target === undefined) {
          const t = await options.openKernel!();
          if ('unavailable' in t) throw new Error(`kernel oracle became unavailable: ${t.unavailable}`);
          target = t;
        }
        try {
          await kernelGroup(target, options.openKernel!, layout, g, n, o, push);
        } finally {
          await target.close();
        }
      }
    }
    await pending?.close();
  }

  return {
    machine: machineInfo(),
    kernel: kernelInfo,
    configs: configs.map(configName),
    skippedConfigs,
    slotCounts: o.slotCounts,
    workloads: o.workloads,
    rows,
    targets: evaluatePerfTargets(rows),
    violations,
    startedAt,
    durationMs: Number(nowNs() - t0) / 1e6,
    options: { cellMs: o.cellMs, updateReps: o.updateReps, faultReps: o.faultReps, faultPages: o.faultPages, seed: o.seed },
  };
}

type Push = (metric: Metric, config: string, n: number, testSlots: number, nsPerOp: number | null, note?: string, detail?: Record<string, number>) => void;

function pushWorkload(push: Push, w: Workload, config: string, n: number, l: SlotLayout, perIteration: number, perHostOp: number, note: string | undefined, detail: Record<string, number>): void {
  if (w === 'move-active' || w === 'move-inactive') {
    push(w, config, n, l.nslots, perHostOp * 2, note, detail);
    return;
  }
  push(w, config, n, l.nslots, perIteration, note, detail);
  if (w !== 'rw') push(`${w}/madvise`, config, n, l.nslots, perHostOp, undefined, detail);
}

/**
 * Untimed: a small VM of this config through setup, a move and a map run, so that the first
 * measured cell does not pay for the JIT compiling the paths it takes.
 */
function warmUp(c: ModelConfig, seed: number): void {
  for (const w of ['move-inactive', 'map'] as const) {
    const l = workloadLayout(w, 100);
    if (isNa(l)) continue;
    runModelWorkload(buildModelVm(c, l).vm, w, 20, seed);
  }
}

/** The rw workload's steady state has every test page mapped: one untimed guest pass first. */
function warmRw(vm: ModelVm): void {
  const pages = vm.layout.npages - MEM_EXTRA_SIZE / PAGE_BYTES;
  for (let i = 0; i < pages; i++) vm.vcpu.write(MEM_TEST_GPA + i * PAGE_BYTES, 8, 0n);
}

function modelUpdates(vm: ModelVm, plan: TimingPlan, record: (m: Metric, ns: number) => void): void {
  for (const p of updatePairs(vm.layout)) {
    const r = measurePaired(
      () => vm.kvm.setUserMemoryRegion(p.first),
      () => vm.kvm.setUserMemoryRegion(p.second),
      () => undefined,
      plan,
    );
    if (p.pair === 'delete-create') {
      record('delete', r.first.nsPerOp);
      record('create', r.second.nsPerOp);
    } else record(p.pair, (r.first.nsPerOp + r.second.nsPerOp) / 2);
  }
}

/** Builds of the 512 MiB layout per cell at most (the selftest's three full-memory tests). */
const SETUP_BUILDS = 3;
/** A further build is made only while the last one took less than this, ns. */
const REBUILD_BELOW_NS = 2e9;

/**
 * The slot-setup figure as memslot_perf_test reports it, the best of the builds of its three
 * full-memory tests: up to SETUP_BUILDS builds, a further one only while a build is cheap (the
 * legacy store's O(n²) setup at large N is built once).
 */
async function bestSetup(firstNs: number, firstWallNs: number, rebuild: () => Promise<number>): Promise<{ ns: number; builds: number }> {
  let best = firstNs;
  let builds = 1;
  let wall = firstWallNs;
  while (builds < SETUP_BUILDS && wall < REBUILD_BELOW_NS) {
    collectGarbage();
    const t = nowNs();
    best = Math.min(best, await rebuild());
    wall = Number(nowNs() - t);
    builds++;
  }
  return { ns: best, builds };
}

async function kernelGroup(
  target: ReplayTarget,
  openKernel: () => Promise<ReplayTarget | { unavailable: string }>,
  layout: SlotLayout,
  g: Layouts,
  n: number,
  o: Required<Omit<PerfTestOptions, 'openKernel'>>,
  push: Push,
): Promise<void> {
  const k = KERNEL_CONFIG;
  const buildStart = nowNs();
  const { vm, setupNs } = await buildKernelVm(target, layout);
  if (g === 'full') {
    const best = await bestSetup(setupNs, Number(nowNs() - buildStart), async () => {
      const t = await openKernel();
      if ('unavailable' in t) throw new Error(`kernel oracle became unavailable: ${t.unavailable}`);
      try {
        return (await buildKernelVm(t, layout)).setupNs;
      } finally {
        await t.close();
      }
    });
    push('setup', k, n, layout.nslots, best.ns / layout.nslots, undefined, { builds: best.builds });
  }
  for (const w of LAYOUT_WORKLOADS[g]) {
    if (!o.workloads.includes(w)) continue;
    const wl = workloadLayout(w, n);
    if (isNa(wl)) {
      push(w, k, n, 0, null, wl.na);
      continue;
    }
    const r = await runKernelWorkload(vm, w, o.cellMs);
    const notes = [r.partial ? EXTRAPOLATED : undefined, r.guestNote].filter((x) => x !== undefined);
    const detail: Record<string, number> = { iterations: r.iterations, hostOps: r.hostOps, guestPages: r.guestPages, mmioExits: r.mmioExits };
    if (r.partial) detail['opsPerIteration'] = r.partial.opsPerIteration;
    pushWorkload(push, w, k, n, layout, r.nsPerIteration, r.nsPerHostOp, notes.length > 0 ? notes.join('; ') : undefined, detail);
  }
  if (g === 'unmap') {
    const f = await kernelFault4k(vm, o.faultPages, o.faultReps);
    push('fault-4k', k, n, layout.nslots, f, f === null ? vm.guestUnavailable : undefined, { pages: o.faultPages, reps: o.faultReps });
  }
  if (g === 'full') {
    const u = await kernelUpdates(vm, o.updateReps);
    push('create', k, n, layout.nslots, u.create);
    push('delete', k, n, layout.nslots, u.delete);
    push('move', k, n, layout.nslots, u.move);
    push('flags', k, n, layout.nslots, u.flags);
  }
}
