/**
 * Dirty logging through bitmaps: KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG,
 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and mark_page_dirty_in_slot(). The dirty ring is not modelled.
 *
 * Bitmaps are `Uint8Array`s in the kernel's memory order (bit i = byte i>>3, bit i&7), twice the
 * size of the live bitmap: the second half is kvm_second_dirty_bitmap().
 *
 * @see virt/kvm/kvm_main.c (Linux 6.18; kvm-generic.md §5)
 */
import { isSteps } from '../arch-backend.js';
import { KvmError } from '../errors.js';
import type { Steps } from '../sched/steps.js';
import type { Kvm } from '../kvm.js';
import type { MemorySlot } from '../memslots/memory-slot.js';
import { kvmDirtyBitmapBytes } from '../memslots/memory-slot.js';
import { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, KVM_MEM_LOG_DIRTY_PAGES } from '../uapi.js';

/** @see virt/kvm/kvm_main.c kvm_alloc_dirty_bitmap() (6.18) */
export function kvmAllocDirtyBitmap(kvm: Kvm, slot: MemorySlot): void {
  const key = (slot.asId << 16) | slot.id;
  const stale = kvm.faults.dirtyBitmapNotResetOnReenable ? kvm.staleDirtyBitmaps.get(key) : undefined;
  if (stale !== undefined && stale.length === 2 * kvmDirtyBitmapBytes(slot.npages)) {
    kvm.staleDirtyBitmaps.delete(key);
    slot.dirtyBitmap = stale;
    return;
  }
  slot.dirtyBitmap = new Uint8Array(2 * kvmDirtyBitmapBytes(slot.npages));
  if (kvm.trace) kvm.emit('kvm_alloc_dirty_bitmap', { slot: slot.id, as_id: slot.asId, bytes: slot.dirtyBitmap.length });
}

/** @see virt/kvm/kvm_main.c kvm_destroy_dirty_bitmap() (6.18) */
export function kvmDestroyDirtyBitmap(kvm: Kvm, slot: MemorySlot): void {
  if (slot.dirtyBitmap === null) return;
  if (kvm.faults.dirtyBitmapNotResetOnReenable) kvm.staleDirtyBitmaps.set((slot.asId << 16) | slot.id, slot.dirtyBitmap);
  slot.dirtyBitmap = null;
}

/**
 * Set the dirty bit of `gfn` in a logged slot (the dirty ring is not modelled).
 * @see virt/kvm/kvm_main.c mark_page_dirty_in_slot() (6.18)
 */
export function markPageDirtyInSlot(slot: MemorySlot | null, gfn: number): void {
  if (slot === null || !(slot.flags & KVM_MEM_LOG_DIRTY_PAGES)) return;
  const bm = slot.dirtyBitmap;
  if (bm === null) return;
  const rel = gfn - slot.baseGfn;
  bm[rel >>> 3] = bm[rel >>> 3]! | (1 << (rel & 7));
}

/** Decode the slot field of struct kvm_dirty_log and check it (EINVAL) — shared by GET and CLEAR. */
function dirtyLogSlot(kvm: Kvm, slot: number, what: string): { asId: number; id: number } {
  const asId = slot >>> 16;
  const id = slot & 0xffff;
  if (asId >= kvm.nrMemslotAsIds || id >= kvm.userMemSlots) {
    throw new KvmError('EINVAL', `${what}: slot 0x${slot.toString(16)} (address space ${asId}, id ${id}) is out of range`);
  }
  return { asId, id };
}

function loggedSlot(kvm: Kvm, asId: number, id: number, what: string): MemorySlot {
  const memslot = kvm.memslots.active(asId).idToMemslot(id);
  if (memslot === null || memslot.dirtyBitmap === null) {
    throw new KvmError('ENOENT', `${what}: slot ${id} (address space ${asId}) ${memslot === null ? 'does not exist' : 'does not log dirty pages'}`);
  }
  return memslot;
}

