/**
 * The scalable memslot store (Linux ≥ 5.17, "KVM: Scalable memslots implementation",
 * M. Szmigiero): per address space two sets, each with a gfn rbtree, an hva interval tree and an
 * id table; outside an update both sets hold the same slot objects.
 *
 * @see include/linux/kvm_host.h struct kvm_memslots (6.18)
 * @see virt/kvm/kvm_main.c kvm_replace_memslot(), kvm_swap_active_memslots() (6.18)
 */
import { KVM_MEM_SLOTS_NUM } from '../uapi.js';
import type { MemorySlot } from './memory-slot.js';
import type { MemslotSet, MemslotStore, MemslotStoreOptions, SlotCursor } from './memslot-store.js';
import { RbTree } from './rb-tree.js';

/** One struct kvm_memslots of the scalable store. */
export class ScalableMemslotSet implements MemslotSet {
  readonly asId: number;
  generation: number;
  /** 0 or 1: which of a slot's per-set tree handles this set uses (node_idx). */
  readonly nodeIdx: 0 | 1;
  lastUsedSlot: MemorySlot | null = null;
  readonly useHvaTree: boolean;
  /** gfn_tree: key base_gfn. */
  readonly gfnTree: RbTree = new RbTree(64, false);
  /** hva_tree: [hvaPfn, hvaPfn + npages - 1], augmented with the subtree's max last. */
  readonly hvaTree: RbTree = new RbTree(64, true);
  /** Slot object behind each gfn-tree handle. */
  private readonly gfnNodeSlot: (MemorySlot | undefined)[] = [];
  /** Slot object behind each hva-tree handle. */
  private readonly hvaNodeSlot: (MemorySlot | undefined)[] = [];
  /** id_hash; the kernel hashes into 128 buckets, the model indexes by id directly. */
  private readonly idTable: (MemorySlot | null)[] = new Array<MemorySlot | null>(KVM_MEM_SLOTS_NUM).fill(null);

  constructor(asId: number, nodeIdx: 0 | 1, useHvaTree: boolean) {
    this.asId = asId;
    this.generation = asId;
    this.nodeIdx = nodeIdx;
    this.useHvaTree = useHvaTree;
  }

  get size(): number {
    return this.gfnTree.size;
  }

  idToMemslot(id: number): MemorySlot | null {
    return this.idTable[id] ?? null;
  }

  /** @see include/linux/kvm_host.h search_memslots() (6.18) */
  searchMemslots(gfn: number, approx: boolean): MemorySlot | null {
    const n = this.gfnTree.searchPoint(gfn);
    if (n > 0) return this.gfnNodeSlot[n]!;
    return approx && n < 0 ? this.gfnNodeSlot[-n]! : null;
  }

  /** @see include/linux/kvm_host.h ____gfn_to_memslot() (6.18) */
  gfnToMemslot(gfn: number): MemorySlot | null {
    const last = this.lastUsedSlot;
    if (last !== null && gfn >= last.baseGfn && gfn < last.baseGfn + last.npages) return last;
    const slot = this.searchMemslots(gfn, false);
    if (slot !== null) this.lastUsedSlot = slot;
    return slot;
  }

  empty(): boolean {
    return this.gfnTree.size === 0;
  }

  /**
   * Find the first slot intersecting [start, end): the node with the greatest base ≤ start if it
   * reaches past start, else its successor.
   * @see include/linux/kvm_host.h kvm_memslot_iter_start() (6.18)
   */
  gfnRangeFirst(start: number, end: number): SlotCursor {
    const t = this.gfnTree;
    let node = t.floor(start);
    if (node === 0) node = t.first();
    else {
      const s = this.gfnNodeSlot[node]!;
      if (s.baseGfn + s.npages <= start) node = t.next(node);
    }
    if (node === 0 || this.gfnNodeSlot[node]!.baseGfn >= end) return 0;
    return node;
  }

  /** @see include/linux/kvm_host.h kvm_memslot_iter_next(), kvm_memslot_iter_is_valid() (6.18) */
  gfnRangeNext(cursor: SlotCursor, end: number): SlotCursor {
    const node = this.gfnTree.next(cursor);
    if (node === 0 || this.gfnNodeSlot[node]!.baseGfn >= end) return 0;
    return node;
  }

  hvaRangeFirst(startPfn: number, lastPfn: number): SlotCursor {
    if (this.useHvaTree) return this.hvaTree.firstOverlap(startPfn, lastPfn);
    // Without the tree (a backend that did not opt in): scan every slot, as before 5.17.
    return this.scanHva(this.gfnTree.first(), startPfn, lastPfn);
  }

