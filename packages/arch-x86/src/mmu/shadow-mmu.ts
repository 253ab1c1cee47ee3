/**
 * The shadow MMU (Linux 6.18's "legacy" MMU, arch/x86/kvm/mmu/mmu.c and paging_tmpl.h): shadow
 * pages found by (gfn, role) through a hash, each holding 512 SPTEs in the page-table pool shared
 * with the TDP MMU's format; the FIFO list of active pages with mmu_valid_gen for the fast zap;
 * parent pointers; rmaps from (slot, gfn, level) to leaf SPTEs; write protection of the gfns whose
 * guest page tables indirect pages shadow.
 *
 * Roles: level, direct, the mode (non-paging direct pages for the vCPU's gpa accesses, guest
 * paging, or nested EPT with role.guest_mode), the cumulative guest write permission
 * (role.access's W bit) and the address space (role.smm).
 *
 * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_get_shadow_page(), kvm_mmu_alloc_shadow_page(),
 *      account_shadowed(), __kvm_mmu_prepare_zap_page(), mmu_set_spte(), kvm_zap_obsolete_pages() (6.18)
 * @see arch/x86/kvm/mmu/mmu_internal.h struct kvm_mmu_page, union kvm_mmu_page_role (6.18)
 * Simplification: SPTEs use the EPT encoding of spte.ts in every mode (with ept=0 the kernel's
 * SPTEs use the legacy PTE bits; values differ, the meaning does not). No unsync pages (a shadowed
 * guest page table is always write-protected; the kernel may let a level-1 one go unsync), no
 * write-flooding detection, no prefetch, no n_max_mmu_pages reclaim. Roots are not pinned by
 * root_count: a zapped root is freed at once and the vCPU's next access loads a new one (the
 * kernel marks it invalid and frees it when the last vCPU drops it; the guest sees the same).
 */
import { type PgLevel } from '../lpage-info.js';
import { slotArch } from '../memslot-arch.js';
import type { MemorySlot } from '@kvmsim/kvm-core';
import { PageTablePool } from './page-table-pool.js';
import { MMIO_HIT, PAGES_PER_HPAGE, gfnRoundForLevel, hardwareWalk, spteIndex } from './table-walk.js';
import { RmapDescPool, type SlotRmaps } from './rmap.js';
import {
  LEAF_ACCESSED,
  LEAF_DIRTY,
  LEAF_HOST_WRITABLE,
  LEAF_WRITABLE,
  PT_PAGE_SIZE_MASK,
  PT_WRITABLE_MASK,
  SHADOW_NONPRESENT_VALUE_HI,
  SHADOW_NONPRESENT_VALUE_LO,
  SPTE_ENT_PER_PAGE,
  SPTE_MMU_PRESENT_MASK,
  VMX_EPT_ACCESS_BIT,
  VMX_EPT_DIRTY_BIT,
  getMmioSpteGeneration,
  isMmioSpte,
  leafSpteHi,
  leafSpteLo,
  mmioSpteHi,
  mmioSpteLo,
  nonLeafSpteHi,
  nonLeafSpteLo,
  spteToPfn,
} from './spte.js';

/** role.direct */
export const ROLE_DIRECT = 0x8;
/** Mode of a shadow page (bits 4-5 of the packed role). */
export const MODE_NONPAGING = 0;
export const MODE_PAGING = 1;
/** role.guest_mode: shadows L1's EPT12 for L2 (nested TDP). */
export const MODE_NESTED = 2;
/** role.access & ACC_WRITE_MASK */
export const ROLE_ACC_W = 0x40;

/** translate(): an MMIO SPTE. */
export const SHADOW_MMIO_HIT: typeof MMIO_HIT = MMIO_HIT;
/** fetch(): the leaf is in place (RET_PF_FIXED). */
export const RET_PF_FIXED = 1;
/** fetch(): a write to a write-protected guest page table: emulate it (RET_PF_EMULATE). */
export const RET_PF_EMULATE = 2;

const ENT = SPTE_ENT_PER_PAGE;
const PRESENT = SPTE_MMU_PRESENT_MASK;
const PS = PT_PAGE_SIZE_MASK;
const W = PT_WRITABLE_MASK;
const A = VMX_EPT_ACCESS_BIT;
const D = VMX_EPT_DIRTY_BIT;
const NP_LO = SHADOW_NONPRESENT_VALUE_LO;
const NP_HI = SHADOW_NONPRESENT_VALUE_HI;

/** Levels of the guest's own tables (4-level paging, 4-level EPT). */
const GUEST_LEVELS = 4;

/** Pack a role. */
export function shadowRole(level: number, direct: boolean, mode: number, accW: boolean, asId: number): number {
  return level | (direct ? ROLE_DIRECT : 0) | (mode << 4) | (accW ? ROLE_ACC_W : 0) | (asId << 8);
}


/** Where a leaf's gfn lives (the memslot whose rmaps hold it). */
export type SlotLookup = (asId: number, gfn: number) => MemorySlot | null;

