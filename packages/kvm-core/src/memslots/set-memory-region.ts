/**
 * KVM_SET_USER_MEMORY_REGION(2): validation in the kernel's order, the change-kind decision, and
 * the memslot update protocol (kvm_set_memslot() with the INVALID step and the swap).
 *
 * @see virt/kvm/kvm_main.c (Linux 6.18; kvm-generic.md §1–§2)
 */
import { isSteps } from '../arch-backend.js';
import { KvmError } from '../errors.js';
import type { Kvm } from '../kvm.js';
import { SCHED, point, waitPoint, type Steps, type WaitCondition, type YieldPoint } from '../sched/steps.js';
import {
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS,
  KVM_MEMSLOT_INVALID,
  KVM_MEM_GUEST_MEMFD,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_MAX_NR_PAGES,
  KVM_MEM_READONLY,
  KVM_MEM_SLOTS_NUM,
  KVM_SET_USER_MEMORY_REGION_V1_FLAGS,
  PAGE_SHIFT,
  type MrChange,
  type UserspaceMemoryRegion,
} from '../uapi.js';
import { kvmAllocDirtyBitmap, kvmDestroyDirtyBitmap } from '../dirty-log/dirty-log.js';
import { MemorySlot, kvmCopyMemslot } from './memory-slot.js';
import type { MemslotSet } from './memslot-store.js';

const U64_MAX = (1n << 64n) - 1n;
const PAGE_MASK_N = 0xfffn;

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/**
 * The ioctl entry: the v1 flag filter, then kvm_vm_ioctl_set_memory_region().
 * @see virt/kvm/kvm_main.c kvm_vm_ioctl() case KVM_SET_USER_MEMORY_REGION(2) (6.18)
 */
export function* kvmVmIoctlSetUserMemoryRegion(kvm: Kvm, mem: UserspaceMemoryRegion, v2: boolean): Steps {
  if (kvm.vmDead) throw new KvmError('EIO', 'the VM is dead (kvm->vm_dead)');
  if (!v2 && (mem.flags & ~KVM_SET_USER_MEMORY_REGION_V1_FLAGS) !== 0) {
    throw new KvmError(
      'EINVAL',
      `flags ${hex(mem.flags)}: KVM_SET_USER_MEMORY_REGION (v1) accepts only LOG_DIRTY_PAGES|READONLY (0x3)`,
    );
  }
  yield* kvmVmIoctlSetMemoryRegion(kvm, mem);
}

/** @see virt/kvm/kvm_main.c kvm_vm_ioctl_set_memory_region() (6.18) */
export function* kvmVmIoctlSetMemoryRegion(kvm: Kvm, mem: UserspaceMemoryRegion): Steps {
  const id = mem.slot & 0xffff;
  if (id >= kvm.userMemSlots) {
    throw new KvmError('EINVAL', `slot id ${id} (slot ${hex(mem.slot)}): ids must be below KVM_USER_MEM_SLOTS (${kvm.userMemSlots})`);
  }
  if (!kvm.slotsLock.tryLockFast()) yield* kvm.slotsLock.lock(); // guard(mutex)(&kvm->slots_lock)
  try {
    yield* kvmSetMemoryRegion(kvm, mem);
  } finally {
    kvm.slotsLock.unlock();
  }
}

/** @see virt/kvm/kvm_main.c check_memory_region_flags() (6.18) */
export function checkMemoryRegionFlags(kvm: Kvm, mem: UserspaceMemoryRegion): void {
  let valid = KVM_MEM_LOG_DIRTY_PAGES;
  // CONFIG_KVM_GUEST_MEMFD is modelled as enabled (x86-64 has it); binding always fails (EBADF).
  valid |= KVM_MEM_GUEST_MEMFD;
  // Dirty logging private memory is unsupported.
  if (mem.flags & KVM_MEM_GUEST_MEMFD) valid &= ~KVM_MEM_LOG_DIRTY_PAGES;
  // READONLY needs the arch and cannot be combined with guest_memfd.
  if (kvm.caps.readonlyMem && !(mem.flags & KVM_MEM_GUEST_MEMFD)) valid |= KVM_MEM_READONLY;
  if ((mem.flags & ~valid) >>> 0 !== 0) {
    throw new KvmError('EINVAL', `flags ${hex(mem.flags >>> 0)}: bits ${hex((mem.flags & ~valid) >>> 0)} are not valid here (valid: ${hex(valid)})`);
  }
}

