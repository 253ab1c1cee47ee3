/**
 * The memslot_perf_test workloads on the model: an x86 VM of the chosen memslot store and MMU,
 * a host (VMM) actor doing the selftest's host loop and a vCPU actor doing its guest loop through
 * the real fault path, interleaved by {@link runActors}.
 *
 * Both actors run on one thread, so a model iteration costs host work + guest work, where the
 * selftest overlaps them on two CPUs; the kernel side (kernel-side.ts) is sequential too, so the
 * two sides are summed the same way.
 */
import { createVm, KVM_MEM_LOG_DIRTY_PAGES, type Kvm, type KvmVcpu, type UserspaceMemoryRegion } from '@kvmsim/kvm-core';
import type { Steps } from '@kvmsim/kvm-core/sched';
import { x86Backend } from '@kvmsim/x86';
import { runActors, SyncArea } from './actors.js';
import {
  MEM_EXTRA_SIZE,
  MEM_TEST_GPA,
  MEM_TEST_MAP_SIZE,
  MEM_TEST_MOVE_GPA_DEST,
  MEM_TEST_MOVE_SIZE,
  MEM_TEST_UNMAP_CHUNK_SIZE,
  MEM_TEST_UNMAP_SIZE,
  PAGE_BYTES,
  SLOT0_BYTES,
  SLOT0_GPA,
  SLOT0_HVA,
  TEST_HVA,
  VAL_1,
  VAL_2,
  moveArea,
  pieceLength,
  slotGpa,
  slotOfPage,
  slotPages,
  testHva,
  type SlotLayout,
  type Workload,
} from './layout.js';
import { nowNs } from '../timing.js';

export const STORES = ['scalable', 'legacy', 'scalable-no-hva-tree'] as const;
export type StoreName = (typeof STORES)[number];
export type MmuName = 'tdp' | 'shadow';

export interface ModelConfig {
  readonly store: StoreName;
  readonly mmu: MmuName;
}

export function configName(c: ModelConfig): string {
  return `${c.store}/${c.mmu}`;
}

export interface ModelVm {
  readonly kvm: Kvm;
  readonly vcpu: KvmVcpu;
  readonly layout: SlotLayout;
}

/** Test pages (from MEM_GPA) before MEM_TEST_GPA: the sync area. */
const EXTRA_PAGES = MEM_EXTRA_SIZE / PAGE_BYTES;

function region(slot: number, gpa: number, bytes: number, hva: number, flags = 0): UserspaceMemoryRegion {
  return { slot, flags, guestPhysAddr: BigInt(gpa), memorySize: BigInt(bytes), userspaceAddr: BigInt(hva) };
}

/** KVM_SET_USER_MEMORY_REGION argument of test slot `id` at its own gpa (or at `gpa`). */
export function testSlotRegion(l: SlotLayout, id: number, gpa: number = slotGpa(l, id), flags = 0): UserspaceMemoryRegion {
  const s = slotPages(l, id);
  return region(id, gpa, s.pages * PAGE_BYTES, testHva(s.first), flags);
}


/**
 * prepare_vm(): slot 0, then test slots 1..nslots in ascending order, each ioctl timed; the VM's
 * vCPU. Returns the VM and the summed time of the test slots' ioctls.
 */
export function buildModelVm(c: ModelConfig, l: SlotLayout): { vm: ModelVm; setupNs: number } {
  const kvm = createVm({
    backend: x86Backend({ mmu: c.mmu }),
    memslots: c.store === 'legacy' ? 'legacy' : 'scalable',
    ...(c.store === 'scalable-no-hva-tree' ? { hvaTree: false } : {}),
  });
  kvm.host.mmap(BigInt(SLOT0_HVA), BigInt(SLOT0_BYTES));
  kvm.setUserMemoryRegion(region(0, SLOT0_GPA, SLOT0_BYTES, SLOT0_HVA));
  kvm.host.mmap(BigInt(TEST_HVA), BigInt(l.npages * PAGE_BYTES));
  let setupNs = 0;
  for (let id = 1; id <= l.nslots; id++) {
    const r = testSlotRegion(l, id);
    const t0 = nowNs();
    kvm.setUserMemoryRegion(r);
    setupNs += Number(nowNs() - t0);
  }
  return { vm: { kvm, vcpu: kvm.createVcpu(0), layout: l }, setupNs };
}

