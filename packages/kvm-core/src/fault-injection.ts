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
}
