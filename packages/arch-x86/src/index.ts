/**
 * @kvmsim/x86: the x86 backend of kvmsim (Linux 6.18): the TDP MMU with EPT-format SPTEs,
 * per-slot huge-page eligibility, MMIO SPTE generations, and the memslot zap strategies
 * (KVM_X86_QUIRK_SLOT_ZAP_ALL on or off, or the 2013 fast invalidate), the shadow MMU with
 * rmaps, a guest page-table walker and write protection of guest page tables, and nested TDP.
 */
export { X86Backend, X86ArchVm, x86Backend } from './x86-backend.js';
export { slotArch, type X86MemslotArch } from './memslot-arch.js';
export { resolveX86Options, type X86Options, type X86Faults, type ResolvedX86Options } from './options.js';
export * from './guest-paging.js';
export * from './mmu/shadow-mmu.js';
export * from './mmu/rmap.js';
export { LpageInfo, gfnToIndex, levelShift, type PgLevel } from './lpage-info.js';
export * from './mmu/spte.js';
export * from './mmu/tdp-mmu.js';
export * from './trace/kvmmmu.js';