/** Visitor of forEachLeaf(). */
export type ShadowLeafVisitor = (asId: number, gfn: number, level: number, pfn: number, writable: boolean, accessed: boolean, dirty: boolean) => void;

/** The guest translation an indirect fault installs, from the guest walk. */
export interface ShadowWalk {
  /** The guest leaf's level (1, 2 or 3). */
  level: number;
  /** tableGfn[l]: the gfn of the guest page table at level l (l = 1..root level). */
  tableGfn: number[];
  /** Cumulative guest W permission down to level l (accW[l], the access of the entry at l). */
  accW: boolean[];
  /** The 4 KiB data gfn. */
  gfn: number;
  /** The guest leaf's D bit: a clean gPTE is mapped read-only (FNAME(protect_clean_gpte)). */
  dirty: boolean;
}

export interface ShadowMmuStats {
  /** Shadow pages (n_used_mmu_pages). */
  pages: number;
  /** Of which shadow guest page tables (indirect_shadow_pages). */
  indirectPages: number;
  /** Of which obsolete (waiting for kvm_zap_obsolete_pages()). */
  obsoletePages: number;
  leaves: [number, number, number];
  mmioSptes: number;
  /** rmap descriptors in use. */
  rmapDescs: number;
  tableBytes: number;
  heapBytes: number;
}

export class ShadowMmu {
  readonly pool: PageTablePool;
  readonly descs: RmapDescPool = new RmapDescPool();
  readonly rootLevel: number;
  /** kvm->arch.mmu_valid_gen: toggles 0/1 (6.18) or counts up (the 2013 strategy). */
  mmuValidGen = 0;
  /** kvm->arch.indirect_shadow_pages */
  indirectShadowPages = 0;
  private readonly slotOf: SlotLookup;

  // Per-page metadata, indexed like the pool's tables.
  private role: Int32Array = new Int32Array(64);
  private gen: Float64Array = new Float64Array(64);
  private prev: Int32Array = new Int32Array(64);
  private next: Int32Array = new Int32Array(64);
  private hashNext: Int32Array = new Int32Array(64);
  /** The first parent SPTE (absolute offset) or -1; further parents in extraParents. */
  private parent0: Int32Array = new Int32Array(64);
  private readonly extraParents = new Map<number, number[]>();
  /** shadowed_translation: the gfn of each leaf of an indirect page. */
  private readonly xlate = new Map<number, Float64Array>();
  /** mmu_page_hash: gfn → first page of the chain. */
  private readonly hash = new Map<number, number>();
  /** active_mmu_pages: head = newest, tail = oldest. */
  private head = -1;
  private tail = -1;
  private n4k = 0;
  private n2m = 0;
  private n1g = 0;
  private nMmio = 0;

  constructor(options: { levels: number; slotOf: SlotLookup; initialTables?: number }) {
    this.rootLevel = options.levels;
    this.slotOf = options.slotOf;
    this.pool = new PageTablePool(options.initialTables ?? 16);
  }

  // ---- pages -----------------------------------------------------------------------------

  private ensureMeta(t: number): void {
    if (t < this.role.length) return;
    const n = Math.max(t + 1, Math.ceil(this.role.length * 1.5));
    const g32 = (a: Int32Array): Int32Array => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.role = g32(this.role);
    this.prev = g32(this.prev);
    this.next = g32(this.next);
    this.hashNext = g32(this.hashNext);
    this.parent0 = g32(this.parent0);
    const g = new Float64Array(n);
    g.set(this.gen);
    this.gen = g;
  }

  /** @see arch/x86/kvm/mmu/mmu.c is_obsolete_sp() (6.18) */
  isObsolete(t: number): boolean {
    return this.gen[t] !== this.mmuValidGen;
  }

  /**
   * A live (not obsolete) page with this gfn and role, or -1.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_find_shadow_page(), for_each_valid_sp() (6.18)
   */
  findPage(gfn: number, role: number): number {
    for (let t = this.hash.get(gfn) ?? -1; t >= 0; t = this.hashNext[t]!) {
      if (this.role[t] === role && !this.isObsolete(t)) return t;
    }
    return -1;
  }

  /**
   * Whether a valid page shadows a guest page table at `gfn`: the gfn is write-tracked.
   * @see arch/x86/kvm/mmu/mmu.c for_each_gfn_valid_sp_with_gptes(), mmu_try_to_unsync_pages() (6.18)
   */
  hasGptPage(asId: number, gfn: number): boolean {
    for (let t = this.hash.get(gfn) ?? -1; t >= 0; t = this.hashNext[t]!) {
      const r = this.role[t]!;
      if ((r & ROLE_DIRECT) === 0 && r >>> 8 === asId && !this.isObsolete(t)) return true;
    }
    return false;
  }

