/**
 * Storage of the TDP MMU's page tables: 512-entry tables of 64-bit SPTEs kept as two Uint32Array
 * halves (table `t` occupies entries [t*512, t*512+512) of both), a free list, an occupancy
 * bitmap (one bit per entry that is not SHADOW_NONPRESENT_VALUE, so walks jump over empty
 * entries), and per-table metadata in typed arrays — the model's struct kvm_mmu_page.
 *
 * Memory per table: 4096 bytes of SPTEs (as in the kernel) + 64 bytes of bitmap + 21 bytes of
 * metadata, plus the slack of geometric growth (×1.5).
 * @see arch/x86/kvm/mmu/mmu_internal.h struct kvm_mmu_page (6.18): role.level, gfn, ptep,
 *      role.invalid, role.as_id (smm); tdp_mmu_alloc_sp(), tdp_mmu_free_sp()
 */
import { SHADOW_NONPRESENT_VALUE_HI, SHADOW_NONPRESENT_VALUE_LO, SPTE_ENT_PER_PAGE } from './spte.js';

/** Table flag: the table is allocated. */
export const PT_IN_USE = 1;
/** Table flag: the table is a root (no parent SPTE). */
export const PT_ROOT = 2;
/** Table flag: role.invalid (roots only). */
export const PT_INVALID = 4;

/** The model stores a child table's index in the SPTE address bits 12-31, hence the cap. */
export const MAX_PAGE_TABLES: number = 2 ** 20;

const WORDS = SPTE_ENT_PER_PAGE / 32; // bitmap words per table

export class PageTablePool {
  /** SPTE bits 0-31 of every table, table t at offset t*512. */
  lo: Uint32Array;
  /** SPTE bits 32-63. */
  hi: Uint32Array;
  /** Occupancy: bit (t*512+i) set iff entry i of table t is not SHADOW_NONPRESENT_VALUE. */
  occupied: Uint32Array;
  /** sp->role.level */
  level: Uint8Array;
  /** sp->gfn: the first gfn the table maps. */
  gfn: Float64Array;
  /** The table holding sp->ptep (-1 for roots). */
  parent: Int32Array;
  /** The index of sp->ptep in its table. */
  parentSlot: Uint16Array;
  /** PT_IN_USE | PT_ROOT | PT_INVALID */
  flags: Uint8Array;
  /** kvm_mmu_page_as_id() */
  asId: Uint8Array;
  /**
   * Allocation serial of each table: bumped by every alloc(), so a walker holding (table, serial)
   * can tell that its table was freed (and maybe reused) under it.
   */
  serial: Uint32Array;
  /** Tables allocated (roots included). */
  inUse = 0;
  private capacity: number;
  private fresh = 0;
  private free: Int32Array;
  private freeTop = 0;

  constructor(initialTables = 64) {
    const n = Math.max(4, Math.min(initialTables, MAX_PAGE_TABLES));
    this.capacity = n;
    this.lo = new Uint32Array(n * SPTE_ENT_PER_PAGE);
    this.hi = new Uint32Array(n * SPTE_ENT_PER_PAGE);
    this.occupied = new Uint32Array(n * WORDS);
    this.level = new Uint8Array(n);
    this.gfn = new Float64Array(n);
    this.parent = new Int32Array(n);
    this.parentSlot = new Uint16Array(n);
    this.flags = new Uint8Array(n);
    this.asId = new Uint8Array(n);
    this.serial = new Uint32Array(n);
    this.free = new Int32Array(n);
  }