/**
 * x86-64 access_ok(): `ptr + size` must not wrap and must not exceed USER_PTR_MAX (= TASK_SIZE_MAX).
 * @see arch/x86/include/asm/uaccess_64.h __access_ok(), arch/x86/kernel/cpu/common.c (USER_PTR_MAX)
 */
function accessOk(kvm: Kvm, addr: bigint, size: bigint): boolean {
  const sum = (addr + size) & U64_MAX;
  return sum <= kvm.taskSizeMax && sum >= addr;
}

/**
 * The memslot ABI's validation and change-kind decision (kvm-generic.md §1.3 rules 4–21).
 * @see virt/kvm/kvm_main.c kvm_set_memory_region() (6.18)
 */
export function* kvmSetMemoryRegion(kvm: Kvm, mem: UserspaceMemoryRegion): Steps {
  checkMemoryRegionFlags(kvm, mem);

  const asId = mem.slot >>> 16;
  const id = mem.slot & 0xffff;
  const size = mem.memorySize;
  const gpa = mem.guestPhysAddr;
  const uaddr = mem.userspaceAddr;

  if ((size & PAGE_MASK_N) !== 0n) throw new KvmError('EINVAL', `memory_size ${hex(size)} is not a multiple of the page size`);
  if ((gpa & PAGE_MASK_N) !== 0n) throw new KvmError('EINVAL', `guest_phys_addr ${hex(gpa)} is not page aligned`);
  // untagged_addr() is the identity for a process without LAM, which the model assumes.
  if ((uaddr & PAGE_MASK_N) !== 0n) throw new KvmError('EINVAL', `userspace_addr ${hex(uaddr)} is not page aligned`);
  if (!accessOk(kvm, uaddr, size)) {
    throw new KvmError('EINVAL', `userspace_addr ${hex(uaddr)} + memory_size ${hex(size)} is not a user range (access_ok, limit ${hex(kvm.taskSizeMax)})`);
  }
  if (mem.flags & KVM_MEM_GUEST_MEMFD) {
    const off = mem.guestMemfdOffset ?? 0n;
    if ((off & PAGE_MASK_N) !== 0n || off + size > U64_MAX) {
      throw new KvmError('EINVAL', `guest_memfd_offset ${hex(off)} is not page aligned or offset + size wraps`);
    }
  }
  if (asId >= kvm.nrMemslotAsIds || id >= KVM_MEM_SLOTS_NUM) {
    throw new KvmError('EINVAL', `address space ${asId} (slot ${hex(mem.slot)}): this VM has ${kvm.nrMemslotAsIds}`);
  }
  if (gpa + size > U64_MAX) throw new KvmError('EINVAL', `guest_phys_addr ${hex(gpa)} + memory_size ${hex(size)} wraps`);
  if (id < kvm.userMemSlots && size >> BigInt(PAGE_SHIFT) > BigInt(KVM_MEM_MAX_NR_PAGES)) {
    throw new KvmError('EINVAL', `memory_size ${hex(size)} exceeds KVM_MEM_MAX_NR_PAGES (2^31-1 pages)`);
  }

  const slots = kvm.memslots.active(asId);
  const old = slots.idToMemslot(id);

  if (size === 0n) {
    if (old === null || old.npages === 0) throw new KvmError('EINVAL', `DELETE of slot ${id} (address space ${asId}), which does not exist`);
    if (kvm.nrMemslotPages < old.npages) throw new KvmError('EIO', 'nr_memslot_pages underflow (WARN)');
    yield* kvmSetMemslot(kvm, old, null, 'DELETE');
    return;
  }

  // All values below are exact as numbers: gfns < 2^52, user hvas < 2^47, npages < 2^31.
  const baseGfn = Number(gpa >> BigInt(PAGE_SHIFT));
  const npages = Number(size >> BigInt(PAGE_SHIFT));
  const hvaPfn = Number(uaddr >> BigInt(PAGE_SHIFT));

  let change: MrChange;
  if (old === null || old.npages === 0) {
    change = 'CREATE';
    // nr_memslot_pages + npages overflowing unsigned long cannot happen with ≤ 32767 slots of
    // < 2^31 pages each; the check is kept for fidelity.
    if (kvm.nrMemslotPages + npages > Number.MAX_SAFE_INTEGER) throw new KvmError('EINVAL', 'nr_memslot_pages would overflow');
  } else {
    // Private memslots are immutable, they can only be deleted.
    if (mem.flags & KVM_MEM_GUEST_MEMFD) throw new KvmError('EINVAL', `slot ${id} has KVM_MEM_GUEST_MEMFD: guest_memfd slots cannot be modified`);
    if (hvaPfn !== old.hvaPfn || npages !== old.npages || ((mem.flags ^ old.flags) & (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD)) !== 0) {
      throw new KvmError(
        'EINVAL',
        `slot ${id} exists: only its guest_phys_addr and LOG_DIRTY_PAGES may change (userspace_addr, memory_size and READONLY/GUEST_MEMFD must match)`,
      );
    }
    if (baseGfn !== old.baseGfn) change = 'MOVE';
    else if (mem.flags !== old.flags) change = 'FLAGS_ONLY';
    else return; // Nothing to change.
  }

  if ((change === 'CREATE' || change === 'MOVE') && kvmCheckMemslotOverlap(kvm, slots, id, baseGfn, baseGfn + npages)) {
    throw new KvmError('EEXIST', `gfns [${hex(baseGfn)}, ${hex(baseGfn + npages)}) overlap another slot of address space ${asId}`);
  }

  const newSlot = new MemorySlot(id, asId, baseGfn, npages, hvaPfn, mem.flags);
  if (mem.flags & KVM_MEM_GUEST_MEMFD) {
    // kvm_gmem_bind(): fget() of the fd. The model has no guest_memfd files, so every fd is bad.
    throw new KvmError('EBADF', `guest_memfd ${mem.guestMemfd ?? 0}: no guest_memfd file (not modelled yet)`);
  }
  yield* kvmSetMemslot(kvm, old, newSlot, change);
}

