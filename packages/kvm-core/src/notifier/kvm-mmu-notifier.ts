/**
 * KVM's side of the MMU notifier (CONFIG_KVM_GENERIC_MMU_NOTIFIER): the hva-range walk over
 * every address space, the invalidation accounting the fault path's retry check relies on,
 * aging (under mmu_lock or lockless), the proposed fast-only aging, and release.
 *
 * @see virt/kvm/kvm_main.c kvm_handle_hva_range(), kvm_mmu_notifier_invalidate_range_start/end(),
 *      kvm_mmu_invalidate_begin/range_add/end(), kvm_mmu_notifier_clear_flush_young(),
 *      kvm_mmu_notifier_clear_young(), kvm_mmu_notifier_test_young(), kvm_mmu_notifier_release() (6.18)
 */
import { isSteps, type KvmGfnRange, type MaybeSteps } from '../arch-backend.js';
import { MMU_NOTIFIER_FAST_FAILED, MMU_NOTIFIER_FAST_YOUNG, type MmuNotifierOps, type MmuNotifierRange } from '../host/mmu-notifier.js';
import type { Kvm } from '../kvm.js';
import type { MemorySlot } from '../memslots/memory-slot.js';
import { SCHED, point, type Steps } from '../sched/steps.js';
import { PAGE_SIZE } from '../uapi.js';

type Handler = (kvm: Kvm, range: KvmGfnRange) => MaybeSteps<boolean>;
type OnLock = (kvm: Kvm) => void;

/** struct kvm_mmu_notifier_range (hva bytes, end exclusive). */
interface HvaRange {
  start: number;
  end: number;
  handler: Handler | null;
  onLock: OnLock | null;
  flushOnRet: boolean;
  mayBlock: boolean;
  lockless: boolean;
}

/** kvm_mmu_notifier_return: { ret, found_memslot } */
export interface HvaRangeResult {
  ret: boolean;
  foundMemslot: boolean;
}

const P_START_COUNTED = point('invalidate_range_start: mn_active_invalidate_count++');
const P_END_DONE = point('invalidate_range_end: handled');
const P_AGE = point('age: walked');

/** hva_to_gfn_memslot() on byte addresses. */
function hvaToGfn(hva: number, slot: MemorySlot): number {
  return slot.baseGfn + Math.floor((hva - slot.hvaPfn * PAGE_SIZE) / PAGE_SIZE);
}

/**
 * Walk every address space's slots intersecting [start, end), calling the handler once per slot
 * with the gfn range rounded out to whole pages; mmu_lock is taken (unless lockless) only when
 * the first slot matches, and on_lock runs once under it.
 * @see virt/kvm/kvm_main.c kvm_handle_hva_range() (6.18)
 */
export function* kvmHandleHvaRange(kvm: Kvm, r: HvaRange): Steps<HvaRangeResult> {
  const result: HvaRangeResult = { ret: false, foundMemslot: false };
  if (r.end <= r.start) throw new Error(`kvm_handle_hva_range: empty range [${r.start}, ${r.end}) (WARN)`);
  const idx = kvm.srcu.readLock();
  const gfnRange: KvmGfnRange = { slot: null as unknown as MemorySlot, start: 0, end: 0, mayBlock: r.mayBlock, lockless: r.lockless };
  const startPfn = Math.floor(r.start / PAGE_SIZE);
  const lastPfn = Math.floor((r.end - 1) / PAGE_SIZE);
  let locked = false;
  try {
    outer: for (let as = 0; as < kvm.nrMemslotAsIds; as++) {
      const slots = kvm.faults.walkInactiveHvaTree ? kvm.memslots.inactive(as) : kvm.memslots.active(as);
      for (let c = slots.hvaRangeFirst(startPfn, lastPfn); c !== 0; c = slots.hvaRangeNext(c, startPfn, lastPfn)) {
        const slot = slots.hvaCursorSlot(c);
        const slotStart = slot.hvaPfn * PAGE_SIZE;
        const hvaStart = Math.max(r.start, slotStart);
        const hvaEnd = Math.min(r.end, slotStart + slot.npages * PAGE_SIZE);
        gfnRange.slot = slot;
        gfnRange.start = hvaToGfn(hvaStart, slot);
        // Round the end out to a whole page, so a partial last page is covered.
        gfnRange.end = hvaToGfn(kvm.faults.hvaEndNotRoundedUp ? hvaEnd : hvaEnd + PAGE_SIZE - 1, slot);
        if (!result.foundMemslot) {
          result.foundMemslot = true;
          if (!r.lockless) {
            yield* kvm.mmuLock.write(); // KVM_MMU_LOCK()
            locked = true;
            r.onLock?.(kvm);
            if (r.handler === null) break outer;
          }
        }
        if (r.handler !== null && gfnRange.end > gfnRange.start) {
          const h = r.handler(kvm, gfnRange);
          result.ret = (isSteps(h) ? yield* h : h) || result.ret;
        }
      }
    }
    if (r.flushOnRet && result.ret) kvm.kvmFlushRemoteTlbs();
  } finally {
    if (locked) kvm.mmuLock.writeUnlock();
    kvm.srcu.readUnlock(idx);
  }
  return result;
}

