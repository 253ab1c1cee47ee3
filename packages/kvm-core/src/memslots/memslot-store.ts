/**
 * One interface, two designs of the memslot store, so that they can be measured side by side:
 * - `scalable`: Linux ≥ 5.17 (two sets per address space, gfn rbtree, hva interval tree, id table);
 * - `legacy`: Linux ≤ 5.16 (a sorted array with id_to_index, copied whole on every update).
 *
 * The update protocol that drives a store (kvmSetMemslot() and the swap) is generic and the same
 * for both: a store only provides the set primitives the kernel's protocol uses.
 */
import type { MemorySlot } from './memory-slot.js';

export type MemslotStoreKind = 'scalable' | 'legacy';

/** A cursor over slots; 0 means "no more". Allocation-free iteration for hot paths. */
export type SlotCursor = number;

/** One memslot set: struct kvm_memslots (read side). */
export interface MemslotSet {
  readonly asId: number;
  /**
   * The set's generation; bit 63 (update in progress) is modelled as 2^52
   * (KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS in uapi.ts).
   */
  generation: number;
  /** Number of slots in the set. */
  readonly size: number;
  /** The VM-wide cache of the last slot a gfn lookup hit (atomic_long_t last_used_slot / lru_slot). */
  readonly lastUsedSlot: MemorySlot | null;
  /** id_to_memslot() */
  idToMemslot(id: number): MemorySlot | null;
  /**
   * search_memslots(): the slot containing gfn; with `approx`, on a miss, a slot bordering the hole
   * (the last one the search visited); null if the set is empty.
   */
  searchMemslots(gfn: number, approx: boolean): MemorySlot | null;
  /** ____gfn_to_memslot(slots, gfn, false): try the last-used slot, search, remember a hit. */
  gfnToMemslot(gfn: number): MemorySlot | null;
  /** kvm_memslots_empty() */
  empty(): boolean;
  /** Start of kvm_for_each_memslot_in_gfn_range(): slots intersecting [start, end), by base gfn. */
  gfnRangeFirst(start: number, end: number): SlotCursor;
  gfnRangeNext(cursor: SlotCursor, end: number): SlotCursor;
  /**
   * Start of kvm_for_each_memslot_in_hva_range(): slots whose hva pages intersect the inclusive page
   * range [startPfn, lastPfn]. With the tree: an interval-tree walk; without: a scan of every slot.
   */
  hvaRangeFirst(startPfn: number, lastPfn: number): SlotCursor;
  hvaRangeNext(cursor: SlotCursor, startPfn: number, lastPfn: number): SlotCursor;
  /** The slot a gfn-range cursor points at. */
  gfnCursorSlot(cursor: SlotCursor): MemorySlot;
  /** The slot an hva-range cursor points at. */
  hvaCursorSlot(cursor: SlotCursor): MemorySlot;
  /** kvm_for_each_memslot(): every slot, in base-gfn order (the kernel walks its id hash). */
  forEachMemslot(visit: (slot: MemorySlot) => void): void;
}

/** The write side: the primitives kvm_set_memslot() uses, all on the *inactive* set. */
export interface MemslotStore {
  readonly kind: MemslotStoreKind;
  /** Whether hva-range lookups use an interval tree (the backend's usesHvaTree opt-in). */
  readonly hvaTree: boolean;
  readonly nrAddressSpaces: number;
  /** __kvm_memslots(kvm, as): the set readers see. */
  active(asId: number): MemslotSet;
  /** kvm_get_inactive_memslots(kvm, as): the set an update edits. */
  inactive(asId: number): MemslotSet;
  /**
   * kvm_replace_memslot(): in the inactive set, replace `old` by `newSlot` (either may be null;
   * not both). Retargets the set's last-used cache from old to new.
   */
  replace(asId: number, old: MemorySlot | null, newSlot: MemorySlot | null): void;
  /** The publishing half of kvm_swap_active_memslots(): rcu_assign_pointer(memslots[as], inactive). */
  publish(asId: number): void;
  /**
   * The second half of kvm_activate_memslot(): bring the set that just became inactive up to
   * date with the change the swap published.
   */
  propagate(asId: number, old: MemorySlot | null, newSlot: MemorySlot | null): void;
}

export interface MemslotStoreOptions {
  nrAddressSpaces: number;
  /** Maintain and use the hva interval tree (scalable only; legacy always scans). Default true. */
  hvaTree?: boolean;
  /** Fault-injection switches of the store (see fault-injection.ts). */
  faults?: StoreFaults;
}

/** Store-level fault-injection switches; each re-introduces one historical or plausible bug. */
export interface StoreFaults {
  /** legacy: kvm_memslot_move_backward/forward() forget to update id_to_index (MOVE). */
  legacyMoveSkipsIdToIndex?: boolean;
}
