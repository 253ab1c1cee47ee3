/**
 * Table geometry and the CPU's walk, shared by the TDP MMU and the shadow MMU: both build
 * 512-entry tables of EPT-format SPTEs in one {@link PageTablePool}, and the hardware walks them
 * the same way whichever MMU built them.
 * @see arch/x86/kvm/mmu/mmu_internal.h KVM_PAGES_PER_HPAGE(), arch/x86/kvm/mmu/spte.h SPTE_INDEX() (6.18)
 */
import type { PageTablePool } from './page-table-pool.js';
import {
  PT_PAGE_SIZE_MASK,
  PT_WRITABLE_MASK,
  SPTE_ENT_PER_PAGE,
  SPTE_MMU_PRESENT_MASK,
  VMX_EPT_ACCESS_BIT,
  VMX_EPT_DIRTY_BIT,
  isMmioSpte,
  spteToPfn,
} from './spte.js';

/** KVM_PAGES_PER_HPAGE(level), for levels 1..6 (6 = what a 5-level root covers). */
export const PAGES_PER_HPAGE: Float64Array = new Float64Array([0, 1, 2 ** 9, 2 ** 18, 2 ** 27, 2 ** 36, 2 ** 45]);

/** The walk hit an MMIO SPTE (an EPT misconfiguration): the caller checks its generation. */
export const MMIO_HIT = -2;

const ENT = SPTE_ENT_PER_PAGE;
const PRESENT = SPTE_MMU_PRESENT_MASK;
const PS = PT_PAGE_SIZE_MASK;
const W = PT_WRITABLE_MASK;
const A = VMX_EPT_ACCESS_BIT;
const D = VMX_EPT_DIRTY_BIT;

/**
 * SPTE_INDEX(pn << PAGE_SHIFT, level) for a page number (gfn, or gva >> 12); shifts are exact for
 * levels ≤ 3 even above 2^32.
 */
export function spteIndex(pn: number, level: number): number {
  return level <= 3 ? (pn >>> ((level - 1) * 9)) & 511 : Math.floor(pn / PAGES_PER_HPAGE[level]!) & 511;
}

/** gfn_round_for_level() */
export function gfnRoundForLevel(pn: number, level: number): number {
  return pn - (pn % PAGES_PER_HPAGE[level]!);
}

/**
 * The hardware walk from table `root` (of level `rootLevel`) to page number `pn`: the host frame;
 * -1 for a violation (not present, or a write to a non-writable leaf); {@link MMIO_HIT} for an MMIO
 * SPTE. Sets A, and D on writes, in the leaf as the CPU does. The caller checks `pn` is in reach.
 * Simplification: no TLB (the kernel's vCPU caches translations between flushes).
 */
export function hardwareWalk(pool: PageTablePool, root: number, rootLevel: number, pn: number, write: boolean): number {
  const lo = pool.lo;
  const hi = pool.hi;
  let t = root;
  for (let level = rootLevel; ; level--) {
    const o = t * ENT + spteIndex(pn, level);
    const l = lo[o]!;
    if ((l & PRESENT) === 0) return isMmioSpte(l, hi[o]!) ? MMIO_HIT : -1;
    if (level === 1 || (l & PS) !== 0) {
      if (write) {
        if ((l & W) === 0) return -1;
        if ((l & (A | D)) !== (A | D)) lo[o] = l | A | D;
      } else if ((l & A) === 0) lo[o] = l | A;
      const pfn = spteToPfn(l, hi[o]!);
      return level === 1 ? pfn : pfn + (pn % PAGES_PER_HPAGE[level]!);
    }
    t = l >>> 12;
  }
}