/** @see virt/kvm/kvm_main.c kvm_mmu_invalidate_begin() (6.18) */
export function kvmMmuInvalidateBegin(kvm: Kvm): void {
  kvm.mmuInvalidateInProgress++;
  if (kvm.mmuInvalidateInProgress === 1) {
    kvm.mmuInvalidateRangeStart = -1;
    kvm.mmuInvalidateRangeEnd = -1;
  }
}

/** @see virt/kvm/kvm_main.c kvm_mmu_invalidate_range_add() (6.18) */
export function kvmMmuInvalidateRangeAdd(kvm: Kvm, start: number, end: number): void {
  if (kvm.mmuInvalidateInProgress === 0) throw new Error('kvm_mmu_invalidate_range_add: no invalidation in progress (WARN)');
  if (kvm.mmuInvalidateRangeStart === -1) {
    kvm.mmuInvalidateRangeStart = start;
    kvm.mmuInvalidateRangeEnd = end;
  } else {
    // Fully tracking multiple concurrent ranges has diminishing returns: keep the union hull.
    kvm.mmuInvalidateRangeStart = Math.min(kvm.mmuInvalidateRangeStart, start);
    kvm.mmuInvalidateRangeEnd = Math.max(kvm.mmuInvalidateRangeEnd, end);
  }
}

/**
 * The seq bump must be visible before the count drops: a fault that sampled the old seq either
 * sees the invalidation in progress or a changed seq.
 * @see virt/kvm/kvm_main.c kvm_mmu_invalidate_end() (6.18)
 */
export function kvmMmuInvalidateEnd(kvm: Kvm): void {
  kvm.mmuInvalidateSeq++;
  kvm.mmuInvalidateInProgress--;
  if (kvm.mmuInvalidateInProgress < 0) throw new Error('KVM_BUG_ON: mmu_invalidate_in_progress < 0 (unbalanced invalidate begin/end)');
  if (kvm.mmuInvalidateRangeStart === -1) throw new Error('kvm_mmu_invalidate_end: begin without any range added (WARN)');
}

/** kvm_mmu_unmap_gfn_range(): record the range, then let the arch zap it. */
const unmapHandler: Handler = (kvm, range) => {
  kvmMmuInvalidateRangeAdd(kvm, range.start, range.end);
  return kvm.arch.unmapGfnRange(range);
};
const ageHandler: Handler = (kvm, range) => kvm.arch.ageGfn(range);
const testAgeHandler: Handler = (kvm, range) => kvm.arch.testAgeGfn(range);

/** kvm_flush_shadow_all(): flush everything, then let the arch know memory was reclaimed. */
export function* kvmFlushShadowAll(kvm: Kvm): Steps {
  const r = kvm.arch.flushShadowAll();
  if (isSteps(r)) yield* r;
  kvm.arch.guestMemoryReclaimed();
}

/** The mmu_notifier KVM registers on the host mm. */
export class KvmMmuNotifier implements MmuNotifierOps {
  private readonly kvm: Kvm;
  /** Fast-only aging calls answered "not fast" (the MMU's aging is not fast). */
  fastOnlyFailed = 0;

  constructor(kvm: Kvm) {
    this.kvm = kvm;
  }

  /** @see virt/kvm/kvm_main.c kvm_mmu_notifier_invalidate_range_start() (6.18) */
  *invalidateRangeStart(range: MmuNotifierRange): Steps<number> {
    const kvm = this.kvm;
    if (kvm.trace) kvm.emit('kvm_unmap_hva_range', { start: range.start, end: range.end });
    // spin_lock(&kvm->mn_invalidate_lock): counted unconditionally, slot or not, so that a
    // memslot swap waits for the matching end.
    kvm.mnActiveInvalidateCount++;
    if (SCHED.preemptive) yield P_START_COUNTED;
    // gfn_to_pfn_cache_invalidate_start(): pfn caches are not modelled.
    const r = yield* kvmHandleHvaRange(kvm, {
      start: range.start,
      end: range.end,
      handler: unmapHandler,
      onLock: kvmMmuInvalidateBegin,
      flushOnRet: true,
      mayBlock: range.blockable,
      lockless: false,
    });
    if (r.foundMemslot) kvm.arch.guestMemoryReclaimed();
    return 0;
  }

