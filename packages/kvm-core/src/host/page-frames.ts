/**
 * Physical page frames of the host model: 4 KiB frames stored in large slab `Uint8Array`s,
 * identified by a frame number, with a free list for reuse.
 *
 * Frame 0 is the shared zero page (Linux's `ZERO_PAGE(0)`, `mm/memory.c do_anonymous_page()`
 * maps it for read faults on anonymous memory): it is reserved, always reads zeros, and is
 * never handed out or written.
 *
 * Huge pages (transparent huge pages, 2 MiB): {@link PageFrames.allocateHuge} hands out
 * {@link HUGE_FRAMES} frames that are contiguous in frame numbers and start at a multiple of
 * {@link HUGE_FRAMES}, as a PMD-mapped folio's pfns are (the x86 huge-page code checks that
 * alignment). A run freed whole ({@link PageFrames.freeHuge}) is kept as a run and reused by the
 * next huge allocation; a run whose frames are freed one by one (after a split) is not coalesced
 * again (no buddy allocator).
 *
 * Page poisoning (CONFIG_PAGE_POISONING, `page_poison=1`): with a poison byte, every freed frame is
 * filled with it (mm/page_poison.c __kernel_poison_pages(), called on free). Newly allocated
 * frames are zero-filled as before, so a correct refault reads zeros while a stale mapping that
 * still points at a freed frame reads the poison pattern.
 *
 * Simplification: frames have no reference count (nothing shares a frame except the zero page
 * yet); fork/KSM work will add one here.
 */

import { KvmError } from '../errors.js';
import { PAGE_SIZE } from '../uapi.js';

/** Size in bytes of one guest access or host access: the protocol's `size` field. */
export type AccessSize = 1 | 2 | 4 | 8;

/** Frame number of the shared zero page. */
export const ZERO_FRAME = 0;

/** Default number of frames per slab (256 × 4 KiB = 1 MiB). */
export const DEFAULT_FRAMES_PER_SLAB = 256;

/** Frames in one huge page (HPAGE_PMD_NR: 2 MiB / 4 KiB). */
export const HUGE_FRAMES = 512;

/** True when `size` is one of 1, 2, 4, 8. */
export function isAccessSize(size: number): size is AccessSize {
  return size === 1 || size === 2 || size === 4 || size === 8;
}

// Indexed by access size; a table because BigInt arithmetic allocates on every guest access.
const ACCESS_SIZE_MAX: readonly bigint[] = [0n, 0xffn, 0xffffn, 0n, 0xffff_ffffn, 0n, 0n, 0n, 0xffff_ffff_ffff_ffffn];

/** The largest value `size` bytes can hold: 2^(8·size) − 1. */
export function accessSizeMax(size: AccessSize): bigint {
  return ACCESS_SIZE_MAX[size]!;
}

export class PageFrames {
  readonly #framesPerSlab: number;
  readonly #slabs: Uint8Array[] = [];
  readonly #views: DataView[] = [];
  /** Per slab, one byte per frame: 1 while allocated (the zero frame counts as allocated). */
  readonly #state: Uint8Array[] = [];
  /** Freed frames, reused last-freed first. They hold stale data until reallocated. */
  readonly #free: number[] = [];
  /** First frames of free, intact, aligned runs of {@link HUGE_FRAMES} frames. */
  readonly #freeRuns: number[] = [];
  /** Frames `>= #next` have never been handed out (and are still zero). */
  #next = 1;
  #inUse = 0;
  /** The poison byte written over freed frames, or null (no poisoning). */
  readonly poison: number | null;

  /**
   * @param framesPerSlab frames per slab `Uint8Array`
   * @param poison when set (0..255), freed frames are filled with this byte
   */
  constructor(framesPerSlab: number = DEFAULT_FRAMES_PER_SLAB, poison: number | null = null) {
    if (!Number.isSafeInteger(framesPerSlab) || framesPerSlab < 1) {
      throw new KvmError('EINVAL', `framesPerSlab must be a positive integer, got ${framesPerSlab}`);
    }
    if (poison !== null && (!Number.isInteger(poison) || poison < 0 || poison > 0xff)) {
      throw new KvmError('EINVAL', `poison must be a byte, got ${poison}`);
    }
    this.#framesPerSlab = framesPerSlab;
    this.poison = poison;
    this.#addSlab();
    this.#state[0]![0] = 1; // the zero page is permanently "allocated"
  }

