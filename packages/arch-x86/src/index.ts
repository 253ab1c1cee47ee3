/**
 * @kvmsim/x86: the x86 backend of kvmsim (Linux 6.18): the TDP MMU with EPT-format SPTEs,
 * per-slot huge-page eligibility, MMIO SPTE generations, and the memslot zap strategies
 * (KVM_X86_QUIRK_SLOT_ZAP_ALL on or off). The shadow MMU follows.
 */
export { X86Backend, X86ArchVm, x86Backend, type X86MemslotArch } from './x86-backend.js';
export { resolveX86Options, type X86Options, type X86Faults, type ResolvedX86Options } from './options.js';
export { LpageInfo, gfnToIndex, levelShift, type PgLevel } from './lpage-info.js';
export * from './mmu/spte.js';
export * from './mmu/tdp-mmu.js';
export * from './trace/kvmmmu.js';