/** What one workload run measured on the model. */
export interface ModelWorkloadRun {
  /** Completed host iterations (memslot_perf_test's nloops). */
  iterations: number;
  /** Time per iteration, ns (the first iteration is excluded when there are two or more). */
  nsPerIteration: number;
  /** madvise calls (map, unmap, unmap-chunked) or MOVE ioctls (move-*) made. */
  hostOps: number;
  /** Host actor time per host op, ns. */
  nsPerHostOp: number;
  /** Guest accesses made and faults taken by the vCPU. */
  guestAccesses: number;
  guestFaults: number;
  /** MMIO exits (move-active allows them in the moved half of the area). */
  mmioExits: number;
  /** Set when no iteration completed within the budget: per-iteration is extrapolated from host ops. */
  partial?: { opsDone: number; opsPerIteration: number };
  /** Things the workload found wrong (a value read back wrongly, an MMIO exit where none is allowed). */
  violations: string[];
}

interface HostStats {
  iterations: number;
  hostOps: number;
  /** nowNs() at the end of each of the first and the last iteration. */
  firstEnd: bigint;
  lastEnd: bigint;
  partial: boolean;
}

function newStats(): HostStats {
  return { iterations: 0, hostOps: 0, firstEnd: 0n, lastEnd: 0n, partial: false };
}

function endIteration(s: HostStats): void {
  s.iterations++;
  s.lastEnd = nowNs();
  if (s.iterations === 1) s.firstEnd = s.lastEnd;
}

interface GuestStats {
  accesses: number;
  mmio: number;
  violations: string[];
}

/** A guest store of VAL at `gpa`; an exit that the workload does not allow is a violation. */
function* guestWrite(vcpu: KvmVcpu, gpa: number, value: bigint, g: GuestStats, mmioOk: (gpa: number) => boolean): Steps {
  const r = yield* vcpu.accessSteps(gpa, 8, true, value);
  g.accesses++;
  if (r.exit !== 'none') {
    g.mmio++;
    if (!mmioOk(gpa) && g.violations.length < 10) g.violations.push(`unexpected MMIO exit on a guest write at gpa 0x${gpa.toString(16)}`);
  }
}

const NO_MMIO = (): boolean => false;

/**
 * test_memslot_do_unmap(): madvise(DONTNEED) of `count` test pages from `first` (a page index from
 * MEM_GPA), one call per slot piece. Stops early (stats.partial) once past `deadline` before any
 * iteration completed, so that a cell whose iteration would take seconds still ends in its budget.
 */
function* doUnmap(vm: ModelVm, first: number, count: number, s: HostStats, deadline: bigint): Steps {
  const l = vm.layout;
  for (let page = first, done = 0; done < count; ) {
    if (s.iterations === 0 && s.hostOps >= 8 && nowNs() > deadline) {
      s.partial = true;
      return;
    }
    const pages = pieceLength(l, page, count - done);
    yield* vm.kvm.host.madviseSteps(BigInt(testHva(page)), BigInt(pages * PAGE_BYTES), 'DONTNEED');
    s.hostOps++;
    done += pages;
    page += pages;
  }
}

// ---- map ----------------------------------------------------------------------------------------

