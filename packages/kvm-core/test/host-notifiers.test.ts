/**
 * The host address space calls the registered MMU notifiers exactly where Linux 6.18's mm does:
 * exact call lists per operation, recorded by a subscriber that only logs.
 */
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../src/errors.js';
import { HostAddressSpace, PROT_NONE, PROT_READ, PROT_WRITE } from '../src/host/host-address-space.js';
import { MMU_NOTIFIER_FAST_FAILED, MMU_NOTIFIER_FAST_YOUNG, type MmuNotifierOps, type MmuNotifierRange } from '../src/host/mmu-notifier.js';
import { Scheduler, point, runSync, type Steps } from '../src/sched/index.js';

const PG = 0x1000n;
const HP = 0x20_0000n; // 2 MiB
const BASE = 0x4000_0000n; // 1 GiB: 2 MiB and 1 GiB aligned

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const rng = (a: bigint, b: bigint): string => `[${hex(a)},${hex(b)})`;
const pfn = (a: bigint): number => Number(a >> 12n);

/** A subscriber that records every call; young answers and fast-only support are configurable. */
class Recorder implements MmuNotifierOps {
  readonly log: string[] = [];
  young = false;
  fastAnswer: number | null = null;
  testClearYoungFastOnly?: (start: number, end: number, clear: boolean) => Steps<number>;
  constructor(readonly tag = '') {}
  #push(s: string): void {
    this.log.push(this.tag === '' ? s : `${this.tag}: ${s}`);
  }
  *invalidateRangeStart(r: MmuNotifierRange): Steps<number> {
    this.#push(`start ${r.event} ${rng(BigInt(r.start), BigInt(r.end))}${r.blockable ? ' blockable' : ''}`);
    return 0;
  }
  *invalidateRangeEnd(r: MmuNotifierRange): Steps {
    this.#push(`end ${r.event} ${rng(BigInt(r.start), BigInt(r.end))}`);
  }
  *clearFlushYoung(start: number, end: number): Steps<boolean> {
    this.#push(`clear_flush_young ${rng(BigInt(start), BigInt(end))}`);
    return this.young;
  }
  *clearYoung(start: number, end: number): Steps<boolean> {
    this.#push(`clear_young ${rng(BigInt(start), BigInt(end))}`);
    return this.young;
  }
  *testYoung(address: number): Steps<boolean> {
    this.#push(`test_young ${hex(address)}`);
    return this.young;
  }
  *release(): Steps {
    this.#push('release');
  }
  enableFastOnly(answer: number): void {
    this.fastAnswer = answer;
    const self = this;
    this.testClearYoungFastOnly = function* (start: number, end: number, clear: boolean): Steps<number> {
      self.#push(`fast_only ${rng(BigInt(start), BigInt(end))}${clear ? ' clear' : ''}`);
      return answer;
    };
  }
  take(): string[] {
    return this.log.splice(0);
  }
}

const start = (ev: string, a: bigint, b: bigint): string => `start ${ev} ${rng(a, b)} blockable`;
const end = (ev: string, a: bigint, b: bigint): string => `end ${ev} ${rng(a, b)}`;
const pair = (ev: string, a: bigint, b: bigint): string[] => [start(ev, a, b), end(ev, a, b)];

function setup(opts: { poison?: number } = {}): { as: HostAddressSpace; rec: Recorder } {
  const as = new HostAddressSpace({ framesPerSlab: 64, ...opts });
  const rec = new Recorder();
  as.registerMmuNotifier(rec);
  return { as, rec };
}