/**
 * True if any slot other than `id` intersects [start, end).
 * @see virt/kvm/kvm_main.c kvm_check_memslot_overlap() (6.18)
 */
export function kvmCheckMemslotOverlap(kvm: Kvm, slots: MemslotSet, id: number, start: number, end: number): boolean {
  const ignoreOwn = !kvm.faults.overlapCheckCountsOwnSlot;
  for (let c = slots.gfnRangeFirst(start, end); c !== 0; c = slots.gfnRangeNext(c, end)) {
    if (!ignoreOwn || slots.gfnCursorSlot(c).id !== id) return true;
  }
  return false;
}

const P_SWAP_PUBLISHED = point('kvm_swap_active_memslots: published');

/** The swap's wait: no MMU-notifier invalidation between its start and end. */
function noInvalidationInFlight(kvm: Kvm): YieldPoint {
  let p = SWAP_WAITS.get(kvm);
  if (p === undefined) {
    const cond: WaitCondition = {
      ready: () => kvm.mnActiveInvalidateCount === 0,
      describe: () => `mn_active_invalidate_count == 0 (is ${kvm.mnActiveInvalidateCount})`,
    };
    p = waitPoint('kvm_swap_active_memslots: rcuwait mn_active_invalidate_count', cond);
    SWAP_WAITS.set(kvm, p);
  }
  return p;
}
const SWAP_WAITS = new WeakMap<Kvm, YieldPoint>();

/**
 * Publish the inactive set, wait for readers, and advance the generation. Called with
 * slots_arch_lock held; releases it.
 * @see virt/kvm/kvm_main.c kvm_swap_active_memslots() (6.18)
 */
