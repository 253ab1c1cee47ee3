/**
 * Transparent huge pages in the host model: first-touch huge faults, PMD split and collapse with
 * the exact notifier calls Linux 6.18 makes, partial operations that split first, huge reclaim,
 * and the contiguous huge-frame allocator.
 */
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../src/errors.js';
import { HostAddressSpace, PROT_READ } from '../src/host/host-address-space.js';
import type { MmuNotifierOps, MmuNotifierRange } from '../src/host/mmu-notifier.js';
import { HUGE_FRAMES, PageFrames } from '../src/host/page-frames.js';
import { runSync, type Steps } from '../src/sched/index.js';

const PG = 0x1000n;
const HP = 0x20_0000n; // 2 MiB
const BASE = 0x4000_0000n; // 1 GiB
const NR = 512;

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const rng = (a: bigint, b: bigint): string => `[${hex(a)},${hex(b)})`;
const pfn = (a: bigint): number => Number(a >> 12n);

class Recorder implements MmuNotifierOps {
  readonly log: string[] = [];
  *invalidateRangeStart(r: MmuNotifierRange): Steps<number> {
    this.log.push(`start ${r.event} ${rng(BigInt(r.start), BigInt(r.end))}${r.blockable ? ' blockable' : ''}`);
    return 0;
  }
  *invalidateRangeEnd(r: MmuNotifierRange): Steps {
    this.log.push(`end ${r.event} ${rng(BigInt(r.start), BigInt(r.end))}`);
  }
  *clearFlushYoung(start: number, end: number): Steps<boolean> {
    this.log.push(`clear_flush_young ${rng(BigInt(start), BigInt(end))}`);
    return false;
  }
  *clearYoung(start: number, end: number): Steps<boolean> {
    this.log.push(`clear_young ${rng(BigInt(start), BigInt(end))}`);
    return false;
  }
  *testYoung(): Steps<boolean> {
    return false;
  }
  *release(): Steps {
    this.log.push('release');
  }
  take(): string[] {
    return this.log.splice(0);
  }
}

const start = (ev: string, a: bigint, b: bigint): string => `start ${ev} ${rng(a, b)} blockable`;
const end = (ev: string, a: bigint, b: bigint): string => `end ${ev} ${rng(a, b)}`;
const pair = (ev: string, a: bigint, b: bigint): string[] => [start(ev, a, b), end(ev, a, b)];

/** A 4 MiB THP mapping at BASE (two 2 MiB blocks) with a recorder registered. */
function thp(opts: { poison?: number } = {}): { as: HostAddressSpace; rec: Recorder } {
  const as = new HostAddressSpace({ framesPerSlab: 256, ...opts });
  const rec = new Recorder();
  as.registerMmuNotifier(rec);
  as.mmap(BASE, 2n * HP, { thp: true });
  return { as, rec };
}

/** Writes a distinct value in every page of the first block. */
function fillBlock(as: HostAddressSpace, at: bigint): void {
  for (let i = 0n; i < BigInt(NR); i++) as.write(at + i * PG, 8, 0x1000n + i);
}

describe('THP faults', () => {
  it('the first touch of a block inside a THP mapping maps 512 contiguous, aligned frames at PMD level', () => {
    const { as, rec } = thp();
    expect(as.read(BASE + 5n * PG, 8)).toBe(0n); // a read fault too (no huge zero page in the model)
    const p = pfn(BASE);
    expect(as.hostMappingLevel(p + 5)).toBe(2);
    expect(as.hostMappingLevel(p + NR)).toBe(1); // the second block is untouched
    const f0 = as.frameOf(p);
    expect(f0 % HUGE_FRAMES).toBe(0);
    for (const i of [1, 100, 511]) expect(as.frameOf(p + i)).toBe(f0 + i);
    expect(as.stats()).toMatchObject({ hugePages: 1, framesInUse: NR, populatedPages: NR });
    expect(as.faultIn(p + 7, true)).toBe(f0 + 7);
    as.write(BASE + 7n * PG, 8, 0x77n);
    expect(as.readFrame(f0 + 7, 0, 8)).toBe(0x77n);
    expect(rec.take()).toEqual([]); // faults call no notifier
  });

  it('4 KiB pages where the block is not wholly inside a THP mapping, or the mapping is not THP', () => {
    const as = new HostAddressSpace({ framesPerSlab: 256 });
    as.mmap(BASE, HP + 4n * PG, { thp: true }); // the second block is cut short
    as.mmap(BASE + 4n * HP, HP); // no THP
    as.write(BASE + HP, 8, 1n);
    as.write(BASE + 4n * HP, 8, 1n);
    expect(as.hostMappingLevel(pfn(BASE + HP))).toBe(1);
    expect(as.hostMappingLevel(pfn(BASE + 4n * HP))).toBe(1);
    expect(as.stats()).toMatchObject({ hugePages: 0, framesInUse: 2 });
  });

  it('madvise(HUGEPAGE) turns THP on for later faults; NOHUGEPAGE off', () => {
    const as = new HostAddressSpace({ framesPerSlab: 256 });
    as.mmap(BASE, 2n * HP);
    as.madvise(BASE, HP, 'HUGEPAGE');
    expect(as.hostVmas().map((v) => [v.start, v.end, v.thp])).toEqual([
      [pfn(BASE), pfn(BASE) + NR, true],
      [pfn(BASE) + NR, pfn(BASE) + 2 * NR, false],
    ]);
    as.read(BASE, 1);
    as.read(BASE + HP, 1);
    expect(as.hostMappingLevel(pfn(BASE))).toBe(2);
    expect(as.hostMappingLevel(pfn(BASE + HP))).toBe(1);
    as.madvise(BASE, 2n * HP, 'NOHUGEPAGE');
    as.madvise(BASE, HP, 'DONTNEED');
    as.read(BASE, 1);
    expect(as.hostMappingLevel(pfn(BASE))).toBe(1);
  });

  it('after a split the block keeps its PTE table: refaults there are 4 KiB (pmd_none() is false)', () => {
    const { as } = thp();
    as.read(BASE, 1);
    as.splitHugePage(pfn(BASE));
    as.madvise(BASE, PG, 'DONTNEED');
    as.read(BASE, 1);
    expect(as.hostMappingLevel(pfn(BASE))).toBe(1);
  });
});

