/**
 * One process's anonymous memory: the host address space behind KVM memslots.
 *
 * Three layers, as in Linux:
 * - VMAs: the anonymous private read-write mappings, sorted and non-overlapping, in page-frame
 *   numbers of the host virtual address (`hvaPfn = hva >> 12`, always below 2^35 because every
 *   mapping lies below TASK_SIZE). Adjacent mappings are not merged (Linux merges them; the VMA
 *   count is not observable through the protocol).
 * - A page table: `hvaPfn → frame`. Absent means "not populated" (no PTE). Frame 0 is the shared
 *   zero page, mapped by read faults on never-written memory.
 * - {@link PageFrames}: the frame contents.
 *
 * The syscall-level methods take `bigint` byte addresses (the u64 ABI) and throw {@link KvmError}
 * with the errno the syscall returns. The page-level methods take `number` page-frame numbers and
 * serve KVM's fault path.
 *
 * Every place that removes PTEs goes through one private method (`#zap`), where later work hooks
 * MMU-notifier invalidation (`mmu_notifier_invalidate_range_start/end`).
 */

import { KvmError } from '../errors.js';
import { PAGE_SHIFT, TASK_SIZE_MAX_4LEVEL } from '../uapi.js';
import { type AccessSize, PageFrames, ZERO_FRAME, accessSizeMax, isAccessSize } from './page-frames.js';

export type { AccessSize } from './page-frames.js';

/** A mapping `[start, end)` in host page-frame numbers (byte address >> 12). */
export interface Vma {
  readonly start: number;
  readonly end: number;
}

export type MadviseAdvice = 'DONTNEED';

export interface HostAddressSpaceOptions {
  /**
   * `vm.mmap_min_addr`: a fixed mmap below it fails with EPERM unless the caller has
   * CAP_SYS_RAWIO (security/commoncap.c cap_mmap_addr()). Default 0x10000, the x86 Kconfig and
   * distribution default as seen by an unprivileged process; pass 0n to model a privileged one.
   */
  readonly mmapMinAddr?: bigint;
  /** Frames per slab of the frame store (default 256, i.e. 1 MiB slabs). */
  readonly framesPerSlab?: number;
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

export class HostAddressSpace {
  /** Frame contents. KVM's fault path reads and writes guest memory through it. */
  readonly frames: PageFrames;
  readonly mmapMinAddr: bigint;
  /** Sorted, non-overlapping. Replaced (never mutated) on change, so {@link vmas} is a snapshot. */
  #vmas: readonly Vma[] = [];
  /** hvaPfn → frame; absent = not populated. */
  readonly #pt = new Map<number, number>();

  constructor(options: HostAddressSpaceOptions = {}) {
    this.frames = new PageFrames(options.framesPerSlab);
    this.mmapMinAddr = options.mmapMinAddr ?? DEFAULT_MMAP_MIN_ADDR;
  }

  // ---------------------------------------------------------------------------------------------
  // Syscall level (bigint byte addresses)
  // ---------------------------------------------------------------------------------------------

  /**
   * `mmap(addr, length, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)`.
   * New mappings are zero-filled (no frames).
   *
   * Checks, in the kernel's order:
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
  mmap(addr: bigint, length: bigint): void {
    assertU64('addr', addr);
    assertU64('length', length);
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
        `mmap: [${hexOf(addr)}, ${hexOf(addr + length)}) overlaps the mapping ` +
          `[${hexOf(BigInt(next.start) << PAGE_SHIFT_N)}, ${hexOf(BigInt(next.end) << PAGE_SHIFT_N)})`,
      );
    }
    this.#vmas = [...this.#vmas.slice(0, i), { start, end }, ...this.#vmas.slice(i)];
  }

  /**
   * `munmap(addr, length)`: EINVAL if `addr` is not page aligned, `addr > TASK_SIZE`,
   * `length > TASK_SIZE - addr`, or `length` is 0; rounds `length` up to whole pages. Unmapping
   * holes is not an error. Splits mappings that straddle the range ends and frees their frames.
   *
   * Simplified: the VMA split never fails (Linux can return ENOMEM at `vm.max_map_count`).
   *
   * @see mm/vma.c do_vmi_munmap() (Linux 6.18)
   */
  munmap(addr: bigint, length: bigint): void {
    assertU64('addr', addr);
    assertU64('length', length);
    if ((addr & PAGE_OFFSET_MASK) !== 0n || addr > TASK_SIZE || length > TASK_SIZE - addr) {
      throw new KvmError('EINVAL', `munmap: [${hexOf(addr)}, +${hexOf(length)}) is unaligned or beyond TASK_SIZE`);
    }
    const end = addr + pageAlignU64(length); // cannot wrap: length <= TASK_SIZE - addr
    if (end === addr) throw new KvmError('EINVAL', 'munmap: length is 0');
    const s = Number(addr >> PAGE_SHIFT_N);
    const e = Number(end >> PAGE_SHIFT_N);
    this.#zap(s, e);
    const out: Vma[] = [];
    for (const v of this.#vmas) {
      if (v.end <= s || v.start >= e) {
        out.push(v);
        continue;
      }
      if (v.start < s) out.push({ start: v.start, end: s });
      if (e < v.end) out.push({ start: e, end: v.end });
    }
    this.#vmas = out;
  }

