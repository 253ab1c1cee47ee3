/**
 * The `kvmmmu` tracepoints of the TDP MMU as KvmTraceEvents (`kvm.emit`), with their TP_printk
 * formats for the trace sinks of @kvmsim/kvm-core (`registerKvmmmuTraceFormats(registry)`).
 *
 * Events carry the raw TP_STRUCT__entry fields under the kernel's names; 64-bit SPTEs are
 * `0x`-prefixed hex strings (exact, and `BigInt()` parses them), everything else is a number or
 * a boolean. Nothing here runs unless `kvm.trace` is set: the backend calls the emitters only
 * behind `if (kvm.trace)`, and the TdpMmu.onSpteChanged hook is installed only while a sink is
 * attached (it removes itself when it finds the sink gone).
 *
 * Where the model emits them (in the kernel's order):
 * - `kvm_mmu_spte_requested`: the fault path, after the goal level is chosen, before the walk;
 *   also for a fault that caches an MMIO SPTE (pfn KVM_PFN_NOSLOT).
 * - `kvm_tdp_mmu_spte_changed`: every SPTE change (TdpMmu.onSpteChanged).
 * - `kvm_mmu_split_huge_page`: right after the spte_changed of a huge leaf becoming a page
 *   table (the fault path's in-place split and eager splitting both go through
 *   tdp_mmu_split_huge_page()); errno is always 0 (allocation failures are not modelled).
 * - `kvm_mmu_set_spte`: after the fault installed (or found, RET_PF_SPURIOUS) its leaf; not for
 *   MMIO SPTEs (the kernel traces those as mark_mmio_spte).
 * - `kvm_mmu_zap_all_fast`: the fast zap's front half, before the roots are invalidated.
 *
 * @see arch/x86/kvm/mmu/mmutrace.h (read in 6.12, the nearest source at hand; 6.18 assumed the same)
 * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_map(), tdp_mmu_map_handle_target_level(),
 *      tdp_mmu_split_huge_page(), handle_changed_spte(); mmu.c kvm_mmu_zap_all_fast() (6.18)
 */
import type { TraceArgs, TraceEventFormat } from '@kvmsim/kvm-core';
import type { Kvm } from '@kvmsim/kvm-core';
import { PT_INVALID, PT_IN_USE, PT_ROOT } from '../mmu/page-table-pool.js';
import {
  PT_PAGE_SIZE_MASK,
  PT_WRITABLE_MASK,
  SPTE_ENT_PER_PAGE,
  SPTE_MMU_PRESENT_MASK,
  VMX_EPT_EXECUTABLE_MASK,
  VMX_EPT_READABLE_MASK,
  spteToBigInt,
} from '../mmu/spte.js';
import type { SpteChangedHook, TdpMmu } from '../mmu/tdp-mmu.js';

/** The raw fields of an event (KvmTraceEvent.args). */
export type KvmmmuTraceArgs = TraceArgs;

/** A TP_printk, as kvm-core's trace module registers them. */
export type KvmmmuTraceFormat = TraceEventFormat;

/** Anything formats can be registered with, e.g. kvm-core's TraceFormatRegistry. */
export interface KvmmmuTraceFormatTarget {
  register(format: KvmmmuTraceFormat): unknown;
}

const W_BIT = BigInt(PT_WRITABLE_MASK);

/** `__entry->spte & PT_WRITABLE_MASK` of an event's hex SPTE. */
function writableOf(args: KvmmmuTraceArgs): boolean {
  const spte = args['spte'];
  return spte !== null && spte !== undefined && (BigInt(String(spte)) & W_BIT) !== 0n;
}

/** The five kvmmmu TP_printk formats of the TDP MMU, verbatim from mmutrace.h. */
export const KVMMMU_TRACE_FORMATS: readonly KvmmmuTraceFormat[] = [
  { name: 'kvm_mmu_spte_requested', system: 'kvmmmu', printk: 'gfn %llx pfn %llx level %d', args: ['gfn', 'pfn', 'level'] },
  {
    name: 'kvm_mmu_set_spte',
    system: 'kvmmmu',
    printk: 'gfn %llx spte %llx (%s%s%s%s) level %d at %llx',
    args: [
      'gfn',
      'spte',
      (a) => (a['r'] ? 'r' : '-'),
      (a) => (writableOf(a) ? 'w' : '-'),
      (a) => (a['x'] ? 'x' : '-'),
      (a) => (a['u'] === -1 ? '' : a['u'] ? 'u' : '-'),
      'level',
      'sptep',
    ],
  },
  {
    name: 'kvm_tdp_mmu_spte_changed',
    system: 'kvmmmu',
    printk: 'as id %d gfn %llx level %d old_spte %llx new_spte %llx',
    args: ['as_id', 'gfn', 'level', 'old_spte', 'new_spte'],
  },
  { name: 'kvm_mmu_split_huge_page', system: 'kvmmmu', printk: 'gfn %llx spte %llx level %d errno %d', args: ['gfn', 'spte', 'level', 'errno'] },
  { name: 'kvm_mmu_zap_all_fast', system: 'kvmmmu', printk: 'kvm-mmu-valid-gen %u used_pages %x', args: ['mmu_valid_gen', 'mmu_used_pages'] },
];

