/** The TDP MMU page-table engine (arch/x86/kvm/mmu/tdp_mmu.c, 6.18). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FROZEN_SPTE_HI,
  FROZEN_SPTE_LO,
  isAccessed,
  isDirty,
  isHostWritable,
  isLargePte,
  isMmuWritable,
  isWritable,
  leafSpteHi,
  leafSpteLo,
  LEAF_ACCESSED,
  LEAF_DIRTY,
  LEAF_HOST_WRITABLE,
  LEAF_WRITABLE,
  makeLeafSpte,
  makeMmioSpte,
  PT_WRITABLE_MASK,
  spteToBigInt,
  VMX_EPT_EXECUTABLE_MASK,
} from '../src/mmu/spte.js';
import { MMIO_HIT, TDP_MAP_FIXED, TDP_MAP_FLUSH, TDP_MAP_SPURIOUS, TdpMmu } from '../src/mmu/tdp-mmu.js';

const G2M = 512;
const G1G = 512 * 512;

interface Trace {
  asId: number;
  gfn: number;
  level: number;
  old: bigint;
  new: bigint;
}

function mmu(levels: 4 | 5 = 4, nrAddressSpaces = 1): { tdp: TdpMmu; trace: Trace[] } {
  const trace: Trace[] = [];
  const tdp = new TdpMmu({
    levels,
    nrAddressSpaces,
    onSpteChanged: (asId, gfn, level, oldLo, oldHi, newLo, newHi) =>
      trace.push({ asId, gfn, level, old: spteToBigInt(oldLo, oldHi), new: spteToBigInt(newLo, newHi) }),
  });
  return { tdp, trace };
}

function leafAt(tdp: TdpMmu, asId: number, gfn: number): { level: number; lo: number; hi: number } {
  const level = tdp.getLastSpte(asId, gfn);
  return { level, lo: tdp.lastLo, hi: tdp.lastHi };
}

const NP = 1n << 63n;
const FROZEN = spteToBigInt(FROZEN_SPTE_LO, FROZEN_SPTE_HI);

describe('map and translate', () => {
  it('4K: frame, A set by the fault, D by a write; writes to read-only leaves miss', () => {
    const { tdp } = mmu();
    expect(tdp.translate(0, 0x1234, false)).toBe(-1);
    expect(tdp.map(0, 0x1234, 0x9999, 1, true, true)).toBe(TDP_MAP_FIXED);
    expect(tdp.translate(0, 0x1234, false)).toBe(0x9999);
    expect(tdp.translate(0, 0x1234, true)).toBe(0x9999);
    expect(tdp.translate(0, 0x1235, false)).toBe(-1);
    tdp.map(0, 0x2000, 0x7000, 1, true, false); // read-only host mapping
    expect(tdp.translate(0, 0x2000, true)).toBe(-1);
    expect(tdp.translate(0, 0x2000, false)).toBe(0x7000);
    const s = leafAt(tdp, 0, 0x2000);
    expect([s.level, isWritable(s.lo, s.hi), isMmuWritable(s.lo, s.hi), isHostWritable(s.lo, s.hi)]).toEqual([1, false, false, false]);
    // Write-tracked gfn: {Host-W=1, MMU-W=0, W=0}
    tdp.map(0, 0x3000, 0x8000, 1, false, true);
    const t = leafAt(tdp, 0, 0x3000);
    expect([isWritable(t.lo, t.hi), isMmuWritable(t.lo, t.hi), isHostWritable(t.lo, t.hi)]).toEqual([false, false, true]);
  });

  it('the hardware walk sets A, and D on writes', () => {
    const { tdp } = mmu();
    tdp.map(0, 5, 50, 1, true, true);
    tdp.ageRange(0, 5, 6, true);
    tdp.clearDirtyRange(0, 5, 6);
    let s = leafAt(tdp, 0, 5);
    expect([isAccessed(s.lo, s.hi), isDirty(s.lo, s.hi)]).toEqual([false, false]);
    tdp.translate(0, 5, false);
    s = leafAt(tdp, 0, 5);
    expect([isAccessed(s.lo, s.hi), isDirty(s.lo, s.hi)]).toEqual([true, false]);
    tdp.translate(0, 5, true);
    s = leafAt(tdp, 0, 5);
    expect(isDirty(s.lo, s.hi)).toBe(true);
  });

  it('2M and 1G leaves: frame offsets within the huge page; pfn aligned down to the level', () => {
    const { tdp } = mmu();
    tdp.map(0, 0x400 + 7, 0x10000 + 7, 2, true, true);
    expect(tdp.translate(0, 0x400, false)).toBe(0x10000);
    expect(tdp.translate(0, 0x5ff, true)).toBe(0x101ff);
    expect(tdp.translate(0, 0x600, false)).toBe(-1);
    tdp.map(0, 3 * G1G + 12345, 5 * G1G + 12345, 3, true, true);
    expect(tdp.translate(0, 3 * G1G, false)).toBe(5 * G1G);
    expect(tdp.translate(0, 4 * G1G - 1, false)).toBe(6 * G1G - 1);
    const s = leafAt(tdp, 0, 3 * G1G + 99);
    expect([s.level, isLargePte(s.lo, s.hi)]).toEqual([3, true]);
    expect(tdp.stats().leaves).toEqual([0, 1, 1]);
  });

  it('gfns above 2^32 and pfns up to 2^40 (4- and 5-level roots)', () => {
    const { tdp } = mmu();
    const gfn = 2 ** 35 + 0x12345;
    tdp.map(0, gfn, 2 ** 40 - 1, 1, true, true);
    expect(tdp.translate(0, gfn, false)).toBe(2 ** 40 - 1);
    expect(tdp.translate(0, gfn - 2 ** 32, false)).toBe(-1);
    expect(() => tdp.map(0, 2 ** 36, 1, 1, true, true)).toThrow(RangeError);
    expect(tdp.translate(0, 2 ** 36, false)).toBe(-1);
    const five = mmu(5).tdp;
    five.map(0, 2 ** 39 + 3 * G1G + 5, 2 ** 39 + 5, 3, true, true);
    expect(five.translate(0, 2 ** 39 + 3 * G1G + 7, false)).toBe(2 ** 39 + 7);
    expect(five.stats().tables).toBe(3); // root (5) + 4 + 3
  });

  it('spurious re-map leaves the SPTE; replacing a 4K table by a 2M leaf needs a flush', () => {
    const { tdp, trace } = mmu();
    tdp.map(0, 0x10, 0x110, 1, true, true);
    expect(tdp.map(0, 0x10, 0x110, 1, true, true)).toBe(TDP_MAP_SPURIOUS);
    const n = trace.length;
    expect(tdp.map(0, 0x0, 0x100, 2, true, true)).toBe(TDP_MAP_FIXED | TDP_MAP_FLUSH);
    // The 2M leaf, then (shared) all 512 entries of the removed table are frozen.
    expect(trace.length - n).toBe(1 + 512);
    expect(trace[n]!.level).toBe(2);
    expect(trace.slice(n + 1).every((t) => t.new === FROZEN && t.level === 1)).toBe(true);
    expect(trace[n + 1 + 0x10]!.old).toBe(spteToBigInt(...makeLeafSpte(0x110, 1, { writable: true, hostWritable: true, accessed: true, dirty: true })));
    expect(tdp.stats()).toMatchObject({ leaves: [0, 1, 0], tables: 3 });
  });

  it('a different pfn over a present leaf is a KVM BUG', () => {
    const { tdp } = mmu();
    tdp.map(0, 0x10, 0x110, 1, true, true);
    expect(() => tdp.map(0, 0x10, 0x111, 1, true, true)).toThrow(/KVM BUG/);
  });

  it('the first fault links three tables with A set, then the leaf (the trace of kvm_tdp_mmu_map)', () => {
    const { tdp, trace } = mmu();
    tdp.map(0, 0x12345, 0xabcde, 1, true, true);
    expect(trace.map((t) => [t.level, t.gfn, t.old])).toEqual([
      [4, 0, NP],
      [3, 0, NP],
      [2, 0x12200, NP],
      [1, 0x12345, NP],
    ]);
    for (const t of trace.slice(0, 3)) expect(t.new & 0xfffn).toBe(0x907n); // present, A, RWX
    expect(trace[3]!.new.toString(16)).toBe('86000000abcdeb77');
    expect(tdp.stats()).toMatchObject({ roots: 1, tables: 4, leaves: [1, 0, 0] });
  });
});

describe('options', () => {
  it('nx_huge_pages: huge leaves are not executable, 4K pieces of a split become executable again', () => {
    const tdp = new TdpMmu({ levels: 4, nrAddressSpaces: 1, nxHugePages: true });
    tdp.map(0, 0x200, 0x200, 2, true, true);
    let s = leafAt(tdp, 0, 0x200);
    expect(s.lo & VMX_EPT_EXECUTABLE_MASK).toBe(0);
    tdp.splitHugePages(0, 0x200, 0x201, 1);
    s = leafAt(tdp, 0, 0x201);
    expect(s.lo & VMX_EPT_EXECUTABLE_MASK).toBe(VMX_EPT_EXECUTABLE_MASK);
  });

  it('honouring guest PAT drops IPAT from leaves', () => {
    const tdp = new TdpMmu({ levels: 4, nrAddressSpaces: 1, ignoreGuestPat: false });
    tdp.map(0, 1, 1, 1, true, true);
    const s = leafAt(tdp, 0, 1);
    expect(s.lo & 0x78).toBe(0x30);
  });

  it('a trace hook may not re-enter the MMU in the middle of a walk', () => {
    const tdp: TdpMmu = new TdpMmu({ levels: 4, nrAddressSpaces: 1 });
    tdp.onSpteChanged = (_as, gfn, level) => {
      if (level === 3) tdp.map(0, gfn + 1, 1, 1, true, true);
    };
    expect(() => tdp.map(0, 0, 0, 1, true, true)).toThrow(/re-entered/);
  });
});

describe('huge page split in the fault path', () => {
  it('a 4K map inside a 2M leaf splits it in place; the children inherit W/D/A', () => {
    const { tdp, trace } = mmu();
    tdp.map(0, 0x200, 0x4000, 2, true, true);
    tdp.translate(0, 0x210, true);
    trace.length = 0;
    expect(tdp.map(0, 0x205, 0x4005, 1, true, true)).toBe(TDP_MAP_SPURIOUS);
    expect(trace).toHaveLength(1); // 2M leaf → non-leaf; the piece at 0x205 is already right
    expect(trace[0]).toMatchObject({ level: 2, gfn: 0x200 });
    expect(tdp.stats().leaves).toEqual([512, 0, 0]);
    for (const g of [0x200, 0x205, 0x3ff]) expect(tdp.translate(0, g, false)).toBe(0x4000 + g - 0x200);
    const s = leafAt(tdp, 0, 0x3ff);
    expect([s.level, isWritable(s.lo, s.hi), isDirty(s.lo, s.hi), isAccessed(s.lo, s.hi), isLargePte(s.lo, s.hi)]).toEqual([1, true, true, true, false]);
  });

  it('a 4K map inside a 1G leaf splits 1G → 2M → 4K along the way', () => {
    const { tdp } = mmu();
    tdp.map(0, G1G, 2 * G1G, 3, false, true);
    tdp.map(0, G1G + 3 * G2M + 1, 2 * G1G + 3 * G2M + 1, 1, true, true);
    expect(tdp.stats().leaves).toEqual([512, 511, 0]);
    expect(tdp.translate(0, G1G + 3 * G2M + 1, true)).toBe(2 * G1G + 3 * G2M + 1);
    expect(tdp.translate(0, G1G + 3 * G2M + 2, true)).toBe(-1); // inherited read-only
    expect(tdp.translate(0, G1G + 100 * G2M, false)).toBe(2 * G1G + 100 * G2M);
  });
});

describe('zapping', () => {
  it('zapLeafs: a partly covered huge leaf is zapped whole; tables stay; flush only for valid roots', () => {
    const { tdp } = mmu();
    tdp.map(0, 0x400, 0x400, 2, true, true);
    tdp.map(0, 0x600, 0x600, 1, true, true);
    tdp.map(0, 0x601, 0x601, 1, true, true);
    expect(tdp.zapLeafs(0, 0x5ff, 0x601)).toBe(true);
    expect(tdp.translate(0, 0x400, false)).toBe(-1);
    expect(tdp.translate(0, 0x600, false)).toBe(-1);
    expect(tdp.translate(0, 0x601, false)).toBe(0x601);
    expect(tdp.stats()).toMatchObject({ leaves: [1, 0, 0], tables: 4 });
    expect(tdp.zapLeafs(0, 0, 0x600)).toBe(false);
    tdp.invalidateAllRoots();
    expect(tdp.zapLeafs(0, 0x601, 0x602)).toBe(false); // zapped, but in an invalid root
    expect(tdp.stats().leaves).toEqual([0, 0, 0]);
  });

  it('zapLeafs reaches only the given address space', () => {
    const { tdp } = mmu(4, 2);
    tdp.map(0, 7, 7, 1, true, true);
    tdp.map(1, 7, 7, 1, true, true);
    expect(tdp.zapLeafs(1, 0, 100)).toBe(true);
    expect(tdp.translate(0, 7, false)).toBe(7);
    expect(tdp.translate(1, 7, false)).toBe(-1);
  });

  it('invalidateAllRoots: translate misses, a fault allocates a new root, zapLeafs still reaches the old one', () => {
    const { tdp } = mmu();
    tdp.map(0, 0x10, 0x10, 1, true, true);
    tdp.invalidateAllRoots();
    expect(tdp.hasValidRoot(0)).toBe(false);
    expect(tdp.translate(0, 0x10, false)).toBe(-1);
    tdp.map(0, 0x20, 0x20, 1, true, true);
    expect(tdp.stats()).toMatchObject({ roots: 2, invalidRoots: 1, tables: 8, leaves: [2, 0, 0] });
    const seen: [number, boolean][] = [];
    tdp.forEachLeaf((_as, gfn, _l, _p, _w, _a, _d, valid) => seen.push([gfn, valid]));
    expect(seen).toEqual([
      [0x20, true],
      [0x10, false],
    ]);
    tdp.zapInvalidatedRoots();
    expect(tdp.stats()).toMatchObject({ roots: 1, invalidRoots: 0, tables: 4, leaves: [1, 0, 0], tableBytes: 4 * 4096 });
    expect(tdp.translate(0, 0x20, false)).toBe(0x20);
  });

  it('zapInvalidatedRoots (shared) traces every entry of removed tables as frozen; zapAll (exclusive) only present ones', () => {
    const a = mmu();
    a.tdp.map(0, 0x12345, 0x1, 1, true, true);
    a.tdp.invalidateAllRoots();
    a.trace.length = 0;
    a.tdp.zapInvalidatedRoots();
    // 4K pass: the leaf; 2M, 1G, root passes: one non-leaf each, then the 512 entries below it.
    expect(a.trace).toHaveLength(1 + 3 * (1 + 512));
    expect(a.trace.map((t) => t.level).slice(0, 3)).toEqual([1, 2, 1]);
    expect(a.trace[2]).toMatchObject({ old: NP, new: FROZEN });
    expect(a.tdp.stats()).toMatchObject({ roots: 0, tables: 0 });

    const b = mmu();
    b.tdp.map(0, 0x12345, 0x1, 1, true, true);
    b.trace.length = 0;
    b.tdp.zapAll();
    expect(b.trace.map((t) => [t.level, t.new])).toEqual([
      [1, NP],
      [2, NP],
      [3, NP],
      [4, NP],
    ]);
    expect(b.tdp.stats()).toMatchObject({ roots: 1, tables: 1, leaves: [0, 0, 0] });
    expect(b.tdp.translate(0, 0x12345, false)).toBe(-1);
  });

  it('removing a table under a huge-leaf replacement (exclusive) traces its present children as frozen', () => {
    const { tdp, trace } = mmu();
    tdp.map(0, 0, 0, 1, true, true);
    tdp.map(0, 1, 1, 1, true, true);
    trace.length = 0;
    tdp.zapAll();
    expect(trace.map((t) => t.level)).toEqual([1, 1, 2, 3, 4]);
  });
});

describe('aging, write protection, dirty clearing', () => {
  it('aging clears A and says young once; test_age does not clear and stops early', () => {
    const { tdp, trace } = mmu();
    tdp.map(0, 0x10, 0x10, 1, true, true);
    tdp.map(0, 0x400, 0x400, 2, true, true);
    expect(tdp.ageRange(0, 0x10, 0x11, false)).toBe(true);
    trace.length = 0;
    expect(tdp.ageRange(0, 0, 0x800, true)).toBe(true);
    expect(trace.map((t) => [t.gfn, t.level, t.old ^ t.new])).toEqual([
      [0x10, 1, 0x100n],
      [0x400, 2, 0x100n],
    ]);
    expect(tdp.ageRange(0, 0, 0x800, true)).toBe(false);
    expect(tdp.ageRange(0, 0, 0x800, false)).toBe(false);
    tdp.translate(0, 0x450, false);
    expect(tdp.ageRange(0, 0x5ff, 0x600, false)).toBe(true); // the 2M leaf overlaps
  });

  it('aging skips invalid roots', () => {
    const { tdp } = mmu();
    tdp.map(0, 0x10, 0x10, 1, true, true);
    tdp.invalidateAllRoots();
    expect(tdp.ageRange(0, 0, 0x100, true)).toBe(false);
  });

  it('write protection clears W at level ≥ minLevel, keeps MMU-writable; clear dirty clears D', () => {
    const { tdp } = mmu();
    tdp.map(0, 0x10, 0x10, 1, true, true);
    tdp.map(0, 0x400, 0x400, 2, true, true);
    expect(tdp.writeProtectRange(0, 0, 0x800, 2)).toBe(true);
    expect(tdp.translate(0, 0x10, true)).toBe(0x10);
    expect(tdp.translate(0, 0x400, true)).toBe(-1);
    const s = leafAt(tdp, 0, 0x400);
    expect([isWritable(s.lo, s.hi), isMmuWritable(s.lo, s.hi), isHostWritable(s.lo, s.hi)]).toEqual([false, true, true]);
    expect(tdp.writeProtectRange(0, 0, 0x800, 2)).toBe(false);
    expect(tdp.writeProtectRange(0, 0, 0x800, 1)).toBe(true);
    expect(tdp.translate(0, 0x10, true)).toBe(-1);
    expect(tdp.clearDirtyRange(0, 0, 0x800)).toBe(true);
    expect(tdp.clearDirtyRange(0, 0, 0x800)).toBe(false);
    const d = leafAt(tdp, 0, 0x10);
    expect(isDirty(d.lo, d.hi)).toBe(false);
  });

  it('masked clear: only 4K leaves whose bit is set; D, or W when wrprot', () => {
    const { tdp } = mmu();
    for (let g = 0x40; g < 0x80; g++) tdp.map(0, g, g, 1, true, true);
    tdp.map(0, 0x200, 0x200, 2, true, true);
    tdp.clearDirtyMasked(0, 0x40, 0b101, 0x80000000, false);
    const dirty = (g: number) => {
      const s = leafAt(tdp, 0, g);
      return isDirty(s.lo, s.hi);
    };
    expect([dirty(0x40), dirty(0x41), dirty(0x42), dirty(0x40 + 63), dirty(0x40 + 62)]).toEqual([false, true, false, false, true]);
    tdp.clearDirtyMasked(0, 0x40, 0b10, 0, true);
    expect(tdp.translate(0, 0x41, true)).toBe(-1);
    expect(tdp.translate(0, 0x40, true)).toBe(0x40);
    tdp.clearDirtyMasked(0, 0x200, 0xffffffff, 0xffffffff, true); // the 2M leaf is not touched
    expect(tdp.translate(0, 0x201, true)).toBe(0x201);
  });

  it('eager split keeps W/D; 1G → 4K splits only the pieces overlapping the range', () => {
    const { tdp } = mmu();
    tdp.map(0, G1G, G1G, 3, true, true);
    tdp.writeProtectRange(0, G1G, G1G + 1, 1);
    tdp.splitHugePages(0, G1G + 5 * G2M + 3, G1G + 6 * G2M + 1, 1);
    expect(tdp.stats().leaves).toEqual([1024, 510, 0]);
    const s = leafAt(tdp, 0, G1G + 6 * G2M + 100);
    expect([s.level, isWritable(s.lo, s.hi), isMmuWritable(s.lo, s.hi), isDirty(s.lo, s.hi), isAccessed(s.lo, s.hi)]).toEqual([1, false, true, true, true]);
    expect(tdp.translate(0, G1G + 6 * G2M + 100, false)).toBe(G1G + 6 * G2M + 100);
    tdp.splitHugePages(0, 0, 2 * G1G, 2);
    expect(tdp.stats().leaves).toEqual([1024, 510, 0]);
  });
});

describe('MMIO SPTEs', () => {
  it('round trip of the generation; translate reports MMIO_HIT; a re-map with a new generation replaces it', () => {
    const { tdp, trace } = mmu();
    expect(tdp.mmioGeneration(0, 0xfee00)).toBe(-1);
    tdp.mapMmio(0, 0xfee00, 0x5abcd);
    expect(tdp.translate(0, 0xfee00, false)).toBe(MMIO_HIT);
    expect(tdp.mmioGeneration(0, 0xfee00)).toBe(0x5abcd);
    expect(tdp.mmioGeneration(0, 0xfee01)).toBe(-1);
    expect(tdp.mapMmio(0, 0xfee00, 0x5abcd)).toBe(TDP_MAP_SPURIOUS);
    tdp.mapMmio(0, 0xfee00, 0x7ffff + 3);
    expect(tdp.mmioGeneration(0, 0xfee00)).toBe(2);
    expect(trace.at(-1)!.new).toBe(spteToBigInt(...makeMmioSpte(0xfee00, 2)));
    expect(tdp.stats()).toMatchObject({ mmioSptes: 1, leaves: [0, 0, 0] });
  });

  it('zapLeafs leaves MMIO SPTEs (not shadow-present); zapAllMmioSptes and root zaps remove them', () => {
    const { tdp } = mmu();
    tdp.mapMmio(0, 0x100, 4);
    tdp.mapMmio(0, 0x101, 4);
    expect(tdp.zapLeafs(0, 0, 0x1000)).toBe(false);
    expect(tdp.mmioGeneration(0, 0x100)).toBe(4);
    tdp.zapAllMmioSptes();
    expect(tdp.stats().mmioSptes).toBe(0);
    expect(tdp.translate(0, 0x100, false)).toBe(-1);
    tdp.mapMmio(0, 0x100, 6);
    tdp.invalidateAllRoots();
    tdp.zapInvalidatedRoots();
    expect(tdp.stats()).toMatchObject({ mmioSptes: 0, tables: 0 });
  });

  it('memory mapped over an MMIO gfn replaces the MMIO SPTE; a huge map removes the ones below it', () => {
    const { tdp } = mmu();
    tdp.mapMmio(0, 0x100, 4);
    tdp.mapMmio(0, 0x102, 4);
    tdp.map(0, 0x100, 0x900, 1, true, true);
    expect(tdp.stats()).toMatchObject({ mmioSptes: 1, leaves: [1, 0, 0] });
    tdp.zapLeafs(0, 0, 0x200);
    tdp.map(0, 0x0, 0x800, 2, true, true);
    expect(tdp.stats()).toMatchObject({ mmioSptes: 0, leaves: [0, 1, 0] });
  });
});

describe('memory', () => {
  it('512 × 4K in one 2M region: one leaf table plus the upper tables', () => {
    const { tdp } = mmu();
    for (let g = 0; g < 512; g++) tdp.map(0, 0x800 + g, 0x10000 + g, 1, true, true);
    expect(tdp.stats()).toMatchObject({ tables: 4, tableBytes: 4 * 4096, leaves: [512, 0, 0] });
  });

  it('about 8 bytes per mapped 4K page when many pages are mapped', () => {
    const tdp = new TdpMmu({ levels: 4, nrAddressSpaces: 1 });
    const n = 128 * 512;
    for (let g = 0; g < n; g++) tdp.map(0, g, g + G1G, 1, true, true);
    const s = tdp.stats();
    expect(s.tables).toBe(1 + 1 + 1 + 128);
    expect(s.tableBytes / n).toBeLessThan(8.2);
    expect(s.heapBytes / n).toBeLessThan(16);
  });

  it('freed tables are reused', () => {
    const tdp = new TdpMmu({ levels: 4, nrAddressSpaces: 1, initialTables: 4 });
    for (let round = 0; round < 3; round++) {
      for (let g = 0; g < 16 * 512; g += 512) tdp.map(0, g, g, 1, true, true);
      tdp.invalidateAllRoots();
      tdp.zapInvalidatedRoots();
    }
    const heap = tdp.stats().heapBytes;
    for (let g = 0; g < 16 * 512; g += 512) tdp.map(0, g, g, 1, true, true);
    expect(tdp.stats().heapBytes).toBe(heap);
  });
});

// ---- the property test: random operations against a naive model of leaves -----------------------

interface MLeaf {
  level: number;
  pfn: number;
  w: boolean;
  mmuW: boolean;
  hw: boolean;
  a: boolean;
  d: boolean;
}

interface MRoot {
  asId: number;
  valid: boolean;
  /** base gfn → leaf */
  leaves: Map<number, MLeaf>;
  /** gfn → generation */
  mmio: Map<number, number>;
}