  /**
   * kvm_mmu_get_shadow_page(): the valid page for (gfn, role), allocated if there is none; a new
   * indirect page is accounted (its guest page table write-protected). Returns the page; sets
   * `flushNeeded` if write protection changed SPTEs.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_get_shadow_page(), kvm_mmu_alloc_shadow_page() (6.18)
   */
  getPage(gfn: number, role: number): number {
    const found = this.findPage(gfn, role);
    if (found >= 0) return found;
    const level = role & 7;
    const asId = role >>> 8;
    const t = this.pool.alloc(level, gfn, -1, 0, asId, 0);
    this.ensureMeta(t);
    this.role[t] = role;
    this.gen[t] = this.mmuValidGen;
    this.parent0[t] = -1;
    // list_add(&sp->link, &kvm->arch.active_mmu_pages): at the head (FIFO).
    this.prev[t] = -1;
    this.next[t] = this.head;
    if (this.head >= 0) this.prev[this.head] = t;
    this.head = t;
    if (this.tail < 0) this.tail = t;
    this.hashNext[t] = this.hash.get(gfn) ?? -1;
    this.hash.set(gfn, t);
    if ((role & ROLE_DIRECT) === 0) {
      this.xlate.set(t, new Float64Array(ENT));
      this.accountShadowed(t);
    }
    return t;
  }

  /**
   * A guest page table is shadowed: count it, forbid huge pages over its gfn, write-protect every
   * SPTE mapping it.
   * @see arch/x86/kvm/mmu/mmu.c account_shadowed(), kvm_mmu_slot_gfn_write_protect() (6.18)
   */
  private accountShadowed(t: number): void {
    this.indirectShadowPages++;
    const asId = this.role[t]! >>> 8;
    const gfn = this.pool.gfn[t]!;
    const slot = this.slotOf(asId, gfn);
    // The fault re-read the gPTEs through the memslots under mmu_lock (FNAME(gpte_changed)).
    if (slot === null) throw new Error(`KVM BUG: account_shadowed(): guest page table gfn 0x${gfn.toString(16)} has no memslot`);
    const arch = slotArch(slot);
    arch.lpage.update(slot.baseGfn, gfn, 1);
    if (arch.rmap !== null) this.flushNeeded = this.writeProtectGfn(arch.rmap, gfn) || this.flushNeeded;
  }

  /** @see arch/x86/kvm/mmu/mmu.c unaccount_shadowed() (6.18) */
  private unaccountShadowed(t: number): void {
    this.indirectShadowPages--;
    const asId = this.role[t]! >>> 8;
    const gfn = this.pool.gfn[t]!;
    const slot = this.slotOf(asId, gfn);
    if (slot === null || slotArch(slot).freed) {
      throw new Error(`use-after-free: unaccount_shadowed() of the shadow page for gfn 0x${gfn.toString(16)} reads the lpage_info of a memslot that was freed`);
    }
    slotArch(slot).lpage.update(slot.baseGfn, gfn, -1);
  }

  /** Set by operations whose changes need kvm_flush_remote_tlbs(); the caller clears it. */
  flushNeeded = false;

  /** Point the SPTE at `o` to page `child` and record the parent. @see arch/x86/kvm/mmu/mmu.c link_shadow_page(), mmu_page_add_parent_pte() (6.18) */
  private linkShadowPage(o: number, child: number): void {
    this.pool.set(o, nonLeafSpteLo(child), nonLeafSpteHi(child));
    if (this.parent0[child]! < 0) this.parent0[child] = o;
    else {
      const extra = this.extraParents.get(child);
      if (extra) extra.push(o);
      else this.extraParents.set(child, [o]);
    }
  }

  /** Unlink page `child` from the parent SPTE at `o`. @see arch/x86/kvm/mmu/mmu.c drop_parent_pte() (6.18) */
  private dropParentPte(child: number, o: number): void {
    this.pool.set(o, NP_LO, NP_HI);
    const extra = this.extraParents.get(child);
    if (this.parent0[child] === o) {
      if (extra && extra.length > 0) this.parent0[child] = extra.pop()!;
      else this.parent0[child] = -1;
    } else if (extra) {
      const k = extra.indexOf(o);
      if (k >= 0) extra.splice(k, 1);
    }
    if (extra && extra.length === 0) this.extraParents.delete(child);
  }

  private hasParents(t: number): boolean {
    return this.parent0[t]! >= 0;
  }

  /** The gfn a leaf at entry i of page t maps. @see arch/x86/kvm/mmu/mmu.c kvm_mmu_page_get_gfn() (6.18) */
  leafGfn(t: number, i: number): number {
    if (this.role[t]! & ROLE_DIRECT) return this.pool.gfn[t]! + i * PAGES_PER_HPAGE[this.pool.level[t]!]!;
    return this.xlate.get(t)![i]!;
  }

