/**
 * Fault-injection switches of the generic core. Each removes or breaks one protocol step so
 * that the conformance suite can prove it notices; all are off by default. The store's own
 * switches live in {@link StoreFaults}.
 */
export interface CoreFaults {
  /**
   * DELETE and MOVE skip the INVALID-slot step (kvm_invalidate_memslot()): the old slot stays
   * visible while the architecture flushes it, so a racing fault can re-map a slot being removed.
   */
  deleteWithoutInvalidStep?: boolean;
  /**
   * kvm_check_memslot_overlap() forgets to skip the slot's own id: a MOVE that overlaps its own
   * old range fails with EEXIST (kernel: allowed).
   */
  overlapCheckCountsOwnSlot?: boolean;
  /**
   * Turning dirty logging off keeps the old bitmap and turning it on again reuses it, stale bits
   * included (kernel: a fresh bitmap, kvm_prepare_memory_region()).
   */
  dirtyBitmapNotResetOnReenable?: boolean;
  /** KVM_CLEAR_DIRTY_LOG skips the first_page/num_pages alignment checks. */
  clearDirtyLogSkipsAlignmentCheck?: boolean;
  /**
   * kvm_swap_active_memslots() stores the new generation before calling
   * kvm_arch_memslots_updated(), so the architecture sees it installed already (the ordering the
   * 2019 MMIO-generation fixes established is "updated, then install").
   */
  memslotsUpdatedAfterInstall?: boolean;
  /**
   * The vCPU fault path installs its mapping without mmu_invalidate_retry_gfn(): a page the host
   * invalidated after the fault sampled mmu_invalidate_seq gets mapped anyway (a stale mapping).
   */
  skipRetryCheck?: boolean;
  /**
   * kvm_swap_active_memslots() publishes without waiting for mn_active_invalidate_count to drop:
   * a memslot appears between an invalidation's start (which found no slot, so no begin) and its
   * end (which finds one and ends what never began) — unbalanced accounting, stale mappings.
   */
  swapIgnoresInflightInvalidations?: boolean;
  /**
   * The issue text calls this "seq bumped before the in-progress count drops": the ordering in
   * kvm_mmu_invalidate_end() is broken so that the count drop is visible before the seq bump
   * (two mmu_lock sections). A fault can then pass its retry check in between and map the page
   * the invalidation just zapped.
   */
  inProgressDropsBeforeSeqBump?: boolean;
  /** kvm_handle_hva_range() walks the inactive memslot set's hva tree instead of the active one. */
  walkInactiveHvaTree?: boolean;
  /** kvm_handle_hva_range() does not round the gfn end up: a partial last page is skipped. */
  hvaEndNotRoundedUp?: boolean;
  /** The fast-only aging call takes mmu_lock (or runs on an MMU that is not fast) instead of answering "not fast". */
  fastOnlyAgingTakesLock?: boolean;
  /**
   * kvm_vcpu_gfn_to_memslot() keeps vcpu->last_used_slot across a generation change: after a MOVE
   * or DELETE the vCPU's fault path still finds the old (freed) slot and maps through it.
   */
  vcpuSlotCacheIgnoresGeneration?: boolean;
  /**
   * kvm_get_dirty_log_protect() harvests the bitmap without re-protecting the harvested pages
   * (no kvm_arch_mmu_enable_log_dirty_pt_masked()): the next guest write to them is never logged.
   */
  getDirtyLogSkipsReprotect?: boolean;
}
