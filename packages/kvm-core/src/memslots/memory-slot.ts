import { KVM_MEMSLOT_INVALID, KVM_MEM_READONLY, KVM_USER_MEM_SLOTS_DEFAULT } from '../uapi.js';

/**
 * struct kvm_memory_slot (include/linux/kvm_host.h, Linux 6.18).
 *
 * Addresses are page-frame numbers: `baseGfn` is the first guest frame, `hvaPfn` is
 * `userspace_addr >> PAGE_SHIFT`. Outside an update both memslot sets of an address space hold
 * the same objects, as in the kernel; the scalable store keeps per-set tree handles in `node`.
 */
export class MemorySlot {
  baseGfn: number;
  npages: number;
  /** userspace_addr >> PAGE_SHIFT */
  hvaPfn: number;
  /** KVM_MEM_* plus internal bits 16..31 (KVM_MEMSLOT_INVALID, KVM_MEMSLOT_GMEM_ONLY). */
  flags: number;
  /** `(u16)slot` */
  readonly id: number;
  readonly asId: number;
  /**
   * The dirty bitmap, allocated twice as long as the live part (kvm_alloc_dirty_bitmap()):
   * bytes [0, n) are the live bitmap, [n, 2n) the "second bitmap" of
   * kvm_second_dirty_bitmap(). Bit i is byte i>>3, bit i&7 — the kernel's little-endian order.
   */
  dirtyBitmap: Uint8Array | null = null;
  /** struct kvm_arch_memory_slot: owned by the architecture backend. */
  arch: unknown = undefined;
  /**
   * Tree handles of the scalable store, one per set: [gfn@0, gfn@1, hva@0, hva@1]
   * (the kernel's gfn_node[2] and hva_node[2]). Unused by the legacy store.
   */
  readonly node: Int32Array = new Int32Array(4);

  constructor(id: number, asId: number, baseGfn: number, npages: number, hvaPfn: number, flags: number) {
    this.id = id;
    this.asId = asId;
    this.baseGfn = baseGfn;
    this.npages = npages;
    this.hvaPfn = hvaPfn;
    this.flags = flags;
  }

  /** One past the last gfn. */
  get endGfn(): number {
    return this.baseGfn + this.npages;
  }

  /** Byte size of the live dirty bitmap: kvm_dirty_bitmap_bytes() = ALIGN(npages, 64) / 8. */
  get dirtyBitmapBytes(): number {
    return kvmDirtyBitmapBytes(this.npages);
  }
}

/** @see include/linux/kvm_host.h kvm_dirty_bitmap_bytes() (6.18) */
export function kvmDirtyBitmapBytes(npages: number): number {
  return Math.ceil(npages / 64) * 8;
}

/**
 * Copies everything but the set linkage.
 * @see virt/kvm/kvm_main.c kvm_copy_memslot() (6.18)
 */
export function kvmCopyMemslot(src: MemorySlot, id: number = src.id): MemorySlot {
  const dest = new MemorySlot(id, src.asId, src.baseGfn, src.npages, src.hvaPfn, src.flags);
  dest.dirtyBitmap = src.dirtyBitmap;
  dest.arch = src.arch;
  return dest;
}

/**
 * A slot userspace can see: a user slot that is not being deleted or moved.
 * @see include/linux/kvm_host.h kvm_is_visible_memslot() (6.18)
 */
export function kvmIsVisibleMemslot(slot: MemorySlot | null, userMemSlots: number = KVM_USER_MEM_SLOTS_DEFAULT): boolean {
  return slot !== null && slot.id < userMemSlots && (slot.flags & KVM_MEMSLOT_INVALID) === 0;
}

/** @see include/linux/kvm_host.h __gfn_to_hva_memslot() (6.18), in page-frame numbers */
export function gfnToHvaPfnMemslot(slot: MemorySlot, gfn: number): number {
  return slot.hvaPfn + (gfn - slot.baseGfn);
}

/** @see include/linux/kvm_host.h hva_to_gfn_memslot() (6.18), in page-frame numbers */
export function hvaPfnToGfnMemslot(hvaPfn: number, slot: MemorySlot): number {
  return slot.baseGfn + (hvaPfn - slot.hvaPfn);
}

/** Is the slot's memory writable by the guest (no KVM_MEM_READONLY)? */
export function memslotIsReadonly(slot: MemorySlot): boolean {
  return (slot.flags & KVM_MEM_READONLY) !== 0;
}