  /**
   * Zap one shadow page: its leaves leave their rmaps, children lose this parent (an orphaned
   * nested page is zapped too), parents lose their SPTE, an indirect page is unaccounted.
   * @see arch/x86/kvm/mmu/mmu.c __kvm_mmu_prepare_zap_page(), kvm_mmu_page_unlink_children(),
   *      mmu_page_zap_pte(), kvm_mmu_unlink_parents(), kvm_mmu_commit_zap_page() (6.18)
   */
  zapPage(t: number): void {
    if (this.pool.flags[t] === 0) return;
    const pool = this.pool;
    for (let i = pool.nextOccupied(t, 0); i >= 0; i = pool.nextOccupied(t, i + 1)) this.mmuPageZapPte(t, i);
    while (this.parent0[t]! >= 0) this.dropParentPte(t, this.parent0[t]!);
    if ((this.role[t]! & ROLE_DIRECT) === 0) {
      this.xlate.delete(t);
      this.unaccountShadowed(t);
    }
    // Out of the hash chain and the active list.
    const gfn = pool.gfn[t]!;
    let h = this.hash.get(gfn) ?? -1;
    if (h === t) {
      const n = this.hashNext[t]!;
      if (n < 0) this.hash.delete(gfn);
      else this.hash.set(gfn, n);
    } else {
      while (h >= 0 && this.hashNext[h] !== t) h = this.hashNext[h]!;
      if (h >= 0) this.hashNext[h] = this.hashNext[t]!;
    }
    const p = this.prev[t]!;
    const n = this.next[t]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    pool.release(t);
  }

  /** Clear entry i of page t. @see arch/x86/kvm/mmu/mmu.c mmu_page_zap_pte() (6.18) */
  private mmuPageZapPte(t: number, i: number): void {
    const pool = this.pool;
    const o = t * ENT + i;
    const lo = pool.lo[o]!;
    const hi = pool.hi[o]!;
    const level = pool.level[t]!;
    if ((lo & PRESENT) === 0) {
      if (isMmioSpte(lo, hi)) this.nMmio--;
      pool.set(o, NP_LO, NP_HI);
      return;
    }
    if (level === 1 || (lo & PS) !== 0) {
      this.dropSpte(t, i, lo);
      return;
    }
    const child = lo >>> 12;
    this.dropParentPte(child, o);
    // A nested (guest_mode) page left without parents is zapped with its parent.
    if (((this.role[child]! >>> 4) & 3) === MODE_NESTED && !this.hasParents(child)) this.zapPage(child);
  }

  /**
   * A present leaf leaves its rmap (`known`: the rmaps being walked, if any).
   * @see arch/x86/kvm/mmu/mmu.c drop_spte(), rmap_remove() (6.18)
   */
  private dropSpte(t: number, i: number, lo: number, known: SlotRmaps | null = null): void {
    const pool = this.pool;
    const level = pool.level[t]! as PgLevel;
    const o = t * ENT + i;
    const gfn = this.leafGfn(t, i);
    const rmaps = known ?? this.rmapsFor(this.role[t]! >>> 8, gfn);
    this.descs.remove(rmaps.heads[level - 1]!, rmaps.index(gfn, level), o);
    pool.set(o, NP_LO, NP_HI);
    this.addLeaves(level, -1);
    if (lo & PRESENT) this.flushNeeded = true;
  }

  private rmapsFor(asId: number, gfn: number): SlotRmaps {
    const slot = this.slotOf(asId, gfn);
    const rmaps = slot === null ? null : slotArch(slot).rmap;
    if (rmaps === null) throw new Error(`KVM BUG: rmap: gfn 0x${gfn.toString(16)} has no memslot with rmaps`);
    return rmaps;
  }

  private addLeaves(level: number, n: number): void {
    if (level === 1) this.n4k += n;
    else if (level === 2) this.n2m += n;
    else this.n1g += n;
  }

  /**
   * Install a leaf at entry i of page t mapping `gfn` (aligned to the page's level) to `pfn`.
   * @see arch/x86/kvm/mmu/mmu.c mmu_set_spte(); spte.c make_spte() (6.18)
   */
  private mmuSetSpte(t: number, i: number, gfn: number, pfn: number, writable: boolean, hostWritable: boolean): void {
    const pool = this.pool;
    const level = pool.level[t]! as PgLevel;
    const o = t * ENT + i;
    const oldLo = pool.lo[o]!;
    let keepRmap = false;
    if (oldLo & PRESENT) {
      if (level > 1 && (oldLo & PS) === 0) {
        // A page table replaced by a huge leaf: drop the child's link.
        this.dropParentPte(oldLo >>> 12, o);
        this.flushNeeded = true;
      } else if (spteToPfn(oldLo, pool.hi[o]!) !== pfn || this.leafGfn(t, i) !== gfn) {
        this.dropSpte(t, i, oldLo);
      } else keepRmap = true;
    } else if (isMmioSpte(oldLo, pool.hi[o]!)) this.nMmio--;
    let flags = LEAF_ACCESSED;
    if (hostWritable) flags |= LEAF_HOST_WRITABLE;
    if (writable && hostWritable) flags |= LEAF_WRITABLE | LEAF_DIRTY;
    pool.set(o, leafSpteLo(pfn, level, flags), leafSpteHi(pfn, level, flags));
    if (keepRmap) return;
    if ((this.role[t]! & ROLE_DIRECT) === 0) this.xlate.get(t)![i] = gfn;
    const rmaps = this.rmapsFor(this.role[t]! >>> 8, gfn);
    this.descs.add(rmaps.heads[level - 1]!, rmaps.index(gfn, level), o);
    this.addLeaves(level, 1);
  }

