/**
 * The TDP MMU page-table engine (Linux 6.18, EPT with A/D bits): roots per address space, 512-entry
 * tables in a typed-array pool (page-table-pool.ts), the fault-path map with in-place huge page
 * split, leaf zaps, root invalidation and zapping, aging, write protection, dirty clearing and
 * eager splitting. SPTE values and the `kvm_tdp_mmu_spte_changed` trace events (order and
 * values) follow the kernel.
 *
 * @see arch/x86/kvm/mmu/tdp_mmu.c, tdp_iter.c (6.18)
 * Simplification: each public call is one atomic step. In the kernel, faults, splits, dirty-log
 * walks and aging update SPTEs with cmpxchg under the read lock (or RCU) and a loser retries or
 * gives up; with calls serialized by the model's scheduler the outcome of such a race equals one
 * of the two orders, so there is no cmpxchg, no FROZEN_SPTE as an intermediate state, no RCU and
 * no yielding. FROZEN_SPTE survives only as the value traced for the entries of a removed table.
 * Simplification: tables store a child table's pool index where the kernel stores its physical
 * address; no TDX mirror roots, no NX huge page recovery list, no prefetch (A is always set).
 */
import type { Steps, YieldPoint } from '@kvmsim/kvm-core';
import { PT_INVALID, PT_IN_USE, PT_ROOT, PageTablePool } from './page-table-pool.js';
import { MMIO_HIT, PAGES_PER_HPAGE, gfnRoundForLevel, hardwareWalk, spteIndex } from './table-walk.js';
import {
  FROZEN_SPTE_HI,
  FROZEN_SPTE_LO,
  LEAF_ACCESSED,
  LEAF_DIRTY,
  LEAF_HOST_WRITABLE,
  LEAF_NO_EXEC,
  LEAF_NO_IPAT,
  LEAF_WRITABLE,
  PT_PAGE_SIZE_MASK,
  PT_WRITABLE_MASK,
  SHADOW_NONPRESENT_VALUE_HI,
  SHADOW_NONPRESENT_VALUE_LO,
  SPTE_BASE_ADDR_MASK_HI,
  SPTE_BASE_ADDR_MASK_LO,
  SPTE_ENT_PER_PAGE,
  SPTE_MMU_PRESENT_MASK,
  VMX_EPT_ACCESS_BIT,
  VMX_EPT_DIRTY_BIT,
  VMX_EPT_EXECUTABLE_MASK,
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

/** translate(): the SPTE is an MMIO SPTE (EPT misconfiguration exit). */
export { MMIO_HIT };
/** map()/mapMmio(): a new SPTE was installed (RET_PF_FIXED / RET_PF_EMULATE). */
export const TDP_MAP_FIXED = 1;
/** map()/mapMmio(): the SPTE already had that value (RET_PF_SPURIOUS). */
export const TDP_MAP_SPURIOUS = 2;
/** Or'ed into TDP_MAP_FIXED when a present non-leaf was replaced: kvm_flush_remote_tlbs_gfn(). */
export const TDP_MAP_FLUSH = 4;

/** The `kvm_tdp_mmu_spte_changed` trace: `as id %d gfn %llx level %d old_spte %llx new_spte %llx`. */
export type SpteChangedHook = (asId: number, gfn: number, level: number, oldLo: number, oldHi: number, newLo: number, newHi: number) => void;

/** forEachLeaf() visitor: one call per present leaf (a huge leaf once, at its first gfn). */
export type TdpLeafVisitor = (
  asId: number,
  gfn: number,
  level: number,
  pfn: number,
  writable: boolean,
  accessed: boolean,
  dirty: boolean,
  validRoot: boolean,
) => void;

export interface TdpMmuOptions {
  /** TDP root level (4- or 5-level EPT). */
  levels: 4 | 5;
  /** kvm_arch_nr_memslot_as_ids(): 2 with SMM. */
  nrAddressSpaces: number;
  /** Called for every SPTE change (leaf or non-leaf), as trace_kvm_tdp_mmu_spte_changed(). */
  onSpteChanged?: SpteChangedHook;
  /** The nx_huge_pages mitigation: huge leaves are not executable. Default false (host not affected). */
  nxHugePages?: boolean;
  /** KVM_X86_QUIRK_IGNORE_GUEST_PAT in effect (memtype WB|IPAT). Default true. */
  ignoreGuestPat?: boolean;
  /** CONFIG_KVM_PROVE_MMU: root zaps skip the 4K and 2M passes. Default false. */
  proveMmu?: boolean;
  /** Initial capacity of the page-table pool, in tables. */
  initialTables?: number;
  /**
   * Fault switch `agingFreedRoot`: roots are freed at once (no RCU grace period) and lockless
   * aging does not skip roots invalidated since its walk began. Default false.
   */
  agingFreedRoot?: boolean;
}

export interface TdpMmuStats {
  /** Roots on tdp_mmu_roots, valid and invalid. */
  roots: number;
  /** Of which role.invalid. */
  invalidRoots: number;
  /** Page tables allocated, roots included (kvm->arch.tdp_mmu_pages + roots). */
  tables: number;
  /** Present leaves at 4K, 2M, 1G over all roots (the pages_4k/pages_2m/pages_1g VM stats). */
  leaves: [number, number, number];
  /** MMIO SPTEs over all roots. */
  mmioSptes: number;
  /** tables × 4096: what the kernel would spend on page tables. */
  tableBytes: number;
  /** Typed-array heap actually held by the pool (capacity). */
  heapBytes: number;
}

const PRESENT = SPTE_MMU_PRESENT_MASK;
const PS = PT_PAGE_SIZE_MASK;
const W = PT_WRITABLE_MASK;
const A = VMX_EPT_ACCESS_BIT;
const D = VMX_EPT_DIRTY_BIT;
const NP_LO = SHADOW_NONPRESENT_VALUE_LO;
const NP_HI = SHADOW_NONPRESENT_VALUE_HI;
const ENT = SPTE_ENT_PER_PAGE;
const P20 = 1048576;


const OP_NONE = 0;
const OP_ZAP = 1;
const OP_AGE = 2;
const OP_WRPROT = 3;
const OP_CLEAR_DIRTY = 4;
const OP_CLEAR_MASKED = 5;
const OP_SPLIT = 6;
const OP_VISIT = 7;
const OP_ZAP_MMIO = 8;
const OP_MAP = 9;
const OP_ZAP_ROOTS = 10;

export class TdpMmu {
  /** trace_kvm_tdp_mmu_spte_changed(); may be (re)attached at any time. */
  onSpteChanged: SpteChangedHook | undefined;
  readonly rootLevel: 4 | 5;
  readonly nrAddressSpaces: number;
  /** First gfn a root cannot map: 512^rootLevel (2^36 for 4-level EPT, 2^45 for 5-level). */
  readonly maxGfnExclusive: number;
  readonly pool: PageTablePool;
  /** The SPTE found by the last getLastSpte(), low half. */
  lastLo = 0;
  /** The SPTE found by the last getLastSpte(), high half. */
  lastHi = 0;

  /** The valid root of each address space, or -1. */
  private readonly validRoots: Int32Array;
  /** kvm->arch.tdp_mmu_roots: newest first (list_add_rcu() adds at the head). */
  private readonly rootList: number[] = [];
  private readonly nxHugePages: boolean;
  private readonly leafExtra: number;
  private readonly proveMmu: boolean;
  private readonly agingFreedRoot: boolean;
  /** RCU readers (lockless aging walks) in progress. */
  private rcuReaders = 0;
  /** Roots zapped while readers were in progress: call_rcu(tdp_mmu_free_sp_rcu_callback). */
  private readonly rcuDeferred: number[] = [];
  private n4k = 0;
  private n2m = 0;
  private n1g = 0;
  private nMmio = 0;

  // State of the range walk in progress (fields, not closures: the walk stays allocation-free).
  private op = OP_NONE;
  private opAsId = 0;
  private opValidRoot = false;
  private opResult = false;
  private opDone = false;
  private opClear = false;
  private opLevel = 1;
  private opBase = 0;
  private opMaskLo = 0;
  private opMaskHi = 0;
  private opBits = 0;
  private opVisit: TdpLeafVisitor | undefined = undefined;

  constructor(options: TdpMmuOptions) {
    this.rootLevel = options.levels;
    this.nrAddressSpaces = options.nrAddressSpaces;
    this.onSpteChanged = options.onSpteChanged;
    this.nxHugePages = options.nxHugePages ?? false;
    this.leafExtra = options.ignoreGuestPat === false ? LEAF_NO_IPAT : 0;
    this.proveMmu = options.proveMmu ?? false;
    this.agingFreedRoot = options.agingFreedRoot ?? false;
    this.maxGfnExclusive = PAGES_PER_HPAGE[options.levels + 1]!;
    this.validRoots = new Int32Array(options.nrAddressSpaces).fill(-1);
    this.pool = new PageTablePool(options.initialTables ?? 64);
  }

  // ---- roots ---------------------------------------------------------------------------------

  /**
   * The valid root of an address space, allocated on first use.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_alloc_root() (6.18)
   */
  private rootFor(asId: number): number {
    let r = this.validRoots[asId];
    if (r === undefined) throw new RangeError(`TdpMmu: address space ${asId} of ${this.nrAddressSpaces}`);
    if (r < 0) {
      r = this.pool.alloc(this.rootLevel, 0, -1, 0, asId, PT_ROOT);
      this.validRoots[asId] = r;
      this.rootList.unshift(r);
    }
    return r;
  }

  /** Whether an address space has a valid root (a vCPU's mmu->root.hpa is loaded). */
  hasValidRoot(asId: number): boolean {
    return (this.validRoots[asId] ?? -1) >= 0;
  }

  /**
   * Mark every root invalid; the next fault allocates a new valid root. Invalid roots keep their
   * SPTEs (and are still reached by zapLeafs) until zapInvalidatedRoots().
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_invalidate_all_roots() (6.18)
   */
  invalidateAllRoots(): void {
    const pool = this.pool;
    for (const r of this.rootList) pool.flags[r] = pool.flags[r]! | PT_INVALID;
    this.validRoots.fill(-1);
  }

  /**
   * Zap every invalidated root (4K, 2M, 1G, root-level passes) and free it. `shared` (default,
   * as from kvm_mmu_zap_all_fast()) is the read-lock flavour, whose removed tables trace all 512
   * entries as frozen; exclusive (VM teardown) traces only the present ones.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_zap_invalidated_roots(), tdp_mmu_zap_root() (6.18)
   */
  zapInvalidatedRoots(shared = true): void {
    this.begin(OP_ZAP_ROOTS);
    try {
      const roots = this.rootList;
      for (let k = 0; k < roots.length; ) {
        const r = roots[k]!;
        if (this.pool.flags[r]! & PT_INVALID) {
          this.zapRoot(r, shared);
          // The root's memory goes back after an RCU grace period, so lockless walkers that
          // found it on the list can finish (tdp_mmu_free_sp_rcu_callback()).
          if (this.rcuReaders > 0 && !this.agingFreedRoot) this.rcuDeferred.push(r);
          else this.pool.release(r);
          roots.splice(k, 1);
        } else k++;
      }
    } finally {
      this.op = OP_NONE;
    }
  }

  /**
   * Zap every SPTE of every root, valid and invalid, under the write lock. Roots themselves stay
   * (valid ones remain loaded, invalid ones wait for zapInvalidatedRoots()), as in the kernel.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_zap_all() (6.18)
   */
  zapAll(): void {
    this.begin(OP_ZAP_ROOTS);
    try {
      for (const r of this.rootList) this.zapRoot(r, false);
    } finally {
      this.op = OP_NONE;
    }
  }

  /**
   * Zap every MMIO SPTE of every root. A model helper with no 6.18 counterpart: on an MMIO
   * generation wrap, 6.18 zaps everything fast (invalidateAllRoots() + zapInvalidatedRoots()).
   */
  zapAllMmioSptes(): void {
    this.rangeOp(OP_ZAP_MMIO, -1, false, 0, this.maxGfnExclusive, 1);
  }

  /** @see arch/x86/kvm/mmu/tdp_mmu.c tdp_mmu_zap_root() (6.18): passes of decreasing granularity */
  private zapRoot(root: number, shared: boolean): void {
    const L = this.rootLevel;
    if (!this.proveMmu) {
      this.zapPass(root, L, 1, shared);
      this.zapPass(root, L, 2, shared);
    }
    this.zapPass(root, L, 3, shared);
    this.zapPass(root, L, L, shared);
  }

  /** @see arch/x86/kvm/mmu/tdp_mmu.c __tdp_mmu_zap_root() (6.18) */
  private zapPass(t: number, level: number, zapLevel: number, shared: boolean): void {
    const pool = this.pool;
    const base = pool.gfn[t]!;
    const pages = PAGES_PER_HPAGE[level]!;
    const asId = pool.asId[t]!;
    for (let i = pool.nextOccupied(t, 0); i >= 0; i = pool.nextOccupied(t, i + 1)) {
      const o = t * ENT + i;
      const lo = pool.lo[o]!;
      if ((lo & PRESENT) === 0) continue;
      if (level === zapLevel) {
        const hi = pool.hi[o]!;
        pool.set(o, NP_LO, NP_HI);
        this.changed(asId, base + i * pages, level, lo, hi, NP_LO, NP_HI, shared);
      } else if ((lo & PS) === 0) this.zapPass(lo >>> 12, level - 1, zapLevel, shared);
    }
  }

  // ---- the hardware walk ---------------------------------------------------------------------

  /**
   * The CPU's EPT walk of the valid root: the host frame (pfn + offset within a huge leaf), -1 on
   * an EPT violation (not present, or a write to a non-writable leaf) or MMIO_HIT on an EPT
   * misconfiguration (MMIO SPTE). Sets A, and D on writes, like hardware (no trace: the CPU
   * writes those bits behind KVM's back).
   */
  translate(asId: number, gfn: number, write: boolean): number {
    const t = this.validRoots[asId] ?? -1;
    if (t < 0 || !(gfn >= 0 && gfn < this.maxGfnExclusive)) return -1;
    return hardwareWalk(this.pool, t, this.rootLevel, gfn, write);
  }


  /**
   * The last SPTE on the walk of the valid root to `gfn` (a leaf, or the first non-present SPTE),
   * left in lastLo/lastHi; returns its level, or 0 without a valid root.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_get_walk(), kvm_tdp_mmu_fast_pf_get_last_sptep() (6.18)
   */
  getLastSpte(asId: number, gfn: number): number {
    let t = this.validRoots[asId] ?? -1;
    if (t < 0 || !(gfn >= 0 && gfn < this.maxGfnExclusive)) return 0;
    const pool = this.pool;
    for (let level: number = this.rootLevel; ; level--) {
      const o = t * ENT + spteIndex(gfn, level);
      const l = pool.lo[o]!;
      if ((l & PRESENT) === 0 || level === 1 || (l & PS) !== 0) {
        this.lastLo = l;
        this.lastHi = pool.hi[o]!;
        return level;
      }
      t = l >>> 12;
    }
  }

  /**
   * The generation of the MMIO SPTE mapping `gfn` in the valid root, or -1 if it is not one.
   * @see arch/x86/kvm/mmu/mmu.c get_mmio_spte(), check_mmio_spte() (6.18)
   */
  mmioGeneration(asId: number, gfn: number): number {
    if (this.getLastSpte(asId, gfn) === 0) return -1;
    return isMmioSpte(this.lastLo, this.lastHi) ? getMmioSpteGeneration(this.lastLo, this.lastHi) : -1;
  }

  // ---- the fault path ------------------------------------------------------------------------

  /**
   * Install a leaf for `gfn` at `level` (the goal level kvm_mmu_hugepage_adjust() chose): walk
   * down the valid root (allocated on demand), linking new tables (non-leaf SPTEs with A set) and
   * splitting a huge leaf above the goal in place (children inherit its bits), then set the leaf
   * like make_spte(): A set; W, MMU-writable and D when `writable` and `hostWritable`;
   * Host-writable from `hostWritable` (`writable` false with `hostWritable` true is a write-tracked
   * gfn: {Host-W=1, MMU-W=0, W=0}). `pfn` is aligned down to the level. Returns TDP_MAP_SPURIOUS
   * if the SPTE already had that value, else TDP_MAP_FIXED (| TDP_MAP_FLUSH when a page table was
   * replaced by a huge leaf). Throws (the kernel BUG()s) when a present leaf would be replaced by
   * one with a different pfn: the MMU notifier must zap first.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_map(), tdp_mmu_map_handle_target_level() (6.18)
   * @see arch/x86/kvm/mmu/spte.c make_spte() (6.18): D is set whenever the new leaf is writable (6.13+)
   */
  map(asId: number, gfn: number, pfn: number, level: 1 | 2 | 3, writable: boolean, hostWritable: boolean): number {
    if (level < 1 || level > 3) throw new RangeError(`TdpMmu.map: level ${level}`);
    const o = this.walkToGoal(asId, gfn, level);
    const base = pfn - (pfn & (PAGES_PER_HPAGE[level]! - 1));
    let flags = LEAF_ACCESSED | this.leafExtra;
    if (hostWritable) {
      flags |= LEAF_HOST_WRITABLE;
      if (writable) flags |= LEAF_WRITABLE | LEAF_DIRTY;
    }
    if (level > 1 && this.nxHugePages) flags |= LEAF_NO_EXEC;
    return this.installTarget(asId, o, gfnRoundForLevel(gfn, level), level, leafSpteLo(base, level, flags), leafSpteHi(base, level, flags));
  }

  /**
   * Cache a memslot-less gfn as an MMIO SPTE at 4K carrying `gen` (masked to 19 bits).
   * @see arch/x86/kvm/mmu/tdp_mmu.c tdp_mmu_map_handle_target_level(), spte.c make_mmio_spte() (6.18)
   */
  mapMmio(asId: number, gfn: number, gen: number): number {
    const o = this.walkToGoal(asId, gfn, 1);
    return this.installTarget(asId, o, gfn, 1, mmioSpteLo(gfn, gen), mmioSpteHi(gfn, gen));
  }

  /** The walk of kvm_tdp_mmu_map() down to the goal level; returns the pool offset of the SPTE. */
  private walkToGoal(asId: number, gfn: number, goal: number): number {
    if (!(gfn >= 0 && gfn < this.maxGfnExclusive)) {
      throw new RangeError(`TdpMmu: gfn 0x${gfn.toString(16)} is beyond what a ${this.rootLevel}-level root maps`);
    }
    this.begin(OP_MAP);
    try {
      const pool = this.pool;
      let t = this.rootFor(asId);
      for (let level: number = this.rootLevel; ; level--) {
        const i = spteIndex(gfn, level);
        const o = t * ENT + i;
        if (level === goal) return o;
        const lo = pool.lo[o]!;
        if ((lo & PRESENT) !== 0 && (lo & PS) === 0) {
          t = lo >>> 12;
          continue;
        }
        // Non-present (or MMIO): link a new table; huge leaf: split it in place.
        const hi = pool.hi[o]!;
        const entryGfn = gfnRoundForLevel(gfn, level);
        const c = pool.alloc(level - 1, entryGfn, t, i, asId, 0);
        if (lo & PRESENT) this.fillSplit(c, lo, hi, level - 1);
        const nlo = nonLeafSpteLo(c);
        const nhi = nonLeafSpteHi(c);
        pool.set(o, nlo, nhi);
        this.changed(asId, entryGfn, level, lo, hi, nlo, nhi, true);
        if (lo & PRESENT) this.addLeaves(level - 1, ENT);
        t = c;
      }
    } finally {
      this.op = OP_NONE;
    }
  }

  private installTarget(asId: number, o: number, gfn: number, level: number, newLo: number, newHi: number): number {
    const pool = this.pool;
    const oldLo = pool.lo[o]!;
    const oldHi = pool.hi[o]!;
    if (oldLo === newLo && oldHi === newHi) return TDP_MAP_SPURIOUS;
    const oldLeaf = (oldLo & PRESENT) !== 0 && (level === 1 || (oldLo & PS) !== 0);
    if (oldLeaf && (newLo & PRESENT) !== 0 && spteToPfn(oldLo, oldHi) !== spteToPfn(newLo, newHi)) {
      throw new Error(
        `KVM BUG: invalid SPTE change: cannot replace a present leaf SPTE with another present leaf SPTE mapping a different PFN (as_id ${asId} gfn ${gfn.toString(16)} level ${level})`,
      );
    }
    pool.set(o, newLo, newHi);
    this.changed(asId, gfn, level, oldLo, oldHi, newLo, newHi, true);
    return (oldLo & PRESENT) !== 0 && !oldLeaf ? TDP_MAP_FIXED | TDP_MAP_FLUSH : TDP_MAP_FIXED;
  }

  /**
   * Fill a fresh table with the 512 pieces of a huge leaf.
   * @see arch/x86/kvm/mmu/spte.c make_huge_page_split_spte() (6.18)
   */
  private fillSplit(c: number, hugeLo: number, hugeHi: number, childLevel: number): void {
    const pool = this.pool;
    const plo = pool.lo;
    const phi = pool.hi;
    const off = c * ENT;
    const pages = PAGES_PER_HPAGE[childLevel]!;
    const pfn = spteToPfn(hugeLo, hugeHi);
    let lo0 = hugeLo & ~SPTE_BASE_ADDR_MASK_LO;
    const hi0 = hugeHi & ~SPTE_BASE_ADDR_MASK_HI;
    if (childLevel === 1) {
      lo0 &= ~PS;
      // make_spte_executable(): the NX huge page mitigation no longer applies at 4K.
      if (this.nxHugePages) lo0 |= VMX_EPT_EXECUTABLE_MASK;
    }
    for (let i = 0; i < ENT; i++) {
      const p = pfn + i * pages;
      plo[off + i] = lo0 | ((p & 0xfffff) << 12);
      phi[off + i] = hi0 | (Math.floor(p / P20) & SPTE_BASE_ADDR_MASK_HI);
    }
    pool.markAllOccupied(c);
  }

  // ---- bookkeeping of a change ---------------------------------------------------------------

  /**
   * @see arch/x86/kvm/mmu/tdp_mmu.c handle_changed_spte() (6.18): trace, page stats, and removal
   * of the subtree below a zapped or replaced non-leaf SPTE. Values are u32 halves.
   */
  private changed(asId: number, gfn: number, level: number, oldLo: number, oldHi: number, newLo: number, newHi: number, shared: boolean): void {
    if (oldLo === newLo && oldHi === newHi) return;
    if (this.onSpteChanged) this.onSpteChanged(asId, gfn, level, oldLo, oldHi, newLo, newHi);
    const wasPresent = (oldLo & PRESENT) !== 0;
    const isPresent = (newLo & PRESENT) !== 0;
    if (!wasPresent && isMmioSpte(oldLo, oldHi)) this.nMmio--;
    if (!isPresent && isMmioSpte(newLo, newHi)) this.nMmio++;
    if (!wasPresent && !isPresent) return;
    const wasLeaf = wasPresent && (level === 1 || (oldLo & PS) !== 0);
    const isLeaf = isPresent && (level === 1 || (newLo & PS) !== 0);
    if (wasLeaf !== isLeaf) this.addLeaves(level, isLeaf ? 1 : -1);
    if (wasPresent && !wasLeaf && (isLeaf || !isPresent || oldLo >>> 12 !== newLo >>> 12)) this.handleRemovedPt(oldLo >>> 12, shared);
  }

  /**
   * A table unlinked from its parent: every entry becomes FROZEN_SPTE (traced: all 512 when
   * `shared`, the present ones otherwise), subtables recursively, then the table is freed.
   * @see arch/x86/kvm/mmu/tdp_mmu.c handle_removed_pt() (6.18)
   */
  private handleRemovedPt(t: number, shared: boolean): void {
    const pool = this.pool;
    const asId = pool.asId[t]!;
    const level = pool.level[t]!;
    const base = pool.gfn[t]!;
    const pages = PAGES_PER_HPAGE[level]!;
    if (shared && this.onSpteChanged) {
      for (let i = 0; i < ENT; i++) this.freezeChild(t * ENT + i, asId, level, base + i * pages, true);
    } else {
      for (let i = pool.nextOccupied(t, 0); i >= 0; i = pool.nextOccupied(t, i + 1)) this.freezeChild(t * ENT + i, asId, level, base + i * pages, shared);
    }
    pool.release(t);
  }

  private freezeChild(o: number, asId: number, level: number, gfn: number, shared: boolean): void {
    const lo = this.pool.lo[o]!;
    const hi = this.pool.hi[o]!;
    if ((lo & PRESENT) === 0) {
      if (isMmioSpte(lo, hi)) this.nMmio--;
      // Only the shared path writes (and so traces) non-present entries.
      if (shared && this.onSpteChanged && !(lo === FROZEN_SPTE_LO && hi === FROZEN_SPTE_HI)) this.onSpteChanged(asId, gfn, level, lo, hi, FROZEN_SPTE_LO, FROZEN_SPTE_HI);
      return;
    }
    if (this.onSpteChanged) this.onSpteChanged(asId, gfn, level, lo, hi, FROZEN_SPTE_LO, FROZEN_SPTE_HI);
    if (level === 1 || (lo & PS) !== 0) this.addLeaves(level, -1);
    else this.handleRemovedPt(lo >>> 12, shared);
  }

  /** kvm_update_page_stats() */
  private addLeaves(level: number, n: number): void {
    if (level === 1) this.n4k += n;
    else if (level === 2) this.n2m += n;
    else this.n1g += n;
  }

  // ---- range operations ----------------------------------------------------------------------

  /**
   * Zap every present leaf overlapping [start, end) in the valid and invalid roots of `asId` (a
   * huge leaf partly covered is zapped whole). Tables are not freed. MMIO SPTEs are not
   * shadow-present and are left alone (their generation guards them). Returns true iff a leaf of
   * a valid root was zapped (a TLB flush is needed; zaps in invalid roots need none).
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_unmap_gfn_range(), tdp_mmu_zap_leafs() (6.18)
   */
  zapLeafs(asId: number, start: number, end: number): boolean {
    return this.rangeOp(OP_ZAP, asId, false, start, end, 1);
  }

  /**
   * Age the leaves overlapping [start, end) in the valid roots of `asId`: returns whether any was
   * accessed; with `clear`, clears their A bits (traced, no flush); without, stops at the first
   * accessed leaf (test_age).
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_age_gfn_range(), kvm_tdp_mmu_test_age_gfn() (6.18)
   */
  ageRange(asId: number, start: number, end: number, clear: boolean): boolean {
    this.opClear = clear;
    return this.rangeOp(OP_AGE, asId, true, start, end, 1);
  }

  /**
   * Lockless aging as the kernel runs it: under rcu_read_lock(), root by root
   * (for_each_tdp_mmu_root_rcu(): valid roots only, each checked when it is reached), with a
   * preemption point before each root. A root freed under the walk is a use-after-free, reported
   * by throwing; the RCU-deferred free and the validity check prevent it.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_age_gfn_range(), for_each_tdp_mmu_root_rcu(),
   *      tdp_mmu_free_sp_rcu_callback() (6.18)
   */
  *ageRangeSteps(asId: number, start: number, end: number, clear: boolean, preempt: YieldPoint | null): Steps<boolean> {
    const pool = this.pool;
    const roots: number[] = [];
    const serials: number[] = [];
    for (const r of this.rootList) {
      if (pool.asId[r] === asId && !(pool.flags[r]! & PT_INVALID)) {
        roots.push(r);
        serials.push(pool.serial[r]!);
      }
    }
    this.rcuReaders++;
    let young = false;
    try {
      for (let k = 0; k < roots.length; k++) {
        if (preempt !== null) yield preempt;
        const r = roots[k]!;
        if (pool.serial[r] !== serials[k] || !(pool.flags[r]! & PT_IN_USE)) {
          throw new Error(`use-after-free: lockless aging walks TDP root ${r}, which was freed under it`);
        }
        if (!this.agingFreedRoot && pool.flags[r]! & PT_INVALID) continue;
        this.opClear = clear;
        this.begin(OP_AGE);
        this.opResult = false;
        this.opDone = false;
        try {
          this.opAsId = asId;
          this.opValidRoot = true;
          const e = Math.min(end, this.maxGfnExclusive);
          const s = Math.max(start, 0);
          if (s < e) this.walkRange(r, this.rootLevel, s, e, 1);
          young = this.opResult || young;
        } finally {
          this.op = OP_NONE;
        }
        if (young && !clear) break;
      }
    } finally {
      if (--this.rcuReaders === 0) for (const r of this.rcuDeferred.splice(0)) pool.release(r);
    }
    return young;
  }

  /**
   * Clear W on the leaves at level ≥ minLevel overlapping [start, end) in the valid roots of
   * `asId` (MMU-writable stays: dirty-logging protection). Returns true if any SPTE changed.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_wrprot_slot(), wrprot_gfn_range() (6.18)
   */
  writeProtectRange(asId: number, start: number, end: number, minLevel: 1 | 2 | 3): boolean {
    return this.rangeOp(OP_WRPROT, asId, true, start, end, minLevel);
  }

  /**
   * Clear D on the leaves overlapping [start, end) in the valid roots of `asId`. Returns true if
   * any SPTE changed.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_clear_dirty_slot(), clear_dirty_gfn_range() (6.18)
   */
  clearDirtyRange(asId: number, start: number, end: number): boolean {
    return this.rangeOp(OP_CLEAR_DIRTY, asId, true, start, end, 1);
  }

  /**
   * For each bit i of the 64-bit mask (maskLo = bits 0-31, maskHi = bits 32-63), clear D (or W
   * when `wrprot`) of the 4K leaf of gfnBase + i in the valid roots of `asId`; huge leaves are
   * skipped.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_clear_dirty_pt_masked(), clear_dirty_pt_masked() (6.18)
   */
  clearDirtyMasked(asId: number, gfnBase: number, maskLo: number, maskHi: number, wrprot: boolean): void {
    const lo = maskLo >>> 0;
    const hi = maskHi >>> 0;
    if (lo === 0 && hi === 0) return;
    const first = lo !== 0 ? 31 - Math.clz32(lo & -lo) : 63 - Math.clz32(hi & -hi);
    this.opBase = gfnBase;
    this.opMaskLo = lo;
    this.opMaskHi = hi;
    this.opBits = wrprot ? W : D;
    this.rangeOp(OP_CLEAR_MASKED, asId, true, gfnBase + first, gfnBase + 64, 1);
  }

  /**
   * Eager page split: split every huge leaf above `targetLevel` overlapping [start, end) in the
   * valid roots of `asId`, recursively, down to `targetLevel` (only the pieces overlapping the
   * range are split further). Children keep W/D/A.
   * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_try_split_huge_pages(), tdp_mmu_split_huge_pages_root() (6.18)
   */
  splitHugePages(asId: number, start: number, end: number, targetLevel: 1 | 2): void {
    this.opLevel = targetLevel;
    this.rangeOp(OP_SPLIT, asId, true, start, end, targetLevel + 1);
  }

  /**
   * Visit every present leaf of every root (roots newest first, gfns ascending). The visitor must
   * not call back into this TdpMmu.
   */
  forEachLeaf(visit: TdpLeafVisitor): void {
    this.opVisit = visit;
    try {
      this.rangeOp(OP_VISIT, -1, false, 0, this.maxGfnExclusive, 1);
    } finally {
      this.opVisit = undefined;
    }
  }

  /** Counters and memory use. */
  stats(): TdpMmuStats {
    let invalid = 0;
    for (const r of this.rootList) if (this.pool.flags[r]! & PT_INVALID) invalid++;
    return {
      roots: this.rootList.length,
      invalidRoots: invalid,
      tables: this.pool.inUse,
      leaves: [this.n4k, this.n2m, this.n1g],
      mmioSptes: this.nMmio,
      tableBytes: this.pool.inUse * 4096,
      heapBytes: this.pool.heapBytes(),
    };
  }

  private begin(op: number): void {
    if (this.op !== OP_NONE) throw new Error('TdpMmu: re-entered from a visitor or trace hook');
    this.op = op;
  }

  /** for_each_tdp_mmu_root (all or valid only, of one address space or all) × a range walk. */
  private rangeOp(op: number, asId: number, validOnly: boolean, start: number, end: number, minLevel: number): boolean {
    this.begin(op);
    this.opResult = false;
    this.opDone = false;
    try {
      const e = Math.min(end, this.maxGfnExclusive);
      const s = Math.max(start, 0);
      if (!(s < e)) return false;
      const pool = this.pool;
      const roots = this.rootList;
      for (let k = 0; k < roots.length && !this.opDone; k++) {
        const r = roots[k]!;
        if (asId >= 0 && pool.asId[r] !== asId) continue;
        const invalid = (pool.flags[r]! & PT_INVALID) !== 0;
        if (validOnly && invalid) continue;
        this.opAsId = pool.asId[r]!;
        this.opValidRoot = !invalid;
        this.walkRange(r, this.rootLevel, s, e, minLevel);
      }
      return this.opResult;
    } finally {
      this.op = OP_NONE;
    }
  }

  /**
   * Pre-order walk of the occupied entries of table t overlapping [start, end), stepping down
   * present non-leaf SPTEs while level > minLevel (for_each_tdp_pte_min_level, minus the
   * non-present entries, which every handler skips).
   */
  private walkRange(t: number, level: number, start: number, end: number, minLevel: number): void {
    const pool = this.pool;
    const base = pool.gfn[t]!;
    const pages = PAGES_PER_HPAGE[level]!;
    const first = start <= base ? 0 : Math.floor((start - base) / pages);
    const span = end - base;
    const limit = span >= ENT * pages ? ENT : Math.ceil(span / pages);
    for (let i = pool.nextOccupied(t, first); i >= 0 && i < limit; i = pool.nextOccupied(t, i + 1)) {
      const o = t * ENT + i;
      let lo = pool.lo[o]!;
      if ((lo & PRESENT) === 0) {
        if (this.op === OP_ZAP_MMIO) this.zapMmio(o, level, base + i * pages);
        continue;
      }
      if (level === 1 || (lo & PS) !== 0) {
        this.leaf(o, level, base + i * pages, lo);
        if (this.opDone) return;
        if (this.op !== OP_SPLIT) continue;
        lo = pool.lo[o]!;
        if ((lo & PS) !== 0) continue; // not split (already at the target level)
      }
      if (level > minLevel) {
        this.walkRange(lo >>> 12, level - 1, start, end, minLevel);
        if (this.opDone) return;
      }
    }
  }

  private leaf(o: number, level: number, gfn: number, lo: number): void {
    const pool = this.pool;
    switch (this.op) {
      case OP_ZAP: {
        const hi = pool.hi[o]!;
        pool.set(o, NP_LO, NP_HI);
        this.changed(this.opAsId, gfn, level, lo, hi, NP_LO, NP_HI, false);
        if (this.opValidRoot) this.opResult = true;
        return;
      }
      case OP_AGE:
        if ((lo & A) === 0) return;
        this.opResult = true;
        if (this.opClear) this.clearBits(o, level, gfn, lo, A);
        else this.opDone = true;
        return;
      case OP_WRPROT:
        if ((lo & W) === 0) return;
        this.clearBits(o, level, gfn, lo, W);
        this.opResult = true;
        return;
      case OP_CLEAR_DIRTY:
        if ((lo & D) === 0) return;
        this.clearBits(o, level, gfn, lo, D);
        this.opResult = true;
        return;
      case OP_CLEAR_MASKED: {
        if (level !== 1) return;
        const bit = gfn - this.opBase;
        const inMask = bit < 32 ? (this.opMaskLo >>> bit) & 1 : (this.opMaskHi >>> (bit - 32)) & 1;
        if (inMask === 0 || (lo & this.opBits) === 0) return;
        this.clearBits(o, level, gfn, lo, this.opBits);
        return;
      }
      case OP_SPLIT:
        if (level > this.opLevel) this.split(o, level, gfn, lo);
        return;
      case OP_VISIT:
        this.opVisit!(this.opAsId, gfn, level, spteToPfn(lo, pool.hi[o]!), (lo & W) !== 0, (lo & A) !== 0, (lo & D) !== 0, this.opValidRoot);
        return;
      default:
        return;
    }
  }

  private clearBits(o: number, level: number, gfn: number, lo: number, bits: number): void {
    const nlo = (lo & ~bits) >>> 0;
    this.pool.lo[o] = nlo;
    if (this.onSpteChanged) {
      const hi = this.pool.hi[o]!;
      this.onSpteChanged(this.opAsId, gfn, level, lo, hi, nlo, hi);
    }
  }

  /** @see arch/x86/kvm/mmu/tdp_mmu.c tdp_mmu_split_huge_page() (6.18) */
  private split(o: number, level: number, gfn: number, lo: number): void {
    const pool = this.pool;
    const hi = pool.hi[o]!;
    const c = pool.alloc(level - 1, gfn, o >>> 9, o & 511, this.opAsId, 0);
    this.fillSplit(c, lo, hi, level - 1);
    const nlo = nonLeafSpteLo(c);
    const nhi = nonLeafSpteHi(c);
    pool.set(o, nlo, nhi);
    this.changed(this.opAsId, gfn, level, lo, hi, nlo, nhi, true);
    this.addLeaves(level - 1, ENT);
  }

  private zapMmio(o: number, level: number, gfn: number): void {
    const pool = this.pool;
    const lo = pool.lo[o]!;
    const hi = pool.hi[o]!;
    if (!isMmioSpte(lo, hi)) return;
    pool.set(o, NP_LO, NP_HI);
    this.changed(this.opAsId, gfn, level, lo, hi, NP_LO, NP_HI, false);
  }
}