function* mapGuest(vm: ModelVm, sync: SyncArea, g: GuestStats): Steps {
  const half = MEM_TEST_MAP_SIZE / PAGE_BYTES / 2;
  for (;;) {
    for (let i = 0; i < half; i++) yield* guestWrite(vm.vcpu, MEM_TEST_GPA + i * PAGE_BYTES, VAL_1, g, NO_MMIO);
    if (!(yield* sync.guestSync())) return;
    for (let i = half; i < 2 * half; i++) yield* guestWrite(vm.vcpu, MEM_TEST_GPA + i * PAGE_BYTES, VAL_2, g, NO_MMIO);
    if (!(yield* sync.guestSync())) return;
  }
}

function* mapHost(vm: ModelVm, sync: SyncArea, s: HostStats, deadline: bigint): Steps {
  const half = MEM_TEST_MAP_SIZE / PAGE_BYTES / 2;
  try {
    do {
      yield* doUnmap(vm, EXTRA_PAGES + half, half, s, deadline);
      if (s.partial) return;
      yield* sync.hostSync();
      yield* doUnmap(vm, EXTRA_PAGES, half, s, deadline);
      if (s.partial) return;
      yield* sync.hostSync();
      endIteration(s);
    } while (nowNs() < deadline);
  } finally {
    sync.exit = true;
  }
}

// ---- unmap, unmap chunked -----------------------------------------------------------------------

function* unmapGuest(vm: ModelVm, sync: SyncArea, g: GuestStats): Steps {
  for (;;) {
    yield* guestWrite(vm.vcpu, MEM_TEST_GPA, VAL_1, g, NO_MMIO);
    if (!(yield* sync.guestSync())) return;
    yield* guestWrite(vm.vcpu, MEM_TEST_GPA + MEM_TEST_UNMAP_SIZE / 2, VAL_2, g, NO_MMIO);
    if (!(yield* sync.guestSync())) return;
  }
}

function* unmapHost(vm: ModelVm, sync: SyncArea, s: HostStats, deadline: bigint, chunk: number): Steps {
  const pages = MEM_TEST_UNMAP_SIZE / PAGE_BYTES;
  try {
    do {
      for (const [from, to] of [
        [0, pages / 2],
        [pages / 2, pages],
      ] as const) {
        yield* sync.hostSync();
        for (let ctr = from; ctr < to; ctr += chunk) {
          yield* doUnmap(vm, EXTRA_PAGES + ctr, chunk, s, deadline);
          if (s.partial) return;
        }
      }
      endIteration(s);
    } while (nowNs() < deadline);
  } finally {
    sync.exit = true;
  }
}

// ---- move active / inactive ---------------------------------------------------------------------

function* moveGuest(vm: ModelVm, sync: SyncArea, g: GuestStats, areaGpa: number, mmioOk: (gpa: number) => boolean): Steps {
  while (!sync.exit) {
    for (let gpa = areaGpa; gpa < areaGpa + MEM_TEST_MOVE_SIZE; gpa += PAGE_BYTES) yield* guestWrite(vm.vcpu, gpa, VAL_1, g, mmioOk);
  }
}

function* moveHost(vm: ModelVm, sync: SyncArea, s: HostStats, deadline: bigint): Steps {
  const l = vm.layout;
  const away = testSlotRegion(l, l.nslots, MEM_TEST_MOVE_GPA_DEST);
  const back = testSlotRegion(l, l.nslots);
  try {
    do {
      yield* vm.kvm.setUserMemoryRegionSteps(away);
      yield* vm.kvm.setUserMemoryRegionSteps(back);
      s.hostOps += 2;
      endIteration(s);
    } while (nowNs() < deadline);
  } finally {
    sync.exit = true;
  }
}

// ---- rw -----------------------------------------------------------------------------------------