const PAGES = [0, 1, G2M, G1G];
const round = (gfn: number, level: number): number => gfn - (gfn % PAGES[level]!);
const overlaps = (base: number, level: number, s: number, e: number): boolean => base < e && base + PAGES[level]! > s;

class Model {
  roots: MRoot[] = []; // newest first

  valid(asId: number): MRoot | undefined {
    return this.roots.find((r) => r.valid && r.asId === asId);
  }

  rootFor(asId: number): MRoot {
    let r = this.valid(asId);
    if (!r) {
      r = { asId, valid: true, leaves: new Map(), mmio: new Map() };
      this.roots.unshift(r);
    }
    return r;
  }

  static find(r: MRoot, gfn: number): [number, MLeaf] | undefined {
    for (let l = 1; l <= 3; l++) {
      const b = round(gfn, l);
      const x = r.leaves.get(b);
      if (x && x.level === l) return [b, x];
    }
    return undefined;
  }

  /** make_huge_page_split_spte() recursively, for the pieces overlapping [s, e), down to `target`. */
  static split(r: MRoot, base: number, leaf: MLeaf, s: number, e: number, target: number): void {
    r.leaves.delete(base);
    const cl = leaf.level - 1;
    for (let i = 0; i < 512; i++) {
      const cb = base + i * PAGES[cl]!;
      const child = { ...leaf, level: cl, pfn: leaf.pfn + i * PAGES[cl]! };
      r.leaves.set(cb, child);
      if (cl > target && overlaps(cb, cl, s, e)) Model.split(r, cb, child, s, e, target);
    }
  }