describe('munmap: UNMAP over the syscall range (mm/memory.c unmap_vmas())', () => {
  it('one start/end pair over [addr, addr + len), holes included; nothing when nothing is mapped', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 4n * PG);
    as.mmap(BASE + 6n * PG, 2n * PG);
    as.write(BASE, 8, 1n);
    as.munmap(BASE, 8n * PG);
    expect(rec.take()).toEqual(pair('UNMAP', BASE, BASE + 8n * PG));
    expect(as.vmas()).toEqual([]);
    expect(as.stats().framesInUse).toBe(0);
    as.munmap(BASE, 8n * PG); // do_vmi_munmap(): no VMA → return 0 before any notifier
    expect(rec.take()).toEqual([]);
  });

  it('the length is rounded up; the range is page aligned, end exclusive', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 4n * PG);
    as.munmap(BASE + PG, 1n);
    expect(rec.take()).toEqual(pair('UNMAP', BASE + PG, BASE + 2n * PG));
  });

  it('a VMA split inside a 2 MiB block the VMA covers calls __split_huge_pmd() (CLEAR) once a PMD table exists', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 2n * HP);
    // No page table yet: mm_find_pmd() finds nothing, so only the UNMAP pair.
    as.munmap(BASE + PG, PG);
    expect(rec.take()).toEqual(pair('UNMAP', BASE + PG, BASE + 2n * PG));
    // Fault something in this 1 GiB region: now the PUD is present and the split notifies, even
    // though no huge page is mapped (Linux checks pmd_trans_huge() only under the PMD lock).
    as.write(BASE + HP, 8, 7n);
    as.munmap(BASE + HP + 3n * PG, PG);
    expect(rec.take()).toEqual([...pair('CLEAR', BASE + HP, BASE + 2n * HP), ...pair('UNMAP', BASE + HP + 3n * PG, BASE + HP + 4n * PG)]);
    // The start split [BASE+2P, …) is not inside a block its VMA covers whole: no call for it.
    expect(as.read(BASE + HP, 8)).toBe(7n);
  });

  it('EINVAL is thrown before any call', () => {
    const { as, rec } = setup();
    as.mmap(BASE, PG);
    expect(errnoOf(() => as.munmapSteps(BASE + 1n, PG))).toBe('EINVAL');
    expect(rec.take()).toEqual([]);
  });
});

describe('madvise(DONTNEED/FREE): CLEAR per VMA (zap_page_range_single(), madvise_free_single_vma())', () => {
  it('DONTNEED: one pair per mapping, clamped to it; later reads are 0; ENOMEM after the pairs', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 2n * PG);
    as.mmap(BASE + 3n * PG, 2n * PG);
    as.write(BASE, 8, 0x11n);
    as.write(BASE + 3n * PG, 8, 0x22n);
    expect(errnoOf(() => as.madvise(BASE + PG, 4n * PG, 'DONTNEED'))).toBe('ENOMEM');
    expect(rec.take()).toEqual([...pair('CLEAR', BASE + PG, BASE + 2n * PG), ...pair('CLEAR', BASE + 3n * PG, BASE + 5n * PG)]);
    expect(as.read(BASE, 8)).toBe(0x11n);
    expect(as.read(BASE + 3n * PG, 8)).toBe(0n);
    // Unpopulated pages are notified too: zap_page_range_single() always calls the notifier.
    as.madvise(BASE + PG, PG, 'DONTNEED');
    expect(rec.take()).toEqual(pair('CLEAR', BASE + PG, BASE + 2n * PG));
  });

  it('FREE: one pair; young and dirty cleared; reclaim then discards the page (reads 0)', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 4n * PG);
    as.write(BASE, 8, 0x55n);
    expect(as.pageInfo(pfn(BASE)).young).toBe(true);
    as.madvise(BASE, 4n * PG, 'FREE');
    expect(rec.take()).toEqual(pair('CLEAR', BASE, BASE + 4n * PG));
    expect(as.pageInfo(pfn(BASE))).toMatchObject({ young: false, lazyfree: true });
    const r = as.reclaim(BASE, 4n * PG);
    expect(r).toEqual({ scanned: 1, referenced: 0, swappedOut: 0, discarded: 1, redirtied: 0 });
    expect(rec.take()).toEqual([`clear_flush_young ${rng(BASE, BASE + PG)}`, ...pair('CLEAR', BASE, BASE + PG)]);
    expect(as.stats()).toMatchObject({ framesInUse: 0, swappedPages: 0 });
    expect(as.read(BASE, 8)).toBe(0n);
  });

  it('FREE then write then reclaim keeps the new value (redirtied lazyfree page becomes swap-backed)', () => {
    const { as, rec } = setup();
    as.mmap(BASE, PG);
    as.write(BASE, 8, 0x55n);
    as.madvise(BASE, PG, 'FREE');
    as.write(BASE + 8n, 8, 0x66n);
    expect(as.pageInfo(pfn(BASE))).toMatchObject({ young: true, lazyfree: true });
    rec.take();
    // pass 1: young → second chance; pass 2: redirtied → remapped, swap-backed; pass 3: swapped out
    expect(as.reclaim(BASE, PG)).toMatchObject({ referenced: 1 });
    expect(rec.take()).toEqual([`clear_flush_young ${rng(BASE, BASE + PG)}`]);
    expect(as.reclaim(BASE, PG)).toMatchObject({ redirtied: 1 });
    expect(rec.take()).toEqual([`clear_flush_young ${rng(BASE, BASE + PG)}`, ...pair('CLEAR', BASE, BASE + PG)]);
    expect(as.pageInfo(pfn(BASE)).lazyfree).toBe(false);
    expect(as.reclaim(BASE, PG)).toMatchObject({ swappedOut: 1 });
    expect(as.stats().swappedPages).toBe(1);
    expect(as.read(BASE, 8)).toBe(0x55n);
    expect(as.read(BASE + 8n, 8)).toBe(0x66n);
    expect(as.stats().swappedPages).toBe(0);
  });

  it('FREE drops swap entries in the range (free_swap_and_cache_nr()): later reads are 0', () => {
    const { as } = setup();
    as.mmap(BASE, PG);
    as.write(BASE, 8, 9n);
    as.reclaim(BASE, PG); // young: second chance
    as.reclaim(BASE, PG);
    expect(as.pageInfo(pfn(BASE)).swapped).toBe(true);
    as.madvise(BASE, PG, 'FREE');
    expect(as.stats().swappedPages).toBe(0);
    expect(as.read(BASE, 8)).toBe(0n);
  });
});