function* rwGuest(vm: ModelVm, sync: SyncArea, g: GuestStats): Steps {
  const pages = vm.layout.npages - EXTRA_PAGES;
  for (;;) {
    for (let i = 0; i < pages; i++) yield* guestWrite(vm.vcpu, MEM_TEST_GPA + i * PAGE_BYTES, VAL_1, g, NO_MMIO);
    if (!(yield* sync.guestSync())) return;
    for (let i = 0; i < pages; i++) {
      const gpa = MEM_TEST_GPA + i * PAGE_BYTES + PAGE_BYTES / 2;
      const r = yield* vm.vcpu.accessSteps(gpa, 8, false, 0n);
      g.accesses++;
      if (r.exit !== 'none' || r.value !== VAL_2) {
        if (g.violations.length < 10) g.violations.push(`guest read at gpa 0x${gpa.toString(16)}: expected VAL_2, got ${r.exit === 'none' ? `0x${r.value.toString(16)}` : 'an MMIO exit'}`);
      }
      yield* guestWrite(vm.vcpu, gpa, 0n, g, NO_MMIO);
    }
    if (!(yield* sync.guestSync())) return;
  }
}

function* rwHost(vm: ModelVm, sync: SyncArea, s: HostStats, g: GuestStats, deadline: bigint): Steps {
  const host = vm.kvm.host;
  const pages = vm.layout.npages - EXTRA_PAGES;
  try {
    do {
      for (let i = 0; i < pages; i++) yield* host.writeSteps(BigInt(testHva(EXTRA_PAGES + i) + PAGE_BYTES / 2), 8, VAL_2);
      yield* sync.hostSync();
      for (let i = 0; i < pages; i++) {
        const hva = BigInt(testHva(EXTRA_PAGES + i));
        const v = host.read(hva, 8);
        if (v !== VAL_1 && g.violations.length < 10) g.violations.push(`host read at test page ${i}: expected VAL_1, got 0x${v.toString(16)}`);
        yield* host.writeSteps(hva, 8, 0n);
      }
      s.hostOps += 2 * pages;
      yield* sync.hostSync();
      endIteration(s);
    } while (nowNs() < deadline);
  } finally {
    sync.exit = true;
  }
}

/** Run one workload on a prepared VM for about `budgetMs` (at least one iteration, unless partial). */
export function runModelWorkload(vm: ModelVm, w: Workload, budgetMs: number, seed: number): ModelWorkloadRun {
  const sync = new SyncArea();
  const s = newStats();
  const g: GuestStats = { accesses: 0, mmio: 0, violations: [] };
  const faults0 = vm.vcpu.faults;
  const start = nowNs();
  const deadline = start + BigInt(Math.round(budgetMs * 1e6));
  let host: Steps;
  let guest: Steps;
  let opsPerIteration = 0;
  switch (w) {
    case 'map': {
      host = mapHost(vm, sync, s, deadline);
      guest = mapGuest(vm, sync, g);
      const half = MEM_TEST_MAP_SIZE / PAGE_BYTES / 2;
      opsPerIteration = pieceCount(vm.layout, EXTRA_PAGES + half, half) + pieceCount(vm.layout, EXTRA_PAGES, half);
      break;
    }
    case 'unmap':
    case 'unmap-chunked': {
      const chunk = w === 'unmap' ? 1 : MEM_TEST_UNMAP_CHUNK_SIZE / PAGE_BYTES;
      host = unmapHost(vm, sync, s, deadline, chunk);
      guest = unmapGuest(vm, sync, g);
      opsPerIteration = unmapCallsPerIteration(vm.layout, chunk);
      break;
    }
    case 'move-active':
    case 'move-inactive': {
      const a = moveArea(vm.layout, w === 'move-active');
      host = moveHost(vm, sync, s, deadline);
      guest = moveGuest(vm, sync, g, a.areaGpa, (gpa) => gpa >= a.mmioMin && gpa <= a.mmioMax);
      opsPerIteration = 2;
      break;
    }
    case 'rw':
      host = rwHost(vm, sync, s, g, deadline);
      guest = rwGuest(vm, sync, g);
      opsPerIteration = 2 * (vm.layout.npages - EXTRA_PAGES);
      break;
  }
  const run = runActors(
    [
      { name: 'vmm', steps: host },
      { name: 'vcpu0', steps: guest },
    ],
    seed,
  );
  const hostNs = run.ns[0]!;
  const base: Omit<ModelWorkloadRun, 'nsPerIteration' | 'partial'> = {
    iterations: s.iterations,
    hostOps: s.hostOps,
    nsPerHostOp: s.hostOps > 0 ? hostNs / s.hostOps : Number.NaN,
    guestAccesses: g.accesses,
    guestFaults: vm.vcpu.faults - faults0,
    mmioExits: g.mmio,
    violations: g.violations,
  };
  if (s.iterations === 0) {
    // Extrapolated: the whole run's time per host op, times the host ops of one iteration.
    const perOp = s.hostOps > 0 ? run.totalNs / s.hostOps : Number.NaN;
    return { ...base, nsPerIteration: perOp * opsPerIteration, partial: { opsDone: s.hostOps, opsPerIteration } };
  }
  const nsPerIteration = s.iterations >= 2 ? Number(s.lastEnd - s.firstEnd) / (s.iterations - 1) : Number(s.lastEnd - start);
  return { ...base, nsPerIteration };
}