  /** @see virt/kvm/kvm_main.c kvm_mmu_notifier_invalidate_range_end() (6.18) */
  *invalidateRangeEnd(range: MmuNotifierRange): Steps {
    const kvm = this.kvm;
    if (kvm.faults.inProgressDropsBeforeSeqBump) {
      // Bug: the count drops (under one mmu_lock section) before the seq bump becomes
      // visible (a later one), so a fault can pass its retry check in between.
      yield* kvmHandleHvaRange(kvm, { start: range.start, end: range.end, handler: null, onLock: dropInProgress, flushOnRet: false, mayBlock: range.blockable, lockless: false });
      if (SCHED.preemptive) yield P_END_DONE;
      yield* kvmHandleHvaRange(kvm, { start: range.start, end: range.end, handler: null, onLock: bumpSeq, flushOnRet: false, mayBlock: range.blockable, lockless: false });
    } else {
      yield* kvmHandleHvaRange(kvm, {
        start: range.start,
        end: range.end,
        handler: null,
        onLock: kvmMmuInvalidateEnd,
        flushOnRet: false,
        mayBlock: range.blockable,
        lockless: false,
      });
    }
    if (SCHED.preemptive) yield P_END_DONE;
    // spin_lock(&kvm->mn_invalidate_lock)
    kvm.mnActiveInvalidateCount--;
    if (kvm.mnActiveInvalidateCount < 0) throw new Error('mn_active_invalidate_count underflow (WARN)');
    // rcuwait_wake_up(): the swap's wait condition re-evaluates by itself in the scheduler.
  }

  private *age(start: number, end: number, handler: Handler, flushOnRet: boolean): Steps<boolean> {
    const kvm = this.kvm;
    if (kvm.trace) {
      if (handler === testAgeHandler) kvm.emit('kvm_test_age_hva', { hva: start });
      else kvm.emit('kvm_age_hva', { start, end });
    }
    const r = yield* kvmHandleHvaRange(kvm, { start, end, handler, onLock: null, flushOnRet, mayBlock: false, lockless: kvm.caps.locklessAging });
    if (SCHED.preemptive) yield P_AGE;
    return r.ret;
  }

  /** @see virt/kvm/kvm_main.c kvm_mmu_notifier_clear_flush_young() (6.18) */
  clearFlushYoung(start: number, end: number): Steps<boolean> {
    return this.age(start, end, ageHandler, !this.kvm.caps.elideTlbFlushIfYoung);
  }

  /** @see virt/kvm/kvm_main.c kvm_mmu_notifier_clear_young() (6.18) */
  clearYoung(start: number, end: number): Steps<boolean> {
    return this.age(start, end, ageHandler, false);
  }

  /** @see virt/kvm/kvm_main.c kvm_mmu_notifier_test_young() (6.18) */
  testYoung(address: number): Steps<boolean> {
    return this.age(address, address + 1, testAgeHandler, false);
  }

  /**
   * The proposed fast-only aging (kvm-generic.md §4.9, v5): an MMU whose aging is fast answers
   * from a lockless walk; one that is not fast answers FAST_FAILED without taking mmu_lock.
   */
  *testClearYoungFastOnly(start: number, end: number, clear: boolean): Steps<number> {
    const kvm = this.kvm;
    if (!kvm.caps.fastAging && !kvm.faults.fastOnlyAgingTakesLock) {
      this.fastOnlyFailed++;
      return MMU_NOTIFIER_FAST_FAILED;
    }
    const lockless = kvm.caps.fastAging && kvm.caps.locklessAging && !kvm.faults.fastOnlyAgingTakesLock;
    const r = yield* kvmHandleHvaRange(kvm, { start, end, handler: clear ? ageHandler : testAgeHandler, onLock: null, flushOnRet: false, mayBlock: false, lockless });
    return r.ret ? MMU_NOTIFIER_FAST_YOUNG : 0;
  }

  /** @see virt/kvm/kvm_main.c kvm_mmu_notifier_release() (6.18) */
  *release(): Steps {
    const kvm = this.kvm;
    const idx = kvm.srcu.readLock();
    try {
      yield* kvmFlushShadowAll(kvm);
    } finally {
      kvm.srcu.readUnlock(idx);
    }
    kvm.mmReleased = true;
  }
}

function dropInProgress(kvm: Kvm): void {
  kvm.mmuInvalidateInProgress--;
}
function bumpSeq(kvm: Kvm): void {
  kvm.mmuInvalidateSeq++;
}