  hvaRangeNext(cursor: SlotCursor, startPfn: number, lastPfn: number): SlotCursor {
    if (this.useHvaTree) return this.hvaTree.nextOverlap(cursor, startPfn, lastPfn);
    return this.scanHva(this.gfnTree.next(cursor), startPfn, lastPfn);
  }

  private scanHva(node: number, startPfn: number, lastPfn: number): SlotCursor {
    const t = this.gfnTree;
    for (; node !== 0; node = t.next(node)) {
      const s = this.gfnNodeSlot[node]!;
      if (s.hvaPfn <= lastPfn && s.hvaPfn + s.npages - 1 >= startPfn) return node;
    }
    return 0;
  }

  gfnCursorSlot(cursor: SlotCursor): MemorySlot {
    return this.gfnNodeSlot[cursor]!;
  }

  hvaCursorSlot(cursor: SlotCursor): MemorySlot {
    return (this.useHvaTree ? this.hvaNodeSlot[cursor] : this.gfnNodeSlot[cursor])!;
  }

  forEachMemslot(visit: (slot: MemorySlot) => void): void {
    const t = this.gfnTree;
    for (let n = t.first(); n !== 0; n = t.next(n)) visit(this.gfnNodeSlot[n]!);
  }

  /** @see virt/kvm/kvm_main.c kvm_replace_memslot() (6.18) */
  replace(old: MemorySlot | null, newSlot: MemorySlot | null): void {
    const idx = this.nodeIdx;
    if (old !== null) {
      this.idTable[old.id] = null;
      if (this.useHvaTree) {
        const h = old.node[2 + idx]!;
        this.hvaTree.remove(h);
        this.hvaNodeSlot[h] = undefined;
      }
      if (this.lastUsedSlot === old) this.lastUsedSlot = newSlot;
      if (newSlot === null) {
        const g = old.node[idx]!;
        this.gfnTree.remove(g);
        this.gfnNodeSlot[g] = undefined;
        return;
      }
    }
    if (newSlot === null) throw new Error('kvm_replace_memslot: neither old nor new');
    this.idTable[newSlot.id] = newSlot;
    if (this.useHvaTree) {
      const h = this.hvaTree.insert(newSlot.hvaPfn, newSlot.hvaPfn + newSlot.npages - 1, 0);
      newSlot.node[2 + idx] = h;
      this.hvaNodeSlot[h] = newSlot;
    }
    if (old !== null && old.baseGfn === newSlot.baseGfn) {
      // rb_replace_node(): same key, O(1)
      const g = old.node[idx]!;
      newSlot.node[idx] = g;
      this.gfnNodeSlot[g] = newSlot;
    } else {
      if (old !== null) {
        const g = old.node[idx]!;
        this.gfnTree.remove(g);
        this.gfnNodeSlot[g] = undefined;
      }
      const g = this.gfnTree.insert(newSlot.baseGfn, newSlot.baseGfn + newSlot.npages - 1, 0);
      newSlot.node[idx] = g;
      this.gfnNodeSlot[g] = newSlot;
    }
  }
}

export class ScalableMemslotStore implements MemslotStore {
  readonly kind = 'scalable' as const;
  readonly hvaTree: boolean;
  readonly nrAddressSpaces: number;
  /** __memslots[as][0..1] */
  private readonly sets: ScalableMemslotSet[][];
  /** memslots[as]: index of the active set */
  private readonly activeIdx: Uint8Array;

  constructor(options: MemslotStoreOptions) {
    this.nrAddressSpaces = options.nrAddressSpaces;
    this.hvaTree = options.hvaTree ?? true;
    this.sets = [];
    for (let as = 0; as < this.nrAddressSpaces; as++) {
      this.sets.push([new ScalableMemslotSet(as, 0, this.hvaTree), new ScalableMemslotSet(as, 1, this.hvaTree)]);
    }
    this.activeIdx = new Uint8Array(this.nrAddressSpaces);
  }

  active(asId: number): ScalableMemslotSet {
    return this.sets[asId]![this.activeIdx[asId]!]!;
  }

  /** @see virt/kvm/kvm_main.c kvm_get_inactive_memslots() (6.18) */
  inactive(asId: number): ScalableMemslotSet {
    return this.sets[asId]![this.activeIdx[asId]! ^ 1]!;
  }

  replace(asId: number, old: MemorySlot | null, newSlot: MemorySlot | null): void {
    this.inactive(asId).replace(old, newSlot);
  }

  publish(asId: number): void {
    this.activeIdx[asId] = this.activeIdx[asId]! ^ 1;
  }

  /** @see virt/kvm/kvm_main.c kvm_activate_memslot() (6.18): replace on the now-inactive set */
  propagate(asId: number, old: MemorySlot | null, newSlot: MemorySlot | null): void {
    this.inactive(asId).replace(old, newSlot);
  }
}