  // ---- the fault paths -------------------------------------------------------------------

  /** The root of a mode (gfn 0 for direct roots, the guest root table's gfn otherwise), or -1. */
  private root(rootGfn: number, mode: number, asId: number): number {
    return this.findPage(rootGfn, shadowRole(this.levelsOf(mode), mode === MODE_NONPAGING, mode, true, asId));
  }

  /** Root level: the `levels` option for direct roots, the guest's 4 levels for shadowed tables. */
  levelsOf(mode: number): number {
    return mode === MODE_NONPAGING ? this.rootLevel : GUEST_LEVELS;
  }

  /**
   * The hardware walk of the root for `mode` by page number `pn` (a gfn for non-paging, a gva or
   * L2 gpa page otherwise): the host frame, -1 on a fault, SHADOW_MMIO_HIT on an MMIO SPTE. Sets
   * A (and D on writes) like hardware.
   * Simplification: the hardware walk, no TLB (the kernel's vCPU caches translations).
   */
  translate(mode: number, rootGfn: number, asId: number, pn: number, write: boolean): number {
    const t = this.root(rootGfn, mode, asId);
    const L = this.levelsOf(mode);
    if (t < 0 || !(pn >= 0 && pn < PAGES_PER_HPAGE[L + 1]!)) return -1;
    return hardwareWalk(this.pool, t, L, pn, write);
  }


  /** The generation of the MMIO SPTE for `gfn` in the direct root, or -1. */
  mmioGeneration(asId: number, gfn: number): number {
    let t = this.root(0, MODE_NONPAGING, asId);
    if (t < 0) return -1;
    for (let level = this.rootLevel; ; level--) {
      const o = t * ENT + spteIndex(gfn, level);
      const l = this.pool.lo[o]!;
      const h = this.pool.hi[o]!;
      if ((l & PRESENT) === 0) return isMmioSpte(l, h) ? getMmioSpteGeneration(l, h) : -1;
      if (level === 1 || (l & PS) !== 0) return -1;
      t = l >>> 12;
    }
  }

  /**
   * Walk the direct (non-paging) root down to `level` for `gfn`, creating direct pages; a huge
   * leaf in the way is dropped (drop_large_spte()). Returns the page at `level`.
   * @see arch/x86/kvm/mmu/mmu.c direct_map(), mmu_alloc_direct_roots(), kvm_mmu_get_child_sp() (6.18)
   */
  private directWalk(asId: number, gfn: number, level: number): number {
    let t = this.getPage(0, shadowRole(this.rootLevel, true, MODE_NONPAGING, true, asId));
    for (let l = this.rootLevel; l > level; l--) {
      const i = spteIndex(gfn, l);
      const o = t * ENT + i;
      const lo = this.pool.lo[o]!;
      if (lo & PRESENT) {
        if ((lo & PS) === 0) {
          t = lo >>> 12;
          continue;
        }
        this.dropSpte(t, i, lo);
      } else if (isMmioSpte(lo, this.pool.hi[o]!)) this.mmuPageZapPte(t, i);
      const c = this.getPage(gfnRoundForLevel(gfn, l), shadowRole(l - 1, true, MODE_NONPAGING, true, asId));
      this.linkShadowPage(o, c);
      t = c;
    }
    return t;
  }

  /**
   * Map `gfn` at `level` in the non-paging root; `pfn` is the frame of the level's first gfn.
   * @see arch/x86/kvm/mmu/mmu.c direct_map() (6.18)
   */
  mapDirect(asId: number, gfn: number, pfn: number, level: PgLevel, writable: boolean, hostWritable: boolean): number {
    const t = this.directWalk(asId, gfn, level);
    // `pfn` is the frame of the level's first gfn (host frames need not be aligned).
    this.mmuSetSpte(t, spteIndex(gfn, level), gfnRoundForLevel(gfn, level), pfn, writable, hostWritable);
    this.lastLeaf = t * ENT + spteIndex(gfn, level);
    return RET_PF_FIXED;
  }

  /** The SPTE offset the last mapDirect()/fetch() installed (for kvm_mmu_set_spte). */
  lastLeaf = -1;

