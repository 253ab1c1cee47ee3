/**
 * struct kvm_arch_memory_slot, as far as the model keeps it.
 * @see arch/x86/include/asm/kvm_host.h struct kvm_arch_memory_slot (6.18)
 */
import type { MemorySlot } from '@kvmsim/kvm-core';
import type { LpageInfo } from './lpage-info.js';
import type { SlotRmaps } from './mmu/rmap.js';

export interface X86MemslotArch {
  /** lpage_info[]: disallow_lpage counters (slot alignment, gpa≡hva, shadowed guest page tables). */
  lpage: LpageInfo;
  /** rmap[]: allocated while the shadow MMU can map the slot (kvm_memslots_have_rmaps()), else null. */
  rmap: SlotRmaps | null;
  /**
   * kvm_arch_free_memslot() ran: the metadata is gone. Only a shadow page that outlived its slot
   * (a fault switch) can touch it afterwards, which the kernel reports as a use-after-free.
   */
  freed: boolean;
}

export function slotArch(slot: MemorySlot): X86MemslotArch {
  return slot.arch as X86MemslotArch;
}