  /** Frames currently allocated, not counting the zero page. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Frames backed by slab memory, including the zero page and free frames. */
  get capacity(): number {
    return this.#slabs.length * this.#framesPerSlab;
  }

  /** Allocates a zero-filled frame (never {@link ZERO_FRAME}). */
  allocate(): number {
    let reused = this.#free.pop();
    if (reused === undefined) {
      // Break up a free huge run before growing the store.
      const run = this.#freeRuns.pop();
      if (run !== undefined) {
        for (let f = run + HUGE_FRAMES - 1; f > run; f--) this.#free.push(f);
        reused = run;
      }
    }
    let frame: number;
    if (reused !== undefined) {
      frame = reused;
    } else {
      frame = this.#next++;
      this.#grow(frame + 1); // fresh slab memory is already zero
    }
    this.#setState(frame, 1);
    this.#inUse++;
    if (reused !== undefined) this.#zero(frame);
    return frame;
  }

  /**
   * Allocates {@link HUGE_FRAMES} zero-filled frames that are contiguous and aligned (the first
   * frame is a multiple of {@link HUGE_FRAMES}) and returns the first. Reuses a run freed with
   * {@link freeHuge}; otherwise takes fresh frames, putting the never-used frames skipped for
   * alignment on the 4 KiB free list.
   */
  allocateHuge(): number {
    let head = this.#freeRuns.pop();
    if (head === undefined) {
      head = Math.ceil(this.#next / HUGE_FRAMES) * HUGE_FRAMES;
      this.#grow(head + HUGE_FRAMES);
      // Skipped fresh frames: mark them free (they are zero) for 4 KiB allocations.
      for (let f = head - 1; f >= this.#next; f--) this.#free.push(f);
      this.#next = head + HUGE_FRAMES;
    } else {
      for (let f = head; f < head + HUGE_FRAMES; f++) this.#zero(f);
    }
    for (let f = head; f < head + HUGE_FRAMES; f++) this.#setState(f, 1);
    this.#inUse += HUGE_FRAMES;
    return head;
  }

  /** Returns a frame to the free list. Freeing the zero page or a free frame is a model bug. */
  free(frame: number): void {
    if (frame === ZERO_FRAME) throw new KvmError('EINVAL', 'frame 0 is the shared zero page and is never freed');
    if (!this.isAllocated(frame)) throw new KvmError('EINVAL', `frame ${frame} is not allocated (double free?)`);
    this.#setState(frame, 0);
    this.#poisonFrame(frame);
    this.#free.push(frame);
    this.#inUse--;
  }

  /**
   * Frees a whole huge run allocated by {@link allocateHuge} (all of its frames must still be
   * allocated); the run stays intact for the next huge allocation.
   */
  freeHuge(head: number): void {
    if (head % HUGE_FRAMES !== 0 || head === ZERO_FRAME) throw new KvmError('EINVAL', `frame ${head} does not start a huge run`);
    for (let f = head; f < head + HUGE_FRAMES; f++) {
      if (!this.isAllocated(f)) throw new KvmError('EINVAL', `frame ${f} of the huge run at ${head} is not allocated (double free?)`);
    }
    for (let f = head; f < head + HUGE_FRAMES; f++) {
      this.#setState(f, 0);
      this.#poisonFrame(f);
    }
    this.#freeRuns.push(head);
    this.#inUse -= HUGE_FRAMES;
  }

  /**
   * Little-endian load from any frame of the store, allocated or not: what a CPU reading through
   * a stale mapping sees (the poison pattern, or stale data without poisoning).
   */
  readRaw(frame: number, offset: number, size: AccessSize): bigint {
    if (!Number.isSafeInteger(frame) || frame < 0 || frame >= this.capacity) {
      throw new KvmError('EINVAL', `frame ${frame} is outside the frame store`);
    }
    this.#checkRange(offset, size);
    return this.#load(frame, offset, size);
  }

  /** True for the zero page and for frames handed out by {@link allocate} and not yet freed. */
  isAllocated(frame: number): boolean {
    if (!Number.isSafeInteger(frame) || frame < 0 || frame >= this.capacity) return false;
    return this.#state[Math.floor(frame / this.#framesPerSlab)]![frame % this.#framesPerSlab] === 1;
  }

  /**
   * A view of the frame's 4096 bytes. The view aliases slab memory: writes through it change the
   * frame. Never write through a view of {@link ZERO_FRAME}.
   */
  bytes(frame: number): Uint8Array {
    this.#check(frame);
    const off = (frame % this.#framesPerSlab) * PAGE_SIZE;
    return this.#slabs[Math.floor(frame / this.#framesPerSlab)]!.subarray(off, off + PAGE_SIZE);
  }

  /** Little-endian load of `size` bytes at `offset` within the frame (must not cross its end). */
  read(frame: number, offset: number, size: AccessSize): bigint {
    this.#check(frame);
    this.#checkRange(offset, size);
    return this.#load(frame, offset, size);
  }

  #load(frame: number, offset: number, size: AccessSize): bigint {
    const view = this.#views[Math.floor(frame / this.#framesPerSlab)]!;
    const at = (frame % this.#framesPerSlab) * PAGE_SIZE + offset;
    switch (size) {
      case 1:
        return BigInt(view.getUint8(at));
      case 2:
        return BigInt(view.getUint16(at, true));
      case 4:
        return BigInt(view.getUint32(at, true));
      case 8:
        return view.getBigUint64(at, true);
    }
  }

  /**
   * Little-endian store of the low `size` bytes of `value` at `offset` within the frame (must not
   * cross its end). `value` must fit in `size` bytes.
   */
  write(frame: number, offset: number, size: AccessSize, value: bigint): void {
    if (frame === ZERO_FRAME) throw new KvmError('EINVAL', 'frame 0 is the shared zero page and is never written');
    this.#check(frame);
    this.#checkRange(offset, size);
    if (value < 0n || value > accessSizeMax(size)) {
      throw new KvmError('EINVAL', `value 0x${value.toString(16)} does not fit in ${size} bytes`);
    }
    const view = this.#views[Math.floor(frame / this.#framesPerSlab)]!;
    const at = (frame % this.#framesPerSlab) * PAGE_SIZE + offset;
    switch (size) {
      case 1:
        view.setUint8(at, Number(value));
        return;
      case 2:
        view.setUint16(at, Number(value), true);
        return;
      case 4:
        view.setUint32(at, Number(value), true);
        return;
      case 8:
        view.setBigUint64(at, value, true);
        return;
    }
  }

  /** Adds slabs until frames `< frames` are backed. */
  #grow(frames: number): void {
    while (frames > this.capacity) this.#addSlab();
  }

  #setState(frame: number, v: 0 | 1): void {
    this.#state[Math.floor(frame / this.#framesPerSlab)]![frame % this.#framesPerSlab] = v;
  }

  #raw(frame: number): Uint8Array {
    const off = (frame % this.#framesPerSlab) * PAGE_SIZE;
    return this.#slabs[Math.floor(frame / this.#framesPerSlab)]!.subarray(off, off + PAGE_SIZE);
  }

  #zero(frame: number): void {
    this.#raw(frame).fill(0);
  }

  /** CONFIG_PAGE_POISONING: poison on free (mm/page_poison.c __kernel_poison_pages()). */
  #poisonFrame(frame: number): void {
    if (this.poison !== null) this.#raw(frame).fill(this.poison);
  }

  #addSlab(): void {
    const slab = new Uint8Array(this.#framesPerSlab * PAGE_SIZE);
    this.#slabs.push(slab);
    this.#views.push(new DataView(slab.buffer));
    this.#state.push(new Uint8Array(this.#framesPerSlab));
  }

  #check(frame: number): void {
    if (!this.isAllocated(frame)) throw new KvmError('EINVAL', `frame ${frame} is not allocated`);
  }

  #checkRange(offset: number, size: AccessSize): void {
    if (!isAccessSize(size)) throw new KvmError('EINVAL', `access size must be 1, 2, 4 or 8, got ${String(size)}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > PAGE_SIZE) {
      throw new KvmError('EINVAL', `access of ${size} bytes at offset ${offset} does not fit in one 4096-byte frame`);
    }
  }
}