  /**
   * A table filled with SHADOW_NONPRESENT_VALUE (the kernel's mmu_shadow_page_cache init_value).
   * May reallocate the typed arrays: callers re-read `lo`/`hi` afterwards.
   */
  alloc(level: number, gfn: number, parent: number, parentSlot: number, asId: number, flags: number): number {
    let t: number;
    if (this.freeTop > 0) t = this.free[--this.freeTop]!;
    else {
      if (this.fresh === this.capacity) this.grow();
      t = this.fresh++;
    }
    const off = t * SPTE_ENT_PER_PAGE;
    this.lo.fill(SHADOW_NONPRESENT_VALUE_LO, off, off + SPTE_ENT_PER_PAGE);
    this.hi.fill(SHADOW_NONPRESENT_VALUE_HI, off, off + SPTE_ENT_PER_PAGE);
    this.occupied.fill(0, t * WORDS, t * WORDS + WORDS);
    this.level[t] = level;
    this.gfn[t] = gfn;
    this.parent[t] = parent;
    this.parentSlot[t] = parentSlot;
    this.flags[t] = flags | PT_IN_USE;
    this.asId[t] = asId;
    this.serial[t] = this.serial[t]! + 1;
    this.inUse++;
    return t;
  }

  /** tdp_mmu_free_sp(): back to the free list (contents are reset by the next alloc). */
  release(t: number): void {
    this.flags[t] = 0;
    this.free[this.freeTop++] = t;
    this.inUse--;
  }

  /** Write an SPTE at absolute entry offset `o` and keep the occupancy bitmap in step. */
  set(o: number, lo: number, hi: number): void {
    this.lo[o] = lo;
    this.hi[o] = hi;
    const w = o >>> 5;
    if (lo === SHADOW_NONPRESENT_VALUE_LO && hi === SHADOW_NONPRESENT_VALUE_HI) this.occupied[w] = this.occupied[w]! & ~(1 << (o & 31));
    else this.occupied[w] = this.occupied[w]! | (1 << (o & 31));
  }

  /** Mark every entry of table t occupied (after filling it wholesale, e.g. a split). */
  markAllOccupied(t: number): void {
    this.occupied.fill(0xffffffff, t * WORDS, t * WORDS + WORDS);
  }

  /** The first occupied entry index ≥ `from` in table t, or -1. */
  nextOccupied(t: number, from: number): number {
    if (from >= SPTE_ENT_PER_PAGE) return -1;
    const first = t * WORDS;
    let w = first + (from >>> 5);
    const end = first + WORDS;
    let word = this.occupied[w]! & (-1 << (from & 31));
    for (;;) {
      if (word !== 0) return ((w - first) << 5) + (31 - Math.clz32(word & -word));
      if (++w === end) return -1;
      word = this.occupied[w]!;
    }
  }

  /** Bytes of typed-array heap held (capacity, not use). */
  heapBytes(): number {
    return (
      this.lo.byteLength + this.hi.byteLength + this.occupied.byteLength + this.level.byteLength + this.gfn.byteLength +
      this.parent.byteLength + this.parentSlot.byteLength + this.flags.byteLength + this.asId.byteLength + this.serial.byteLength +
      this.free.byteLength
    );
  }

  private grow(): void {
    const old = this.capacity;
    if (old >= MAX_PAGE_TABLES) throw new RangeError(`TDP MMU model: more than ${MAX_PAGE_TABLES} page tables`);
    const n = Math.min(MAX_PAGE_TABLES, Math.max(old + 16, Math.ceil(old * 1.5)));
    this.capacity = n;
    this.lo = grown(this.lo, new Uint32Array(n * SPTE_ENT_PER_PAGE));
    this.hi = grown(this.hi, new Uint32Array(n * SPTE_ENT_PER_PAGE));
    this.occupied = grown(this.occupied, new Uint32Array(n * WORDS));
    this.level = grown(this.level, new Uint8Array(n));
    this.gfn = grown(this.gfn, new Float64Array(n));
    this.parent = grown(this.parent, new Int32Array(n));
    this.parentSlot = grown(this.parentSlot, new Uint16Array(n));
    this.flags = grown(this.flags, new Uint8Array(n));
    this.asId = grown(this.asId, new Uint8Array(n));
    this.serial = grown(this.serial, new Uint32Array(n));
    this.free = grown(this.free, new Int32Array(n));
  }
}

function grown<T extends ArrayLike<number> & { set(a: ArrayLike<number>): void }>(old: T, next: T): T {
  next.set(old);
  return next;
}