describe('THP split (mm/huge_memory.c __split_huge_pmd())', () => {
  it('one CLEAR pair over the 2 MiB block; 512 PTEs on the same frames; data kept; level 1 after', () => {
    const { as, rec } = thp();
    fillBlock(as, BASE);
    const f0 = as.frameOf(pfn(BASE));
    rec.take();
    expect(as.splitHugePage(pfn(BASE) + 300)).toBe(true);
    expect(rec.take()).toEqual(pair('CLEAR', BASE, BASE + HP));
    expect(as.hostMappingLevel(pfn(BASE) + 300)).toBe(1);
    expect(as.frameOf(pfn(BASE) + 300)).toBe(f0 + 300);
    expect(as.read(BASE + 300n * PG, 8)).toBe(0x1000n + 300n);
    expect(as.stats()).toMatchObject({ hugePages: 0, framesInUse: NR, populatedPages: NR });
    expect(as.pageInfo(pfn(BASE) + 9).young).toBe(true);
  });

  it('no huge page there: false and no call', () => {
    const { as, rec } = thp();
    expect(as.splitHugePage(pfn(BASE))).toBe(false);
    expect(rec.take()).toEqual([]);
  });
});

describe('THP collapse (mm/khugepaged.c collapse_huge_page())', () => {
  it('fails without a call while a page is missing (or the zero page); succeeds with one CLEAR pair once all 512 are present', () => {
    const { as, rec } = thp();
    fillBlock(as, BASE);
    as.splitHugePage(pfn(BASE));
    as.madvise(BASE + 17n * PG, PG, 'DONTNEED');
    rec.take();
    expect(as.collapseHugePage(pfn(BASE))).toBe(false);
    expect(as.read(BASE + 17n * PG, 8)).toBe(0n); // now the zero page
    expect(as.collapseHugePage(pfn(BASE))).toBe(false);
    expect(rec.take()).toEqual([]);
    as.write(BASE + 17n * PG, 8, 0x1011n);
    expect(rec.take()).toEqual(pair('CLEAR', BASE + 17n * PG, BASE + 18n * PG)); // wp_page_copy() of the zero page
    const before = as.stats().framesInUse;
    expect(as.collapseHugePage(pfn(BASE) + 3)).toBe(true);
    expect(rec.take()).toEqual(pair('CLEAR', BASE, BASE + HP));
    expect(as.hostMappingLevel(pfn(BASE))).toBe(2);
    const f0 = as.frameOf(pfn(BASE));
    expect(f0 % HUGE_FRAMES).toBe(0);
    expect(as.frameOf(pfn(BASE) + 511)).toBe(f0 + 511);
    for (const i of [0n, 17n, 511n]) expect(as.read(BASE + i * PG, 8)).toBe(0x1000n + i);
    expect(as.stats()).toMatchObject({ hugePages: 1, framesInUse: before });
    expect(as.collapseHugePage(pfn(BASE))).toBe(false); // already huge
  });

  it('fails outside a THP mapping and for a block the mapping does not cover whole', () => {
    const as = new HostAddressSpace({ framesPerSlab: 256 });
    as.mmap(BASE, HP);
    for (let i = 0n; i < BigInt(NR); i++) as.write(BASE + i * PG, 1, 1n);
    expect(as.collapseHugePage(pfn(BASE))).toBe(false);
    as.madvise(BASE, HP, 'HUGEPAGE');
    expect(as.collapseHugePage(pfn(BASE))).toBe(true);
  });
});

