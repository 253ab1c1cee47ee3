/**
 * Options of the x86 backend, with defaults that match a default Linux 6.18 VM
 * (KVM_X86_DEFAULT_VM) on an EPT host as observed for this project (kvm-generic.md §8): TDP MMU,
 * 4-level paging, SMM off (one address space), eager page split on, the SLOT_ZAP_ALL quirk on.
 */
export interface X86Options {
  /**
   * Which MMU maps guest memory. Default is `'tdp'` (tdp_mmu_enabled). The shadow MMU (and nested
   * TDP) is not modelled yet.
   */
  readonly mmu?: 'tdp';
  /** TDP root level. Default is `4`. */
  readonly levels?: 4 | 5;
  /**
   * CONFIG_KVM_SMM: two memslot address spaces (as 1 = SMM). Default is `false`, as on the observed
   * 6.18.44 host (KVM_CAP_MULTI_ADDRESS_SPACE = 0).
   */
  readonly smm?: boolean;
  /**
   * Page-modification logging (VMX PML): dirty logging clears D bits instead of write-protecting
   * 4 KiB leaves, and KVM_GET_DIRTY_LOG first harvests the D bits. Default is `false`.
   */
  readonly pml?: boolean;
  /** The eager_page_split module parameter: split huge pages when logging starts. Default is `true`. */
  readonly eagerSplit?: boolean;
  /** 1 GiB TDP leaves (the CPU's max_huge_page_level). Default is `true`. */
  readonly hugePage1G?: boolean;
  readonly quirks?: {
    /**
     * KVM_X86_QUIRK_SLOT_ZAP_ALL: on DELETE/MOVE, invalidate everything with the fast zap (all
     * roots obsolete) instead of only the slot's mappings. Default is `true` (enabled unless
     * userspace disables it with KVM_CAP_DISABLE_QUIRKS2).
     */
    readonly slotZapAll?: boolean;
  };
  /** The kernel whose behaviour is modelled. Default is `'6.18'`. */
  readonly kernel?: '6.18';
  /** Fault-injection switches of the x86 package; each re-introduces one historical bug. Default: none. */
  readonly faults?: X86Faults;
  /**
   * The guest physical address width behind kvm_mmu_max_gfn(): slots may not reach past
   * 2^(maxPhysAddr−12) − 1. Default is `52`, which gives the max gfn 2^40 − 1 observed on the
   * project's host (V26/V27).
   */
  readonly maxPhysAddr?: number;
}

/** The historical x86 MMIO-generation bugs fixed by the 2019 series (kvm-arch-backends.md §5.4). */
export interface X86Faults {
  /**
   * An MMIO SPTE hit is trusted whatever its generation, even while memslots are in flux
   * ("KVM: x86/mmu: Do not cache MMIO accesses while memslots are in flux", 2019): a slot created
   * over a cached MMIO gfn stays invisible.
   */
  mmioCachedWhileInFlux?: boolean;
  /**
   * The MMIO generation wrap is detected only when the address-space bits are zero too, i.e. in
   * address space 0 ("KVM: x86/mmu: Detect MMIO generation wrap in any address space", 2019).
   */
  mmioWrapOnlyAs0?: boolean;
}

export type ResolvedX86Options = Required<Omit<X86Options, 'quirks' | 'faults'>> & { quirks: { slotZapAll: boolean }; faults: X86Faults };

export function resolveX86Options(o: X86Options = {}): ResolvedX86Options {
  return {
    mmu: o.mmu ?? 'tdp',
    levels: o.levels ?? 4,
    smm: o.smm ?? false,
    pml: o.pml ?? false,
    eagerSplit: o.eagerSplit ?? true,
    hugePage1G: o.hugePage1G ?? true,
    quirks: { slotZapAll: o.quirks?.slotZapAll ?? true },
    kernel: o.kernel ?? '6.18',
    faults: o.faults ?? {},
    maxPhysAddr: o.maxPhysAddr ?? 52,
  };
}
