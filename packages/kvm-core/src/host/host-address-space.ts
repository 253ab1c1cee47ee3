/**
 * One process's anonymous memory: the host address space behind KVM memslots, and the MMU
 * notifiers it calls exactly where Linux's mm calls them.
 *
 * Layers, as in Linux:
 * - VMAs: anonymous private mappings, sorted and non-overlapping, in page-frame numbers of the
 *   host virtual address (`hvaPfn = hva >> 12`, always below 2^35 because every mapping lies below
 *   TASK_SIZE), each with a protection (a subset of {@link PROT_READ} | {@link PROT_WRITE}) and the
 *   THP flags VM_HUGEPAGE / VM_NOHUGEPAGE. Adjacent mappings are never merged (Linux merges them;
 *   the VMA count is not observable through the protocol, and the splits a merge can cause are
 *   not modelled).
 * - A page table: 4 KiB PTEs `hvaPfn → frame` (frame 0 = the shared zero page, mapped by read
 *   faults on never-written memory), 2 MiB PMD mappings `block → 512 contiguous frames`
 *   (transparent huge pages), swap entries `hvaPfn → saved bytes`, and per-PTE/PMD young
 *   (accessed) bits and lazyfree (MADV_FREE) state. Which page-table pages exist is tracked too
 *   (PTE tables per 2 MiB block, PMD tables per 1 GiB), because Linux's choice between a huge and
 *   a 4 KiB fault (`pmd_none()`), its THP split on a VMA split (`mm_find_pmd()`) and mprotect's
 *   notifier range (`pud_none()`) depend on them.
 * - {@link PageFrames}: the frame contents, optionally poisoned on free.
 *
 * MMU notifiers ({@link MmuNotifierOps}): every operation that changes page tables has a
 * preemptible `…Steps` variant that calls `invalidateRangeStart` of every subscriber, yields,
 * changes the page table, yields, and calls `invalidateRangeEnd`, in the order Linux does; the
 * synchronous methods are `runSync()` wrappers. Subscribers are called in Linux's list order:
 * `mmu_notifier_register()` adds at the head of the hlist (`hlist_add_head_rcu()`), so the most
 * recently registered subscriber is called first. A subscriber is called for an `invalidateRangeEnd`
 * only if it got the matching start and is still registered (Linux excludes registration during
 * an invalidation with mm_take_all_locks(); an unregistered subscriber is no longer on the list).
 * Every range is blockable (`mmu_notifier_invalidate_range_start()` sets
 * MMU_NOTIFIER_RANGE_BLOCKABLE; only the OOM reaper uses the non-blocking variant).
 *
 * Pages are freed after `invalidateRangeEnd` (the mmu_gather's tlb_finish_mmu() comes after it),
 * so with poisoning a secondary MMU that kept a mapping past the end reads the poison pattern.
 *
 * Not modelled: `mmap_lock` (concurrent syscalls on overlapping ranges interleave at the yield
 * points), VMA merging, fork/COW of anonymous pages other than the zero page, the huge zero page
 * (any first touch of a THP block allocates a huge page), KSM, NUMA, userfaultfd, mlock, and
 * PROT_EXEC.
 *
 * The syscall-level methods take `bigint` byte addresses (the u64 ABI) and throw {@link KvmError}
 * with the errno the syscall returns. The page-level methods take `number` page-frame numbers and
 * serve KVM's fault path.
 *
 * After {@link HostAddressSpace.exitMmapSteps} (the mm is gone) every syscall fails: `mmap`,
 * `munmap`, `madvise` and `mprotect` with ENOMEM (there is no address space left to change; the
 * errno madvise/mprotect give for unmapped ranges), `read`/`write` with EFAULT (nothing is mapped);
 * `faultIn` returns −1, split/collapse return false, reclaim/aging find nothing, and
 * {@link HostAddressSpace.registerMmuNotifier} throws EINVAL (mmu_notifier_register() needs
 * `mm_users > 0`).
 */

import { KvmError } from '../errors.js';
import { SCHED, runSync, point, type Steps } from '../sched/steps.js';
import { PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX_4LEVEL } from '../uapi.js';
import {
  MMU_NOTIFIER_FAST_FAILED,
  MMU_NOTIFIER_FAST_YOUNG,
  type MmuNotifierOps,
  type MmuNotifierRange,
  type MmuNotifyEvent,
} from './mmu-notifier.js';
import { type AccessSize, HUGE_FRAMES, PageFrames, ZERO_FRAME, accessSizeMax, isAccessSize } from './page-frames.js';

export type { AccessSize } from './page-frames.js';

/** A mapping `[start, end)` in host page-frame numbers (byte address >> 12). */
export interface Vma {
  readonly start: number;
  readonly end: number;
}

/** PROT_NONE: no access. */
export const PROT_NONE = 0;
/** PROT_READ (include/uapi/asm-generic/mman-common.h). */
export const PROT_READ = 1;
/** PROT_WRITE. On x86 a writable mapping is also readable. */
export const PROT_WRITE = 2;

/** A mapping with its flags. */
export interface HostVma extends Vma {
  /** Subset of {@link PROT_READ} | {@link PROT_WRITE}. */
  readonly prot: number;
  /** VM_HUGEPAGE: `mmap(…, { thp: true })` or `madvise(MADV_HUGEPAGE)`. */
  readonly thp: boolean;
  /** VM_NOHUGEPAGE: `madvise(MADV_NOHUGEPAGE)`. */
  readonly noThp: boolean;
}

/**
 * The madvise advices modelled: MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE.
 * @see mm/madvise.c madvise_vma_behavior() (6.18)
 */
export type MadviseAdvice = 'DONTNEED' | 'FREE' | 'HUGEPAGE' | 'NOHUGEPAGE';

/** Optional arguments of {@link HostAddressSpace.mmap}. */
export interface MmapOptions {
  /** Default `PROT_READ | PROT_WRITE`. */
  readonly prot?: number;
  /**
   * VM_HUGEPAGE from the start, as `mmap()` followed by `madvise(MADV_HUGEPAGE)` (the model's
   * THP mode is `madvise`: only VM_HUGEPAGE mappings get huge pages). Default false.
   */
  readonly thp?: boolean;
}

export interface HostAddressSpaceOptions {
  /**
   * `vm.mmap_min_addr`: a fixed mmap below it fails with EPERM unless the caller has
   * CAP_SYS_RAWIO (security/commoncap.c cap_mmap_addr()). Default 0x10000, the x86 Kconfig and
   * distribution default as seen by an unprivileged process; pass 0n to model a privileged one.
   */
  readonly mmapMinAddr?: bigint;
  /** Frames per slab of the frame store (default 256, i.e. 1 MiB slabs). */
  readonly framesPerSlab?: number;
  /**
   * CONFIG_PAGE_POISONING: fill freed frames with this byte (default: no poisoning). A stale
   * secondary-MMU mapping then reads the pattern through {@link HostAddressSpace.readFrame}.
   */
  readonly poison?: number;
}

/** Counters for tests. */
export interface HostMemoryStats {
  /** Frames allocated in the frame store (not counting the zero page). */
  readonly framesInUse: number;
  /** Present 4 KiB pages: PTEs (zero-page ones included) + 512 per PMD mapping. */
  readonly populatedPages: number;
  /** PMD-mapped (2 MiB) transparent huge pages. */
  readonly hugePages: number;
  /** Swap entries (pages whose contents are in the swap store). */
  readonly swappedPages: number;
  /** Pages marked lazyfree by MADV_FREE and not swap-backed again (512 per huge page). */
  readonly lazyfreePages: number;
  readonly vmas: number;
  /** Registered MMU-notifier subscribers. */
  readonly notifiers: number;
}

/** What a {@link HostAddressSpace.reclaimSteps} pass did, in 4 KiB pages. */
export interface ReclaimResult {
  /** Present pages looked at (never the zero page). */
  readonly scanned: number;
  /** Young pages skipped (second chance); their young bits are now clear. */
  readonly referenced: number;
  /** Pages unmapped and written to the swap store. */
  readonly swappedOut: number;
  /** Clean lazyfree pages unmapped and dropped (later reads give zeros). */
  readonly discarded: number;
  /** Lazyfree pages found written since MADV_FREE: remapped and swap-backed again, not reclaimed. */
  readonly redirtied: number;
}

/** What an {@link HostAddressSpace.ageSteps} walk found, in 4 KiB pages. */
export interface AgeResult {
  /** Present pages looked at (never the zero page). */
  readonly scanned: number;
  /** Pages young in the primary page table or in a secondary MMU (all young bits now clear). */
  readonly young: number;
  /** Pages for which a subscriber answered MMU_NOTIFIER_FAST_FAILED (fast-only walk). */
  readonly notFast: number;
}

/** The state of one host page, for tests and KVM's host-mapping lookups. */
export interface HostPageInfo {
  /** Frame mapped (0 = zero page), or −1 when not present. */
  readonly frame: number;
  /** 2 when mapped by a PMD (inside a THP), else 1. */
  readonly level: 1 | 2;
  readonly young: boolean;
  /** MADV_FREE'd and not swap-backed again. */
  readonly lazyfree: boolean;
  /** A swap entry: the contents are in the swap store. */
  readonly swapped: boolean;
}

/**
 * Default `vm.mmap_min_addr` as seen by a privileged process: CI and the kernel oracle run as root,
 * whose CAP_SYS_RAWIO bypasses the limit (security/commoncap.c cap_mmap_addr()). Pass 0x10000n to
 * model an unprivileged process (CONFIG_DEFAULT_MMAP_MIN_ADDR on x86 distributions).
 */
export const DEFAULT_MMAP_MIN_ADDR: bigint = 0n;

