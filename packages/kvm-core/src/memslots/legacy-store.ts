/**
 * The legacy memslot store (Linux ≤ 5.16): one array per address space sorted by base_gfn in
 * *descending* order, an id_to_index[] table, and an lru_slot index. Every update duplicates the
 * array (kvm_dup_memslots()), edits the copy with O(n) shifts and publishes it.
 *
 * It exists so the pre-5.17 design can be measured against the trees under the same (6.18)
 * update protocol; the protocol's hook order is therefore 6.18's, not 5.16's.
 *
 * @see virt/kvm/kvm_main.c update_memslots(), kvm_memslot_delete(), kvm_memslot_move_backward(),
 *      kvm_memslot_move_forward(), kvm_dup_memslots() (5.10)
 * @see include/linux/kvm_host.h search_memslots() (5.10)
 */
import { KVM_MEM_SLOTS_NUM } from '../uapi.js';
import type { MemorySlot } from './memory-slot.js';
import type { MemslotSet, MemslotStore, MemslotStoreOptions, SlotCursor, StoreFaults } from './memslot-store.js';

/** One struct kvm_memslots of the legacy store. Cursors are array index + 1. */
export class LegacyMemslotSet implements MemslotSet {
  readonly asId: number;
  generation: number;
  /** memslots[], sorted by base_gfn descending; `usedSlots` entries are live. */
  memslots: MemorySlot[];
  usedSlots: number;
  /** id_to_index[KVM_MEM_SLOTS_NUM]: -1 if the id has no slot. */
  idToIndex: Int16Array;
  /** lru_slot: index of the last slot a lookup hit. */
  lruSlot: number;

  constructor(asId: number, from?: LegacyMemslotSet) {
    this.asId = asId;
    if (from) {
      // kvm_dup_memslots(): the whole struct, id_to_index included, and the used slots, with
      // room for one more (the kernel allocates used_slots + 1 for CREATE) so the insert does
      // not copy the array a second time.
      this.generation = from.generation;
      const used = from.usedSlots;
      const m = new Array<MemorySlot>(used + 1);
      for (let i = 0; i < used; i++) m[i] = from.memslots[i]!;
      m.length = used;
      this.memslots = m;
      this.usedSlots = from.usedSlots;
      this.idToIndex = from.idToIndex.slice();
      this.lruSlot = from.lruSlot;
    } else {
      this.generation = asId;
      this.memslots = [];
      this.usedSlots = 0;
      this.idToIndex = new Int16Array(KVM_MEM_SLOTS_NUM).fill(-1);
      this.lruSlot = 0;
    }
  }

  get size(): number {
    return this.usedSlots;
  }

  get lastUsedSlot(): MemorySlot | null {
    return this.usedSlots > 0 ? this.memslots[this.lruSlot]! : null;
  }

  idToMemslot(id: number): MemorySlot | null {
    const i = this.idToIndex[id]!;
    return i < 0 ? null : this.memslots[i]!;
  }

  /** Binary search for the first index whose base_gfn ≤ gfn (the array is descending). */
  private lowerIndex(gfn: number): number {
    let start = 0;
    let end = this.usedSlots;
    const m = this.memslots;
    while (start < end) {
      const mid = start + ((end - start) >> 1);
      if (gfn >= m[mid]!.baseGfn) end = mid;
      else start = mid + 1;
    }
    return start;
  }

  /**
   * search_memslots() without the lru check. 5.10 has no `approx`; on a miss with approx the model
   * returns the slot the binary search stopped at (a neighbour of the hole).
   */
  searchMemslots(gfn: number, approx: boolean): MemorySlot | null {
    const n = this.usedSlots;
    if (n === 0) return null;
    const i = this.lowerIndex(gfn);
    if (i < n) {
      const s = this.memslots[i]!;
      if (gfn < s.baseGfn + s.npages) return s;
    }
    return approx ? this.memslots[i < n ? i : n - 1]! : null;
  }

  /** @see include/linux/kvm_host.h search_memslots() (5.10): lru_slot first, then binary search */
  gfnToMemslot(gfn: number): MemorySlot | null {
    const n = this.usedSlots;
    if (n === 0) return null;
    const m = this.memslots;
    const lru = m[this.lruSlot]!;
    if (gfn >= lru.baseGfn && gfn < lru.baseGfn + lru.npages) return lru;
    const i = this.lowerIndex(gfn);
    if (i < n) {
      const s = m[i]!;
      if (gfn < s.baseGfn + s.npages) {
        this.lruSlot = i;
        return s;
      }
    }
    return null;
  }

  empty(): boolean {
    return this.usedSlots === 0;
  }

  // Ascending gfn order is descending index order: cursor = index + 1, walking down.
  gfnRangeFirst(start: number, end: number): SlotCursor {
    let i = this.lowerIndex(start); // first slot with base ≤ start
    if (i < this.usedSlots) {
      const s = this.memslots[i]!;
      if (s.baseGfn + s.npages <= start) i--;
    } else i--;
    if (i < 0 || this.memslots[i]!.baseGfn >= end) return 0;
    return i + 1;
  }

  gfnRangeNext(cursor: SlotCursor, end: number): SlotCursor {
    const i = cursor - 2;
    if (i < 0 || this.memslots[i]!.baseGfn >= end) return 0;
    return i + 1;
  }

  /** The pre-tree hva walk: every slot is tested (kvm_for_each_memslot in kvm_handle_hva_range(), 5.10). */
  hvaRangeFirst(startPfn: number, lastPfn: number): SlotCursor {
    return this.scanHva(this.usedSlots - 1, startPfn, lastPfn);
  }

  hvaRangeNext(cursor: SlotCursor, startPfn: number, lastPfn: number): SlotCursor {
    return this.scanHva(cursor - 2, startPfn, lastPfn);
  }