/** Register the kvmmmu formats, e.g. `registerKvmmmuTraceFormats(defaultTraceFormatRegistry)`. */
export function registerKvmmmuTraceFormats(target: KvmmmuTraceFormatTarget): void {
  for (const f of KVMMMU_TRACE_FORMATS) target.register(f);
}

/** A 64-bit SPTE as an event field: `0x` + `%llx`. */
export function spteArg(lo: number, hi: number): string {
  return `0x${spteToBigInt(lo, hi).toString(16)}`;
}

// ---- kvm_tdp_mmu_spte_changed / kvm_mmu_split_huge_page: the TdpMmu hook --------------------

const installed = new WeakMap<TdpMmu, SpteChangedHook>();

/**
 * Install the onSpteChanged hook that emits `kvm_tdp_mmu_spte_changed` (and
 * `kvm_mmu_split_huge_page` after a huge leaf became a page table), if `kvm.trace` is set and no
 * other hook is there. The X86ArchVm calls it at creation; call it again after attaching a sink
 * to a running VM (`kvm.trace = sink`). The hook uninstalls itself once the sink is detached.
 */
export function installKvmmmuTraceHook(kvm: Kvm, tdp: TdpMmu): void {
  if (!kvm.trace || tdp.onSpteChanged !== undefined) return;
  let hook = installed.get(tdp);
  if (hook === undefined) {
    hook = (asId, gfn, level, oldLo, oldHi, newLo, newHi) => {
      if (!kvm.trace) {
        if (tdp.onSpteChanged === hook) tdp.onSpteChanged = undefined;
        return;
      }
      kvm.emit('kvm_tdp_mmu_spte_changed', { as_id: asId, gfn, level, old_spte: spteArg(oldLo, oldHi), new_spte: spteArg(newLo, newHi) });
      // tdp_mmu_split_huge_page(): link the new table over the huge SPTE (traced above), then
      // trace_kvm_mmu_split_huge_page(iter->gfn, huge_spte, level, ret).
      if (
        level > 1 &&
        (oldLo & (SPTE_MMU_PRESENT_MASK | PT_PAGE_SIZE_MASK)) === (SPTE_MMU_PRESENT_MASK | PT_PAGE_SIZE_MASK) &&
        (newLo & (SPTE_MMU_PRESENT_MASK | PT_PAGE_SIZE_MASK)) === SPTE_MMU_PRESENT_MASK
      ) {
        kvm.emit('kvm_mmu_split_huge_page', { gfn, spte: spteArg(oldLo, oldHi), level, errno: 0 });
      }
    };
    installed.set(tdp, hook);
  }
  tdp.onSpteChanged = hook;
}

// ---- kvm_mmu_spte_requested / kvm_mmu_set_spte: the fault path -------------------------------

/**
 * trace_kvm_mmu_spte_requested(fault): `pfn` is fault->pfn after kvm_mmu_hugepage_adjust() (the
 * huge page's first frame) OR'ed with the gfn's offset in the huge page, i.e. the frame of the
 * faulting gfn itself. `base` is the aligned frame the backend maps.
 */
export function traceKvmMmuSpteRequested(kvm: Kvm, tdp: TdpMmu, gfn: number, base: number, level: number): void {
  installKvmmmuTraceHook(kvm, tdp);
  const mask = 2 ** ((level - 1) * 9) - 1;
  kvm.emit('kvm_mmu_spte_requested', { gfn, pfn: base + (gfn & mask), level });
}

/** KVM_PFN_NOSLOT (include/linux/kvm_host.h): BIT_ULL(63), as an event field. */
export const KVM_PFN_NOSLOT_ARG = '0x8000000000000000';

/**
 * trace_kvm_mmu_spte_requested(fault) of a fault on a gfn without a memslot that caches an MMIO
 * SPTE: kvm_handle_noslot_fault() set fault->pfn = KVM_PFN_NOSLOT and the goal level stays 4K.
 */
export function traceKvmMmuSpteRequestedNoslot(kvm: Kvm, tdp: TdpMmu, gfn: number): void {
  installKvmmmuTraceHook(kvm, tdp);
  kvm.emit('kvm_mmu_spte_requested', { gfn, pfn: KVM_PFN_NOSLOT_ARG, level: 1 });
}

