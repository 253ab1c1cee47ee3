/**
 * The SPTE format of the TDP MMU on an EPT host with A/D bits (Linux 6.18): 64-bit SPTEs held as
 * two u32 halves, `lo` = bits 0-31 and `hi` = bits 32-63, so that hot paths never touch a bigint.
 *
 * Values are exactly what the kernel writes (and prints in `kvm_tdp_mmu_spte_changed`) for a
 * default VM: leaves carry the memory type WB with IPAT (KVM_X86_QUIRK_IGNORE_GUEST_PAT on, no
 * non-coherent DMA), the EPT "present" mask (R, plus bit 63 = suppress-#VE) and RWX access.
 *
 * @see arch/x86/kvm/mmu/spte.h, arch/x86/kvm/mmu/spte.c kvm_mmu_set_ept_masks() (6.18)
 * @see arch/x86/include/asm/vmx.h VMX_EPT_* (6.18)
 * Simplification: the host is not L1TF-vulnerable (shadow_nonpresent_or_rsvd_mask = 0), EPT
 * supports execute-only, and the physical address width is 52 bits (gfn/pfn in bits 12-51).
 */

/** SPTE_LEVEL_BITS: 9 index bits per level. */
export const SPTE_LEVEL_BITS = 9;
/** SPTE_ENT_PER_PAGE: 512 SPTEs per 4 KiB page table. */
export const SPTE_ENT_PER_PAGE = 512;
/** PG_LEVEL_4K / PG_LEVEL_2M / PG_LEVEL_1G (arch/x86/include/asm/pgtable_types.h). */
export const PG_LEVEL_4K = 1;
export const PG_LEVEL_2M = 2;
export const PG_LEVEL_1G = 3;

// ---- bits of the low half (SPTE bits 0-31) -------------------------------------------------

/** VMX_EPT_READABLE_MASK (bit 0); also shadow_user_mask and part of shadow_present_mask on EPT. */
export const VMX_EPT_READABLE_MASK = 0x1;
/** VMX_EPT_WRITABLE_MASK (bit 1) = PT_WRITABLE_MASK's EPT position. */
export const VMX_EPT_WRITABLE_MASK = 0x2;
/** VMX_EPT_EXECUTABLE_MASK (bit 2) = shadow_x_mask on EPT. */
export const VMX_EPT_EXECUTABLE_MASK = 0x4;
/** VMX_EPT_RWX_MASK (bits 0-2). */
export const VMX_EPT_RWX_MASK = 0x7;
/** PT_WRITABLE_MASK as used on EPT SPTEs (bit 1). */
export const PT_WRITABLE_MASK: number = VMX_EPT_WRITABLE_MASK;
/** VMX_EPT_MT_EPTE_SHIFT: memory type in bits 3-5. */
export const VMX_EPT_MT_EPTE_SHIFT = 3;
/** VMX_EPT_MT_MASK (bits 3-5). */
export const VMX_EPT_MT_MASK = 0x38;
/** MTRR_TYPE_WRBACK. */
export const MTRR_TYPE_WRBACK = 6;
/** VMX_EPT_IPAT_BIT (bit 6): ignore guest PAT. */
export const VMX_EPT_IPAT_BIT = 0x40;
/** PT_PAGE_SIZE_MASK (bit 7): a huge (2M/1G) leaf. */
export const PT_PAGE_SIZE_MASK = 0x80;
/** VMX_EPT_ACCESS_BIT (bit 8) = shadow_accessed_mask with A/D bits. */
export const VMX_EPT_ACCESS_BIT = 0x100;
/** VMX_EPT_DIRTY_BIT (bit 9) = shadow_dirty_mask with A/D bits. */
export const VMX_EPT_DIRTY_BIT = 0x200;
/** SPTE_MMU_PRESENT_MASK (bit 11): KVM's software "shadow-present" bit. */
export const SPTE_MMU_PRESENT_MASK = 0x800;
/** VMX_EPT_MISCONFIG_WX_VALUE: W|X without R, an EPT misconfiguration = shadow_mmio_value on EPT. */
export const VMX_EPT_MISCONFIG_WX_VALUE = 0x6;
/** vmx_get_mt_mask() for RAM with the IGNORE_GUEST_PAT quirk: WB << 3 | IPAT. */
export const SPTE_EPT_MEMTYPE_WB_IPAT: number = (MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT) | VMX_EPT_IPAT_BIT;
/** vmx_get_mt_mask() for RAM when guest PAT is honoured: WB << 3. */
export const SPTE_EPT_MEMTYPE_WB: number = MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT;
/** SPTE_BASE_ADDR_MASK, low half: address bits 12-31. */
export const SPTE_BASE_ADDR_MASK_LO = 0xfffff000;

