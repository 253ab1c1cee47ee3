/**
 * Reverse maps of the shadow MMU: for every gfn of a memslot and every mapping level (4K, 2M, 1G),
 * the set of leaf SPTEs that map it, so that a zap, an aging pass or a write-protection of a gfn
 * range finds its SPTEs without walking page tables.
 *
 * Layout, as in the kernel's `struct kvm_rmap_head`: one 32-bit head per (huge) gfn in an
 * Int32Array per slot and level — 0 is empty, a positive value is the single SPTE (its absolute
 * offset in the page-table pool + 1), a negative value −(d + 1) is a chain of descriptors of
 * PTE_LIST_EXT = 14 SPTEs each (`struct pte_list_desc`), in one VM-wide typed-array pool. Memory
 * per mapped 4 KiB page: the 4-byte head (the SPTE itself is in the pool); descriptors only for
 * gfns mapped more than once (aliases, guest page tables shadowed at several places).
 *
 * @see arch/x86/kvm/mmu/mmu.c pte_list_add(), pte_list_remove(), kvm_rmap_head, gfn_to_rmap() (6.18)
 * Simplification: no KVM_RMAP_LOCKED bit; every rmap operation is one atomic step of the model
 * (writers hold mmu_lock for write, the lockless aging reader runs between their steps).
 */
import { gfnToIndex, type PgLevel } from '../lpage-info.js';

/** PTE_LIST_EXT: SPTEs per descriptor. */
export const PTE_LIST_EXT = 14;

/** The rmap heads of one memslot: `heads[level - 1][gfn_to_index(gfn, base, level)]`. */
export class SlotRmaps {
  readonly baseGfn: number;
  readonly heads: [Int32Array, Int32Array, Int32Array];

  constructor(baseGfn: number, npages: number) {
    this.baseGfn = baseGfn;
    const last = baseGfn + npages - 1;
    this.heads = [
      new Int32Array(npages),
      new Int32Array(gfnToIndex(last, baseGfn, 2) + 1),
      new Int32Array(gfnToIndex(last, baseGfn, 3) + 1),
    ];
  }

  /** gfn_to_rmap(): the head array and index for (gfn, level). */
  index(gfn: number, level: PgLevel): number {
    return gfnToIndex(gfn, this.baseGfn, level);
  }

  /** Bytes held by the heads. */
  bytes(): number {
    return this.heads[0].byteLength + this.heads[1].byteLength + this.heads[2].byteLength;
  }
}

/** The VM-wide pool of pte_list_desc chains. */
export class RmapDescPool {
  /** Entry j of descriptor d at d * PTE_LIST_EXT + j (absolute SPTE offsets). */
  sptes: Int32Array;
  /** Entries used in each descriptor. */
  count: Uint8Array;
  /** The next descriptor of the chain, or -1. */
  next: Int32Array;
  /** Descriptors in use. */
  inUse = 0;
  private capacity: number;
  private fresh = 0;
  private free: number[] = [];
  /** Scratch for collect(): reused, so walks that modify the rmap stay allocation-free. */
  private scratch = new Int32Array(64);

  constructor(initial = 64) {
    this.capacity = initial;
    this.sptes = new Int32Array(initial * PTE_LIST_EXT);
    this.count = new Uint8Array(initial);
    this.next = new Int32Array(initial);
  }

  /** pte_list_add(): add SPTE offset `o` to heads[i]. */
  add(heads: Int32Array, i: number, o: number): void {
    const h = heads[i]!;
    if (h === 0) {
      heads[i] = o + 1;
      return;
    }
    if (h > 0) {
      const d = this.alloc();
      this.sptes[d * PTE_LIST_EXT] = h - 1;
      this.sptes[d * PTE_LIST_EXT + 1] = o;
      this.count[d] = 2;
      this.next[d] = -1;
      heads[i] = -(d + 1);
      return;
    }
    const d = -h - 1;
    if (this.count[d]! < PTE_LIST_EXT) {
      this.sptes[d * PTE_LIST_EXT + this.count[d]!] = o;
      this.count[d] = this.count[d]! + 1;
      return;
    }
    // The head descriptor is full: a new one goes in front (the kernel's "more" chain).
    const n = this.alloc();
    this.sptes[n * PTE_LIST_EXT] = o;
    this.count[n] = 1;
    this.next[n] = d;
    heads[i] = -(n + 1);
  }