  private scanHva(i: number, startPfn: number, lastPfn: number): SlotCursor {
    const m = this.memslots;
    for (; i >= 0; i--) {
      const s = m[i]!;
      if (s.hvaPfn <= lastPfn && s.hvaPfn + s.npages - 1 >= startPfn) return i + 1;
    }
    return 0;
  }

  gfnCursorSlot(cursor: SlotCursor): MemorySlot {
    return this.memslots[cursor - 1]!;
  }

  hvaCursorSlot(cursor: SlotCursor): MemorySlot {
    return this.memslots[cursor - 1]!;
  }

  forEachMemslot(visit: (slot: MemorySlot) => void): void {
    for (let i = this.usedSlots - 1; i >= 0; i--) visit(this.memslots[i]!);
  }

  /** @see virt/kvm/kvm_main.c kvm_memslot_delete() (5.10) */
  memslotDelete(slot: MemorySlot): void {
    const m = this.memslots;
    const from = this.idToIndex[slot.id]!;
    if (from < 0) throw new Error(`legacy memslots: delete of absent slot ${slot.id}`);
    this.usedSlots--;
    if (this.lruSlot >= this.usedSlots) this.lruSlot = 0;
    let i = from;
    for (; i < this.usedSlots; i++) {
      m[i] = m[i + 1]!;
      this.idToIndex[m[i]!.id] = i;
    }
    m.length = this.usedSlots;
    this.idToIndex[slot.id] = -1;
  }

  /**
   * Shift slots with a higher gfn than `slot` towards the front, returning where `slot` goes.
   * @see virt/kvm/kvm_main.c kvm_memslot_move_backward() (5.10)
   */
  memslotMoveBackward(slot: MemorySlot, faults: StoreFaults): number {
    const m = this.memslots;
    let i = this.idToIndex[slot.id]!;
    for (; i < this.usedSlots - 1; i++) {
      if (slot.baseGfn > m[i + 1]!.baseGfn) break;
      m[i] = m[i + 1]!;
      if (!faults.legacyMoveSkipsIdToIndex) this.idToIndex[m[i]!.id] = i;
    }
    return i;
  }

  /** @see virt/kvm/kvm_main.c kvm_memslot_move_forward() (5.10) */
  memslotMoveForward(slot: MemorySlot, start: number, faults: StoreFaults): number {
    const m = this.memslots;
    let i = start;
    for (; i > 0; i--) {
      if (slot.baseGfn < m[i - 1]!.baseGfn) break;
      m[i] = m[i - 1]!;
      if (!faults.legacyMoveSkipsIdToIndex) this.idToIndex[m[i]!.id] = i;
    }
    return i;
  }

  /**
   * The edit of update_memslots() (5.10), expressed as kvm_replace_memslot(old, new): a new slot is
   * inserted at the back and moved forward; a changed slot is moved backward, then forward.
   */
  replace(old: MemorySlot | null, newSlot: MemorySlot | null, faults: StoreFaults): void {
    if (newSlot === null) {
      if (old === null) throw new Error('legacy memslots: neither old nor new');
      this.memslotDelete(old);
      return;
    }
    let i: number;
    if (old === null) {
      i = this.usedSlots++; // kvm_memslot_insert_back()
    } else {
      // The array holds `old` at id_to_index[id]; the shifts only read base gfns of others.
      i = this.memslotMoveBackward(newSlot, faults);
    }
    i = this.memslotMoveForward(newSlot, i, faults);
    this.memslots[i] = newSlot;
    this.idToIndex[newSlot.id] = i;
    // lru_slot is an index and is left alone, as in 5.10: after the shifts it may name another
    // slot, which costs one extra binary search, never a wrong answer.
  }
}

export class LegacyMemslotStore implements MemslotStore {
  readonly kind = 'legacy' as const;
  /** The legacy design has no hva tree: notifier lookups scan every slot. */
  readonly hvaTree = false;
  readonly nrAddressSpaces: number;
  private readonly faults: StoreFaults;
  /** kvm->memslots[as] */
  private readonly activeSets: LegacyMemslotSet[];
  /**
   * The array being edited. After a publish it is the previously active array (the kernel reuses it
   * after installing the INVALID copy); `null` once a propagate made it stale, so the next edit
   * duplicates the active array — the O(n) copy of every legacy update.
   */
  private readonly working: (LegacyMemslotSet | null)[];

  constructor(options: MemslotStoreOptions) {
    this.nrAddressSpaces = options.nrAddressSpaces;
    this.faults = options.faults ?? {};
    this.activeSets = [];
    this.working = [];
    for (let as = 0; as < this.nrAddressSpaces; as++) {
      this.activeSets.push(new LegacyMemslotSet(as));
      this.working.push(null);
    }
  }

  active(asId: number): LegacyMemslotSet {
    return this.activeSets[asId]!;
  }

  inactive(asId: number): LegacyMemslotSet {
    let w = this.working[asId]!;
    if (w === null) {
      w = new LegacyMemslotSet(asId, this.activeSets[asId]!); // kvm_dup_memslots()
      this.working[asId] = w;
    }
    return w;
  }

  replace(asId: number, old: MemorySlot | null, newSlot: MemorySlot | null): void {
    this.inactive(asId).replace(old, newSlot, this.faults);
  }

  publish(asId: number): void {
    const w = this.inactive(asId);
    this.working[asId] = this.activeSets[asId]!;
    this.activeSets[asId] = w;
  }

  propagate(asId: number, _old: MemorySlot | null, _newSlot: MemorySlot | null): void {
    // The kernel frees the old array after install; the next update duplicates the new one.
    this.working[asId] = null;
  }
}