  /** The pfn a map of (gfn, level) must use so as not to BUG(), if a leaf ends up there. */
  consistentPfn(asId: number, gfn: number, level: number): number | undefined {
    const r = this.valid(asId);
    const f = r && Model.find(r, gfn);
    if (!f || f[1].level < level) return undefined;
    return f[1].pfn + (round(gfn, level) - f[0]);
  }

  map(asId: number, gfn: number, pfn: number, level: number, w: boolean, hw: boolean): void {
    const r = this.rootFor(asId);
    const f = Model.find(r, gfn);
    if (f && f[1].level > level) Model.split(r, f[0], f[1], gfn, gfn + 1, level);
    const R = round(gfn, level);
    for (const b of [...r.leaves.keys()]) if (b >= R && b < R + PAGES[level]! && r.leaves.get(b)!.level < level) r.leaves.delete(b);
    for (const g of [...r.mmio.keys()]) if (g >= R && g < R + PAGES[level]!) r.mmio.delete(g);
    r.leaves.set(R, { level, pfn: pfn - (pfn % PAGES[level]!), w: w && hw, mmuW: w && hw, hw, a: true, d: w && hw });
  }

  mapMmio(asId: number, gfn: number, gen: number): void {
    const r = this.rootFor(asId);
    const f = Model.find(r, gfn);
    if (f && f[1].level > 1) Model.split(r, f[0], f[1], gfn, gfn + 1, 1);
    r.leaves.delete(gfn);
    r.mmio.set(gfn, gen % 2 ** 19);
  }