export function* kvmSwapActiveMemslots(kvm: Kvm, asId: number): Steps {
  const store = kvm.memslots;
  const slots = store.inactive(asId);
  let gen = store.active(asId).generation;
  if (gen >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) throw new Error('kvm_swap_active_memslots: generation already in progress (WARN)');
  // A unique value no cache can match while the update is in flight.
  slots.generation = gen + KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS;
  // Under mn_invalidate_lock: wait until no invalidate_range_start is unmatched by its end, so
  // that no memslot changes between the two (their begin/end calls would not balance), then
  // publish — one atomic step, as the spinlock makes it.
  if (!kvm.faults.swapIgnoresInflightInvalidations && (SCHED.preemptive || kvm.mnActiveInvalidateCount !== 0)) yield noInvalidationInFlight(kvm);
  store.publish(asId); // rcu_assign_pointer(kvm->memslots[as_id], slots)
  kvm.slotsArchLock.unlock();
  if (SCHED.preemptive) yield P_SWAP_PUBLISHED;
  // Readers of the old set may still be using it: wait for them before anyone edits it.
  if (kvm.srcu.mustWait()) yield* kvm.srcu.synchronize(); // synchronize_srcu_expedited()
  gen = slots.generation - KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS + kvm.nrMemslotAsIds;
  if (kvm.faults.memslotsUpdatedAfterInstall) {
    slots.generation = gen;
    const r = kvm.arch.memslotsUpdated(gen);
    if (isSteps(r)) yield* r;
  } else {
    // The arch sees the final generation before it is stored, so an MMIO SPTE created now
    // with the in-progress value can never match it.
    const r = kvm.arch.memslotsUpdated(gen);
    if (isSteps(r)) yield* r;
    slots.generation = gen;
  }
  if (kvm.trace) kvm.emit('kvm_swap_active_memslots', { as_id: asId, gen });
}

/** @see virt/kvm/kvm_main.c kvm_activate_memslot() (6.18) */
export function* kvmActivateMemslot(kvm: Kvm, asId: number, old: MemorySlot | null, newSlot: MemorySlot | null): Steps {
  yield* kvmSwapActiveMemslots(kvm, asId);
  kvm.memslots.propagate(asId, old, newSlot);
}

/**
 * Make the INVALID copy of `old` active, then let the arch drop the old slot's mappings.
 * @see virt/kvm/kvm_main.c kvm_invalidate_memslot() (6.18)
 */
export function* kvmInvalidateMemslot(kvm: Kvm, old: MemorySlot, invalid: MemorySlot): Steps {
  invalid.flags |= KVM_MEMSLOT_INVALID;
  kvm.memslots.replace(old.asId, old, invalid);
  // Note: the old slot is deliberately not propagated; the now-inactive set keeps `old`, so a
  // failing prepare can swap straight back to it.
  yield* kvmSwapActiveMemslots(kvm, old.asId);
  const r = kvm.arch.flushShadowMemslot(old);
  if (isSteps(r)) yield* r;
  kvm.arch.guestMemoryReclaimed();
  if (!kvm.slotsArchLock.tryLockFast()) yield* kvm.slotsArchLock.lock();
  // Arch data may have changed while slots_arch_lock was dropped.
  old.arch = invalid.arch;
}

/** @see virt/kvm/kvm_main.c kvm_prepare_memory_region() (6.18) */
export function* kvmPrepareMemoryRegion(kvm: Kvm, old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): Steps {
  let allocated = false;
  if (change !== 'DELETE' && newSlot !== null) {
    if (!(newSlot.flags & KVM_MEM_LOG_DIRTY_PAGES)) newSlot.dirtyBitmap = null;
    else if (old !== null && old.dirtyBitmap !== null) newSlot.dirtyBitmap = old.dirtyBitmap;
    else if (kvm.kvmUseDirtyBitmap()) {
      kvmAllocDirtyBitmap(kvm, newSlot);
      allocated = true;
      if (kvm.kvmDirtyLogManualProtectAndInitSet()) {
        const bm = newSlot.dirtyBitmap!;
        const full = newSlot.npages >>> 3;
        bm.fill(0xff, 0, full);
        if (newSlot.npages & 7) bm[full] = (1 << (newSlot.npages & 7)) - 1;
      }
    }
  }
  try {
    const r = kvm.arch.prepareMemoryRegion(old, newSlot, change);
    if (isSteps(r)) yield* r;
  } catch (e) {
    // Free the bitmap on failure if it was allocated above.
    if (allocated && newSlot !== null) kvmDestroyDirtyBitmap(kvm, newSlot);
    throw e;
  }
}