describe('mprotect: PROTECTION_VMA (mm/mprotect.c change_pud_range())', () => {
  it('read-only: one pair; host writes EFAULT, reads fine; faultIn(write) −1; same prot again: no call', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 4n * PG);
    as.write(BASE, 8, 3n);
    as.mprotect(BASE, 4n * PG, PROT_READ);
    expect(rec.take()).toEqual(pair('PROTECTION_VMA', BASE, BASE + 4n * PG));
    expect(errnoOf(() => as.write(BASE, 8, 4n))).toBe('EFAULT');
    expect(as.read(BASE, 8)).toBe(3n);
    expect(as.faultIn(pfn(BASE), true)).toBe(-1);
    expect(as.faultIn(pfn(BASE), false)).toBeGreaterThan(0);
    as.mprotect(BASE, 4n * PG, PROT_READ); // mprotect_fixup(): newflags == oldflags
    expect(rec.take()).toEqual([]);
    as.mprotect(BASE, 4n * PG, PROT_READ | PROT_WRITE);
    expect(rec.take()).toEqual(pair('PROTECTION_VMA', BASE, BASE + 4n * PG));
    as.write(BASE, 8, 4n);
    expect(as.read(BASE, 8)).toBe(4n);
  });

  it('splits the VMA; PROT_NONE makes reads EFAULT too', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 4n * PG);
    as.write(BASE, 1, 1n);
    as.mprotect(BASE + PG, 2n * PG, PROT_NONE);
    expect(as.vmas()).toEqual([
      { start: pfn(BASE), end: pfn(BASE) + 1 },
      { start: pfn(BASE) + 1, end: pfn(BASE) + 3 },
      { start: pfn(BASE) + 3, end: pfn(BASE) + 4 },
    ]);
    expect(rec.take()).toEqual(pair('PROTECTION_VMA', BASE + PG, BASE + 3n * PG));
    expect(errnoOf(() => as.read(BASE + PG, 1))).toBe('EFAULT');
    expect(as.faultIn(pfn(BASE) + 1, false)).toBe(-1);
    expect(as.read(BASE, 1)).toBe(1n);
  });

  it('no page tables under the range: no call (change_pud_range() skips pud_none())', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 4n * PG);
    as.mprotect(BASE, 4n * PG, PROT_READ);
    expect(rec.take()).toEqual([]);
  });

  it('errnos in do_mprotect_pkey() order', () => {
    const { as } = setup();
    as.mmap(BASE, 2n * PG);
    as.mmap(BASE + 3n * PG, PG);
    expect(errnoOf(() => as.mprotect(BASE + 1n, PG, PROT_READ))).toBe('EINVAL');
    expect(errnoOf(() => as.mprotect(BASE, 0n, 0xff))).toBe(0); // len 0 before the prot check
    expect(errnoOf(() => as.mprotect(BASE, PG, 4))).toBe('EINVAL');
    expect(errnoOf(() => as.mprotect(BASE - PG, 2n * PG, PROT_READ))).toBe('ENOMEM');
    expect(errnoOf(() => as.mprotect(BASE, (1n << 64n) - PG, PROT_READ))).toBe('ENOMEM');
    // a hole: the mapping before it is changed, then ENOMEM
    expect(errnoOf(() => as.mprotect(BASE, 4n * PG, PROT_READ))).toBe('ENOMEM');
    expect(as.hostVmas()[0]!.prot).toBe(PROT_READ);
    expect(as.hostVmas()[1]!.prot).toBe(PROT_READ | PROT_WRITE);
  });
});