  /**
   * `madvise(addr, length, MADV_DONTNEED)`: drops the pages of every mapped part of the range
   * (frames freed; later reads give zeros).
   *
   * EINVAL if `addr` is not page aligned, if a nonzero `length` rounds up to 0, or if
   * `addr + length` wraps; `length` 0 then returns 0; ENOMEM (thrown after the mapped parts were
   * dropped) if any part of the range is not mapped.
   *
   * @see mm/madvise.c do_madvise(), is_valid_madvise(), madvise_walk_vmas() (Linux 6.18)
   */
  madvise(addr: bigint, length: bigint, advice: MadviseAdvice): void {
    assertU64('addr', addr);
    assertU64('length', length);
    if (advice !== 'DONTNEED') throw new KvmError('EINVAL', `madvise: unsupported advice ${String(advice)}`);
    if ((addr & PAGE_OFFSET_MASK) !== 0n) throw new KvmError('EINVAL', `madvise: addr ${hexOf(addr)} is not page aligned`);
    const len = pageAlignU64(length);
    if (length !== 0n && len === 0n) throw new KvmError('EINVAL', `madvise: length ${hexOf(length)} wraps when rounded up`);
    if (addr + len >= U64_WRAP) throw new KvmError('EINVAL', `madvise: ${hexOf(addr)} + ${hexOf(len)} wraps`);
    if (len === 0n) return;
    const sPfn = addr >> PAGE_SHIFT_N;
    const ePfn = (addr + len) >> PAGE_SHIFT_N;
    // No mapping lies at or above TASK_SIZE, so clamping loses nothing but holes.
    const s = Number(sPfn < BigInt(TASK_SIZE_PFN) ? sPfn : BigInt(TASK_SIZE_PFN));
    const e = Number(ePfn < BigInt(TASK_SIZE_PFN) ? ePfn : BigInt(TASK_SIZE_PFN));
    let covered = 0;
    for (let i = this.#firstEndingAfter(s); i < this.#vmas.length; i++) {
      const v = this.#vmas[i]!;
      if (v.start >= e) break;
      const a = Math.max(v.start, s);
      const b = Math.min(v.end, e);
      this.#zap(a, b);
      covered += b - a;
    }
    if (BigInt(covered) !== ePfn - sPfn) {
      throw new KvmError('ENOMEM', `madvise: part of [${hexOf(addr)}, ${hexOf(addr + len)}) is not mapped`);
    }
  }

  /**
   * Reads `size` bytes little-endian at `addr` (any alignment; may cross a page boundary),
   * faulting pages in for read (never-written pages map the zero page). EFAULT if any byte is
   * not mapped.
   */
  read(addr: bigint, size: AccessSize): bigint {
    const first = this.#checkAccess(addr, size);
    const offset = Number(addr & PAGE_OFFSET_MASK);
    if (offset + size <= 1 << PAGE_SHIFT) {
      return this.frames.read(this.faultIn(first, false), offset, size);
    }
    let value = 0n;
    for (let i = 0; i < size; i++) {
      const off = offset + i;
      const frame = this.faultIn(first + (off >> PAGE_SHIFT), false);
      value |= this.frames.read(frame, off & ((1 << PAGE_SHIFT) - 1), 1) << BigInt(8 * i);
    }
    return value;
  }