/** @see virt/kvm/kvm_main.c kvm_commit_memory_region() (6.18) */
export function* kvmCommitMemoryRegion(kvm: Kvm, old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): Steps {
  const oldFlags = old?.flags ?? 0;
  const newFlags = newSlot?.flags ?? 0;
  // Before the arch hook, so architectures can consume the result directly.
  if (change === 'DELETE') kvm.nrMemslotPages -= old!.npages;
  else if (change === 'CREATE') kvm.nrMemslotPages += newSlot!.npages;
  if ((oldFlags ^ newFlags) & KVM_MEM_LOG_DIRTY_PAGES) kvm.nrMemslotsDirtyLogging += newFlags & KVM_MEM_LOG_DIRTY_PAGES ? 1 : -1;

  const r = kvm.arch.commitMemoryRegion(old, newSlot, change);
  if (isSteps(r)) yield* r;

  switch (change) {
    case 'CREATE':
      break;
    case 'DELETE':
      kvmFreeMemslot(kvm, old!);
      break;
    case 'MOVE':
    case 'FLAGS_ONLY':
      // Free the bitmap when logging was turned off; the old struct itself is dropped, its arch
      // data may live on in `new`.
      if (old!.dirtyBitmap !== null && newSlot!.dirtyBitmap === null) kvmDestroyDirtyBitmap(kvm, old!);
      break;
  }
}

/** @see virt/kvm/kvm_main.c kvm_free_memslot() (6.18) */
export function kvmFreeMemslot(kvm: Kvm, slot: MemorySlot): void {
  kvmDestroyDirtyBitmap(kvm, slot);
  kvm.arch.freeMemslot(slot);
}

/**
 * The memslot update protocol. Callers hold slots_lock.
 * @see virt/kvm/kvm_main.c kvm_set_memslot() (6.18)
 */
export function* kvmSetMemslot(kvm: Kvm, old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): Steps {
  // Released inside the first swap, or below on an early error.
  if (!kvm.slotsArchLock.tryLockFast()) yield* kvm.slotsArchLock.lock();
  const asId = (old ?? newSlot)!.asId;
  let invalid: MemorySlot | null = null;
  if (change === 'DELETE' || change === 'MOVE') {
    // Mark the slot INVALID in a copy and make that active, so no vCPU can create new mappings
    // while the arch flushes the old ones.
    invalid = kvmCopyMemslot(old!);
    if (kvm.faults.deleteWithoutInvalidStep) {
      // Bug: flush while the old slot is still the visible one.
      kvm.slotsArchLock.unlock();
      const r = kvm.arch.flushShadowMemslot(old!);
      if (isSteps(r)) yield* r;
      kvm.arch.guestMemoryReclaimed();
      yield* kvm.slotsArchLock.lock();
      invalid = null;
    } else {
      yield* kvmInvalidateMemslot(kvm, old!, invalid);
    }
  }

  try {
    yield* kvmPrepareMemoryRegion(kvm, old, newSlot, change);
  } catch (e) {
    // For DELETE and MOVE, the inactive set still holds `old`: swap back to it.
    if (invalid !== null) yield* kvmActivateMemslot(kvm, asId, invalid, old);
    else kvm.slotsArchLock.unlock();
    throw e;
  }

  // kvm_{create,delete,move,update_flags}_memslot()
  const store = kvm.memslots;
  switch (change) {
    case 'CREATE':
      store.replace(asId, null, newSlot);
      yield* kvmActivateMemslot(kvm, asId, null, newSlot);
      break;
    case 'DELETE':
      store.replace(asId, old, null);
      yield* kvmActivateMemslot(kvm, asId, invalid ?? old, null);
      break;
    case 'MOVE':
      store.replace(asId, old, newSlot);
      yield* kvmActivateMemslot(kvm, asId, invalid ?? old, newSlot);
      break;
    case 'FLAGS_ONLY':
      store.replace(asId, old, newSlot);
      yield* kvmActivateMemslot(kvm, asId, old, newSlot);
      break;
  }

  yield* kvmCommitMemoryRegion(kvm, old, newSlot, change);
}