const PAGE_SHIFT_N = BigInt(PAGE_SHIFT);
const PAGE_OFFSET_MASK = (1n << PAGE_SHIFT_N) - 1n;
const U64_MAX = (1n << 64n) - 1n;
const U64_WRAP = 1n << 64n;
/** TASK_SIZE of a 64-bit process on x86-64 with 4-level paging (0x7ffffffff000). */
const TASK_SIZE = TASK_SIZE_MAX_4LEVEL;
const TASK_SIZE_PFN = Number(TASK_SIZE >> PAGE_SHIFT_N);
/** Pages per PMD (2 MiB), per PUD (1 GiB) and per P4D/PGD entry (512 GiB, 4-level paging). */
const PMD_PAGES = HUGE_FRAMES;
const PUD_PAGES = 1 << 18;
const P4D_PAGES = 2 ** 27;

/** lazyfree state of a PTE/PMD: MADV_FREE'd and clean, or written since (dirty, not yet swap-backed). */
const LAZY_CLEAN = 1;
const LAZY_DIRTY = 2;

/** A PMD mapping of a transparent huge page. */
interface HugeEntry {
  /** First of 512 contiguous frames. */
  readonly frame: number;
  young: boolean;
  /** 0, {@link LAZY_CLEAN} or {@link LAZY_DIRTY}. */
  lazy: number;
}

interface Invalidation {
  readonly range: MmuNotifierRange;
  readonly called: readonly MmuNotifierOps[];
}

/** Pages to give back after the invalidation ends (mmu_gather). */
interface Gather {
  readonly frames: number[];
  readonly huge: number[];
}

const P_INVALIDATE_STARTED = point('host: invalidate_range_start done, page table next');
const P_PAGE_TABLE_CHANGED = point('host: page table changed, invalidate_range_end next');
const P_RECLAIM_NEXT = point('host: reclaim, next folio');
const P_AGE_NEXT = point('host: aging walk, next page');
const P_RELEASED = point('host: exit_mmap, mmu_notifier_release done');

/** PAGE_ALIGN() on an unsigned long: rounds up, wrapping modulo 2^64. */
function pageAlignU64(len: bigint): bigint {
  return ((len + PAGE_OFFSET_MASK) & ~PAGE_OFFSET_MASK) & U64_MAX;
}

function assertU64(name: string, v: bigint): void {
  if (v < 0n || v > U64_MAX) throw new KvmError('EINVAL', `${name} must be a u64, got ${v}`);
}

function hexOf(v: bigint): string {
  return `0x${v.toString(16)}`;
}

function hexPfn(pfn: number): string {
  return `0x${(pfn * PAGE_SIZE).toString(16)}`;
}

function blockOf(pfn: number): number {
  return Math.floor(pfn / PMD_PAGES);
}

function pudOf(pfn: number): number {
  return Math.floor(pfn / PUD_PAGES);
}

function clampPfn(pfn: bigint): number {
  return Number(pfn < BigInt(TASK_SIZE_PFN) ? pfn : BigInt(TASK_SIZE_PFN));
}

/** A generator that does nothing: the Steps of a syscall that returns before touching anything. */
function* nothing(): Steps {
  return;
}

export class HostAddressSpace {
  /** Frame contents. KVM's fault path reads and writes guest memory through it. */
  readonly frames: PageFrames;
  readonly mmapMinAddr: bigint;
  /** Sorted, non-overlapping. Replaced (never mutated) on change. */
  #vmas: readonly HostVma[] = [];
  /** The `{start, end}` view handed out by {@link vmas}, rebuilt after a change. */
  #vmaView: readonly Vma[] | null = [];
  /** 4 KiB PTEs: hvaPfn → frame. */
  readonly #pt = new Map<number, number>();
  /** PMD mappings: 2 MiB block number (hvaPfn / 512) → huge page. */
  readonly #huge = new Map<number, HugeEntry>();
  /** Young (accessed) bits of PTEs. */
  readonly #young = new Set<number>();
  /** lazyfree PTEs: hvaPfn → LAZY_CLEAN | LAZY_DIRTY. */
  readonly #lazy = new Map<number, number>();
  /** Swap entries: hvaPfn → the page's contents. */
  readonly #swap = new Map<number, Uint8Array>();
  /** Blocks (hvaPfn / 512) with a PTE table (the PMD points to a table, not none, not huge). */
  readonly #pteTables = new Set<number>();
  /** 1 GiB regions (hvaPfn / 2^18) with a PMD table (the PUD entry is present). */
  readonly #pmdTables = new Set<number>();
  /** MMU-notifier subscribers in hlist order: most recently registered first. */
  readonly #subs: MmuNotifierOps[] = [];
  /** False once exit_mmap() started (mm_users dropped to 0). */
  #live = true;

  constructor(options: HostAddressSpaceOptions = {}) {
    this.frames = new PageFrames(options.framesPerSlab, options.poison ?? null);
    this.mmapMinAddr = options.mmapMinAddr ?? DEFAULT_MMAP_MIN_ADDR;
  }

  /** False after {@link exitMmapSteps} started: the mm is being or has been torn down. */
  get live(): boolean {
    return this.#live;
  }

  // ---------------------------------------------------------------------------------------------
  // MMU-notifier registration and mm teardown
  // ---------------------------------------------------------------------------------------------