describe('operations on part of a huge page split it first, as Linux does', () => {
  it('partial DONTNEED: the split is nested inside the DONTNEED window (zap_pmd_range() → __split_huge_pmd())', () => {
    const { as, rec } = thp();
    fillBlock(as, BASE);
    rec.take();
    as.madvise(BASE + 8n * PG, 2n * PG, 'DONTNEED');
    expect(rec.take()).toEqual([
      start('CLEAR', BASE + 8n * PG, BASE + 10n * PG),
      start('CLEAR', BASE, BASE + HP),
      end('CLEAR', BASE, BASE + HP),
      end('CLEAR', BASE + 8n * PG, BASE + 10n * PG),
    ]);
    expect(as.hostMappingLevel(pfn(BASE))).toBe(1);
    expect(as.read(BASE + 8n * PG, 8)).toBe(0n);
    expect(as.read(BASE + 9n * PG, 8)).toBe(0n);
    expect(as.read(BASE + 10n * PG, 8)).toBe(0x1000n + 10n);
    expect(as.read(BASE + 7n * PG, 8)).toBe(0x1000n + 7n);
    expect(as.stats()).toMatchObject({ framesInUse: NR - 2, hugePages: 0 });
  });

  it('DONTNEED of a whole huge page: one pair, the huge page goes whole; the next touch is huge again', () => {
    const { as, rec } = thp();
    as.write(BASE + HP, 8, 1n);
    as.write(BASE, 8, 1n);
    rec.take();
    as.madvise(BASE, HP, 'DONTNEED');
    expect(rec.take()).toEqual(pair('CLEAR', BASE, BASE + HP));
    expect(as.stats()).toMatchObject({ hugePages: 1, framesInUse: NR });
    expect(as.read(BASE, 8)).toBe(0n);
    expect(as.hostMappingLevel(pfn(BASE))).toBe(2);
  });

  it('partial munmap: the VMA split splits the PMD (CLEAR over the block), then UNMAP', () => {
    const { as, rec } = thp();
    fillBlock(as, BASE);
    as.write(BASE + HP, 8, 1n);
    rec.take();
    as.munmap(BASE + HP - 4n * PG, 8n * PG); // the last 4 pages of block 0, the first 4 of block 1
    expect(rec.take()).toEqual([
      ...pair('CLEAR', BASE, BASE + HP), // __split_vma() at the start
      ...pair('CLEAR', BASE + HP, BASE + 2n * HP), // __split_vma() at the end
      ...pair('UNMAP', BASE + HP - 4n * PG, BASE + HP + 4n * PG),
    ]);
    expect(as.stats()).toMatchObject({ hugePages: 0, framesInUse: 2 * NR - 8 });
    expect(as.read(BASE + HP - 5n * PG, 8)).toBe(0x1000n + 507n);
    expect(errnoOf(() => as.read(BASE + HP - PG, 8))).toBe('EFAULT');
  });

  it('partial mprotect: split (CLEAR) then PROTECTION_VMA; a whole-block mprotect keeps the PMD', () => {
    const { as, rec } = thp();
    as.write(BASE, 8, 1n);
    as.write(BASE + HP, 8, 2n);
    rec.take();
    as.mprotect(BASE + HP, HP, PROT_READ);
    expect(rec.take()).toEqual(pair('PROTECTION_VMA', BASE + HP, BASE + 2n * HP));
    expect(as.hostMappingLevel(pfn(BASE + HP))).toBe(2);
    as.mprotect(BASE, 4n * PG, PROT_READ);
    expect(rec.take()).toEqual([...pair('CLEAR', BASE, BASE + HP), ...pair('PROTECTION_VMA', BASE, BASE + 4n * PG)]);
    expect(as.hostMappingLevel(pfn(BASE))).toBe(1);
    expect(errnoOf(() => as.write(BASE, 8, 3n))).toBe('EFAULT');
    as.write(BASE + 4n * PG, 8, 3n);
  });

  it('partial FREE: split_folio() inside the FREE window (pmd split, then try_to_migrate_one()), then 4 KiB lazyfree', () => {
    const { as, rec } = thp();
    fillBlock(as, BASE);
    rec.take();
    as.madvise(BASE, 2n * PG, 'FREE');
    expect(rec.take()).toEqual([
      start('CLEAR', BASE, BASE + 2n * PG),
      ...pair('CLEAR', BASE, BASE + HP),
      ...pair('CLEAR', BASE, BASE + HP),
      end('CLEAR', BASE, BASE + 2n * PG),
    ]);
    expect(as.pageInfo(pfn(BASE) + 1)).toMatchObject({ level: 1, lazyfree: true, young: false });
    expect(as.pageInfo(pfn(BASE) + 2)).toMatchObject({ level: 1, lazyfree: false, young: true });
    as.reclaim(BASE, 4n * PG);
    expect(as.read(BASE + PG, 8)).toBe(0n); // discarded
    expect(as.read(BASE + 2n * PG, 8)).toBe(0x1002n); // young: kept
  });

  it('FREE of a whole huge page marks it lazyfree as one; reclaim discards it whole', () => {
    const { as, rec } = thp({ poison: 0xee });
    fillBlock(as, BASE);
    const f0 = as.frameOf(pfn(BASE));
    as.madvise(BASE, HP, 'FREE');
    expect(rec.take().slice(-2)).toEqual(pair('CLEAR', BASE, BASE + HP));
    expect(as.stats().lazyfreePages).toBe(NR);
    expect(as.reclaim(BASE, HP)).toMatchObject({ discarded: NR });
    expect(rec.take()).toEqual([`clear_flush_young ${rng(BASE, BASE + HP)}`, ...pair('CLEAR', BASE, BASE + HP)]);
    expect(as.readFrame(f0 + 3, 0, 8)).toBe(0xeeeeeeeeeeeeeeeen);
    expect(as.read(BASE + 3n * PG, 8)).toBe(0n);
  });
});

