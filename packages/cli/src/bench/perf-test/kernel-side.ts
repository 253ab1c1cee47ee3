/**
 * The memslot_perf_test workloads on the real kernel, through tools/kvm-oracle (replay protocol
 * v1 with `--timing`: every answer carries `"ns"`, the kernel time of the op's syscall or ioctl).
 * Figures are sums of those kernel times, so the protocol's line and JSON overhead is left out.
 *
 * The oracle cannot run its vCPU while the host side issues ioctls, so the guest side is
 * approximated: one `x_guest_touch` pass (the guest writes 8 bytes at the start of each page of a
 * range, inside one KVM_RUN loop) between host operations, where the selftest's guest runs
 * concurrently. The rw workload's host accesses are plain memory stores on the kernel side; they
 * are timed on a sample of `host_write` ops and scaled to the iteration's count.
 */
import type { ReplayTarget } from '@kvmsim/conformance/targets';
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
  slotPages,
  testHva,
  type SlotLayout,
  type Workload,
} from './layout.js';
import { KVM_MEM_LOG_DIRTY_PAGES } from '@kvmsim/kvm-core';
import { nowNs } from '../timing.js';

const EXTRA_PAGES = MEM_EXTRA_SIZE / PAGE_BYTES;
/** Lines in flight at once (answers are awaited per batch). */
const BATCH = 2048;

type Op = Record<string, string | number | boolean>;

interface Answer {
  readonly ret: number;
  readonly errno?: string;
  readonly ns?: number;
  readonly mmio?: number;
  readonly exits?: number;
}

/** A protocol error from the kernel side that the benchmark did not expect. */
export class KernelSideError extends Error {
  override readonly name = 'KernelSideError';
}

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** One kernel VM (one oracle process), with the selftest's layout. */
export class KernelVm {
  readonly layout: SlotLayout;
  /** x_guest_touch answered ENOSPC (no free slot for the oracle's guest code) or is not supported. */
  guestUnavailable: string | undefined;
  private readonly target: ReplayTarget;

  constructor(target: ReplayTarget, layout: SlotLayout) {
    this.target = target;
    this.layout = layout;
  }

  private static check(op: Op, a: Answer): Answer {
    if (a.ret < 0) throw new KernelSideError(`kernel: ${JSON.stringify(op)} failed: ${a.errno ?? a.ret}`);
    if (typeof a.ns !== 'number') throw new KernelSideError(`kernel: the answer to ${String(op['op'])} has no "ns" (is the oracle run with --timing?)`);
    return a;
  }

  async call(op: Op): Promise<Answer> {
    const a = (await this.target.send(JSON.stringify(op))) as Answer | null;
    if (a === null) throw new KernelSideError(`kernel: no answer to ${String(op['op'])}`);
    return KernelVm.check(op, a);
  }

  /** Send `ops` pipelined; the sum of their kernel times, ns. */
  async batch(ops: readonly Op[]): Promise<number> {
    let ns = 0;
    for (let i = 0; i < ops.length; i += BATCH) {
      const part = ops.slice(i, i + BATCH);
      const answers = await Promise.all(part.map((o) => this.target.send(JSON.stringify(o))));
      for (let k = 0; k < part.length; k++) {
        const a = answers[k] as Answer | null;
        if (a === null) throw new KernelSideError('kernel: an op line got no answer');
        ns += KernelVm.check(part[k]!, a).ns!;
      }
    }
    return ns;
  }

  /** The kernel times of each op, in order (pipelined). */
  async times(ops: readonly Op[]): Promise<number[]> {
    const answers = await Promise.all(ops.map((o) => this.target.send(JSON.stringify(o))));
    return answers.map((a, k) => KernelVm.check(ops[k]!, a as Answer).ns!);
  }