  private each(asId: number, validOnly: boolean, s: number, e: number, fn: (r: MRoot, base: number, leaf: MLeaf) => void): void {
    for (const r of this.roots) {
      if (r.asId !== asId || (validOnly && !r.valid)) continue;
      for (const [b, l] of [...r.leaves]) if (overlaps(b, l.level, s, e)) fn(r, b, l);
    }
  }

  zap(asId: number, s: number, e: number): boolean {
    let flush = false;
    this.each(asId, false, s, e, (r, b) => {
      r.leaves.delete(b);
      if (r.valid) flush = true;
    });
    return flush;
  }

  age(asId: number, s: number, e: number, clear: boolean): boolean {
    let young = false;
    this.each(asId, true, s, e, (_r, _b, l) => {
      if (l.a) young = true;
      if (clear) l.a = false;
    });
    return young;
  }

  wrprot(asId: number, s: number, e: number, minLevel: number): boolean {
    let changed = false;
    this.each(asId, true, s, e, (_r, _b, l) => {
      if (l.level >= minLevel && l.w) {
        l.w = false;
        changed = true;
      }
    });
    return changed;
  }

  clearDirty(asId: number, s: number, e: number): boolean {
    let changed = false;
    this.each(asId, true, s, e, (_r, _b, l) => {
      if (l.d) {
        l.d = false;
        changed = true;
      }
    });
    return changed;
  }

