/**
 * The host side of MMU notifiers: what a secondary MMU (KVM) subscribes to, and what the host
 * address-space model calls, exactly where Linux's mm calls them.
 * @see include/linux/mmu_notifier.h struct mmu_notifier_ops, struct mmu_notifier_range (6.18)
 */
import type { Steps } from '../sched/steps.js';

/** enum mmu_notifier_event (KVM ignores it; traces show it). */
export type MmuNotifyEvent = 'UNMAP' | 'CLEAR' | 'PROTECTION_VMA' | 'PROTECTION_PAGE' | 'SOFT_DIRTY' | 'RELEASE' | 'MIGRATE' | 'EXCLUSIVE';

/** struct mmu_notifier_range: byte addresses (user addresses are < 2^47, exact as numbers), end exclusive. */
export interface MmuNotifierRange {
  readonly start: number;
  readonly end: number;
  /** MMU_NOTIFIER_RANGE_BLOCKABLE: the subscriber may sleep. */
  readonly blockable: boolean;
  readonly event: MmuNotifyEvent;
}

/** Return bits of the proposed test_clear_young_fast_only() (kvm-generic.md §4.9, v5). */
export const MMU_NOTIFIER_FAST_YOUNG = 1;
export const MMU_NOTIFIER_FAST_FAILED = 2;

/** struct mmu_notifier_ops, the members KVM implements in 6.18 (+ the proposed fast-only op). */
export interface MmuNotifierOps {
  /** Always 0 for KVM (it never fails a start). */
  invalidateRangeStart(range: MmuNotifierRange): Steps<number>;
  invalidateRangeEnd(range: MmuNotifierRange): Steps;
  /** true = young */
  clearFlushYoung(start: number, end: number): Steps<boolean>;
  clearYoung(start: number, end: number): Steps<boolean>;
  testYoung(address: number): Steps<boolean>;
  /**
   * Proposed (not in 6.18): answer from a fast lookup only. Returns MMU_NOTIFIER_FAST_YOUNG
   * and/or MMU_NOTIFIER_FAST_FAILED. Absent when the subscriber does not implement it.
   */
  testClearYoungFastOnly?(start: number, end: number, clear: boolean): Steps<number>;
  /** The mm is going away (exit_mmap) or the subscriber unregisters while it is live. */
  release(): Steps;
}
