/**
 * Per-slot huge-page eligibility: struct kvm_lpage_info { int disallow_lpage; } for 2 MiB and
 * 1 GiB, one counter per huge page the slot touches. A counter is raised for a slot edge that is
 * not aligned to the huge size, and for every huge page of the slot when gpa and hva are not
 * congruent modulo the huge size.
 * @see arch/x86/kvm/x86.c kvm_alloc_memslot_metadata() (6.18)
 * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_max_mapping_level(), lpage_info_slot() (6.18)
 * Simplification: no write tracking (no shadow MMU yet) and no private/shared MIXED flag.
 */
import type { MemorySlot } from '@kvmsim/kvm-core';

/** PG_LEVEL_4K/2M/1G */
export type PgLevel = 1 | 2 | 3;

/** log2 of the pages per huge page at a level: 2M = 9, 1G = 18. */
export function levelShift(level: PgLevel): number {
  return (level - 1) * 9;
}

/** gfn_to_index(): which huge page of the slot `gfn` is in, at a level. */
export function gfnToIndex(gfn: number, baseGfn: number, level: PgLevel): number {
  const s = 2 ** levelShift(level);
  return Math.floor(gfn / s) - Math.floor(baseGfn / s);
}

export class LpageInfo {
  /** disallow_lpage counters: [0] for 2M, [1] for 1G. */
  readonly disallow: [Int32Array, Int32Array];

  constructor(slot: MemorySlot) {
    const arrays: Int32Array[] = [];
    for (const level of [2, 3] as const) {
      const size = 2 ** levelShift(level);
      const lpages = gfnToIndex(slot.baseGfn + slot.npages - 1, slot.baseGfn, level) + 1;
      const a = new Int32Array(lpages);
      // An unaligned slot edge: the huge page it cuts cannot be mapped huge.
      if (slot.baseGfn % size !== 0) a[0]! += 1;
      if ((slot.baseGfn + slot.npages) % size !== 0) a[lpages - 1]! += 1;
      // gpa and hva not congruent modulo the huge size: no huge page of this size anywhere.
      if ((slot.baseGfn - slot.hvaPfn) % size !== 0) for (let i = 0; i < lpages; i++) a[i]! += 1;
      arrays.push(a);
    }
    this.disallow = [arrays[0]!, arrays[1]!];
  }

  /** May `gfn` be mapped at `level` as far as the slot is concerned? */
  allowed(slot: MemorySlot, gfn: number, level: PgLevel): boolean {
    if (level === 1) return true;
    return this.disallow[level - 2]![gfnToIndex(gfn, slot.baseGfn, level)] === 0;
  }

  /**
   * update_gfn_disallow_lpage_count(): a shadow page shadowing a guest page table at `gfn`
   * (`delta` +1) or its zap (−1) forbids huge mappings over `gfn` at every huge level.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_gfn_disallow_lpage(), kvm_mmu_gfn_allow_lpage() (6.18)
   */
  update(baseGfn: number, gfn: number, delta: number): void {
    for (const level of [2, 3] as const) {
      const a = this.disallow[level - 2]!;
      const i = gfnToIndex(gfn, baseGfn, level);
      a[i] = a[i]! + delta;
    }
  }
}