  masked(asId: number, base: number, maskLo: number, maskHi: number, wrprot: boolean): void {
    for (const r of this.roots) {
      if (r.asId !== asId || !r.valid) continue;
      for (let i = 0; i < 64; i++) {
        if (!((i < 32 ? maskLo >>> i : maskHi >>> (i - 32)) & 1)) continue;
        const l = r.leaves.get(base + i);
        if (!l || l.level !== 1) continue;
        if (wrprot) l.w = false;
        else l.d = false;
      }
    }
  }

  splitRange(asId: number, s: number, e: number, target: number): void {
    this.each(asId, true, s, e, (r, b, l) => {
      if (l.level > target) Model.split(r, b, l, s, e, target);
    });
  }

  translate(asId: number, gfn: number, write: boolean): number {
    const r = this.valid(asId);
    if (!r) return -1;
    if (r.mmio.has(gfn)) return MMIO_HIT;
    const f = Model.find(r, gfn);
    if (!f) return -1;
    const l = f[1];
    if (write && !l.w) return -1;
    l.a = true;
    if (write) l.d = true;
    return l.pfn + (gfn - f[0]);
  }
}

type Op =
  | { k: 'map'; as: number; gfn: number; K: number; level: 1 | 2 | 3; w: boolean; hw: boolean }
  | { k: 'mmio'; as: number; gfn: number; gen: number }
  | { k: 'zap'; as: number; s: number; len: number }
  | { k: 'age'; as: number; s: number; len: number; clear: boolean }
  | { k: 'wrprot'; as: number; s: number; len: number; minLevel: 1 | 2 | 3 }
  | { k: 'clearDirty'; as: number; s: number; len: number }
  | { k: 'masked'; as: number; gfn: number; lo: number; hi: number; wrprot: boolean }
  | { k: 'split'; as: number; s: number; len: number; target: 1 | 2 }
  | { k: 'translate'; as: number; gfn: number; write: boolean }
  | { k: 'invalidate' }
  | { k: 'zapInvalidated'; shared: boolean }
  | { k: 'zapAll' }
  | { k: 'zapMmio' };