describe('faults', () => {
  it('zero page: read maps frame 0 (no call); the first write copies it with CLEAR over the page (wp_page_copy())', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 2n * PG);
    expect(as.read(BASE + PG, 8)).toBe(0n);
    expect(as.frameOf(pfn(BASE) + 1)).toBe(0);
    expect(as.stats().framesInUse).toBe(0);
    expect(rec.take()).toEqual([]);
    as.write(BASE + PG, 8, 5n);
    expect(rec.take()).toEqual(pair('CLEAR', BASE + PG, BASE + 2n * PG));
    expect(as.frameOf(pfn(BASE) + 1)).toBeGreaterThan(0);
    as.write(BASE, 8, 6n); // never-touched page: do_anonymous_page(), no call
    expect(rec.take()).toEqual([]);
  });

  it('DONTNEED makes later reads 0; with poisoning the freed frame holds the poison, a refault reads 0', () => {
    const { as } = setup({ poison: 0xaa });
    as.mmap(BASE, PG);
    as.write(BASE, 8, 0x1234n);
    const old = as.frameOf(pfn(BASE));
    as.madvise(BASE, PG, 'DONTNEED');
    expect(as.frames.isAllocated(old)).toBe(false);
    // a stale secondary-MMU mapping of `old` reads the poison pattern…
    expect(as.readFrame(old, 0, 8)).toBe(0xaaaaaaaaaaaaaaaan);
    // …a correct refault reads zeros (the zero page, then a zeroed frame on write)
    expect(as.read(BASE, 8)).toBe(0n);
    expect(as.faultIn(pfn(BASE), true)).toBe(old); // the freed frame is reused, zero-filled
    expect(as.read(BASE, 8)).toBe(0n);
  });

  it('without poisoning, reading a freed frame is a model error', () => {
    const { as } = setup();
    as.mmap(BASE, PG);
    as.write(BASE, 8, 1n);
    const f = as.frameOf(pfn(BASE));
    as.munmap(BASE, PG);
    expect(errnoOf(() => as.readFrame(f, 0, 8))).toBe('EINVAL');
  });
});