/** Re-protect one harvested 64-bit word of the bitmap, passing the mask as two u32 halves. */
function enableLogDirtyWord(kvm: Kvm, slot: MemorySlot, bm: Uint8Array, at: number, offset: number): void {
  const lo = (bm[at]! | (bm[at + 1]! << 8) | (bm[at + 2]! << 16) | (bm[at + 3]! << 24)) >>> 0;
  const hi = (bm[at + 4]! | (bm[at + 5]! << 8) | (bm[at + 6]! << 16) | (bm[at + 7]! << 24)) >>> 0;
  kvm.arch.mmuEnableLogDirtyPtMasked(slot, offset, lo, hi);
}

/**
 * KVM_GET_DIRTY_LOG for KVM_GENERIC_DIRTYLOG_READ_PROTECT architectures: without manual protect,
 * get-and-clear with re-protection; with it, a copy of the live bitmap. Architectures without
 * it (s390, powerpc) get the copy-only kvm_get_dirty_log().
 * @see virt/kvm/kvm_main.c kvm_vm_ioctl_get_dirty_log(), kvm_get_dirty_log_protect(), kvm_get_dirty_log() (6.18)
 */
export function* kvmVmIoctlGetDirtyLog(kvm: Kvm, slotField: number): Steps<Uint8Array> {
  if (kvm.vmDead) throw new KvmError('EIO', 'the VM is dead (kvm->vm_dead)');
  yield* kvm.slotsLock.lock();
  try {
    return yield* kvmGetDirtyLogProtect(kvm, slotField);
  } finally {
    kvm.slotsLock.unlock();
  }
}

/** @see virt/kvm/kvm_main.c kvm_get_dirty_log_protect() (6.18) */
function* kvmGetDirtyLogProtect(kvm: Kvm, slotField: number): Steps<Uint8Array> {
  if (!kvm.kvmUseDirtyBitmap()) throw new KvmError('ENXIO', 'KVM_GET_DIRTY_LOG: the VM uses a dirty ring without a bitmap');
  const { asId, id } = dirtyLogSlot(kvm, slotField, 'KVM_GET_DIRTY_LOG');
  const memslot = loggedSlot(kvm, asId, id, 'KVM_GET_DIRTY_LOG');
  const bm = memslot.dirtyBitmap!;
  const sync = kvm.arch.syncDirtyLog(memslot);
  if (isSteps(sync)) yield* sync;
  const n = kvmDirtyBitmapBytes(memslot.npages);

  if (!kvm.caps.dirtyLogReadProtect || kvm.manualDirtyLogProtect !== 0) return bm.slice(0, n);

  const second = bm.subarray(n, 2 * n);
  second.fill(0);
  let flush = false;
  yield* kvm.mmuLock.write(); // KVM_MMU_LOCK(kvm)
  for (let at = 0; at < n; at += 8) {
    let any = 0;
    for (let b = 0; b < 8; b++) any |= bm[at + b]!;
    if (any === 0) continue;
    flush = true;
    // mask = xchg(&dirty_bitmap[i], 0) into the second bitmap
    for (let b = 0; b < 8; b++) {
      second[at + b] = bm[at + b]!;
      bm[at + b] = 0;
    }
    // The getDirtyLogSkipsReprotect fault: harvested pages stay writable, later writes go unlogged.
    if (!kvm.faults.getDirtyLogSkipsReprotect) enableLogDirtyWord(kvm, memslot, second, at, at * 8);
  }
  kvm.mmuLock.writeUnlock();
  if (flush) kvm.kvmFlushRemoteTlbsMemslot(memslot);
  return second.slice();
}

/**
 * KVM_CLEAR_DIRTY_LOG.
 * @see virt/kvm/kvm_main.c kvm_vm_ioctl_clear_dirty_log(), kvm_clear_dirty_log_protect() (6.18)
 */
export function* kvmVmIoctlClearDirtyLog(kvm: Kvm, slotField: number, firstPage: bigint, numPages: number, user: Uint8Array | null): Steps {
  if (kvm.vmDead) throw new KvmError('EIO', 'the VM is dead (kvm->vm_dead)');
  // Only KVM_GENERIC_DIRTYLOG_READ_PROTECT architectures have this ioctl.
  if (!kvm.caps.dirtyLogReadProtect) throw new KvmError('ENOTTY', 'KVM_CLEAR_DIRTY_LOG: not supported on this architecture');
  yield* kvm.slotsLock.lock();
  try {
    yield* kvmClearDirtyLogProtect(kvm, slotField, firstPage, numPages, user);
  } finally {
    kvm.slotsLock.unlock();
  }
}