  /**
   * `mmu_notifier_register(ops, mm)`: adds the subscriber at the head of the list, so it is
   * called before the ones registered earlier. EINVAL if it is already registered or the mm is
   * gone.
   * @see mm/mmu_notifier.c __mmu_notifier_register() (6.18)
   */
  registerMmuNotifier(ops: MmuNotifierOps): void {
    if (!this.#live) throw new KvmError('EINVAL', 'mmu_notifier_register: the mm has no users (exit_mmap ran)');
    if (this.#subs.includes(ops)) throw new KvmError('EINVAL', 'mmu_notifier_register: this subscriber is already registered');
    this.#subs.unshift(ops);
  }

  /**
   * `mmu_notifier_unregister(ops, mm)`: if the subscriber is still on the list (exit_mmap has not
   * released it), calls its `release()` and removes it; otherwise does nothing (its `release()`
   * already ran from exit_mmap).
   * @see mm/mmu_notifier.c mmu_notifier_unregister() (6.18)
   */
  unregisterMmuNotifier(ops: MmuNotifierOps): Steps {
    return this.#unregister(ops);
  }

  *#unregister(ops: MmuNotifierOps): Steps {
    if (!this.#subs.includes(ops)) return;
    yield* ops.release();
    const i = this.#subs.indexOf(ops);
    if (i >= 0) this.#subs.splice(i, 1);
  }

  /** The subscribers in the order they are called (most recently registered first). */
  mmuNotifiers(): readonly MmuNotifierOps[] {
    return [...this.#subs];
  }

  /**
   * `exit_mmap()`: the mm's last user is gone. First `mmu_notifier_release()`: every subscriber's
   * `release()`, in list order, after which the list is emptied (so the teardown's
   * invalidations reach nobody and a later unregister does not call `release()` again); then
   * `unmap_vmas(0, ULONG_MAX)` and `free_pgtables()`: every mapping, page, swap entry and page
   * table goes. A second call does nothing.
   * @see mm/mmap.c exit_mmap(), mm/mmu_notifier.c __mmu_notifier_release() (6.18)
   */
  exitMmapSteps(): Steps {
    return this.#exitMmap();
  }

  /** {@link exitMmapSteps} run alone. */
  exitMmap(): void {
    runSync(this.exitMmapSteps());
  }

  *#exitMmap(): Steps {
    if (!this.#live) return;
    this.#live = false;
    for (const ops of [...this.#subs]) {
      if (!this.#subs.includes(ops)) continue; // unregistered meanwhile: it released itself
      yield* ops.release();
    }
    this.#subs.length = 0;
    if (SCHED.preemptive) yield P_RELEASED;
    // unmap_vmas(): its MMU_NOTIFY_UNMAP invalidation finds an empty subscriber list.
    for (const f of this.#pt.values()) if (f !== ZERO_FRAME) this.frames.free(f);
    for (const h of this.#huge.values()) this.frames.freeHuge(h.frame);
    this.#pt.clear();
    this.#huge.clear();
    this.#young.clear();
    this.#lazy.clear();
    this.#swap.clear();
    this.#pteTables.clear();
    this.#pmdTables.clear();
    this.#setVmas([]);
  }

  // ---------------------------------------------------------------------------------------------
  // Syscall level (bigint byte addresses)
  // ---------------------------------------------------------------------------------------------

  /**
   * `mmap(addr, length, prot, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)`, by default
   * with `PROT_READ|PROT_WRITE`. New mappings are zero-filled (no frames, no page tables, no
   * notifier calls). `{ thp: true }` sets VM_HUGEPAGE, as `madvise(MADV_HUGEPAGE)` right after the
   * mmap would.
   *
   * Checks, in the kernel's order (model-level checks first: `prot` other than a subset of
   * READ|WRITE → EINVAL; a dead mm → ENOMEM):
   * 1. `length == 0` → EINVAL (do_mmap()).
   * 2. `length` not page aligned → EINVAL. Protocol rule: Linux would round it up; the replay
   *    protocol rejects it before calling mmap.
   * 3. `length > TASK_SIZE` or `addr > TASK_SIZE - length` (covers wrapping) → ENOMEM
   *    (__get_unmapped_area(); arch_get_unmapped_area() returns a MAP_FIXED address unchanged).
   * 4. `addr` not page aligned → EINVAL (__get_unmapped_area(), after the range check, so an
   *    unaligned address beyond the limit is ENOMEM).
   * 5. `addr < mmap_min_addr` → EPERM (security_mmap_addr() → cap_mmap_addr()).
   * 6. overlap with an existing mapping → EEXIST (do_mmap(), MAP_FIXED_NOREPLACE).
   *
   * Simplified: no `vm.max_map_count` or RLIMIT_AS limit (ENOMEM) and no VMA merging.
   *
   * @see mm/mmap.c do_mmap(), __get_unmapped_area() (Linux 6.18)
   */
  mmap(addr: bigint, length: bigint, options: MmapOptions = {}): void {
    const prot = options.prot ?? PROT_READ | PROT_WRITE;
    if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE)) !== 0) {
      throw new KvmError('EINVAL', `mmap: prot ${String(prot)} is not a subset of PROT_READ|PROT_WRITE (the model has no PROT_EXEC)`);
    }
    assertU64('addr', addr);
    assertU64('length', length);
    if (!this.#live) throw new KvmError('ENOMEM', 'mmap: the mm is gone (exit_mmap ran)');
    if (length === 0n) throw new KvmError('EINVAL', 'mmap: length is 0');
    if ((length & PAGE_OFFSET_MASK) !== 0n) {
      throw new KvmError('EINVAL', `mmap: length ${hexOf(length)} is not a multiple of the page size`);
    }
    if (length > TASK_SIZE || addr > TASK_SIZE - length) {
      throw new KvmError('ENOMEM', `mmap: [${hexOf(addr)}, +${hexOf(length)}) exceeds TASK_SIZE ${hexOf(TASK_SIZE)}`);
    }
    if ((addr & PAGE_OFFSET_MASK) !== 0n) {
      throw new KvmError('EINVAL', `mmap: addr ${hexOf(addr)} is not page aligned`);
    }
    if (addr < this.mmapMinAddr) {
      throw new KvmError('EPERM', `mmap: addr ${hexOf(addr)} is below mmap_min_addr ${hexOf(this.mmapMinAddr)}`);
    }
    const start = Number(addr >> PAGE_SHIFT_N);
    const end = Number((addr + length) >> PAGE_SHIFT_N);
    const i = this.#firstEndingAfter(start);
    const next = this.#vmas[i];
    if (next !== undefined && next.start < end) {
      throw new KvmError(
        'EEXIST',
        `mmap: [${hexOf(addr)}, ${hexOf(addr + length)}) overlaps the mapping [${hexPfn(next.start)}, ${hexPfn(next.end)})`,
      );
    }
    const vma: HostVma = { start, end, prot, thp: options.thp === true, noThp: false };
    this.#setVmas([...this.#vmas.slice(0, i), vma, ...this.#vmas.slice(i)]);
  }

  /**
   * `munmap(addr, length)`: EINVAL if `addr` is not page aligned, `addr > TASK_SIZE`,
   * `length > TASK_SIZE - addr`, or `length` is 0; rounds `length` up to whole pages. Unmapping
   * holes is not an error. See {@link munmapSteps} for the notifier calls.
   *
   * @see mm/vma.c do_vmi_munmap() (Linux 6.18)
   */
  munmap(addr: bigint, length: bigint): void {
    runSync(this.munmapSteps(addr, length));
  }

  /**
   * Preemptible {@link munmap} (arguments are checked before it returns).
   *
   * Nothing at all (no notifier call) when no mapping overlaps the range (do_vmi_munmap() returns
   * early). Otherwise, as vms_gather_munmap_vmas() and vms_clear_ptes() do:
   * 1. split the mapping that straddles the start, then the one that straddles the end
   *    (__split_vma() → vma_adjust_trans_huge()): each split at an address that is not 2 MiB
   *    aligned, inside a 2 MiB block the mapping covers whole, where a PMD table exists
   *    (mm_find_pmd()), calls `__split_huge_pmd()`: CLEAR over that 2 MiB block (whether or not a
   *    huge page is mapped there — Linux checks pmd_trans_huge() only under the lock);
   * 2. the mappings are removed; `unmap_vmas()`: UNMAP over `[addr, addr + length)` (holes
   *    included) around zapping every PTE, PMD and swap entry; `free_pgtables()` drops page tables
   *    no mapping overlaps any more; the pages are freed after the end call.
   *
   * Simplified: the VMA split never fails (Linux can return ENOMEM at `vm.max_map_count`).
   *
   * @see mm/vma.c do_vmi_munmap(), vms_gather_munmap_vmas(), __split_vma(), vms_clear_ptes();
   *      mm/memory.c unmap_vmas(); mm/huge_memory.c vma_adjust_trans_huge() (6.18)
   */
  munmapSteps(addr: bigint, length: bigint): Steps {
    assertU64('addr', addr);
    assertU64('length', length);
    if (!this.#live) throw new KvmError('ENOMEM', 'munmap: the mm is gone (exit_mmap ran)');
    if ((addr & PAGE_OFFSET_MASK) !== 0n || addr > TASK_SIZE || length > TASK_SIZE - addr) {
      throw new KvmError('EINVAL', `munmap: [${hexOf(addr)}, +${hexOf(length)}) is unaligned or beyond TASK_SIZE`);
    }
    const end = addr + pageAlignU64(length); // cannot wrap: length <= TASK_SIZE - addr
    if (end === addr) throw new KvmError('EINVAL', 'munmap: length is 0');
    const s = Number(addr >> PAGE_SHIFT_N);
    const e = Number(end >> PAGE_SHIFT_N);
    const first = this.#vmas[this.#firstEndingAfter(s)];
    if (first === undefined || first.start >= e) return nothing();
    return this.#munmap(s, e);
  }

  *#munmap(s: number, e: number): Steps {
    yield* this.#splitVmaAt(s);
    yield* this.#splitVmaAt(e);
    const out: HostVma[] = [];
    for (const v of this.#vmas) {
      if (v.end <= s || v.start >= e) out.push(v);
      else if (v.start < s || v.end > e) out.push(...this.#cut(v, s, e)); // changed meanwhile
    }
    this.#setVmas(out);
    const inv = yield* this.#invalidateStart(s, e, 'UNMAP');
    if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
    const g: Gather = { frames: [], huge: [] };
    this.#zapHuge(s, e, g);
    this.#zapPtes(s, e, g);
    this.#freePgtables(s, e);
    if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
    yield* this.#invalidateEnd(inv);
    this.#release(g);
  }

  /**
   * `madvise(addr, length, advice)` run alone; see {@link madviseSteps}.
   */
  madvise(addr: bigint, length: bigint, advice: MadviseAdvice): void {
    runSync(this.madviseSteps(addr, length, advice));
  }

  /**
   * Preemptible `madvise(addr, length, advice)`. Walks the mappings of the range (madvise_walk_vmas());
   * per mapping, on the part `[a, b)` of the range it covers:
   * - `DONTNEED` (zap_page_range_single()): CLEAR over `[a, b)` around dropping the pages (later
   *   reads give zeros). A huge page the part covers only partly is split inside that window by
   *   zap_pmd_range() → `__split_huge_pmd()`: a nested CLEAR over its 2 MiB block, then its 4 KiB
   *   pages in the part are dropped; a huge page covered whole is dropped whole.
   * - `FREE` (madvise_free_single_vma()): CLEAR over `[a, b)` around clearing the young and dirty
   *   bits of the present pages and marking them lazyfree; swap entries in the part are dropped
   *   (free_swap_and_cache_nr()), the zero page is skipped. A huge page covered whole is marked
   *   lazyfree as one; one covered only partly is split first (madvise_free_huge_pmd() →
   *   split_folio(): nested `__split_huge_pmd()` CLEAR over the block, then try_to_migrate_one()'s
   *   CLEAR over the block), then its 4 KiB pages in the part are marked.
   * - `HUGEPAGE` / `NOHUGEPAGE` (madvise_update_vma()): set VM_HUGEPAGE / VM_NOHUGEPAGE, splitting
   *   the mapping at `a` and `b` when the flags change (with the split's `__split_huge_pmd()` calls,
   *   as for munmap); no other notifier call. Existing pages are not touched.
   *
   * EINVAL if `addr` is not page aligned, if a nonzero `length` rounds up to 0, if `addr + length`
   * wraps, or for an advice outside {@link MadviseAdvice}; `length` 0 then returns 0; ENOMEM
   * (thrown after the mapped parts were handled) if any part of the range is not mapped.
   *
   * @see mm/madvise.c do_madvise(), is_valid_madvise(), madvise_walk_vmas(),
   *      madvise_dontneed_single_vma(), madvise_free_single_vma(), madvise_free_pte_range();
   *      mm/memory.c zap_page_range_single(), zap_pmd_range(); mm/huge_memory.c
   *      madvise_free_huge_pmd(), hugepage_madvise() (6.18)
   */
  madviseSteps(addr: bigint, length: bigint, advice: MadviseAdvice): Steps {
    assertU64('addr', addr);
    assertU64('length', length);
    if (advice !== 'DONTNEED' && advice !== 'FREE' && advice !== 'HUGEPAGE' && advice !== 'NOHUGEPAGE') {
      throw new KvmError('EINVAL', `madvise: unsupported advice ${String(advice)}`);
    }
    if (!this.#live) throw new KvmError('ENOMEM', 'madvise: the mm is gone (exit_mmap ran)');
    if ((addr & PAGE_OFFSET_MASK) !== 0n) throw new KvmError('EINVAL', `madvise: addr ${hexOf(addr)} is not page aligned`);
    const len = pageAlignU64(length);
    if (length !== 0n && len === 0n) throw new KvmError('EINVAL', `madvise: length ${hexOf(length)} wraps when rounded up`);
    if (addr + len >= U64_WRAP) throw new KvmError('EINVAL', `madvise: ${hexOf(addr)} + ${hexOf(len)} wraps`);
    if (len === 0n) return nothing();
    const sPfn = addr >> PAGE_SHIFT_N;
    const ePfn = (addr + len) >> PAGE_SHIFT_N;
    return this.#madvise(sPfn, ePfn, advice, addr, len);
  }

  *#madvise(sPfn: bigint, ePfn: bigint, advice: MadviseAdvice, addr: bigint, len: bigint): Steps {
    // No mapping lies at or above TASK_SIZE, so clamping loses nothing but holes.
    const s = clampPfn(sPfn);
    const e = clampPfn(ePfn);
    let covered = 0;
    let cur = s;
    while (cur < e) {
      const v = this.#vmas[this.#firstEndingAfter(cur)];
      if (v === undefined || v.start >= e) break;
      const a = Math.max(v.start, cur);
      const b = Math.min(v.end, e);
      switch (advice) {
        case 'DONTNEED':
          yield* this.#zapPageRangeSingle(a, b);
          break;
        case 'FREE':
          yield* this.#madviseFree(a, b);
          break;
        case 'HUGEPAGE':
        case 'NOHUGEPAGE':
          yield* this.#modifyVma(a, b, (x) => (advice === 'HUGEPAGE' ? { ...x, thp: true, noThp: false } : { ...x, thp: false, noThp: true }));
          break;
      }
      covered += b - a;
      cur = b;
    }
    if (BigInt(covered) !== ePfn - sPfn) {
      throw new KvmError('ENOMEM', `madvise: part of [${hexOf(addr)}, ${hexOf(addr + len)}) is not mapped`);
    }
  }

  /**
   * `mprotect(addr, length, prot)` run alone; see {@link mprotectSteps}.
   */
  mprotect(addr: bigint, length: bigint, prot: number): void {
    runSync(this.mprotectSteps(addr, length, prot));
  }

  /**
   * Preemptible `mprotect(addr, length, prot)`, `prot` a subset of READ|WRITE. Host writes to a
   * mapping without PROT_WRITE, and any host access to a PROT_NONE one, are then EFAULT;
   * `faultIn()` returns −1 for them.
   *
   * Checks in do_mprotect_pkey()'s order: `addr` not page aligned → EINVAL; `length` 0 → 0;
   * `addr + PAGE_ALIGN(length)` wraps → ENOMEM; `prot` not a subset of READ|WRITE → EINVAL (Linux
   * accepts PROT_EXEC and PROT_SEM; the model has neither); no mapping at `addr` → ENOMEM; a hole
   * further on → ENOMEM after the mappings before it were changed.
   *
   * Per mapping whose protection changes (mprotect_fixup(); an unchanged one is skipped without
   * any call): split it at the range ends (with the split's `__split_huge_pmd()` CLEAR calls, as
   * for munmap), set the new protection, then change_protection(): PROTECTION_VMA over
   * `[first, end)` of each 512 GiB (PGD) chunk of the part, where `first` is the part's start or,
   * if no PMD table exists there, the first 1 GiB boundary that has one (change_pud_range() starts
   * the notifier at the first present PUD); no call for a chunk without page tables.
   *
   * Not modelled: change_pud_range()'s quirk for a range starting at address 0 (it would restart
   * the notifier and never end it).
   *
   * @see mm/mprotect.c do_mprotect_pkey(), mprotect_fixup(), change_protection(),
   *      change_pud_range(); mm/vma.c vma_modify_flags() (6.18)
   */
  mprotectSteps(addr: bigint, length: bigint, prot: number): Steps {
    assertU64('addr', addr);
    assertU64('length', length);
    if (!this.#live) throw new KvmError('ENOMEM', 'mprotect: the mm is gone (exit_mmap ran)');
    if ((addr & PAGE_OFFSET_MASK) !== 0n) throw new KvmError('EINVAL', `mprotect: addr ${hexOf(addr)} is not page aligned`);
    if (length === 0n) return nothing();
    const len = pageAlignU64(length);
    const end = (addr + len) & U64_MAX;
    if (end <= addr) throw new KvmError('ENOMEM', `mprotect: ${hexOf(addr)} + ${hexOf(length)} wraps`);
    if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE)) !== 0) {
      throw new KvmError('EINVAL', `mprotect: prot ${String(prot)} is not a subset of PROT_READ|PROT_WRITE (the model has no PROT_EXEC)`);
    }
    const sPfn = addr >> PAGE_SHIFT_N;
    const ePfn = end >> PAGE_SHIFT_N;
    const s = clampPfn(sPfn);
    const first = this.#vmas[this.#firstEndingAfter(s)];
    if (first === undefined || BigInt(first.start) >= ePfn || first.start > s) {
      throw new KvmError('ENOMEM', `mprotect: ${hexOf(addr)} is not mapped`);
    }
    return this.#mprotect(s, ePfn, prot, first.start, addr, end);
  }

  *#mprotect(s: number, ePfn: bigint, prot: number, firstStart: number, addr: bigint, endAddr: bigint): Steps {
    const e = clampPfn(ePfn);
    let nstart = s;
    let tmp = firstStart;
    let hole = false;
    while (nstart < e) {
      const v = this.#vmas[this.#firstEndingAfter(nstart)];
      if (v === undefined || v.start >= e) break;
      if (v.start !== tmp) {
        hole = true;
        break;
      }
      tmp = Math.min(v.end, e);
      if (v.prot !== prot) {
        const a = nstart;
        const b = tmp;
        const changed = yield* this.#modifyVma(a, b, (x) => ({ ...x, prot }));
        if (changed) yield* this.#changeProtection(a, b);
      }
      nstart = tmp;
    }
    if (hole || BigInt(tmp) < ePfn) {
      throw new KvmError('ENOMEM', `mprotect: part of [${hexOf(addr)}, ${hexOf(endAddr)}) is not mapped`);
    }
  }

  /**
   * Reads `size` bytes little-endian at `addr` (any alignment; may cross a page boundary),
   * faulting pages in for read (never-written pages map the zero page; a first touch in a THP
   * block maps a huge page; a swapped page is swapped in) and setting their young bits. EFAULT if
   * any byte is not mapped, or its mapping is PROT_NONE. Read faults call no notifier.
   */
  read(addr: bigint, size: AccessSize): bigint {
    const first = this.#checkAccess(addr, size, false);
    const offset = Number(addr & PAGE_OFFSET_MASK);
    if (offset + size <= PAGE_SIZE) {
      return this.frames.read(this.#faultRead(first), offset, size);
    }
    let value = 0n;
    for (let i = 0; i < size; i++) {
      const off = offset + i;
      const frame = this.#faultRead(first + Math.floor(off / PAGE_SIZE));
      value |= this.frames.read(frame, off % PAGE_SIZE, 1) << BigInt(8 * i);
    }
    return value;
  }

  /**
   * Writes the `size`-byte little-endian `value` at `addr` (any alignment; may cross a page
   * boundary) run alone; see {@link writeSteps}. EINVAL if `value` does not fit in `size` bytes;
   * EFAULT (nothing written) if any byte is not mapped or its mapping is not writable.
   */
  write(addr: bigint, size: AccessSize, value: bigint): void {
    runSync(this.writeSteps(addr, size, value));
  }

  /**
   * Preemptible host write (checks before it returns): faults the pages in for write, which sets
   * their young bits, marks them dirty (a lazyfree page is no longer discardable), and replaces a
   * zero-page mapping by a new zeroed frame with wp_page_copy()'s CLEAR notifier calls over that
   * one page.
   */
  writeSteps(addr: bigint, size: AccessSize, value: bigint): Steps {
    if (!isAccessSize(size)) throw new KvmError('EINVAL', `access size must be 1, 2, 4 or 8, got ${String(size)}`);
    if (value < 0n || value > accessSizeMax(size)) {
      throw new KvmError('EINVAL', `value ${value < 0n ? value : hexOf(value)} does not fit in ${size} bytes`);
    }
    const first = this.#checkAccess(addr, size, true);
    return this.#write(first, Number(addr & PAGE_OFFSET_MASK), size, value, addr);
  }

  *#write(first: number, offset: number, size: AccessSize, value: bigint, addr: bigint): Steps {
    if (offset + size <= PAGE_SIZE) {
      const f = yield* this.#faultForWrite(first, addr, size);
      this.frames.write(f, offset, size, value);
      return;
    }
    for (let i = 0; i < size; i++) {
      const off = offset + i;
      const f = yield* this.#faultForWrite(first + Math.floor(off / PAGE_SIZE), addr, size);
      this.frames.write(f, off % PAGE_SIZE, 1, (value >> BigInt(8 * i)) & 0xffn);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Page level (number page-frame numbers), for KVM's fault path
  // ---------------------------------------------------------------------------------------------

  /** The mappings `{start, end}`, sorted. The array is a snapshot: later changes replace it. */
  vmas(): readonly Vma[] {
    this.#vmaView ??= this.#vmas.map((v) => ({ start: v.start, end: v.end }));
    return this.#vmaView;
  }

  /** The mappings with their protection and THP flags, sorted (a snapshot). */
  hostVmas(): readonly HostVma[] {
    return this.#vmas;
  }

  /** The mapping containing host page `hvaPfn`, if any (find_vma() + containment). */
  findVma(hvaPfn: number): HostVma | undefined {
    const v = this.#vmas[this.#firstEndingAfter(hvaPfn)];
    return v !== undefined && v.start <= hvaPfn ? v : undefined;
  }

  /** True when host page `hvaPfn` lies in a mapping. */
  isMapped(hvaPfn: number): boolean {
    return Number.isSafeInteger(hvaPfn) && this.findVma(hvaPfn) !== undefined;
  }

  /** The frame mapped at `hvaPfn` (0 = zero page), or −1 when the page is not present. */
  frameOf(hvaPfn: number): number {
    const f = this.#pt.get(hvaPfn);
    if (f !== undefined) return f;
    const b = blockOf(hvaPfn);
    const h = this.#huge.get(b);
    return h !== undefined ? h.frame + (hvaPfn - b * PMD_PAGES) : -1;
  }

  /**
   * The level of the host page-table entry mapping `hvaPfn`: 2 when a PMD maps the 2 MiB block
   * (a transparent huge page), else 1 (a PTE, or nothing). This is what KVM's x86 huge-page code
   * reads (host_pfn_mapping_level() under kvm_mmu_max_mapping_level()).
   * @see arch/x86/kvm/mmu/mmu.c host_pfn_mapping_level() (6.18)
   */
  hostMappingLevel(hvaPfn: number): 1 | 2 {
    return this.#huge.has(blockOf(hvaPfn)) ? 2 : 1;
  }

  /** The state of host page `hvaPfn`. */
  pageInfo(hvaPfn: number): HostPageInfo {
    const b = blockOf(hvaPfn);
    const h = this.#huge.get(b);
    if (h !== undefined) return { frame: h.frame + (hvaPfn - b * PMD_PAGES), level: 2, young: h.young, lazyfree: h.lazy !== 0, swapped: false };
    return {
      frame: this.#pt.get(hvaPfn) ?? -1,
      level: 1,
      young: this.#young.has(hvaPfn),
      lazyfree: this.#lazy.has(hvaPfn),
      swapped: this.#swap.has(hvaPfn),
    };
  }

  /** Number of present pages (4 KiB PTEs, zero-page mappings included, + 512 per PMD mapping). */
  get populatedPages(): number {
    return this.#pt.size + this.#huge.size * PMD_PAGES;
  }

  /** Counters for tests. */
  stats(): HostMemoryStats {
    let lazy = this.#lazy.size;
    for (const h of this.#huge.values()) if (h.lazy !== 0) lazy += PMD_PAGES;
    return {
      framesInUse: this.frames.inUse,
      populatedPages: this.populatedPages,
      hugePages: this.#huge.size,
      swappedPages: this.#swap.size,
      lazyfreePages: lazy,
      vmas: this.#vmas.length,
      notifiers: this.#subs.length,
    };
  }

  /**
   * Handles a page fault at `hvaPfn` run alone; see {@link faultInSteps}. Returns the frame now
   * mapped there, or −1.
   */
  faultIn(hvaPfn: number, write: boolean): number {
    return runSync(this.faultInSteps(hvaPfn, write));
  }

  /**
   * Preemptible page fault at `hvaPfn` (KVM's hva_to_pfn() → GUP → handle_mm_fault()). Returns the
   * frame now mapped there, or −1 if the page is not in a mapping, the mapping does not allow the
   * access (write to a mapping without PROT_WRITE, any access to PROT_NONE), or the mm is gone.
   *
   * - Present: sets the young bit; a write marks the page dirty (cancels MADV_FREE's lazyfree).
   * - A write to a zero-page mapping copies it (wp_page_copy()): a new zeroed frame replaces the
   *   zero page between CLEAR notifier calls over that page — the only notifier calls of a fault.
   * - A swap entry: swapped in (do_swap_page()): a new frame with the saved contents.
   * - Nothing there, in a 2 MiB block that lies whole inside a VM_HUGEPAGE (and not
   *   VM_NOHUGEPAGE) mapping and has no PTE table (`pmd_none()`): a huge page — 512 zeroed
   *   contiguous frames mapped by a PMD (do_huge_pmd_anonymous_page()); the model does this for
   *   read faults too (Linux may map the huge zero page instead).
   * - Otherwise a read fault maps the zero page, a write fault a new zeroed frame
   *   (do_anonymous_page()).
   *
   * @see mm/memory.c handle_mm_fault(), __handle_mm_fault(), do_anonymous_page(), do_swap_page(),
   *      do_wp_page(), wp_page_copy(); mm/huge_memory.c do_huge_pmd_anonymous_page() (6.18)
   */
  faultInSteps(hvaPfn: number, write: boolean): Steps<number> {
    return this.#faultIn(hvaPfn, write);
  }

  /**
   * Little-endian load from a frame (within one frame). With page poisoning, a frame that is no
   * longer allocated can be read too (it holds the poison pattern): what a stale secondary-MMU
   * mapping would see. Without poisoning that is an EINVAL model error.
   */
  readFrame(frame: number, offset: number, size: AccessSize): bigint {
    if (this.frames.poison !== null && frame !== ZERO_FRAME && !this.frames.isAllocated(frame)) {
      return this.frames.readRaw(frame, offset, size);
    }
    return this.frames.read(frame, offset, size);
  }

  /** Little-endian store to a frame (within one frame; never the zero page or a free frame). */
  writeFrame(frame: number, offset: number, size: AccessSize, value: bigint): void {
    this.frames.write(frame, offset, size, value);
  }

  /** A view of a frame's 4096 bytes (aliases the frame; do not write the zero page's view). */
  frameBytes(frame: number): Uint8Array {
    return this.frames.bytes(frame);
  }

  // ---------------------------------------------------------------------------------------------
  // Transparent huge pages
  // ---------------------------------------------------------------------------------------------

  /** `splitHugePageSteps()` run alone. */
  splitHugePage(hvaPfn: number): boolean {
    return runSync(this.splitHugePageSteps(hvaPfn));
  }

  /**
   * Splits the PMD mapping the 2 MiB block of `hvaPfn` into 512 PTEs pointing at the same frames
   * (young and lazyfree state copied to each), between CLEAR notifier calls over the block
   * (one start/end pair). Returns false, with no notifier call, when no huge page is mapped there
   * (split_huge_pmd() checks pmd_trans_huge() first).
   * @see mm/huge_memory.c __split_huge_pmd(), __split_huge_pmd_locked() (6.18)
   */
  splitHugePageSteps(hvaPfn: number): Steps<boolean> {
    return this.#splitHugePage(hvaPfn);
  }

  *#splitHugePage(hvaPfn: number): Steps<boolean> {
    if (!this.#live || !Number.isSafeInteger(hvaPfn)) return false;
    const b = blockOf(hvaPfn);
    if (!this.#huge.has(b)) return false;
    yield* this.#splitHugePmd(b);
    return true;
  }

  /** `collapseHugePageSteps()` run alone. */
  collapseHugePage(hvaPfn: number): boolean {
    return runSync(this.collapseHugePageSteps(hvaPfn));
  }

  /**
   * Collapses the 2 MiB block of `hvaPfn` into a huge page, as collapse_huge_page() does for
   * MADV_COLLAPSE. Fails (false, no notifier call) unless the mm is live, the block lies whole
   * inside a VM_HUGEPAGE mapping, it is not already PMD-mapped, and all 512 pages are present
   * and not the zero page (simplification: Linux also collapses over none/zero/swap PTEs up to
   * its max_ptes_* limits). Then: a huge page is allocated (512 contiguous frames), CLEAR
   * notifier start over the block, the contents are copied and the PMD replaces the PTE table,
   * CLEAR end, and the old frames are freed. The new PMD is young and dirty (not lazyfree).
   *
   * Differences from Linux: Linux clears the PMD inside the notifier window and installs the huge
   * PMD after invalidate_range_end(), under mmap_lock held for write, which the model does not
   * have; the model switches inside the window (same notifier calls, no window in which a racing
   * fault could populate the empty block). khugepaged (not MADV_COLLAPSE) would also require
   * referenced pages and call test_young for non-young PTEs; not modelled.
   *
   * @see mm/khugepaged.c collapse_huge_page(), __collapse_huge_page_isolate(),
   *      __collapse_huge_page_copy() (6.18)
   */
  collapseHugePageSteps(hvaPfn: number): Steps<boolean> {
    return this.#collapse(hvaPfn);
  }

  *#collapse(hvaPfn: number): Steps<boolean> {
    if (!this.#live || !Number.isSafeInteger(hvaPfn)) return false;
    const b = blockOf(hvaPfn);
    const hs = b * PMD_PAGES;
    if (!this.#collapsible(b)) return false;
    const head = this.frames.allocateHuge(); // alloc_charge_folio(), before the notifier
    const inv = yield* this.#invalidateStart(hs, hs + PMD_PAGES, 'CLEAR');
    if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
    const ok = this.#collapsible(b); // hugepage_vma_revalidate(), __collapse_huge_page_isolate()
    const old: number[] = [];
    if (ok) {
      for (let i = 0; i < PMD_PAGES; i++) {
        const p = hs + i;
        const f = this.#pt.get(p)!;
        this.frames.bytes(head + i).set(this.frames.bytes(f));
        old.push(f);
        this.#pt.delete(p);
        this.#young.delete(p);
        this.#lazy.delete(p);
      }
      this.#pteTables.delete(b);
      this.#huge.set(b, { frame: head, young: true, lazy: 0 });
    }
    if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
    yield* this.#invalidateEnd(inv);
    if (ok) for (const f of old) this.frames.free(f);
    else this.frames.freeHuge(head);
    return ok;
  }

  #collapsible(b: number): boolean {
    if (!this.#live || this.#huge.has(b)) return false;
    const hs = b * PMD_PAGES;
    const v = this.findVma(hs);
    if (v === undefined || !this.#thpEligible(v, b)) return false;
    for (let i = 0; i < PMD_PAGES; i++) {
      const f = this.#pt.get(hs + i);
      if (f === undefined || f === ZERO_FRAME) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Reclaim and aging
  // ---------------------------------------------------------------------------------------------

  /** `reclaimSteps()` run alone. */
  reclaim(addr: bigint, length: bigint): ReclaimResult {
    return runSync(this.reclaimSteps(addr, length));
  }

  /**
   * One reclaim pass over the present pages of `[addr, addr + length)` (page aligned), in address
   * order, with a preemption point before each folio: what shrink_folio_list() does to each folio
   * reclaim picks (the model picks by address, not by LRU, and models the classic LRU, not MGLRU's
   * look-around).
   *
   * Per 4 KiB page (never the zero page): folio_referenced() → `ptep_clear_flush_young_notify()`:
   * test-and-clear the PTE's young bit, then `clearFlushYoung(page, page + 4096)` of every
   * subscriber (all of them are called; young if any is). Young → skipped (second chance).
   * Otherwise try_to_unmap_one(): CLEAR start over the page, the PTE is replaced by a swap entry
   * holding a copy of the contents (or cleared, for a clean lazyfree page: discarded, later reads
   * give zeros; a lazyfree page written since is put back and becomes swap-backed — the next pass
   * swaps it), CLEAR end, then the frame is freed. A later fault or host access swaps the page in.
   *
   * A PMD-mapped huge page (any of it in the range) is one folio: `pmdp_clear_flush_young_notify()`
   * over its 2 MiB (`clearFlushYoung(block, block + 2 MiB)`), then, if old, one CLEAR pair over the
   * block around splitting the PMD and unmapping all 512 pages (TTU_SPLIT_HUGE_PMD; the model
   * assumes CONFIG_THP_SWAP swaps the folio whole, without splitting it first).
   *
   * EINVAL if `addr` or `length` is not page aligned or the range wraps.
   *
   * @see mm/vmscan.c shrink_folio_list(); mm/rmap.c folio_referenced_one(), try_to_unmap_one();
   *      include/linux/mmu_notifier.h ptep_clear_flush_young_notify() (6.18)
   */
  reclaimSteps(addr: bigint, length: bigint): Steps<ReclaimResult> {
    const [s, e] = this.#modelRange('reclaim', addr, length);
    return this.#reclaim(s, e);
  }

  *#reclaim(s: number, e: number): Steps<ReclaimResult> {
    const r = { scanned: 0, referenced: 0, swappedOut: 0, discarded: 0, redirtied: 0 };
    if (!this.#live) return r;
    for (const c of this.#candidates(s, e)) {
      if (SCHED.preemptive) yield P_RECLAIM_NEXT;
      if (c < 0) {
        const b = -c - 1;
        const h = this.#huge.get(b);
        if (h === undefined) continue;
        r.scanned += PMD_PAGES;
        const hs = b * PMD_PAGES;
        let young = h.young;
        h.young = false;
        if (yield* this.#clearFlushYoung(hs, hs + PMD_PAGES)) young = true;
        if (young) {
          r.referenced += PMD_PAGES;
          continue;
        }
        const inv = yield* this.#invalidateStart(hs, hs + PMD_PAGES, 'CLEAR');
        if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
        const g: Gather = { frames: [], huge: [] };
        const now = this.#huge.get(b);
        if (now === h) {
          if (h.lazy === LAZY_CLEAN) {
            this.#huge.delete(b);
            g.huge.push(h.frame);
            r.discarded += PMD_PAGES;
          } else if (h.lazy === LAZY_DIRTY) {
            h.lazy = 0; // redirtied: remapped, folio_set_swapbacked()
            r.redirtied += PMD_PAGES;
          } else {
            this.#huge.delete(b);
            this.#pteTables.add(b);
            for (let i = 0; i < PMD_PAGES; i++) this.#swap.set(hs + i, this.frames.bytes(h.frame + i).slice());
            g.huge.push(h.frame);
            r.swappedOut += PMD_PAGES;
          }
        }
        if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
        yield* this.#invalidateEnd(inv);
        this.#release(g);
        continue;
      }
      const p = c;
      const f = this.#pt.get(p);
      if (f === undefined || f === ZERO_FRAME) continue;
      r.scanned++;
      let young = this.#young.delete(p);
      if (yield* this.#clearFlushYoung(p, p + 1)) young = true;
      if (young) {
        r.referenced++;
        continue;
      }
      const inv = yield* this.#invalidateStart(p, p + 1, 'CLEAR');
      if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
      const g: Gather = { frames: [], huge: [] };
      if (this.#pt.get(p) === f) {
        const lazy = this.#lazy.get(p);
        if (lazy === LAZY_CLEAN) {
          this.#dropPte(p, g);
          r.discarded++;
        } else if (lazy === LAZY_DIRTY) {
          this.#lazy.delete(p);
          r.redirtied++;
        } else {
          this.#swap.set(p, this.frames.bytes(f).slice());
          this.#dropPte(p, g);
          r.swappedOut++;
        }
      }
      if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
      yield* this.#invalidateEnd(inv);
      this.#release(g);
    }
    return r;
  }

  /** `ageSteps()` run alone. */
  age(addr: bigint, length: bigint, fastOnly = false): AgeResult {
    return runSync(this.ageSteps(addr, length, fastOnly));
  }

  /**
   * An MGLRU-style aging walk over the present pages of `[addr, addr + length)` (page aligned),
   * with a preemption point before each page: test-and-clear the primary young bit, then for
   * every subscriber `clearYoung(page, page + 4096)` (mmu_notifier_clear_young(), all called).
   * With `fastOnly`, instead the proposed `testClearYoungFastOnly(page, page + 4096, true)` of the
   * subscribers that implement it (the others are skipped), stopping at the first
   * MMU_NOTIFIER_FAST_FAILED answer, which counts the page as `notFast` (kvm-generic.md §4.9, v5).
   * A PMD-mapped huge page is one entry over its 2 MiB and counts as 512 pages. No invalidation.
   *
   * @see mm/vmscan.c walk_pte_range(), lru_gen_look_around(); include/linux/mmu_notifier.h
   *      mmu_notifier_clear_young() (6.18)
   */
  ageSteps(addr: bigint, length: bigint, fastOnly = false): Steps<AgeResult> {
    const [s, e] = this.#modelRange('age', addr, length);
    return this.#age(s, e, fastOnly);
  }

  *#age(s: number, e: number, fastOnly: boolean): Steps<AgeResult> {
    const r = { scanned: 0, young: 0, notFast: 0 };
    if (!this.#live) return r;
    for (const c of this.#candidates(s, e)) {
      if (SCHED.preemptive) yield P_AGE_NEXT;
      let a: number;
      let n: number;
      let young: boolean;
      if (c < 0) {
        const b = -c - 1;
        const h = this.#huge.get(b);
        if (h === undefined) continue;
        a = b * PMD_PAGES;
        n = PMD_PAGES;
        young = h.young;
        h.young = false;
      } else {
        const f = this.#pt.get(c);
        if (f === undefined || f === ZERO_FRAME) continue;
        a = c;
        n = 1;
        young = this.#young.delete(c);
      }
      r.scanned += n;
      const start = a * PAGE_SIZE;
      const end = (a + n) * PAGE_SIZE;
      for (const ops of [...this.#subs]) {
        if (!this.#subs.includes(ops)) continue;
        if (!fastOnly) {
          if (yield* ops.clearYoung(start, end)) young = true;
          continue;
        }
        if (ops.testClearYoungFastOnly === undefined) continue;
        const ret = yield* ops.testClearYoungFastOnly(start, end, true);
        if ((ret & MMU_NOTIFIER_FAST_YOUNG) !== 0) young = true;
        if ((ret & MMU_NOTIFIER_FAST_FAILED) !== 0) {
          r.notFast += n;
          break;
        }
      }
      if (young) r.young += n;
    }
    return r;
  }

  /**
   * `mmu_notifier_test_young(mm, addr)`: asks the subscribers in list order whether `addr` (a byte
   * address) is young in their MMU, stopping at the first that says yes. Clears nothing and does
   * not look at the primary PTE (see {@link pageInfo} for that).
   * @see mm/mmu_notifier.c __mmu_notifier_test_young() (6.18)
   */
  testYoungSteps(addr: bigint): Steps<boolean> {
    assertU64('addr', addr);
    return this.#testYoung(Number(addr < TASK_SIZE ? addr : TASK_SIZE));
  }

  *#testYoung(addr: number): Steps<boolean> {
    for (const ops of [...this.#subs]) {
      if (!this.#subs.includes(ops)) continue;
      if (yield* ops.testYoung(addr)) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------------------------------------
  // Notifier calls
  // ---------------------------------------------------------------------------------------------

  /** mmu_notifier_invalidate_range_start() over pages `[s, e)`. */
  *#invalidateStart(s: number, e: number, event: MmuNotifyEvent): Steps<Invalidation> {
    const range: MmuNotifierRange = { start: s * PAGE_SIZE, end: e * PAGE_SIZE, blockable: true, event };
    const called: MmuNotifierOps[] = [];
    for (const ops of [...this.#subs]) {
      if (!this.#subs.includes(ops)) continue;
      called.push(ops);
      yield* ops.invalidateRangeStart(range);
    }
    return { range, called };
  }

  /** mmu_notifier_invalidate_range_end(): the subscribers that got the start and are still registered. */
  *#invalidateEnd(inv: Invalidation): Steps {
    if (inv.called.length === 0) return;
    for (const ops of [...this.#subs]) {
      if (!inv.called.includes(ops) || !this.#subs.includes(ops)) continue;
      yield* ops.invalidateRangeEnd(inv.range);
    }
  }

  /** mmu_notifier_clear_flush_young() over pages `[s, e)`: every subscriber, OR of the answers. */
  *#clearFlushYoung(s: number, e: number): Steps<boolean> {
    let young = false;
    for (const ops of [...this.#subs]) {
      if (!this.#subs.includes(ops)) continue;
      if (yield* ops.clearFlushYoung(s * PAGE_SIZE, e * PAGE_SIZE)) young = true;
    }
    return young;
  }

  // ---------------------------------------------------------------------------------------------
  // Page-table changes
  // ---------------------------------------------------------------------------------------------

  /**
   * __split_huge_pmd(): CLEAR over block `b`, splitting its PMD (if huge) into 512 PTEs inside the
   * window.
   */
  *#splitHugePmd(b: number): Steps {
    const hs = b * PMD_PAGES;
    const inv = yield* this.#invalidateStart(hs, hs + PMD_PAGES, 'CLEAR');
    if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
    this.#splitPmdLocked(b);
    if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
    yield* this.#invalidateEnd(inv);
  }

  /** __split_huge_pmd_locked(): PMD → PTE table of the same frames; young and lazyfree copied. */
  #splitPmdLocked(b: number): void {
    const h = this.#huge.get(b);
    if (h === undefined) return;
    this.#huge.delete(b);
    const hs = b * PMD_PAGES;
    for (let i = 0; i < PMD_PAGES; i++) {
      this.#pt.set(hs + i, h.frame + i);
      if (h.young) this.#young.add(hs + i);
      if (h.lazy !== 0) this.#lazy.set(hs + i, h.lazy);
    }
    this.#pteTables.add(b);
  }

  /**
   * split_huge_pmd_if_needed() for a VMA split of `v` at page `at`: `__split_huge_pmd()` (notifier
   * calls included, huge page or not) when `at` is not 2 MiB aligned, `v` covers its 2 MiB block
   * whole and a PMD table exists there (mm_find_pmd()).
   * @see mm/huge_memory.c split_huge_pmd_if_needed(), split_huge_pmd_address(); mm/rmap.c mm_find_pmd() (6.18)
   */
  *#splitHugePmdIfNeeded(v: HostVma, at: number): Steps {
    if (at % PMD_PAGES === 0) return;
    const b = blockOf(at);
    if (v.start > b * PMD_PAGES || v.end < (b + 1) * PMD_PAGES) return;
    if (!this.#pmdTables.has(pudOf(at))) return;
    yield* this.#splitHugePmd(b);
  }

  /** __split_vma() of the mapping strictly containing page boundary `at`, if any. */
  *#splitVmaAt(at: number): Steps {
    const v = this.findVma(at);
    if (v === undefined || v.start === at) return;
    yield* this.#splitHugePmdIfNeeded(v, at); // vma_adjust_trans_huge(vma, vma->vm_start, addr)
    const now = this.findVma(at);
    if (now === undefined || now.start === at) return;
    const i = this.#vmas.indexOf(now);
    this.#setVmas([...this.#vmas.slice(0, i), { ...now, end: at }, { ...now, start: at }, ...this.#vmas.slice(i + 1)]);
  }

  /**
   * vma_modify(): split the mapping holding `[a, b)` at `a` and `b` (when it extends past them)
   * and apply `change` to the part, unless `change` leaves the flags as they are (then nothing
   * happens at all). Returns whether the flags changed.
   */
  *#modifyVma(a: number, b: number, change: (v: HostVma) => HostVma): Steps<boolean> {
    const v = this.findVma(a);
    if (v === undefined) return false;
    const nv = change(v);
    if (nv.prot === v.prot && nv.thp === v.thp && nv.noThp === v.noThp) return false;
    if (v.start < a) yield* this.#splitVmaAt(a);
    if (v.end > b) yield* this.#splitVmaAt(b);
    const part = this.findVma(a);
    if (part === undefined || part.start !== a) return false;
    const i = this.#vmas.indexOf(part);
    const list = [...this.#vmas];
    list[i] = change(part);
    this.#setVmas(list);
    return true;
  }

  /** change_protection() over pages `[a, b)` of one mapping: the notifier calls (see mprotectSteps). */
  *#changeProtection(a: number, b: number): Steps {
    for (let cs = a; cs < b; ) {
      const ce = Math.min(b, (Math.floor(cs / P4D_PAGES) + 1) * P4D_PAGES);
      let firstPud = -1;
      const lo = pudOf(cs);
      const hi = pudOf(ce - 1);
      for (const pud of this.#pmdTables) if (pud >= lo && pud <= hi && (firstPud < 0 || pud < firstPud)) firstPud = pud;
      if (firstPud >= 0) {
        const rs = Math.max(cs, firstPud * PUD_PAGES);
        const inv = yield* this.#invalidateStart(rs, ce, 'PROTECTION_VMA');
        if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
        // The model checks permissions against the mapping, not per PTE: nothing to rewrite.
        if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
        yield* this.#invalidateEnd(inv);
      }
      cs = ce;
    }
  }

  /**
   * zap_page_range_single() for MADV_DONTNEED over pages `[a, b)` of one mapping, huge pages
   * covered partly split in address order inside the window (zap_pmd_range()).
   */
  *#zapPageRangeSingle(a: number, b: number): Steps {
    const inv = yield* this.#invalidateStart(a, b, 'CLEAR');
    if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
    const g: Gather = { frames: [], huge: [] };
    let cur = a;
    for (const blk of this.#hugeBlocksIn(a, b)) {
      const hs = blk * PMD_PAGES;
      const he = hs + PMD_PAGES;
      this.#zapPtes(cur, Math.max(cur, Math.min(hs, b)), g);
      const h = this.#huge.get(blk);
      if (h !== undefined) {
        if (a <= hs && he <= b) {
          this.#huge.delete(blk); // zap_huge_pmd()
          g.huge.push(h.frame);
        } else {
          yield* this.#splitHugePmd(blk);
        }
      }
      const e2 = Math.min(he, b);
      this.#zapPtes(Math.max(cur, hs), e2, g); // the 4 KiB pages of a split block in the range
      cur = Math.max(cur, e2);
    }
    this.#zapPtes(cur, b, g);
    if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
    yield* this.#invalidateEnd(inv);
    this.#release(g);
  }

  /** madvise_free_single_vma() over pages `[a, b)` of one mapping. */
  *#madviseFree(a: number, b: number): Steps {
    const inv = yield* this.#invalidateStart(a, b, 'CLEAR');
    if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
    let cur = a;
    for (const blk of this.#hugeBlocksIn(a, b)) {
      const hs = blk * PMD_PAGES;
      const he = hs + PMD_PAGES;
      this.#lazyfreePtes(cur, Math.max(cur, Math.min(hs, b)));
      const h = this.#huge.get(blk);
      if (h !== undefined) {
        if (a <= hs && he <= b) {
          // madvise_free_huge_pmd(): pmd_mkold(), pmd_mkclean(), folio_mark_lazyfree()
          h.young = false;
          h.lazy = LAZY_CLEAN;
        } else {
          // split_folio() → unmap_folio() → try_to_migrate_one(): split_huge_pmd_address(freeze),
          // then its own CLEAR window over the folio; remap_page() restores the PTEs.
          yield* this.#splitHugePmd(blk);
          const mig = yield* this.#invalidateStart(hs, he, 'CLEAR');
          if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
          if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
          yield* this.#invalidateEnd(mig);
        }
      }
      const s2 = Math.max(cur, Math.max(a, hs));
      const e2 = Math.min(he, b);
      if (!this.#huge.has(blk)) this.#lazyfreePtes(s2, e2);
      cur = Math.max(cur, e2);
    }
    this.#lazyfreePtes(cur, b);
    if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
    yield* this.#invalidateEnd(inv);
  }

  /** madvise_free_pte_range() on PTEs `[s, e)`: swap entries dropped, present pages marked. */
  #lazyfreePtes(s: number, e: number): void {
    if (e <= s) return;
    this.#forEachIn(this.#swap, s, e, (p) => this.#swap.delete(p));
    this.#forEachIn(this.#pt, s, e, (p, f) => {
      if (f === ZERO_FRAME) return;
      this.#young.delete(p);
      this.#lazy.set(p, LAZY_CLEAN);
    });
  }

  /**
   * Drops PMD mappings whose blocks lie inside `[s, e)`. Callers split partial ones first (with
   * their notifier calls); one still partial here is split silently, so that only its pages in
   * the range go.
   */
  #zapHuge(s: number, e: number, g: Gather): void {
    for (const blk of this.#hugeBlocksIn(s, e)) {
      const h = this.#huge.get(blk)!;
      if (s <= blk * PMD_PAGES && (blk + 1) * PMD_PAGES <= e) {
        this.#huge.delete(blk);
        g.huge.push(h.frame);
      } else {
        this.#splitPmdLocked(blk);
      }
    }
  }

  /** zap_pte_range() on `[s, e)`: PTEs and swap entries go; frames are gathered for freeing. */
  #zapPtes(s: number, e: number, g: Gather): void {
    if (e <= s) return;
    this.#forEachIn(this.#pt, s, e, (p) => this.#dropPte(p, g));
    this.#forEachIn(this.#swap, s, e, (p) => this.#swap.delete(p));
  }

  #dropPte(p: number, g: Gather): void {
    const f = this.#pt.get(p);
    if (f === undefined) return;
    if (f !== ZERO_FRAME) g.frames.push(f);
    this.#pt.delete(p);
    this.#young.delete(p);
    this.#lazy.delete(p);
  }

  /** tlb_finish_mmu(): the gathered pages are freed (and poisoned, if configured). */
  #release(g: Gather): void {
    for (const f of g.frames) this.frames.free(f);
    for (const h of g.huge) this.frames.freeHuge(h);
  }

  /**
   * free_pgtables() after an unmap of `[s, e)`: PTE tables (2 MiB) and PMD tables (1 GiB) that no
   * remaining mapping overlaps are freed (the floor/ceiling rule of free_pgd_range()).
   * @see mm/memory.c free_pgtables(), free_pgd_range() (6.18)
   */
  #freePgtables(s: number, e: number): void {
    const drop = (set: Set<number>, unit: number): void => {
      const lo = Math.floor(s / unit);
      const hi = Math.floor((e - 1) / unit);
      const check = (k: number): void => {
        if (!set.has(k)) return;
        const v = this.#vmas[this.#firstEndingAfter(k * unit)];
        if (v === undefined || v.start >= (k + 1) * unit) set.delete(k);
      };
      if (hi - lo + 1 <= set.size) for (let k = lo; k <= hi; k++) check(k);
      else for (const k of [...set]) if (k >= lo && k <= hi) check(k);
    };
    drop(this.#pteTables, PMD_PAGES);
    drop(this.#pmdTables, PUD_PAGES);
  }

  /** Calls `fn(key, value)` for the entries of `map` with keys in `[s, e)` (either way round). */
  #forEachIn<V>(map: Map<number, V>, s: number, e: number, fn: (k: number, v: V) => void): void {
    if (map.size === 0 || e <= s) return;
    if (e - s <= map.size) {
      for (let p = s; p < e; p++) {
        const v = map.get(p);
        if (v !== undefined) fn(p, v);
      }
    } else {
      for (const [p, v] of [...map]) if (p >= s && p < e) fn(p, v);
    }
  }

  /** PMD-mapped blocks overlapping pages `[s, e)`, ascending. */
  #hugeBlocksIn(s: number, e: number): number[] {
    if (this.#huge.size === 0 || e <= s) return [];
    const lo = blockOf(s);
    const hi = blockOf(e - 1);
    const out: number[] = [];
    if (hi - lo + 1 <= this.#huge.size) {
      for (let b = lo; b <= hi; b++) if (this.#huge.has(b)) out.push(b);
    } else {
      for (const b of this.#huge.keys()) if (b >= lo && b <= hi) out.push(b);
      out.sort((x, y) => x - y);
    }
    return out;
  }

  /**
   * Reclaim/aging candidates in `[s, e)`, ascending: hvaPfn for a present 4 KiB page that is not
   * the zero page, `-(block + 1)` for a PMD-mapped block overlapping the range.
   */
  #candidates(s: number, e: number): number[] {
    const keyed: [number, number][] = [];
    this.#forEachIn(this.#pt, s, e, (p, f) => {
      if (f !== ZERO_FRAME) keyed.push([p, p]);
    });
    for (const b of this.#hugeBlocksIn(s, e)) keyed.push([Math.max(s, b * PMD_PAGES), -(b + 1)]);
    keyed.sort((x, y) => x[0] - y[0]);
    return keyed.map((k) => k[1]);
  }

  // ---------------------------------------------------------------------------------------------
  // Faults
  // ---------------------------------------------------------------------------------------------

  *#faultIn(p: number, write: boolean): Steps<number> {
    for (;;) {
      const r = this.#faultCore(p, write);
      if (r !== -2) return r;
      // do_wp_page() → wp_page_copy() on the zero page: a zeroed copy replaces it.
      const nf = this.frames.allocate(); // folio_prealloc(), before the notifier
      const inv = yield* this.#invalidateStart(p, p + 1, 'CLEAR');
      if (SCHED.preemptive) yield P_INVALIDATE_STARTED;
      const v = this.findVma(p);
      const installed = this.#live && this.#pt.get(p) === ZERO_FRAME && v !== undefined && (v.prot & PROT_WRITE) !== 0; // pte_same()
      if (installed) {
        this.#pt.set(p, nf);
        this.#young.add(p);
      }
      if (SCHED.preemptive) yield P_PAGE_TABLE_CHANGED;
      yield* this.#invalidateEnd(inv);
      if (!installed) this.frames.free(nf);
      // The faulting access is retried: it finds the new page (or faults again).
    }
  }

  /**
   * The fault handler without notifier calls: returns the frame, −1 (no access), or −2 when a
   * write needs the zero page copied (the caller does it with its notifier calls).
   */
  #faultCore(p: number, write: boolean): number {
    if (!this.#live || !Number.isSafeInteger(p)) return -1;
    const v = this.findVma(p);
    if (v === undefined) return -1;
    if (write ? (v.prot & PROT_WRITE) === 0 : v.prot === PROT_NONE) return -1;
    const b = blockOf(p);
    const h = this.#huge.get(b);
    if (h !== undefined) {
      h.young = true;
      if (write && h.lazy !== 0) h.lazy = LAZY_DIRTY;
      return h.frame + (p - b * PMD_PAGES);
    }
    const f = this.#pt.get(p);
    if (f !== undefined) {
      if (f === ZERO_FRAME && write) return -2;
      this.#young.add(p);
      if (write && this.#lazy.has(p)) this.#lazy.set(p, LAZY_DIRTY);
      return f;
    }
    const saved = this.#swap.get(p);
    if (saved !== undefined) {
      const nf = this.frames.allocate();
      this.frames.bytes(nf).set(saved);
      this.#swap.delete(p);
      this.#pt.set(p, nf);
      this.#young.add(p);
      return nf;
    }
    this.#pmdTables.add(pudOf(p));
    if (this.#thpEligible(v, b) && !this.#pteTables.has(b)) {
      const head = this.frames.allocateHuge();
      this.#huge.set(b, { frame: head, young: true, lazy: 0 });
      return head + (p - b * PMD_PAGES);
    }
    this.#pteTables.add(b);
    const nf = write ? this.frames.allocate() : ZERO_FRAME;
    this.#pt.set(p, nf);
    this.#young.add(p);
    return nf;
  }

  #faultRead(p: number): number {
    const f = this.#faultCore(p, false);
    if (f < 0) throw new KvmError('EFAULT', `read fault at ${hexPfn(p)} failed`);
    return f;
  }

  /** A write fault that leaves `p` mapped to the returned frame (no yield after the check). */
  *#faultForWrite(p: number, addr: bigint, size: number): Steps<number> {
    for (;;) {
      const f = yield* this.#faultIn(p, true);
      if (f < 0) throw new KvmError('EFAULT', `write of ${size} bytes at ${hexOf(addr)}: the page at ${hexPfn(p)} is no longer writable`);
      if (this.frameOf(p) === f) return f;
    }
  }

  /** thp_vma_allowable_order() in `madvise` mode + thp_vma_suitable_order(). */
  #thpEligible(v: HostVma, b: number): boolean {
    return v.thp && !v.noThp && v.start <= b * PMD_PAGES && (b + 1) * PMD_PAGES <= v.end;
  }

  // ---------------------------------------------------------------------------------------------

  #setVmas(list: readonly HostVma[]): void {
    this.#vmas = list;
    this.#vmaView = null;
  }

  /** The parts of `v` outside `[s, e)`. */
  #cut(v: HostVma, s: number, e: number): HostVma[] {
    const out: HostVma[] = [];
    if (v.start < s) out.push({ ...v, end: s });
    if (e < v.end) out.push({ ...v, start: e });
    return out;
  }

  /** Index of the first VMA with `end > pfn` (binary search; `#vmas.length` if none). */
  #firstEndingAfter(pfn: number): number {
    let lo = 0;
    let hi = this.#vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#vmas[mid]!.end <= pfn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A page-aligned model range (reclaim, aging) → clamped pages `[s, e)`. */
  #modelRange(what: string, addr: bigint, length: bigint): [number, number] {
    assertU64('addr', addr);
    assertU64('length', length);
    if ((addr & PAGE_OFFSET_MASK) !== 0n || (length & PAGE_OFFSET_MASK) !== 0n || addr + length >= U64_WRAP) {
      throw new KvmError('EINVAL', `${what}: [${hexOf(addr)}, +${hexOf(length)}) is unaligned or wraps`);
    }
    return [clampPfn(addr >> PAGE_SHIFT_N), clampPfn((addr + length) >> PAGE_SHIFT_N)];
  }

  /**
   * EFAULT unless every byte of `[addr, addr + size)` is mapped with the access allowed (a write
   * needs PROT_WRITE, a read anything but PROT_NONE) and the mm is live; returns the first page.
   */
  #checkAccess(addr: bigint, size: AccessSize, write: boolean): number {
    if (!isAccessSize(size)) throw new KvmError('EINVAL', `access size must be 1, 2, 4 or 8, got ${String(size)}`);
    assertU64('addr', addr);
    if (!this.#live) throw new KvmError('EFAULT', `access of ${size} bytes at ${hexOf(addr)}: the mm is gone`);
    if (addr + BigInt(size) > TASK_SIZE) {
      throw new KvmError('EFAULT', `access of ${size} bytes at ${hexOf(addr)} is not mapped`);
    }
    const first = Number(addr >> PAGE_SHIFT_N);
    const last = Number((addr + BigInt(size) - 1n) >> PAGE_SHIFT_N);
    for (let p = first; p <= last; p++) {
      const v = this.findVma(p);
      if (v === undefined) throw new KvmError('EFAULT', `access of ${size} bytes at ${hexOf(addr)} is not mapped`);
      if (write ? (v.prot & PROT_WRITE) === 0 : v.prot === PROT_NONE) {
        throw new KvmError('EFAULT', `${write ? 'write' : 'read'} of ${size} bytes at ${hexOf(addr)}: the mapping does not allow it`);
      }
    }
    return first;
  }
}