  /** Cache an MMIO SPTE in the non-paging root. @see arch/x86/kvm/mmu/mmu.c mark_mmio_spte(); spte.c make_mmio_spte() (6.18) */
  mapMmio(asId: number, gfn: number, gen: number): void {
    const t = this.directWalk(asId, gfn, 1);
    const o = t * ENT + spteIndex(gfn, 1);
    const lo = this.pool.lo[o]!;
    if (lo & PRESENT) return; // a racing fault mapped memory: the slot exists now
    if (!isMmioSpte(lo, this.pool.hi[o]!)) this.nMmio++;
    this.pool.set(o, mmioSpteLo(gfn, gen), mmioSpteHi(gfn, gen));
  }

  /**
   * FNAME(fetch): build the shadow of the guest walk for page number `pn` (gva or L2 gpa) under the
   * root shadowing `walk.tableGfn[root level]`: indirect pages for each guest table, direct pages
   * below a guest huge page, then the leaf at `level` (≤ the guest leaf's level). A leaf over a
   * gfn that is itself a shadowed guest page table is read-only; a write to it returns
   * RET_PF_EMULATE. `pfn` is the host frame of `walk.gfn`.
   * @see arch/x86/kvm/mmu/paging_tmpl.h FNAME(fetch), FNAME(page_fault) (6.18)
   */
  fetch(mode: number, asId: number, pn: number, walk: ShadowWalk, pfn: number, level: PgLevel, write: boolean, hostWritable: boolean): number {
    const L = GUEST_LEVELS;
    let t = this.getPage(walk.tableGfn[L]!, shadowRole(L, false, mode, true, asId));
    for (let l = L; l > level; l--) {
      const i = spteIndex(pn, l);
      const o = t * ENT + i;
      const childLevel = l - 1;
      const indirect = childLevel >= walk.level;
      const wantGfn = indirect ? walk.tableGfn[childLevel]! : gfnRoundForLevel(walk.gfn, l);
      const wantRole = shadowRole(childLevel, !indirect, mode, walk.accW[l]!, asId);
      const lo = this.pool.lo[o]!;
      if (lo & PRESENT) {
        if ((lo & PS) === 0) {
          const c = lo >>> 12;
          if (this.pool.gfn[c] === wantGfn && this.role[c] === wantRole && !this.isObsolete(c)) {
            t = c;
            continue;
          }
          this.mmuPageZapPte(t, i); // the guest changed its tables since this shadow was built
          this.flushNeeded = true;
        } else this.dropSpte(t, i, lo);
      }
      const c = this.getPage(wantGfn, wantRole);
      this.linkShadowPage(o, c);
      t = c;
    }
    const gfn = gfnRoundForLevel(walk.gfn, level);
    // make_spte(): no W over a write-tracked gfn (mmu_try_to_unsync_pages() fails: no unsync).
    // FNAME(protect_clean_gpte): no W until the guest's D is set, so the first write walks again.
    const writable = walk.accW[level]! && walk.dirty && !this.hasGptPage(asId, walk.gfn);
    // The frame of the leaf's first gfn: host frames of a huge page are contiguous, not aligned.
    this.mmuSetSpte(t, spteIndex(pn, level), gfn, pfn - (walk.gfn - gfn), writable, hostWritable);
    this.lastLeaf = t * ENT + spteIndex(pn, level);
    return write && !writable && walk.accW[level]! && walk.dirty ? RET_PF_EMULATE : RET_PF_FIXED;
  }

  /**
   * An emulated guest write of `bytes` at offset `offset` of `gfn`: every valid page shadowing a
   * guest page table there loses the SPTE of the written gPTE, or is zapped whole on a misaligned
   * write. Returns whether a flush is needed.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_track_write(), detect_write_misaligned(), get_written_sptes() (6.18)
   */
  trackWrite(asId: number, gfn: number, offset: number, bytes: number): boolean {
    if (this.indirectShadowPages === 0) return false;
    this.flushNeeded = false;
    for (const t of this.gptPagesAt(asId, gfn)) {
      if (this.pool.flags[t] === 0) continue;
      if (bytes < 4) this.zapPage(t);
      else this.mmuPageZapPte(t, offset >>> 3);
    }
    return this.flushNeeded;
  }

  /**
   * kvm_mmu_unprotect_gfn_and_retry() → kvm_mmu_unprotect_page(): zap every valid page shadowing a
   * guest page table at `gfn`, so a write to it can be mapped. Returns whether any was zapped.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_unprotect_gfn_and_retry(), kvm_mmu_unprotect_page() (6.18)
   */
  unprotectGfn(asId: number, gfn: number): boolean {
    const victims = this.gptPagesAt(asId, gfn);
    for (const t of victims) if (this.pool.flags[t] !== 0) this.zapPage(t);
    return victims.length > 0;
  }

  /** for_each_gfn_valid_sp_with_gptes(), collected first: zapping one page may free another. */
  private gptPagesAt(asId: number, gfn: number): number[] {
    const out: number[] = [];
    for (let t = this.hash.get(gfn) ?? -1; t >= 0; t = this.hashNext[t]!) {
      const r = this.role[t]!;
      if ((r & ROLE_DIRECT) === 0 && r >>> 8 === asId && !this.isObsolete(t)) out.push(t);
    }
    return out;
  }