  /** One guest pass writing `value` to the first 8 bytes of `npages` pages from `gpa`; null when unavailable. */
  async touch(gpa: number, npages: number, value: bigint): Promise<{ ns: number; mmio: number } | null> {
    if (this.guestUnavailable !== undefined) return null;
    const op: Op = { op: 'x_guest_touch', gpa: hex(gpa), npages, write: true, value: hex(value) };
    const a = (await this.target.send(JSON.stringify(op))) as Answer | null;
    if (a === null) throw new KernelSideError('kernel: no answer to x_guest_touch');
    if (a.ret < 0 && (a.errno === 'ENOSPC' || a.errno === 'EINVAL' || a.errno === 'EOPNOTSUPP')) {
      this.guestUnavailable = `x_guest_touch answered ${a.errno}${a.errno === 'ENOSPC' ? ' (no free slot for the oracle\'s guest code)' : ''}`;
      return null;
    }
    const ok = KernelVm.check(op, a);
    return { ns: ok.ns!, mmio: ok.mmio ?? 0 };
  }

  close(): Promise<void> {
    return this.target.close();
  }
}

function setRegion(slot: number, gpa: number, bytes: number, hva: number, flags = 0): Op {
  return { op: 'set_user_memory_region', slot, flags, guest_phys_addr: hex(gpa), memory_size: hex(bytes), userspace_addr: hex(hva) };
}

function testSlotOp(l: SlotLayout, id: number, gpa: number = slotGpa(l, id), flags = 0): Op {
  const s = slotPages(l, id);
  return setRegion(id, gpa, s.pages * PAGE_BYTES, testHva(s.first), flags);
}

/** prepare_vm() on the kernel: slot 0, the test mapping, test slots 1..n; returns the slots' summed ioctl time. */
export async function buildKernelVm(target: ReplayTarget, l: SlotLayout): Promise<{ vm: KernelVm; setupNs: number }> {
  const vm = new KernelVm(target, l);
  await vm.call({ op: 'mmap', addr: hex(SLOT0_HVA), length: hex(SLOT0_BYTES) });
  await vm.call(setRegion(0, SLOT0_GPA, SLOT0_BYTES, SLOT0_HVA));
  await vm.call({ op: 'mmap', addr: hex(TEST_HVA), length: hex(l.npages * PAGE_BYTES) });
  const ops: Op[] = [];
  for (let id = 1; id <= l.nslots; id++) ops.push(testSlotOp(l, id));
  const setupNs = await vm.batch(ops);
  return { vm, setupNs };
}

/** test_memslot_do_unmap()'s madvise calls for `count` test pages from `first` (from MEM_GPA). */
function unmapOps(l: SlotLayout, first: number, count: number, out: Op[]): void {
  for (let page = first, done = 0; done < count; ) {
    const pages = pieceLength(l, page, count - done);
    out.push({ op: 'madvise', addr: hex(testHva(page)), length: hex(pages * PAGE_BYTES), advice: 'DONTNEED' });
    done += pages;
    page += pages;
  }
}

export interface KernelWorkloadRun {
  iterations: number;
  nsPerIteration: number;
  hostOps: number;
  nsPerHostOp: number;
  /** Guest pages touched and the kernel time of the touch passes. */
  guestPages: number;
  mmioExits: number;
  partial?: { opsDone: number; opsPerIteration: number };
  /** Why the guest side was left out (then iterations hold host work only). */
  guestNote?: string;
}

interface Acc {
  iterations: number;
  hostOps: number;
  hostNs: number;
  guestNs: number;
  guestPages: number;
  mmio: number;
  /** Kernel ns of every iteration. */
  perIteration: number[];
}

async function touchInto(vm: KernelVm, acc: Acc, gpa: number, npages: number, value: bigint): Promise<number> {
  const r = await vm.touch(gpa, npages, value);
  if (r === null) return 0;
  acc.guestNs += r.ns;
  acc.guestPages += npages;
  acc.mmio += r.mmio;
  return r.ns;
}

