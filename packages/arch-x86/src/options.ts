/**
 * Options of the x86 backend, with defaults that match a default Linux 6.18 VM
 * (KVM_X86_DEFAULT_VM) on an EPT host as observed for this project (kvm-generic.md §8): TDP MMU,
 * 4-level paging, SMM off (one address space), eager page split on, the SLOT_ZAP_ALL quirk on.
 */
export interface X86Options {
  /**
   * Which MMU maps the guest's (L1's) memory. Default is `'tdp'` (tdp_mmu_enabled = Y, EPT).
   * `'shadow'` is the shadow MMU with shadow paging (ept = 0): the vCPU's gpa accesses run in
   * non-paging mode on direct shadow pages; guest-paging accesses (`guestAccess()` after
   * `setGuestCr3()`) walk the guest's 4-level tables and map through indirect shadow pages.
   */
  readonly mmu?: 'tdp' | 'shadow';
  /**
   * Nested TDP: L1 runs an L2 through EPT tables of its own (EPT12, in guest memory), which KVM
   * shadows with shadow pages (role.guest_mode); `l2Access()` after `setNestedEptp()`. Rmaps exist
   * and indirect shadow pages are counted, whichever MMU L1 uses. Default is `false`.
   */
  readonly nestedTdp?: boolean;
  /** Root level of TDP and shadow roots (4- or 5-level). Default is `4`. */
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
  /**
   * How DELETE/MOVE zap the old slot (kvm-arch-backends.md §5.4). `'6.18'` (default): the
   * SLOT_ZAP_ALL quirk decides (on: kvm_mmu_zap_all_fast(), which is the September 2019
   * re-introduction with a 0/1 mmu_valid_gen; off: the slot's leaves plus the shadow pages that
   * shadow gPTEs in the slot, as between the February and August 2019 removal of fast invalidate).
   * `'fast-invalidate-2013'`: the 3.11–5.0 kvm_mmu_invalidate_zap_all_pages(): mmu_valid_gen is an
   * ever-increasing counter and every obsolete shadow page is zapped in the same mmu_lock section,
   * whatever the quirk says (it did not exist). Needs `mmu: 'shadow'` (no TDP MMU before 5.10).
   */
  readonly zapStrategy?: '6.18' | 'fast-invalidate-2013';
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
  /**
   * With SLOT_ZAP_ALL off, DELETE/MOVE zap only the slot's leaves and miss the shadow pages that
   * shadow gPTEs in the slot: the first version of the quirk (Yan Zhao, "KVM: x86/mmu: Introduce a
   * quirk to control memslot zap behavior", July 2024), reverted by Sean Christopherson in October
   * 2024 because it is buggy for shadow MMUs; re-merged with kvm_mmu_zap_memslot_pages_and_flush().
   * The guest keeps translating through page tables that lived in the deleted slot.
   */
  slotZapMissesShadowedGptes?: boolean;
  /**
   * TDP MMU lockless aging walks roots that may be freed under it: freed roots are released at
   * once instead of after an RCU grace period (tdp_mmu.c: call_rcu(tdp_mmu_free_sp_rcu_callback))
   * and the walk does not skip roots invalidated since it started (for_each_tdp_mmu_root_rcu()
   * checks role.invalid of each root under rcu_read_lock()). The hazard the 2025 lockless-aging
   * series ("KVM: x86/mmu: Relax locking for kvm_test_age_gfn() and kvm_age_gfn()") relies on RCU
   * for. A walk that touches a freed table throws "use-after-free".
   */
  agingFreedRoot?: boolean;
}

export type ResolvedX86Options = Required<Omit<X86Options, 'quirks' | 'faults'>> & { quirks: { slotZapAll: boolean }; faults: X86Faults };

/** Fill in the defaults; throws RangeError for combinations no kernel had. */
export function resolveX86Options(o: X86Options = {}): ResolvedX86Options {
  const mmu = o.mmu ?? 'tdp';
  const zapStrategy = o.zapStrategy ?? '6.18';
  if (zapStrategy === 'fast-invalidate-2013' && mmu !== 'shadow') {
    throw new RangeError("zapStrategy 'fast-invalidate-2013' needs mmu 'shadow': the TDP MMU arrived in 5.10, after fast invalidate was reworked");
  }
  return {
    mmu,
    nestedTdp: o.nestedTdp ?? false,
    zapStrategy,
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