  // ---- zaps ------------------------------------------------------------------------------

  /**
   * kvm_zap_obsolete_pages(): from the tail (oldest) of active_mmu_pages, zap pages while they are
   * obsolete; the first valid page ends the walk (the list is a FIFO).
   * @see arch/x86/kvm/mmu/mmu.c kvm_zap_obsolete_pages() (6.18)
   */
  zapObsoletePages(): number {
    let n = 0;
    while (this.tail >= 0 && this.isObsolete(this.tail)) {
      this.zapPage(this.tail);
      n++;
    }
    return n;
  }

  /** Every shadow page. @see arch/x86/kvm/mmu/mmu.c kvm_mmu_zap_all() (6.18) */
  zapAll(): void {
    while (this.tail >= 0) this.zapPage(this.tail);
  }

  /**
   * The pages of address space `asId` shadowing guest page tables at gfns in [start, end).
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_zap_memslot_pages_and_flush() (6.18)
   */
  zapGptPagesInRange(asId: number, start: number, end: number): boolean {
    const victims: number[] = [];
    for (let t = this.head; t >= 0; t = this.next[t]!) {
      const r = this.role[t]!;
      const gfn = this.pool.gfn[t]!;
      if ((r & ROLE_DIRECT) === 0 && r >>> 8 === asId && gfn >= start && gfn < end && !this.isObsolete(t)) victims.push(t);
    }
    for (const t of victims) this.zapPage(t);
    return victims.length > 0;
  }

  // ---- rmap walks ------------------------------------------------------------------------

  /**
   * Apply `op` to every leaf SPTE in the rmaps of [start, end) at levels [minLevel, maxLevel].
   * Returns whether any SPTE matched the op's condition.
   */
  private rmapWalk(rmaps: SlotRmaps, start: number, end: number, minLevel: number, maxLevel: number, op: number, bits: number): boolean {
    let any = false;
    for (let level = minLevel; level <= maxLevel; level++) {
      const heads = rmaps.heads[level - 1]!;
      const first = Math.max(0, rmaps.index(start, level as PgLevel));
      const last = Math.min(heads.length - 1, rmaps.index(end - 1, level as PgLevel));
      for (let i = first; i <= last; i++) {
        const h = heads[i]!;
        if (h === 0) continue;
        if (h > 0) {
          // The common single-SPTE case, without collect().
          if (this.rmapOp(h - 1, op, bits, rmaps)) any = true;
          if (any && op === OP_TEST_AGE) return true;
          continue;
        }
        const list = this.descs.collect(heads, i);
        const n = this.descs.collected;
        // A zap edits the chain under the walk: work on a copy.
        const copy = op === OP_ZAP ? list.slice(0, n) : list;
        for (let k = 0; k < n; k++) {
          if (this.rmapOp(copy[k]!, op, bits, rmaps)) any = true;
          if (any && op === OP_TEST_AGE) return true;
        }
      }
    }
    return any;
  }

  private rmapOp(o: number, op: number, bits: number, rmaps: SlotRmaps): boolean {
    const pool = this.pool;
    const lo = pool.lo[o]!;
    switch (op) {
      case OP_ZAP:
        this.dropSpte(o >>> 9, o & 511, lo, rmaps);
        return true;
      case OP_TEST_AGE:
        return (lo & A) !== 0;
      case OP_CLEAR: {
        if ((lo & bits) === 0) return false;
        pool.lo[o] = (lo & ~bits) >>> 0;
        return true;
      }
      default:
        return false;
    }
  }

  /** The shadow part of kvm_unmap_gfn_range(). @see arch/x86/kvm/mmu/mmu.c __kvm_rmap_zap_gfn_range(), kvm_zap_rmap() (6.18) */
  zapRange(slot: MemorySlot, start: number, end: number, minLevel = 1): boolean {
    const rmaps = slotArch(slot).rmap;
    if (rmaps === null || !(start < end)) return false;
    return this.rmapWalk(rmaps, start, end, minLevel, 3, OP_ZAP, 0);
  }

  /** Test (and with `clear`, clear) A of the range's leaves. @see arch/x86/kvm/mmu/mmu.c kvm_rmap_age_gfn_range() (6.18) */
  ageRange(slot: MemorySlot, start: number, end: number, clear: boolean): boolean {
    const rmaps = slotArch(slot).rmap;
    if (rmaps === null || !(start < end)) return false;
    return this.rmapWalk(rmaps, start, end, 1, 3, clear ? OP_CLEAR : OP_TEST_AGE, A);
  }