/** madvise calls test_memslot_do_unmap() makes for `count` pages from `first`: one per slot piece. */
function pieceCount(l: SlotLayout, first: number, count: number): number {
  const last = first + count - 1;
  return slotOfPage(l, last) - slotOfPage(l, first) + 1;
}

/** madvise calls of one unmap iteration: chunks of `chunk` pages, each split at slot boundaries. */
export function unmapCallsPerIteration(l: SlotLayout, chunk: number): number {
  const pages = MEM_TEST_UNMAP_SIZE / PAGE_BYTES;
  let calls = 0;
  for (let ctr = 0; ctr < pages; ctr += chunk) calls += pieceCount(l, EXTRA_PAGES + ctr, chunk);
  return calls;
}

// ---- isolated figures: a 4 KiB guest fault, memslot updates --------------------------------------

/**
 * The cost of a 4 KiB guest write fault: `pages` test pages are written twice (the first pass
 * faults each page in, host page included; the second hits), then dropped with madvise(DONTNEED);
 * `reps` times. Returns the median of (first pass − second pass) / pages.
 */
export function modelFault4k(vm: ModelVm, pages: number, reps: number): number {
  const out: number[] = [];
  const host = vm.kvm.host;
  const pass = (): number => {
    const t0 = nowNs();
    for (let i = 0; i < pages; i++) vm.vcpu.write(MEM_TEST_GPA + i * PAGE_BYTES, 8, VAL_1);
    return Number(nowNs() - t0);
  };
  for (let r = 0; r < reps; r++) {
    host.madvise(BigInt(testHva(EXTRA_PAGES)), BigInt(pages * PAGE_BYTES), 'DONTNEED');
    const cold = pass();
    const warm = pass();
    out.push((cold - warm) / pages);
  }
  out.sort((a, b) => a - b);
  return out[out.length >> 1]!;
}

/**
 * The memslot updates the targets name, as round trips on the middle test slot that restore the
 * VM: delete then create; move away then back; dirty logging on then off.
 */
export function updatePairs(l: SlotLayout): { pair: 'delete-create' | 'move' | 'flags'; first: UserspaceMemoryRegion; second: UserspaceMemoryRegion }[] {
  const id = Math.max(1, l.nslots >> 1);
  const present = testSlotRegion(l, id);
  const absent = { ...present, memorySize: 0n };
  return [
    { pair: 'delete-create', first: absent, second: present },
    { pair: 'move', first: testSlotRegion(l, id, MEM_TEST_MOVE_GPA_DEST), second: present },
    { pair: 'flags', first: testSlotRegion(l, id, slotGpa(l, id), KVM_MEM_LOG_DIRTY_PAGES), second: present },
  ];
}