// ---- bits of the high half (SPTE bits 32-63), as masks of `hi` ------------------------------

/** SPTE_BASE_ADDR_MASK, high half: address bits 32-51. */
export const SPTE_BASE_ADDR_MASK_HI = 0x000fffff;
/** Bit number of EPT_SPTE_HOST_WRITABLE (6.18; 53 after the 2025 MBEC series). */
export const EPT_SPTE_HOST_WRITABLE_BIT = 57;
/** Bit number of EPT_SPTE_MMU_WRITABLE (6.18; 55 after the 2025 MBEC series). */
export const EPT_SPTE_MMU_WRITABLE_BIT = 58;
/** EPT_SPTE_HOST_WRITABLE = shadow_host_writable_mask, as a mask of `hi`. */
export const EPT_SPTE_HOST_WRITABLE_HI: number = 1 << (EPT_SPTE_HOST_WRITABLE_BIT - 32);
/** EPT_SPTE_MMU_WRITABLE = shadow_mmu_writable_mask, as a mask of `hi`. */
export const EPT_SPTE_MMU_WRITABLE_HI: number = 1 << (EPT_SPTE_MMU_WRITABLE_BIT - 32);
/** VMX_EPT_SUPPRESS_VE_BIT (bit 63), part of shadow_present_mask, as a mask of `hi`. */
export const VMX_EPT_SUPPRESS_VE_BIT_HI = 0x80000000;

/** SHADOW_NONPRESENT_VALUE = BIT_ULL(63): the value of an empty or zapped SPTE. */
export const SHADOW_NONPRESENT_VALUE_LO = 0;
export const SHADOW_NONPRESENT_VALUE_HI = 0x80000000;
/** FROZEN_SPTE = SHADOW_NONPRESENT_VALUE | 0x5a0 (6.18; 0x1a0 after the 2025 MBEC series). */
export const FROZEN_SPTE_LO = 0x5a0;
export const FROZEN_SPTE_HI = 0x80000000;

/** shadow_mmio_mask on EPT: RWX | suppress-#VE; an SPTE is MMIO iff (spte & mask) == WX. */
export const SHADOW_MMIO_MASK_LO: number = VMX_EPT_RWX_MASK;
export const SHADOW_MMIO_MASK_HI: number = VMX_EPT_SUPPRESS_VE_BIT_HI;

// ---- MMIO generation (19 bits in 6.12..6.18) ------------------------------------------------

export const MMIO_SPTE_GEN_LOW_START = 3;
export const MMIO_SPTE_GEN_LOW_END = 10;
export const MMIO_SPTE_GEN_HIGH_START = 52;
export const MMIO_SPTE_GEN_HIGH_END = 62;
export const MMIO_SPTE_GEN_LOW_BITS: number = MMIO_SPTE_GEN_LOW_END - MMIO_SPTE_GEN_LOW_START + 1; // 8
export const MMIO_SPTE_GEN_HIGH_BITS: number = MMIO_SPTE_GEN_HIGH_END - MMIO_SPTE_GEN_HIGH_START + 1; // 11
/** MMIO_SPTE_GEN_MASK = GENMASK_ULL(18, 0): 19 bits (18 in 7.x). */
export const MMIO_SPTE_GEN_MASK: number = 2 ** (MMIO_SPTE_GEN_LOW_BITS + MMIO_SPTE_GEN_HIGH_BITS) - 1;
/** MMIO_SPTE_GEN_LOW_MASK, a mask of `lo` (bits 3-10). */
export const MMIO_SPTE_GEN_LOW_MASK_LO = 0x7f8;
/** MMIO_SPTE_GEN_HIGH_MASK, a mask of `hi` (bits 52-62). */
export const MMIO_SPTE_GEN_HIGH_MASK_HI = 0x7ff00000;