/** Run one workload on a prepared kernel VM for about `budgetMs` of wall time. */
export async function runKernelWorkload(vm: KernelVm, w: Workload, budgetMs: number): Promise<KernelWorkloadRun> {
  const l = vm.layout;
  const deadline = nowNs() + BigInt(Math.round(budgetMs * 1e6));
  const acc: Acc = { iterations: 0, hostOps: 0, hostNs: 0, guestNs: 0, guestPages: 0, mmio: 0, perIteration: [] };
  let opsPerIteration = 0;
  let partialOps = -1;

  const host = async (ops: Op[]): Promise<number> => {
    const ns = await vm.batch(ops);
    acc.hostNs += ns;
    acc.hostOps += ops.length;
    return ns;
  };

  switch (w) {
    case 'map': {
      const half = MEM_TEST_MAP_SIZE / PAGE_BYTES / 2;
      const unmapHalf2: Op[] = [];
      const unmapHalf1: Op[] = [];
      unmapOps(l, EXTRA_PAGES + half, half, unmapHalf2);
      unmapOps(l, EXTRA_PAGES, half, unmapHalf1);
      opsPerIteration = unmapHalf1.length + unmapHalf2.length;
      do {
        let it = 0;
        it += await touchInto(vm, acc, MEM_TEST_GPA, half, VAL_1);
        it += await host(unmapHalf2);
        it += await touchInto(vm, acc, MEM_TEST_GPA + half * PAGE_BYTES, half, VAL_2);
        it += await host(unmapHalf1);
        acc.perIteration.push(it);
        acc.iterations++;
      } while (nowNs() < deadline);
      break;
    }
    case 'unmap':
    case 'unmap-chunked': {
      const chunk = w === 'unmap' ? 1 : MEM_TEST_UNMAP_CHUNK_SIZE / PAGE_BYTES;
      const pages = MEM_TEST_UNMAP_SIZE / PAGE_BYTES;
      const halves: Op[][] = [[], []];
      for (let ctr = 0; ctr < pages; ctr += chunk) unmapOps(l, EXTRA_PAGES + ctr, chunk, halves[ctr < pages / 2 ? 0 : 1]!);
      opsPerIteration = halves[0]!.length + halves[1]!.length;
      outer: do {
        let it = 0;
        for (let h = 0; h < 2; h++) {
          it += await touchInto(vm, acc, MEM_TEST_GPA + h * (MEM_TEST_UNMAP_SIZE / 2), 1, h === 0 ? VAL_1 : VAL_2);
          const ops = halves[h]!;
          for (let i = 0; i < ops.length; i += BATCH) {
            if (acc.iterations === 0 && acc.hostOps >= 8 && nowNs() > deadline) {
              partialOps = acc.hostOps;
              break outer;
            }
            it += await host(ops.slice(i, i + BATCH));
          }
        }
        acc.perIteration.push(it);
        acc.iterations++;
      } while (nowNs() < deadline);
      break;
    }
    case 'move-active':
    case 'move-inactive': {
      const a = moveArea(l, w === 'move-active');
      const away = testSlotOp(l, l.nslots, MEM_TEST_MOVE_GPA_DEST);
      const back = testSlotOp(l, l.nslots);
      opsPerIteration = 2;
      do {
        let it = await touchInto(vm, acc, a.areaGpa, MEM_TEST_MOVE_SIZE / PAGE_BYTES, VAL_1);
        it += await host([away]);
        it += await host([back]);
        acc.perIteration.push(it);
        acc.iterations++;
      } while (nowNs() < deadline);
      break;
    }
    case 'rw': {
      const pages = l.npages - EXTRA_PAGES;
      opsPerIteration = 2 * pages;
      // Warm-up pass: the steady state has every page mapped (the model side does the same).
      if ((await vm.touch(MEM_TEST_GPA, pages, VAL_1)) === null) break;
      // The host's stores and loads of the selftest, scaled from a sample of timed host_write ops
      // to pages the guest already faulted in (the second round: no first-touch effects).
      const sample: Op[] = [];
      for (let i = 0; i < 1024; i++) sample.push({ op: 'host_write', addr: hex(testHva(EXTRA_PAGES + i) + PAGE_BYTES / 2), size: 8, value: hex(VAL_2) });
      await vm.batch(sample);
      const hostAccessNs = (await vm.batch(sample)) / sample.length;
      do {
        let it = 0;
        it += await touchInto(vm, acc, MEM_TEST_GPA, pages, VAL_1);
        it += await touchInto(vm, acc, MEM_TEST_GPA, pages, 0n);
        const hostNs = hostAccessNs * 2 * pages;
        acc.hostNs += hostNs;
        acc.hostOps += 2 * pages;
        it += hostNs;
        acc.perIteration.push(it);
        acc.iterations++;
      } while (nowNs() < deadline);
      break;
    }
  }

  const run: KernelWorkloadRun = {
    iterations: acc.iterations,
    nsPerIteration: Number.NaN,
    hostOps: acc.hostOps,
    nsPerHostOp: acc.hostOps > 0 ? acc.hostNs / acc.hostOps : Number.NaN,
    guestPages: acc.guestPages,
    mmioExits: acc.mmio,
  };
  if (vm.guestUnavailable !== undefined) run.guestNote = `guest side left out: ${vm.guestUnavailable}`;
  if (vm.guestUnavailable !== undefined && (w === 'map' || w === 'rw')) {
    // Without its guest passes the workload is not itself: no figure rather than a misleading one.
    run.guestNote = `n/a: ${vm.guestUnavailable}`;
  } else if (partialOps >= 0) {
    run.nsPerIteration = run.nsPerHostOp * opsPerIteration;
    run.partial = { opsDone: partialOps, opsPerIteration };
  } else {
    // As on the model: the first iteration is a warm-up when there are more.
    const its = acc.perIteration.length >= 2 ? acc.perIteration.slice(1) : acc.perIteration;
    run.nsPerIteration = its.reduce((s, x) => s + x, 0) / its.length;
  }
  return run;
}