/** Gfns near the interesting boundaries of four 1 GiB regions. */
const gfnArb = fc
  .tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom(0, 1, 2, 255, 511), fc.constantFrom(0, 1, 2, 63, 64, 511))
  .map(([g, m, k]) => g * G1G + m * G2M + k);
const lenArb = fc.constantFrom(1, 2, 3, 64, 511, 512, 513, 1024, G1G - 1, G1G, G1G + 1, 3 * G1G);
/** Splits stay narrow: a 1 GiB leaf split down to 4K over its whole range is 262144 model leaves. */
const splitLenArb = fc.constantFrom(1, 2, 511, 512, 513, 1024);
const asArb = fc.integer({ min: 0, max: 1 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('map' as const), as: asArb, gfn: gfnArb, K: fc.constantFrom(G1G * 4, G1G * 9), level: fc.constantFrom(1 as const, 2 as const, 3 as const), w: fc.boolean(), hw: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('mmio' as const), as: asArb, gfn: gfnArb, gen: fc.integer({ min: 0, max: 2 ** 20 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('zap' as const), as: asArb, s: gfnArb, len: lenArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('age' as const), as: asArb, s: gfnArb, len: lenArb, clear: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('wrprot' as const), as: asArb, s: gfnArb, len: lenArb, minLevel: fc.constantFrom(1 as const, 2 as const, 3 as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('clearDirty' as const), as: asArb, s: gfnArb, len: lenArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('masked' as const), as: asArb, gfn: gfnArb, lo: fc.integer({ min: 0, max: 2 ** 32 - 1 }), hi: fc.integer({ min: 0, max: 2 ** 32 - 1 }), wrprot: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('split' as const), as: asArb, s: gfnArb, len: splitLenArb, target: fc.constantFrom(1 as const, 2 as const) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('translate' as const), as: asArb, gfn: gfnArb, write: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'invalidate' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('zapInvalidated' as const), shared: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'zapAll' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'zapMmio' as const }) },
);

function apply(tdp: TdpMmu, m: Model, op: Op): void {
  switch (op.k) {
    case 'map': {
      const pfn = m.consistentPfn(op.as, op.gfn, op.level) ?? op.gfn + op.K;
      m.map(op.as, op.gfn, pfn, op.level, op.w, op.hw);
      tdp.map(op.as, op.gfn, pfn, op.level, op.w, op.hw);
      return;
    }
    case 'mmio':
      m.mapMmio(op.as, op.gfn, op.gen);
      tdp.mapMmio(op.as, op.gfn, op.gen);
      return;
    case 'zap':
      expect(tdp.zapLeafs(op.as, op.s, op.s + op.len)).toBe(m.zap(op.as, op.s, op.s + op.len));
      return;
    case 'age':
      expect(tdp.ageRange(op.as, op.s, op.s + op.len, op.clear)).toBe(m.age(op.as, op.s, op.s + op.len, op.clear));
      return;
    case 'wrprot':
      expect(tdp.writeProtectRange(op.as, op.s, op.s + op.len, op.minLevel)).toBe(m.wrprot(op.as, op.s, op.s + op.len, op.minLevel));
      return;
    case 'clearDirty':
      expect(tdp.clearDirtyRange(op.as, op.s, op.s + op.len)).toBe(m.clearDirty(op.as, op.s, op.s + op.len));
      return;
    case 'masked':
      m.masked(op.as, op.gfn, op.lo, op.hi, op.wrprot);
      tdp.clearDirtyMasked(op.as, op.gfn, op.lo, op.hi, op.wrprot);
      return;
    case 'split':
      m.splitRange(op.as, op.s, op.s + op.len, op.target);
      tdp.splitHugePages(op.as, op.s, op.s + op.len, op.target);
      return;
    case 'translate':
      expect(tdp.translate(op.as, op.gfn, op.write)).toBe(m.translate(op.as, op.gfn, op.write));
      return;
    case 'invalidate':
      for (const r of m.roots) r.valid = false;
      tdp.invalidateAllRoots();
      return;
    case 'zapInvalidated':
      m.roots = m.roots.filter((r) => r.valid);
      tdp.zapInvalidatedRoots(op.shared);
      return;
    case 'zapAll':
      for (const r of m.roots) {
        r.leaves.clear();
        r.mmio.clear();
      }
      tdp.zapAll();
      return;
    case 'zapMmio':
      for (const r of m.roots) r.mmio.clear();
      tdp.zapAllMmioSptes();
      return;
  }
}

function check(tdp: TdpMmu, m: Model): void {
  const actual: string[] = [];
  tdp.forEachLeaf((as, gfn, level, pfn, w, a, d, valid) => actual.push(`${as} ${valid} ${gfn} ${level} ${pfn} ${w} ${a} ${d}`));
  const expected: string[] = [];
  const leaves = [0, 0, 0];
  let mmio = 0;
  for (const r of m.roots) {
    for (const [b, l] of [...r.leaves].sort((x, y) => x[0] - y[0])) {
      expected.push(`${r.asId} ${r.valid} ${b} ${l.level} ${l.pfn} ${l.w} ${l.a} ${l.d}`);
      leaves[l.level - 1]!++;
    }
    mmio += r.mmio.size;
  }
  expect(actual).toEqual(expected);
  const s = tdp.stats();
  expect(s.leaves).toEqual(leaves);
  expect(s.mmioSptes).toBe(mmio);
  expect(s.roots).toBe(m.roots.length);
  expect(s.invalidRoots).toBe(m.roots.filter((r) => !r.valid).length);
  // Exact SPTE bits (Host-/MMU-writable included) and MMIO generations, in the valid roots.
  for (const r of m.roots) {
    if (!r.valid) continue;
    for (const [b, l] of r.leaves) {
      expect(tdp.getLastSpte(r.asId, b)).toBe(l.level);
      const f = (l.mmuW ? LEAF_WRITABLE : 0) | (l.hw ? LEAF_HOST_WRITABLE : 0) | (l.a ? LEAF_ACCESSED : 0) | (l.d ? LEAF_DIRTY : 0);
      const lo = (leafSpteLo(l.pfn, l.level, f) & ~(l.w ? 0 : PT_WRITABLE_MASK)) >>> 0;
      expect([tdp.lastLo, tdp.lastHi]).toEqual([lo, leafSpteHi(l.pfn, l.level, f)]);
    }
    for (const [g, gen] of r.mmio) expect(tdp.mmioGeneration(r.asId, g)).toBe(gen);
  }
  if (m.roots.length === 0) expect(s.tables).toBe(0);
}

describe('property: random operations agree with a naive model of leaves', () => {
  it.each([4, 5] as const)('%i-level roots, two address spaces, after every operation', (levels) => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const tdp = new TdpMmu({ levels, nrAddressSpaces: 2, initialTables: 4 });
        const m = new Model();
        for (const op of ops) {
          apply(tdp, m, op);
          check(tdp, m);
        }
      }),
      { numRuns: 300 },
    );
  });
});
