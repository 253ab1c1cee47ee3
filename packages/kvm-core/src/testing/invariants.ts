/**
 * The model checklist of kvm-generic.md §9, asserted on a VM at rest (between ioctls).
 * Throws an Error naming the violated invariant. (`instanceof` here is within kvm-core itself,
 * checking which of its own stores a VM uses.)
 */
import type { Kvm } from '../kvm.js';
import { LegacyMemslotSet } from '../memslots/legacy-store.js';
import { kvmDirtyBitmapBytes, type MemorySlot } from '../memslots/memory-slot.js';
import { ScalableMemslotSet } from '../memslots/scalable-store.js';
import { KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS, KVM_MEMSLOT_INVALID, KVM_MEM_LOG_DIRTY_PAGES } from '../uapi.js';

function fail(rule: string, detail: string): never {
  throw new Error(`§9 invariant ${rule} violated: ${detail}`);
}

/** The slots of one set, in base-gfn order. */
export function slotsOf(kvm: Kvm, asId: number, which: 'active' | 'inactive' = 'active'): MemorySlot[] {
  const out: MemorySlot[] = [];
  (which === 'active' ? kvm.memslots.active(asId) : kvm.memslots.inactive(asId)).forEachMemslot((s) => out.push(s));
  return out;
}

export function checkMemslotInvariants(kvm: Kvm): void {
  let pages = 0;
  for (let as = 0; as < kvm.nrMemslotAsIds; as++) {
    const set = kvm.memslots.active(as);
    const slots = slotsOf(kvm, as);
    // 1. both sets hold the same slot objects at rest (scalable; the legacy store has one array)
    if (set instanceof ScalableMemslotSet) {
      const other = slotsOf(kvm, as, 'inactive');
      if (other.length !== slots.length || other.some((s, i) => s !== slots[i])) fail('1', `as ${as}: active and inactive sets differ`);
      const inactive = kvm.memslots.inactive(as) as ScalableMemslotSet;
      set.gfnTree.checkInvariants();
      inactive.gfnTree.checkInvariants();
      if (set.useHvaTree) {
        set.hvaTree.checkInvariants();
        if (set.hvaTree.size !== slots.length) fail('1', `as ${as}: hva tree holds ${set.hvaTree.size} of ${slots.length} slots`);
      }
    }
    if (set instanceof LegacyMemslotSet) {
      for (let i = 0; i < set.usedSlots; i++) {
        const s = set.memslots[i]!;
        if (set.idToIndex[s.id] !== i) fail('legacy', `id_to_index[${s.id}] = ${set.idToIndex[s.id]}, slot is at ${i}`);
        if (i > 0 && set.memslots[i - 1]!.baseGfn <= s.baseGfn) fail('legacy', 'array not sorted by base_gfn descending');
      }
    }
    // 2. disjoint gfn ranges, unique keys, in order
    for (let i = 1; i < slots.length; i++) {
      if (slots[i - 1]!.baseGfn + slots[i - 1]!.npages > slots[i]!.baseGfn) fail('2', `as ${as}: slots ${slots[i - 1]!.id} and ${slots[i]!.id} overlap`);
    }
    // 3. generation: no in-progress bit at rest, ≡ as (mod nr_as)
    if (set.generation >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) fail('3', `as ${as}: generation has the in-progress bit at rest`);
    if (set.generation % kvm.nrMemslotAsIds !== as) fail('3', `as ${as}: generation ${set.generation} not ≡ as_id`);
    for (const s of slots) {
      // 7. no INVALID slot at rest
      if (s.flags & KVM_MEMSLOT_INVALID) fail('7', `slot ${s.id} is INVALID at rest`);
      if (set.idToMemslot(s.id) !== s) fail('lookup', `id_to_memslot(${s.id}) does not return the slot`);
      pages += s.npages;
      // 9. bitmap ⇔ logging; size 2×ALIGN(npages,64)/8; no bits beyond npages
      const logs = (s.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
      if (logs !== (s.dirtyBitmap !== null)) fail('9', `slot ${s.id}: logging ${logs} but bitmap ${s.dirtyBitmap !== null}`);
      if (s.dirtyBitmap) {
        const n = kvmDirtyBitmapBytes(s.npages);
        if (s.dirtyBitmap.length !== 2 * n) fail('9', `slot ${s.id}: bitmap is ${s.dirtyBitmap.length} bytes, expected ${2 * n}`);
        for (let bit = s.npages; bit < n * 8; bit++) {
          if (s.dirtyBitmap[bit >> 3]! & (1 << (bit & 7))) fail('9', `slot ${s.id}: bit ${bit} ≥ npages is set`);
        }
      }
    }
  }
  // 8. nr_memslot_pages is the sum over all slots
  if (kvm.nrMemslotPages !== pages) fail('8', `nr_memslot_pages ${kvm.nrMemslotPages} != ${pages}`);
}

/**
 * The MMU-notifier protocol at rest (kvm-generic.md §9 items 5–6): nothing in flight, every lock
 * released, no SRCU reader left.
 */
export function checkNotifierQuiescent(kvm: Kvm): void {
  if (kvm.mnActiveInvalidateCount !== 0) fail('5', `mn_active_invalidate_count is ${kvm.mnActiveInvalidateCount} at rest`);
  if (kvm.mmuInvalidateInProgress !== 0) fail('6', `mmu_invalidate_in_progress is ${kvm.mmuInvalidateInProgress} at rest`);
  if (kvm.mmuLock.isHeld()) fail('locks', 'mmu_lock still held');
  if (kvm.slotsLock.isHeld() || kvm.slotsArchLock.isHeld()) fail('locks', 'slots_lock or slots_arch_lock still held');
  if (kvm.srcu.readers !== 0) fail('srcu', `${kvm.srcu.readers} SRCU readers left`);
}

/**
 * The point of the whole notifier protocol: every secondary-MMU mapping is of a visible slot and
 * points at the frame the host page table maps at that hva now (writable only if the host allows).
 * A mapping that survived an invalidation, a DELETE or a MOVE breaks this.
 */
export function checkMmuCoherence(kvm: Kvm): void {
  const mmu = kvm.arch.mmu;
  if (mmu === undefined) return;
  mmu.forEachMapping((asId, gfn, frame) => {
    const slot = kvm.memslots.active(asId).searchMemslots(gfn, false);
    if (slot === null || slot.flags & KVM_MEMSLOT_INVALID) {
      fail('coherence', `gfn 0x${gfn.toString(16)} (as ${asId}) is mapped to frame ${frame} but no visible memslot contains it`);
    }
    const hvaPfn = slot.hvaPfn + (gfn - slot.baseGfn);
    const hostFrame = kvm.host.frameOf(hvaPfn);
    if (hostFrame !== frame) {
      fail('coherence', `gfn 0x${gfn.toString(16)} maps frame ${frame}, but the host maps hva 0x${(hvaPfn * 4096).toString(16)} to ${hostFrame < 0 ? 'nothing' : `frame ${hostFrame}`} (a stale mapping)`);
    }
  });
}