// ---- flags of the leaf constructor ----------------------------------------------------------

/** make_spte(): pte_access includes ACC_WRITE_MASK (W and MMU-writable, if also host-writable). */
export const LEAF_WRITABLE = 1;
/** make_spte(): host_writable (EPT_SPTE_HOST_WRITABLE). */
export const LEAF_HOST_WRITABLE = 2;
/** Accessed bit (set by make_spte() unless prefetching). */
export const LEAF_ACCESSED = 4;
/** Dirty bit (make_spte() sets it whenever the leaf is writable, 6.13+). */
export const LEAF_DIRTY = 8;
/** Not executable: a huge leaf under the NX huge page mitigation. */
export const LEAF_NO_EXEC = 16;
/** Honour guest PAT: memtype WB without IPAT (non-coherent DMA or the quirk disabled). */
export const LEAF_NO_IPAT = 32;

const P20 = 1048576; // 2^20

// ---- predicates -----------------------------------------------------------------------------

/** @see arch/x86/kvm/mmu/spte.h is_shadow_present_pte() (6.18) */
export function isShadowPresent(lo: number, _hi: number): boolean {
  return (lo & SPTE_MMU_PRESENT_MASK) !== 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_large_pte() (6.18) */
export function isLargePte(lo: number, _hi: number): boolean {
  return (lo & PT_PAGE_SIZE_MASK) !== 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_last_spte() (6.18) */
export function isLastSpte(lo: number, _hi: number, level: number): boolean {
  return level === PG_LEVEL_4K || (lo & PT_PAGE_SIZE_MASK) !== 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_writable_pte() (6.18) */
export function isWritable(lo: number, _hi: number): boolean {
  return (lo & PT_WRITABLE_MASK) !== 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_mmu_writable_spte() (6.18) */
export function isMmuWritable(_lo: number, hi: number): boolean {
  return (hi & EPT_SPTE_MMU_WRITABLE_HI) !== 0;
}

/** shadow_host_writable_mask set (arch/x86/kvm/mmu/spte.h, 6.18). */
export function isHostWritable(_lo: number, hi: number): boolean {
  return (hi & EPT_SPTE_HOST_WRITABLE_HI) !== 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_accessed_spte() (6.18), A/D enabled */
export function isAccessed(lo: number, _hi: number): boolean {
  return (lo & VMX_EPT_ACCESS_BIT) !== 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_dirty_spte() (6.18), A/D enabled */
export function isDirty(lo: number, _hi: number): boolean {
  return (lo & VMX_EPT_DIRTY_BIT) !== 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_mmio_spte() (6.18): (spte & shadow_mmio_mask) == shadow_mmio_value */
export function isMmioSpte(lo: number, hi: number): boolean {
  return (lo & SHADOW_MMIO_MASK_LO) === VMX_EPT_MISCONFIG_WX_VALUE && (hi & SHADOW_MMIO_MASK_HI) === 0;
}

/** @see arch/x86/kvm/mmu/spte.h is_frozen_spte() (6.18) */
export function isFrozenSpte(lo: number, hi: number): boolean {
  return lo === FROZEN_SPTE_LO && hi === FROZEN_SPTE_HI;
}

/**
 * @see arch/x86/kvm/mmu/spte.h spte_to_pfn() (6.18): bits 12-51. For a non-leaf SPTE of this
 * model it is the child table's index in the page-table pool.
 */
export function spteToPfn(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & SPTE_BASE_ADDR_MASK_HI) * P20;
}

// ---- constructors (allocation-free halves, plus tuple conveniences) -------------------------

/**
 * Low half of a leaf SPTE built like make_spte() for a direct TDP fault (pte_access = ACC_ALL):
 * MMU-present, R (present and user masks), X unless LEAF_NO_EXEC, memtype, page size for
 * level > 4K, A/D per flags, W only when both LEAF_WRITABLE and LEAF_HOST_WRITABLE.
 * `pfn` must be aligned to the level.
 * @see arch/x86/kvm/mmu/spte.c make_spte() (6.18)
 */
export function leafSpteLo(pfn: number, level: number, flags: number): number {
  let lo = SPTE_MMU_PRESENT_MASK | VMX_EPT_READABLE_MASK | ((pfn & 0xfffff) << 12);
  lo |= flags & LEAF_NO_IPAT ? SPTE_EPT_MEMTYPE_WB : SPTE_EPT_MEMTYPE_WB_IPAT;
  if (!(flags & LEAF_NO_EXEC)) lo |= VMX_EPT_EXECUTABLE_MASK;
  if (level > PG_LEVEL_4K) lo |= PT_PAGE_SIZE_MASK;
  if ((flags & (LEAF_WRITABLE | LEAF_HOST_WRITABLE)) === (LEAF_WRITABLE | LEAF_HOST_WRITABLE)) lo |= PT_WRITABLE_MASK;
  if (flags & LEAF_ACCESSED) lo |= VMX_EPT_ACCESS_BIT;
  if (flags & LEAF_DIRTY) lo |= VMX_EPT_DIRTY_BIT;
  return lo >>> 0;
}

/** High half of the leaf of leafSpteLo(): pfn bits 32-51, Host-/MMU-writable, suppress-#VE. */
export function leafSpteHi(pfn: number, _level: number, flags: number): number {
  let hi = VMX_EPT_SUPPRESS_VE_BIT_HI | (Math.floor(pfn / P20) & SPTE_BASE_ADDR_MASK_HI);
  if (flags & LEAF_HOST_WRITABLE) {
    hi |= EPT_SPTE_HOST_WRITABLE_HI;
    if (flags & LEAF_WRITABLE) hi |= EPT_SPTE_MMU_WRITABLE_HI;
  }
  return hi >>> 0;
}

/** Options of makeLeafSpte(). */
export interface LeafSpteOptions {
  writable: boolean;
  hostWritable: boolean;
  accessed: boolean;
  dirty: boolean;
  /** Default true; false models a huge leaf under the NX huge page mitigation. */
  executable?: boolean;
  /** Default true (KVM_X86_QUIRK_IGNORE_GUEST_PAT on). */
  ignoreGuestPat?: boolean;
}

/** Flags for leafSpteLo()/leafSpteHi() from options. */
export function leafFlags(o: LeafSpteOptions): number {
  return (
    (o.writable ? LEAF_WRITABLE : 0) |
    (o.hostWritable ? LEAF_HOST_WRITABLE : 0) |
    (o.accessed ? LEAF_ACCESSED : 0) |
    (o.dirty ? LEAF_DIRTY : 0) |
    (o.executable === false ? LEAF_NO_EXEC : 0) |
    (o.ignoreGuestPat === false ? LEAF_NO_IPAT : 0)
  );
}

/** A leaf SPTE as [lo, hi] (allocates; for tests and traces). @see arch/x86/kvm/mmu/spte.c make_spte() (6.18) */
export function makeLeafSpte(pfn: number, level: number, o: LeafSpteOptions): [number, number] {
  const f = leafFlags(o);
  return [leafSpteLo(pfn, level, f), leafSpteHi(pfn, level, f)];
}

/**
 * Low half of a non-leaf SPTE pointing at page table `childIndex` of the pool (the model's
 * "physical address" of a table is its index): MMU-present | R | W | X | A.
 * @see arch/x86/kvm/mmu/spte.c make_nonleaf_spte() (6.18)
 */
export function nonLeafSpteLo(childIndex: number): number {
  return (SPTE_MMU_PRESENT_MASK | VMX_EPT_RWX_MASK | VMX_EPT_ACCESS_BIT | ((childIndex & 0xfffff) << 12)) >>> 0;
}

/** High half of nonLeafSpteLo(): suppress-#VE (shadow_present_mask) and address bits 32-51. */
export function nonLeafSpteHi(childIndex: number): number {
  return (VMX_EPT_SUPPRESS_VE_BIT_HI | (Math.floor(childIndex / P20) & SPTE_BASE_ADDR_MASK_HI)) >>> 0;
}

/** A non-leaf SPTE as [lo, hi]. @see arch/x86/kvm/mmu/spte.c make_nonleaf_spte() (6.18) */
export function makeNonLeafSpte(childIndex: number): [number, number] {
  return [nonLeafSpteLo(childIndex), nonLeafSpteHi(childIndex)];
}

/**
 * Low half of an MMIO SPTE: generation bits 0-7 in SPTE bits 3-10, the WX misconfiguration value,
 * gpa bits 12-31. `gen` is masked to MMIO_SPTE_GEN_MASK (the kernel WARNs on wider values).
 * @see arch/x86/kvm/mmu/spte.c make_mmio_spte(), generation_mmio_spte_mask() (6.18)
 */
export function mmioSpteLo(gfn: number, gen: number): number {
  return (((gen & 0xff) << MMIO_SPTE_GEN_LOW_START) | VMX_EPT_MISCONFIG_WX_VALUE | ((gfn & 0xfffff) << 12)) >>> 0;
}

/** High half of an MMIO SPTE: gpa bits 32-51, generation bits 8-18 in SPTE bits 52-62. */
export function mmioSpteHi(gfn: number, gen: number): number {
  return ((((gen & MMIO_SPTE_GEN_MASK) >>> 8) << (MMIO_SPTE_GEN_HIGH_START - 32)) | (Math.floor(gfn / P20) & SPTE_BASE_ADDR_MASK_HI)) >>> 0;
}

/** An MMIO SPTE as [lo, hi]. @see arch/x86/kvm/mmu/spte.c make_mmio_spte() (6.18) */
export function makeMmioSpte(gfn: number, gen: number): [number, number] {
  return [mmioSpteLo(gfn, gen), mmioSpteHi(gfn, gen)];
}

/** @see arch/x86/kvm/mmu/spte.h get_mmio_spte_generation() (6.18) */
export function getMmioSpteGeneration(lo: number, hi: number): number {
  return ((lo & MMIO_SPTE_GEN_LOW_MASK_LO) >>> MMIO_SPTE_GEN_LOW_START) | (((hi & MMIO_SPTE_GEN_HIGH_MASK_HI) >>> (MMIO_SPTE_GEN_HIGH_START - 32)) << MMIO_SPTE_GEN_LOW_BITS);
}

/** The gfn of an MMIO SPTE (its gpa bits 12-51). */
export function mmioSpteGfn(lo: number, hi: number): number {
  return spteToPfn(lo, hi);
}

// ---- bigint views (traces and tests only) ---------------------------------------------------

/** The 64-bit value of (lo, hi). Not for hot paths. */
export function spteToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Split a 64-bit value into [lo, hi]. Not for hot paths. */
export function bigIntToSpte(v: bigint): [number, number] {
  const u = BigInt.asUintN(64, v);
  return [Number(u & 0xffffffffn), Number(u >> 32n)];
}

/** `%llx` formatting of an SPTE, as in the kvm_tdp_mmu_spte_changed trace. */
export function formatSpte(lo: number, hi: number): string {
  return spteToBigInt(lo, hi).toString(16);
}