/** Median of a list (sorted copy). */
function med(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The memslot updates on the middle test slot, `reps` round trips each: delete then create; move
 * away then back; dirty logging on then off. Medians of the kernel ioctl times, ns.
 */
export async function kernelUpdates(vm: KernelVm, reps: number): Promise<{ create: number; delete: number; move: number; flags: number }> {
  const l = vm.layout;
  const id = Math.max(1, l.nslots >> 1);
  const present = testSlotOp(l, id);
  const pairs: [Op, Op][] = [
    [{ ...present, memory_size: '0x0' }, present],
    [testSlotOp(l, id, MEM_TEST_MOVE_GPA_DEST), present],
    [testSlotOp(l, id, slotGpa(l, id), KVM_MEM_LOG_DIRTY_PAGES), present],
  ];
  const out: number[][] = [];
  for (const [a, b] of pairs) {
    const ops: Op[] = [];
    for (let r = 0; r < reps; r++) ops.push(a, b);
    const t = await vm.times(ops);
    out.push(t.filter((_, i) => i % 2 === 0), t.filter((_, i) => i % 2 === 1));
  }
  const [del, create, away, back, on, off] = out as [number[], number[], number[], number[], number[], number[]];
  return { delete: med(del), create: med(create), move: (med(away) + med(back)) / 2, flags: (med(on) + med(off)) / 2 };
}

/**
 * The kernel's 4 KiB guest write fault: `pages` test pages dropped (madvise), touched (faults,
 * host page included), touched again (no faults); median of (cold − warm) / pages over `reps`.
 * Null when the guest side is unavailable.
 */
export async function kernelFault4k(vm: KernelVm, pages: number, reps: number): Promise<number | null> {
  const out: number[] = [];
  const drop: Op[] = [];
  unmapOps(vm.layout, EXTRA_PAGES, pages, drop);
  for (let r = 0; r < reps; r++) {
    await vm.batch(drop);
    const cold = await vm.touch(MEM_TEST_GPA, pages, VAL_1);
    const warm = await vm.touch(MEM_TEST_GPA, pages, VAL_1);
    if (cold === null || warm === null) return null;
    out.push((cold.ns - warm.ns) / pages);
  }
  return med(out);
}