describe('THP reclaim (try_to_unmap_one() with TTU_SPLIT_HUGE_PMD)', () => {
  it('young: clear_flush_young over 2 MiB only; old: one CLEAR pair over the block, 512 pages swapped, contents back on refault', () => {
    const { as, rec } = thp();
    fillBlock(as, BASE);
    rec.take();
    expect(as.reclaim(BASE, HP)).toMatchObject({ referenced: NR });
    expect(rec.take()).toEqual([`clear_flush_young ${rng(BASE, BASE + HP)}`]);
    expect(as.reclaim(BASE + 4n * PG, PG)).toMatchObject({ scanned: NR, swappedOut: NR }); // the whole folio
    expect(rec.take()).toEqual([`clear_flush_young ${rng(BASE, BASE + HP)}`, ...pair('CLEAR', BASE, BASE + HP)]);
    expect(as.stats()).toMatchObject({ hugePages: 0, swappedPages: NR, framesInUse: 0 });
    expect(as.read(BASE + 200n * PG, 8)).toBe(0x1000n + 200n);
    expect(as.hostMappingLevel(pfn(BASE))).toBe(1); // swapped in as a 4 KiB page
    expect(as.stats().swappedPages).toBe(NR - 1);
  });
});

describe('PageFrames: huge runs', () => {
  it('allocateHuge returns 512-aligned contiguous zeroed runs; a freed run is reused whole; skipped frames serve 4 KiB allocations', () => {
    const pf = new PageFrames(4, 0x99);
    const a = pf.allocate();
    const h = pf.allocateHuge();
    expect(h).toBe(HUGE_FRAMES);
    expect(pf.inUse).toBe(1 + HUGE_FRAMES);
    expect(pf.allocate()).toBe(a + 1); // from the frames skipped for alignment
    pf.write(h + 5, 0, 8, 0x42n);
    pf.freeHuge(h);
    expect(pf.readRaw(h + 5, 0, 8)).toBe(0x9999999999999999n);
    expect(pf.allocateHuge()).toBe(h);
    expect(pf.read(h + 5, 0, 8)).toBe(0n);
    expect(pf.allocateHuge()).toBe(2 * HUGE_FRAMES);
    expect(errnoOf(() => pf.freeHuge(h + 1))).toBe('EINVAL');
    pf.free(h + 3);
    expect(errnoOf(() => pf.freeHuge(h))).toBe('EINVAL');
  });

  it('a fully-unused free run is broken up for 4 KiB frames before the store grows', () => {
    const pf = new PageFrames(512);
    const h = pf.allocateHuge();
    for (let f = 1; f < h; f++) pf.allocate(); // use up the skipped frames
    pf.freeHuge(h);
    const cap = pf.capacity;
    expect(pf.allocate()).toBe(h);
    expect(pf.allocate()).toBe(h + 1);
    expect(pf.capacity).toBe(cap);
  });
});

describe('THP under the steps API', () => {
  it('splitHugePageSteps / collapseHugePageSteps run under runSync like the wrappers', () => {
    const { as, rec } = thp();
    fillBlock(as, BASE);
    rec.take();
    expect(runSync(as.splitHugePageSteps(pfn(BASE)))).toBe(true);
    expect(runSync(as.collapseHugePageSteps(pfn(BASE)))).toBe(true);
    expect(rec.take()).toEqual([...pair('CLEAR', BASE, BASE + HP), ...pair('CLEAR', BASE, BASE + HP)]);
  });
});