/** SPTE_INDEX(gfn << PAGE_SHIFT, level) */
function spteIndex(gfn: number, level: number): number {
  return level <= 3 ? (gfn >>> ((level - 1) * 9)) & 511 : Math.floor(gfn / 2 ** ((level - 1) * 9)) & 511;
}

const rootCache = new WeakMap<TdpMmu, number[]>();

/**
 * The pool index of the valid root of `asId`, or -1: a table flagged in use, root and not
 * invalid (one per address space). Cached per TdpMmu, re-checked on every use.
 */
function validRoot(tdp: TdpMmu, asId: number): number {
  if (!tdp.hasValidRoot(asId)) return -1;
  const pool = tdp.pool;
  const want = PT_IN_USE | PT_ROOT;
  const isValidRoot = (t: number): boolean => ((pool.flags[t] ?? 0) & (want | PT_INVALID)) === want && pool.asId[t] === asId;
  let cache = rootCache.get(tdp);
  if (cache === undefined) rootCache.set(tdp, (cache = []));
  const hit = cache[asId];
  if (hit !== undefined && isValidRoot(hit)) return hit;
  for (let t = 0; t < pool.flags.length; t++) {
    if (isValidRoot(t)) {
      cache[asId] = t;
      return t;
    }
  }
  return -1;
}

/** The pool offset (table × 512 + entry) of the SPTE for `gfn` at `level` in the valid root, or -1. */
export function spteOffset(tdp: TdpMmu, asId: number, gfn: number, level: number): number {
  let t = validRoot(tdp, asId);
  if (t < 0) return -1;
  const pool = tdp.pool;
  for (let l: number = tdp.rootLevel; ; l--) {
    const o = t * SPTE_ENT_PER_PAGE + spteIndex(gfn, l);
    if (l === level) return o;
    const lo = pool.lo[o]!;
    if ((lo & SPTE_MMU_PRESENT_MASK) === 0 || (lo & PT_PAGE_SIZE_MASK) !== 0 || l === 1) return -1;
    t = lo >>> 12;
  }
}

/**
 * trace_kvm_mmu_set_spte(level, gfn, sptep) after the fault's leaf is in place, with the EPT
 * masks of kvm_mmu_set_ept_masks(): r = shadow_present_mask (nonzero: it holds the suppress-#VE
 * bit) → always "r"; x = (spte & (shadow_x_mask | shadow_nx_mask)) == shadow_x_mask → bit 2;
 * u = shadow_user_mask (VMX_EPT_READABLE_MASK, nonzero) → bit 0, so never -1 on EPT. `gfn` is
 * iter->gfn (rounded down to the level).
 *
 * `sptep` ("at %llx") is virt_to_phys(sptep) in the kernel; the model's deterministic stand-in is
 * table index × 4096 + entry × 8, consistent with the model's non-leaf SPTEs, whose address bits
 * hold the child table's index.
 */
export function traceKvmMmuSetSpte(kvm: Kvm, tdp: TdpMmu, asId: number, gfn: number, level: number): void {
  const o = spteOffset(tdp, asId, gfn, level);
  if (o < 0) return;
  emitKvmMmuSetSpte(kvm, gfn, level, tdp.pool.lo[o]!, tdp.pool.hi[o]!, o);
}

/**
 * trace_kvm_mmu_set_spte() of the shadow MMU's mmu_set_spte(): the leaf at pool offset `o` of
 * the shadow page-table pool (same stand-in address and masks as the TDP MMU's).
 */
export function emitKvmMmuSetSpte(kvm: Kvm, gfn: number, level: number, lo: number, hi: number, o: number): void {
  const mask = 2 ** ((level - 1) * 9) - 1;
  kvm.emit('kvm_mmu_set_spte', {
    gfn: gfn - (gfn & mask),
    spte: spteArg(lo, hi),
    sptep: o * 8,
    level,
    r: true,
    x: (lo & VMX_EPT_EXECUTABLE_MASK) !== 0,
    u: (lo & VMX_EPT_READABLE_MASK) !== 0 ? 1 : 0,
  });
}

// ---- kvm_mmu_zap_all_fast ---------------------------------------------------------------------

/**
 * trace_kvm_mmu_zap_all_fast(kvm), emitted before mmu_valid_gen toggles: `mmuValidGen` is the
 * generation being retired (0 on the first fast zap, then 1, 0, …). `usedPages` is
 * kvm->arch.n_used_mmu_pages, which counts shadow-MMU pages only (TDP MMU pages are in
 * kvm->arch.tdp_mmu_pages): 0 without shadow pages.
 */
export function traceKvmMmuZapAllFast(kvm: Kvm, tdp: TdpMmu, mmuValidGen: number, usedPages: number): void {
  installKvmmmuTraceHook(kvm, tdp);
  kvm.emit('kvm_mmu_zap_all_fast', { mmu_valid_gen: mmuValidGen & 0xff, mmu_used_pages: usedPages });
}