  /** Clear W, keep MMU-writable. @see arch/x86/kvm/mmu/mmu.c slot_rmap_write_protect(), rmap_write_protect() (6.18) */
  writeProtectRange(slot: MemorySlot, start: number, end: number, minLevel: number): boolean {
    const rmaps = slotArch(slot).rmap;
    if (rmaps === null || !(start < end)) return false;
    return this.rmapWalk(rmaps, start, end, minLevel, 3, OP_CLEAR, W);
  }

  /** Clear D of the 4K leaves of [start, end). @see arch/x86/kvm/mmu/mmu.c __rmap_clear_dirty() (6.18) */
  clearDirtyRange(slot: MemorySlot, start: number, end: number): boolean {
    const rmaps = slotArch(slot).rmap;
    if (rmaps === null || !(start < end)) return false;
    return this.rmapWalk(rmaps, start, end, 1, 1, OP_CLEAR, D);
  }

  /**
   * kvm_mmu_write_protect_pt_masked() / kvm_mmu_clear_dirty_pt_masked(): for each bit of the
   * 64-bit mask, clear W (or D) of the 4K leaves of that gfn.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_write_protect_pt_masked(), kvm_mmu_clear_dirty_pt_masked() (6.18)
   */
  clearMasked(slot: MemorySlot, gfnBase: number, maskLo: number, maskHi: number, wrprot: boolean): void {
    for (let b = 0; b < 64; b++) {
      const bit = b < 32 ? (maskLo >>> b) & 1 : (maskHi >>> (b - 32)) & 1;
      if (bit) this.clearDirtyOrW(slot, gfnBase + b, wrprot ? W : D);
    }
  }

  private clearDirtyOrW(slot: MemorySlot, gfn: number, bits: number): void {
    const rmaps = slotArch(slot).rmap;
    if (rmaps === null) return;
    this.rmapWalk(rmaps, gfn, gfn + 1, 1, 1, OP_CLEAR, bits);
  }

  /** Write-protect every SPTE mapping one gfn. @see arch/x86/kvm/mmu/mmu.c kvm_mmu_slot_gfn_write_protect() (6.18) */
  private writeProtectGfn(rmaps: SlotRmaps, gfn: number): boolean {
    return this.rmapWalk(rmaps, gfn, gfn + 1, 1, 3, OP_CLEAR, W);
  }

  /** Dirty 4K leaves of [start, end), for PML harvesting: calls `visit(gfn)`. */
  forEachDirty4k(slot: MemorySlot, start: number, end: number, visit: (gfn: number) => void): void {
    const rmaps = slotArch(slot).rmap;
    if (rmaps === null) return;
    const heads: Int32Array = rmaps.heads[0];
    for (let gfn = start; gfn < end; gfn++) {
      const i = rmaps.index(gfn, 1);
      if (heads[i] === 0) continue;
      const list = this.descs.collect(heads, i);
      for (let k = 0; k < this.descs.collected; k++) {
        if (this.pool.lo[list[k]!]! & D) {
          visit(gfn);
          break;
        }
      }
    }
  }

  // ---- views -----------------------------------------------------------------------------

  /** Every present leaf of every valid page, newest page first. */
  forEachLeaf(visit: ShadowLeafVisitor): void {
    const pool = this.pool;
    for (let t = this.head; t >= 0; t = this.next[t]!) {
      if (this.isObsolete(t)) continue;
      const level = pool.level[t]!;
      const asId = this.role[t]! >>> 8;
      for (let i = pool.nextOccupied(t, 0); i >= 0; i = pool.nextOccupied(t, i + 1)) {
        const o = t * ENT + i;
        const lo = pool.lo[o]!;
        if ((lo & PRESENT) === 0 || (level > 1 && (lo & PS) === 0)) continue;
        const pfn = spteToPfn(lo, pool.hi[o]!);
        visit(asId, this.leafGfn(t, i), level, pfn, (lo & W) !== 0, (lo & A) !== 0, (lo & D) !== 0);
      }
    }
  }

  /** The role of page t (tests, traces). */
  roleOf(t: number): number {
    return this.role[t]!;
  }

  /** Pages on active_mmu_pages, newest first (tests). */
  pages(): number[] {
    const out: number[] = [];
    for (let t = this.head; t >= 0; t = this.next[t]!) out.push(t);
    return out;
  }

  stats(): ShadowMmuStats {
    let obsolete = 0;
    for (let t = this.head; t >= 0; t = this.next[t]!) if (this.isObsolete(t)) obsolete++;
    return {
      pages: this.pool.inUse,
      indirectPages: this.indirectShadowPages,
      obsoletePages: obsolete,
      leaves: [this.n4k, this.n2m, this.n1g],
      mmioSptes: this.nMmio,
      rmapDescs: this.descs.inUse,
      tableBytes: this.pool.inUse * 4096,
      heapBytes: this.pool.heapBytes() + this.descs.heapBytes() + this.role.byteLength * 5 + this.gen.byteLength,
    };
  }
}

const OP_ZAP = 1;
const OP_TEST_AGE = 2;
const OP_CLEAR = 3;
