/**
 * gfn → memslot → hva lookups as the fault path uses them.
 * @see include/linux/kvm_host.h, virt/kvm/kvm_main.c (Linux 6.18; kvm-generic.md §3)
 */
import { KVM_MEMSLOT_INVALID, KVM_MEM_READONLY } from '../uapi.js';
import type { MemorySlot } from './memory-slot.js';
import type { MemslotSet } from './memslot-store.js';

/** KVM_HVA_ERR_BAD (PAGE_OFFSET in the kernel); hvas are page-frame numbers here, so negative. */
export const KVM_HVA_ERR_BAD = -1;
/** KVM_HVA_ERR_RO_BAD: a write to a READONLY slot. */
export const KVM_HVA_ERR_RO_BAD = -2;

/** The per-vCPU last-used-slot cache (vcpu->last_used_slot and last_used_slot_gen). */
export class KvmVcpuMemslotCache {
  lastUsedSlot: MemorySlot | null = null;
  lastUsedSlotGen = -1;
}

/**
 * The vCPU's lookup: its own cache, reset when the set's generation changed, then the tree.
 * Deliberately does not update the VM-wide cache.
 * @see virt/kvm/kvm_main.c kvm_vcpu_gfn_to_memslot() (6.18)
 */
export function kvmVcpuGfnToMemslot(cache: KvmVcpuMemslotCache, slots: MemslotSet, gfn: number, ignoreGeneration = false): MemorySlot | null {
  const gen = slots.generation;
  // `ignoreGeneration` is the vcpuSlotCacheIgnoresGeneration fault (a stale, freed slot is reused).
  if (gen !== cache.lastUsedSlotGen && !ignoreGeneration) {
    cache.lastUsedSlot = null;
    cache.lastUsedSlotGen = gen;
  }
  const last = cache.lastUsedSlot;
  if (last !== null && gfn >= last.baseGfn && gfn < last.baseGfn + last.npages) return last;
  const slot = slots.searchMemslots(gfn, false);
  if (slot !== null) cache.lastUsedSlot = slot;
  return slot;
}

/**
 * The hva page of `gfn` in `slot`, or KVM_HVA_ERR_BAD (no slot, or an INVALID one) /
 * KVM_HVA_ERR_RO_BAD (write to a READONLY slot). `nr`, the pages left in the slot, is not returned.
 * @see virt/kvm/kvm_main.c __gfn_to_hva_many() (6.18)
 */
export function gfnToHvaMany(slot: MemorySlot | null, gfn: number, write: boolean): number {
  if (slot === null || slot.flags & KVM_MEMSLOT_INVALID) return KVM_HVA_ERR_BAD;
  if (slot.flags & KVM_MEM_READONLY && write) return KVM_HVA_ERR_RO_BAD;
  return slot.hvaPfn + (gfn - slot.baseGfn);
}