  /** pte_list_remove(): drop `o` from heads[i]; the kernel BUG()s if it is not there. */
  remove(heads: Int32Array, i: number, o: number): void {
    const h = heads[i]!;
    if (h > 0) {
      if (h - 1 !== o) throw new Error(`KVM BUG: rmap: SPTE ${o} not in its rmap`);
      heads[i] = 0;
      return;
    }
    if (h === 0) throw new Error(`KVM BUG: rmap: SPTE ${o} removed from an empty rmap`);
    const head = -h - 1;
    for (let d = head; d >= 0; d = this.next[d]!) {
      const base = d * PTE_LIST_EXT;
      const n = this.count[d]!;
      for (let j = 0; j < n; j++) {
        if (this.sptes[base + j] !== o) continue;
        // Fill the hole with the head descriptor's last entry (pte_list_desc_remove_entry()).
        const hn = this.count[head]! - 1;
        this.sptes[base + j] = this.sptes[head * PTE_LIST_EXT + hn]!;
        this.count[head] = hn;
        if (hn === 0) {
          const rest = this.next[head]!;
          this.release(head);
          heads[i] = rest < 0 ? 0 : -(rest + 1);
        }
        this.collapse(heads, i);
        return;
      }
    }
    throw new Error(`KVM BUG: rmap: SPTE ${o} not in its rmap`);
  }

  /**
   * Copy the SPTE offsets of heads[i] into a scratch array (valid until the next collect()) and
   * return how many there are, so the caller may modify the rmap while processing them.
   */
  collect(heads: Int32Array, i: number): Int32Array {
    const h = heads[i]!;
    let n = 0;
    if (h > 0) {
      this.scratch[0] = h - 1;
      n = 1;
    } else if (h < 0) {
      for (let d = -h - 1; d >= 0; d = this.next[d]!) {
        const c = this.count[d]!;
        if (n + c > this.scratch.length) {
          const s = new Int32Array(this.scratch.length * 2 + c);
          s.set(this.scratch);
          this.scratch = s;
        }
        this.scratch.set(this.sptes.subarray(d * PTE_LIST_EXT, d * PTE_LIST_EXT + c), n);
        n += c;
      }
    }
    this.collected = n;
    return this.scratch;
  }

  /** How many entries the last collect() returned. */
  collected = 0;

  /** Number of SPTEs in heads[i]. */
  size(heads: Int32Array, i: number): number {
    const h = heads[i]!;
    if (h >= 0) return h === 0 ? 0 : 1;
    let n = 0;
    for (let d = -h - 1; d >= 0; d = this.next[d]!) n += this.count[d]!;
    return n;
  }

  /** Bytes of typed-array heap held. */
  heapBytes(): number {
    return this.sptes.byteLength + this.count.byteLength + this.next.byteLength;
  }

  /** A chain of one descriptor with one entry becomes a single-SPTE head again. */
  private collapse(heads: Int32Array, i: number): void {
    const h = heads[i]!;
    if (h >= 0) return;
    const d = -h - 1;
    if (this.count[d] === 1 && this.next[d]! < 0) {
      heads[i] = this.sptes[d * PTE_LIST_EXT]! + 1;
      this.release(d);
    }
  }

  private alloc(): number {
    this.inUse++;
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.fresh === this.capacity) this.grow();
    return this.fresh++;
  }

  private release(d: number): void {
    this.inUse--;
    this.count[d] = 0;
    this.free.push(d);
  }

  private grow(): void {
    const n = Math.ceil(this.capacity * 1.5) + 16;
    const s = new Int32Array(n * PTE_LIST_EXT);
    s.set(this.sptes);
    const c = new Uint8Array(n);
    c.set(this.count);
    const x = new Int32Array(n);
    x.set(this.next);
    this.sptes = s;
    this.count = c;
    this.next = x;
    this.capacity = n;
  }
}