describe('reclaim and aging', () => {
  it('a young page gets a second chance (clear_flush_young only); an old one is unmapped with CLEAR and swapped', () => {
    const { as, rec } = setup();
    as.mmap(BASE, 2n * PG);
    as.write(BASE, 8, 0xfeedn);
    as.write(BASE + PG, 8, 0xbeefn);
    as.read(BASE + PG, 8);
    rec.take();
    expect(as.reclaim(BASE, 2n * PG)).toEqual({ scanned: 2, referenced: 2, swappedOut: 0, discarded: 0, redirtied: 0 });
    expect(rec.take()).toEqual([`clear_flush_young ${rng(BASE, BASE + PG)}`, `clear_flush_young ${rng(BASE + PG, BASE + 2n * PG)}`]);
    as.read(BASE + PG, 8); // touched again: young
    expect(as.reclaim(BASE, 2n * PG)).toEqual({ scanned: 2, referenced: 1, swappedOut: 1, discarded: 0, redirtied: 0 });
    expect(rec.take()).toEqual([
      `clear_flush_young ${rng(BASE, BASE + PG)}`,
      ...pair('CLEAR', BASE, BASE + PG),
      `clear_flush_young ${rng(BASE + PG, BASE + 2n * PG)}`,
    ]);
    expect(as.stats()).toMatchObject({ swappedPages: 1, framesInUse: 1 });
    expect(as.frameOf(pfn(BASE))).toBe(-1);
  });

  it('a young answer from the secondary MMU alone keeps the page (ptep_clear_flush_young_notify() ORs both)', () => {
    const { as, rec } = setup();
    as.mmap(BASE, PG);
    as.write(BASE, 8, 1n);
    as.reclaim(BASE, PG); // clears the primary young bit
    rec.young = true;
    expect(as.reclaim(BASE, PG)).toMatchObject({ referenced: 1, swappedOut: 0 });
    rec.young = false;
    expect(as.reclaim(BASE, PG)).toMatchObject({ swappedOut: 1 });
  });

  it('swap round trip keeps the contents (new frame, same bytes), through read, write and faultIn', () => {
    const { as } = setup({ poison: 0x5a });
    as.mmap(BASE, 3n * PG);
    for (let i = 0n; i < 3n; i++) as.write(BASE + i * PG + 0x10n, 8, 0x0102030405060708n + i);
    as.reclaim(BASE, 3n * PG);
    expect(as.reclaim(BASE, 3n * PG).swappedOut).toBe(3);
    expect(as.stats()).toMatchObject({ swappedPages: 3, framesInUse: 0, populatedPages: 0 });
    expect(as.read(BASE + 0x10n, 8)).toBe(0x0102030405060708n);
    as.write(BASE + PG + 0x18n, 8, 7n);
    expect(as.read(BASE + PG + 0x10n, 8)).toBe(0x0102030405060709n);
    const f = as.faultIn(pfn(BASE) + 2, false);
    expect(as.readFrame(f, 0x10, 8)).toBe(0x010203040506070an);
    expect(as.stats()).toMatchObject({ swappedPages: 0, framesInUse: 3 });
  });

  it('ageSteps: clear_young per page; fast-only asks only implementers and counts FAST_FAILED', () => {
    const { as, rec } = setup();
    const fast = new Recorder('fast');
    as.registerMmuNotifier(fast);
    as.mmap(BASE, 2n * PG);
    as.write(BASE, 8, 1n);
    as.write(BASE + PG, 8, 2n);
    rec.take();
    expect(as.age(BASE, 2n * PG)).toEqual({ scanned: 2, young: 2, notFast: 0 });
    expect(fast.take()).toEqual([`fast: clear_young ${rng(BASE, BASE + PG)}`, `fast: clear_young ${rng(BASE + PG, BASE + 2n * PG)}`]);
    expect(rec.take()).toEqual([`clear_young ${rng(BASE, BASE + PG)}`, `clear_young ${rng(BASE + PG, BASE + 2n * PG)}`]);
    expect(as.age(BASE, 2n * PG)).toMatchObject({ young: 0 });
    fast.take();
    rec.take();
    fast.enableFastOnly(MMU_NOTIFIER_FAST_FAILED);
    expect(as.age(BASE, 2n * PG, true)).toEqual({ scanned: 2, young: 0, notFast: 2 });
    expect(fast.take()).toEqual([`fast: fast_only ${rng(BASE, BASE + PG)} clear`, `fast: fast_only ${rng(BASE + PG, BASE + 2n * PG)} clear`]);
    expect(rec.take()).toEqual([]); // no fast-only op: skipped
    fast.enableFastOnly(MMU_NOTIFIER_FAST_YOUNG);
    expect(as.age(BASE, PG, true)).toEqual({ scanned: 1, young: 1, notFast: 0 });
  });

  it('testYoungSteps asks the subscribers in list order and stops at the first young one', () => {
    const { as, rec } = setup();
    const newer = new Recorder('newer');
    as.registerMmuNotifier(newer);
    newer.young = true;
    expect(runSync(as.testYoungSteps(BASE + 5n))).toBe(true);
    expect(newer.take()).toEqual([`newer: test_young ${hex(BASE + 5n)}`]);
    expect(rec.take()).toEqual([]);
    newer.young = false;
    expect(runSync(as.testYoungSteps(BASE))).toBe(false);
    expect(rec.take()).toEqual([`test_young ${hex(BASE)}`]);
  });
});