  /**
   * Writes the `size`-byte little-endian `value` at `addr` (any alignment; may cross a page
   * boundary), faulting pages in for write. EINVAL if `value` does not fit in `size` bytes;
   * EFAULT (nothing written) if any byte is not mapped.
   */
  write(addr: bigint, size: AccessSize, value: bigint): void {
    if (!isAccessSize(size)) throw new KvmError('EINVAL', `access size must be 1, 2, 4 or 8, got ${String(size)}`);
    if (value < 0n || value > accessSizeMax(size)) {
      throw new KvmError('EINVAL', `value ${value < 0n ? value : hexOf(value)} does not fit in ${size} bytes`);
    }
    const first = this.#checkAccess(addr, size);
    const offset = Number(addr & PAGE_OFFSET_MASK);
    if (offset + size <= 1 << PAGE_SHIFT) {
      this.frames.write(this.faultIn(first, true), offset, size, value);
      return;
    }
    for (let i = 0; i < size; i++) {
      const off = offset + i;
      const frame = this.faultIn(first + (off >> PAGE_SHIFT), true);
      this.frames.write(frame, off & ((1 << PAGE_SHIFT) - 1), 1, (value >> BigInt(8 * i)) & 0xffn);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Page level (number page-frame numbers), for KVM's fault path
  // ---------------------------------------------------------------------------------------------

  /** The mappings, sorted. The array is a snapshot: later changes replace it. */
  vmas(): readonly Vma[] {
    return this.#vmas;
  }

  /** The mapping containing host page `hvaPfn`, if any (find_vma() + containment). */
  findVma(hvaPfn: number): Vma | undefined {
    const v = this.#vmas[this.#firstEndingAfter(hvaPfn)];
    return v !== undefined && v.start <= hvaPfn ? v : undefined;
  }

  /** True when host page `hvaPfn` lies in a mapping. */
  isMapped(hvaPfn: number): boolean {
    return Number.isSafeInteger(hvaPfn) && this.findVma(hvaPfn) !== undefined;
  }

  /** The frame mapped at `hvaPfn` (0 = zero page), or −1 when the page is not populated. */
  frameOf(hvaPfn: number): number {
    return this.#pt.get(hvaPfn) ?? -1;
  }

  /** Number of populated pages (page-table entries), zero-page mappings included. */
  get populatedPages(): number {
    return this.#pt.size;
  }

  /**
   * Handles a page fault at `hvaPfn` and returns the frame now mapped there, or −1 if the page
   * is not in a mapping. A read fault on a never-populated page maps the zero page (frame 0); a
   * write fault allocates a zero-filled frame, replacing a zero-page mapping (copy-on-write from
   * the zero page). Later: a write fault on a read-only mapping will also return −1.
   *
   * @see mm/memory.c handle_mm_fault(), do_anonymous_page(), wp_page_copy() (Linux 6.18)
   */
  faultIn(hvaPfn: number, write: boolean): number {
    if (!this.isMapped(hvaPfn)) return -1;
    const f = this.#pt.get(hvaPfn);
    if (f !== undefined && (f !== ZERO_FRAME || !write)) return f;
    if (!write) {
      this.#pt.set(hvaPfn, ZERO_FRAME);
      return ZERO_FRAME;
    }
    const nf = this.frames.allocate();
    this.#pt.set(hvaPfn, nf);
    return nf;
  }

  /** Little-endian load from a frame (within one frame). */
  readFrame(frame: number, offset: number, size: AccessSize): bigint {
    return this.frames.read(frame, offset, size);
  }

  /** Little-endian store to a frame (within one frame; never the zero page). */
  writeFrame(frame: number, offset: number, size: AccessSize, value: bigint): void {
    this.frames.write(frame, offset, size, value);
  }

  /** A view of a frame's 4096 bytes (aliases the frame; do not write the zero page's view). */
  frameBytes(frame: number): Uint8Array {
    return this.frames.bytes(frame);
  }

  // ---------------------------------------------------------------------------------------------

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

  /**
   * Removes the PTEs of pages `[start, end)` and frees their frames (zap_page_range_single()).
   * The one place where PTEs disappear: MMU-notifier invalidation will wrap this.
   */
  #zap(start: number, end: number): void {
    if (end <= start || this.#pt.size === 0) return;
    const drop = (pfn: number, frame: number): void => {
      if (frame !== ZERO_FRAME) this.frames.free(frame);
      this.#pt.delete(pfn);
    };
    if (end - start <= this.#pt.size) {
      for (let p = start; p < end; p++) {
        const f = this.#pt.get(p);
        if (f !== undefined) drop(p, f);
      }
    } else {
      for (const [p, f] of this.#pt) if (p >= start && p < end) drop(p, f);
    }
  }

  /** EFAULT unless every byte of `[addr, addr + size)` is mapped; returns the first page. */
  #checkAccess(addr: bigint, size: AccessSize): number {
    if (!isAccessSize(size)) throw new KvmError('EINVAL', `access size must be 1, 2, 4 or 8, got ${String(size)}`);
    assertU64('addr', addr);
    if (addr + BigInt(size) > TASK_SIZE) {
      throw new KvmError('EFAULT', `access of ${size} bytes at ${hexOf(addr)} is not mapped`);
    }
    const first = Number(addr >> PAGE_SHIFT_N);
    const last = Number((addr + BigInt(size) - 1n) >> PAGE_SHIFT_N);
    for (let p = first; p <= last; p++) {
      if (!this.isMapped(p)) throw new KvmError('EFAULT', `access of ${size} bytes at ${hexOf(addr)} is not mapped`);
    }
    return first;
  }
}