/** @see virt/kvm/kvm_main.c kvm_clear_dirty_log_protect() (6.18) */
function* kvmClearDirtyLogProtect(kvm: Kvm, slotField: number, firstPage: bigint, numPages: number, user: Uint8Array | null): Steps {
  if (!kvm.kvmUseDirtyBitmap()) throw new KvmError('ENXIO', 'KVM_CLEAR_DIRTY_LOG: the VM uses a dirty ring without a bitmap');
  const { asId, id } = dirtyLogSlot(kvm, slotField, 'KVM_CLEAR_DIRTY_LOG');
  const skipAlign = kvm.faults.clearDirtyLogSkipsAlignmentCheck === true;
  if (!skipAlign && (firstPage & 63n) !== 0n) {
    throw new KvmError('EINVAL', `KVM_CLEAR_DIRTY_LOG: first_page 0x${firstPage.toString(16)} is not a multiple of 64`);
  }
  const memslot = loggedSlot(kvm, asId, id, 'KVM_CLEAR_DIRTY_LOG');
  const bm = memslot.dirtyBitmap!;
  const npages = BigInt(memslot.npages);
  const num = BigInt(numPages);
  if (firstPage > npages || num > npages - firstPage || (!skipAlign && num < npages - firstPage && (numPages & 63) !== 0)) {
    throw new KvmError(
      'EINVAL',
      `KVM_CLEAR_DIRTY_LOG: first_page 0x${firstPage.toString(16)} + num_pages ${numPages} must lie within the slot's ${memslot.npages} pages, ` +
        'and num_pages must be a multiple of 64 unless the range ends at the slot end',
    );
  }
  const words = Math.ceil(numPages / 64);
  const nBytes = words * 8;
  const sync = kvm.arch.syncDirtyLog(memslot);
  if (isSteps(sync)) yield* sync;
  // copy_from_user() of ALIGN(num_pages, 64) / 8 bytes into the second bitmap.
  if (nBytes > 0 && (user === null || user.length < nBytes)) {
    throw new KvmError('EFAULT', `KVM_CLEAR_DIRTY_LOG: the user bitmap must hold ${nBytes} bytes (got ${user === null ? 'NULL' : user.length})`);
  }
  const live = kvmDirtyBitmapBytes(memslot.npages);
  const second = bm.subarray(live, 2 * live);
  if (nBytes > 0) second.set(user!.subarray(0, Math.min(nBytes, live)));
  let flush = false;
  const first = Number(firstPage);
  yield* kvm.mmuLock.write(); // KVM_MMU_LOCK(kvm)
  for (let w = 0, offset = first; w < words; w++, offset += 64) {
    const at = offset >>> 3; // byte index in the live bitmap
    const src = w * 8;
    let any = 0;
    for (let b = 0; b < 8; b++) {
      // mask &= atomic_long_fetch_andnot(mask, p): only bits that were set count as cleared.
      const mask = second[src + b]! & bm[at + b]!;
      bm[at + b] = bm[at + b]! & ~second[src + b]!;
      second[src + b] = mask;
      any |= mask;
    }
    if (any !== 0) {
      flush = true;
      enableLogDirtyWord(kvm, memslot, second, src, offset);
    }
  }
  kvm.mmuLock.writeUnlock();
  if (flush) kvm.kvmFlushRemoteTlbsMemslot(memslot);
}

/**
 * KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2).
 * @see virt/kvm/kvm_main.c kvm_vm_ioctl_enable_cap_generic() (6.18)
 */
export function kvmVmIoctlEnableCapManualDirtyLogProtect(kvm: Kvm, flags: number, arg0: bigint): void {
  let allowed = BigInt(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
  if (arg0 & BigInt(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) allowed = BigInt(kvm.caps.dirtyLogManualCaps);
  if (flags !== 0 || (arg0 & ~allowed) !== 0n) {
    throw new KvmError('EINVAL', `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: flags ${flags} must be 0 and args[0] 0x${arg0.toString(16)} within 0x${allowed.toString(16)}`);
  }
  kvm.manualDirtyLogProtect = Number(arg0);
}