describe('registration, unregistration and exit_mmap', () => {
  it('subscribers are called newest first (hlist_add_head_rcu()), starts and ends alike', () => {
    const as = new HostAddressSpace();
    const log: string[] = [];
    const a = new Recorder('a');
    const b = new Recorder('b');
    a.log.push = (...s: string[]): number => log.push(...s);
    b.log.push = (...s: string[]): number => log.push(...s);
    as.registerMmuNotifier(a);
    as.registerMmuNotifier(b);
    expect(as.mmuNotifiers()).toEqual([b, a]);
    as.mmap(BASE, PG);
    as.munmap(BASE, PG);
    expect(log).toEqual([`b: ${start('UNMAP', BASE, BASE + PG)}`, `a: ${start('UNMAP', BASE, BASE + PG)}`, `b: ${end('UNMAP', BASE, BASE + PG)}`, `a: ${end('UNMAP', BASE, BASE + PG)}`]);
    expect(errnoOf(() => as.registerMmuNotifier(a))).toBe('EINVAL');
  });

  it('unregister of a live mm calls release(), then the subscriber hears nothing more', () => {
    const { as, rec } = setup();
    as.mmap(BASE, PG);
    runSync(as.unregisterMmuNotifier(rec));
    expect(rec.take()).toEqual(['release']);
    as.munmap(BASE, PG);
    runSync(as.unregisterMmuNotifier(rec)); // not registered: nothing
    expect(rec.take()).toEqual([]);
  });

  it('exit_mmap: every release() first (newest first), no invalidation, all memory freed; afterwards every syscall fails', () => {
    const { as, rec } = setup();
    const newer = new Recorder('newer');
    as.registerMmuNotifier(newer);
    as.mmap(BASE, 4n * PG, { thp: false });
    as.write(BASE, 8, 1n);
    as.write(BASE + PG, 8, 2n);
    as.reclaim(BASE, PG);
    as.reclaim(BASE, PG);
    rec.take();
    newer.take();
    const order: string[] = [];
    rec.log.push = (...s: string[]): number => order.push(...s);
    newer.log.push = (...s: string[]): number => order.push(...s);
    as.exitMmap();
    expect(order).toEqual(['newer: release', 'release']);
    expect(as.live).toBe(false);
    expect(as.stats()).toEqual({ framesInUse: 0, populatedPages: 0, hugePages: 0, swappedPages: 0, lazyfreePages: 0, vmas: 0, notifiers: 0 });
    expect(errnoOf(() => as.mmap(BASE, PG))).toBe('ENOMEM');
    expect(errnoOf(() => as.munmap(BASE, PG))).toBe('ENOMEM');
    expect(errnoOf(() => as.madvise(BASE, PG, 'DONTNEED'))).toBe('ENOMEM');
    expect(errnoOf(() => as.mprotect(BASE, PG, PROT_READ))).toBe('ENOMEM');
    expect(errnoOf(() => as.read(BASE, 8))).toBe('EFAULT');
    expect(errnoOf(() => as.write(BASE, 8, 1n))).toBe('EFAULT');
    expect(as.faultIn(pfn(BASE), false)).toBe(-1);
    expect(errnoOf(() => as.registerMmuNotifier(new Recorder()))).toBe('EINVAL');
    // mmu_notifier_unregister() after exit_mmap released it: release() is not called again
    runSync(as.unregisterMmuNotifier(rec));
    as.exitMmap();
    expect(order).toEqual(['newer: release', 'release']);
  });
});

describe('the steps are preemptible (scheduler)', () => {
  /** A subscriber whose invalidateRangeStart stops at a preemption point, as KVM's does. */
  class Yielding extends Recorder {
    static readonly P = point('subscriber: inside invalidate_range_start');
    override *invalidateRangeStart(r: MmuNotifierRange): Steps<number> {
      yield* super.invalidateRangeStart(r);
      yield Yielding.P;
      return 0;
    }
  }

  function run(prefix: number[]): { seen: bigint[]; log: string[]; trace: string[] } {
    const as = new HostAddressSpace();
    const sub = new Yielding();
    as.registerMmuNotifier(sub);
    as.mmap(BASE, PG);
    as.write(BASE, 8, 0x1111n);
    const seen: bigint[] = [];
    function* reader(): Steps {
      yield point('reader: about to read');
      seen.push(as.read(BASE, 8));
    }
    const s = new Scheduler();
    s.spawn('host', as.madviseSteps(BASE, PG, 'DONTNEED'));
    s.spawn('reader', reader());
    const r = s.run({ prefix });
    if (r.error !== undefined) throw r.error;
    seen.push(as.read(BASE, 8));
    return { seen, log: sub.log, trace: r.trace.map((t) => `${t.actor}@${t.at}`) };
  }

  it('a read while the subscriber is inside invalidate_range_start still sees the old page', () => {
    const { seen, log, trace } = run([0, 1, 1]);
    expect(trace.slice(0, 3)).toEqual(['host@subscriber: inside invalidate_range_start', 'reader@reader: about to read', 'reader@done']);
    expect(seen).toEqual([0x1111n, 0n]);
    expect(log).toEqual(pair('CLEAR', BASE, BASE + PG));
  });

  it('a read after the zap, before invalidate_range_end, refaults the zero page', () => {
    const { seen, trace } = run([0, 0, 0, 1, 1]);
    expect(trace.slice(0, 5)).toEqual([
      'host@subscriber: inside invalidate_range_start',
      'host@host: invalidate_range_start done, page table next',
      'host@host: page table changed, invalidate_range_end next',
      'reader@reader: about to read',
      'reader@done',
    ]);
    expect(seen).toEqual([0n, 0n]);
  });
});
