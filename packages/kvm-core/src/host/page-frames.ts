/**
 * Physical page frames of the host model: 4 KiB frames stored in large slab `Uint8Array`s,
 * identified by a frame number, with a free list for reuse.
 *
 * Frame 0 is the shared zero page (Linux's `ZERO_PAGE(0)`, `mm/memory.c do_anonymous_page()`
 * maps it for read faults on anonymous memory): it is reserved, always reads zeros, and is
 * never handed out or written.
 *
 * Simplification: frames have no reference count (nothing shares a frame except the zero page
 * yet); fork/KSM/THP work will add one here.
 */

import { KvmError } from '../errors.js';
import { PAGE_SIZE } from '../uapi.js';

/** Size in bytes of one guest access or host access: the protocol's `size` field. */
export type AccessSize = 1 | 2 | 4 | 8;

/** Frame number of the shared zero page. */
export const ZERO_FRAME = 0;

/** Default number of frames per slab (256 × 4 KiB = 1 MiB). */
export const DEFAULT_FRAMES_PER_SLAB = 256;

/** True when `size` is one of 1, 2, 4, 8. */
export function isAccessSize(size: number): size is AccessSize {
  return size === 1 || size === 2 || size === 4 || size === 8;
}

/** The largest value `size` bytes can hold: 2^(8·size) − 1. */
export function accessSizeMax(size: AccessSize): bigint {
  return (1n << BigInt(size * 8)) - 1n;
}

export class PageFrames {
  readonly #framesPerSlab: number;
  readonly #slabs: Uint8Array[] = [];
  readonly #views: DataView[] = [];
  /** Per slab, one byte per frame: 1 while allocated (the zero frame counts as allocated). */
  readonly #state: Uint8Array[] = [];
  /** Freed frames, reused last-freed first. They hold stale data until reallocated. */
  readonly #free: number[] = [];
  /** Frames `>= #next` have never been handed out (and are still zero). */
  #next = 1;
  #inUse = 0;

  constructor(framesPerSlab: number = DEFAULT_FRAMES_PER_SLAB) {
    if (!Number.isSafeInteger(framesPerSlab) || framesPerSlab < 1) {
      throw new KvmError('EINVAL', `framesPerSlab must be a positive integer, got ${framesPerSlab}`);
    }
    this.#framesPerSlab = framesPerSlab;
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
    const reused = this.#free.pop();
    let frame: number;
    if (reused !== undefined) {
      frame = reused;
    } else {
      frame = this.#next++;
      if (frame >= this.capacity) this.#addSlab(); // fresh slab memory is already zero
    }
    this.#state[Math.floor(frame / this.#framesPerSlab)]![frame % this.#framesPerSlab] = 1;
    this.#inUse++;
    if (reused !== undefined) this.bytes(frame).fill(0);
    return frame;
  }

  /** Returns a frame to the free list. Freeing the zero page or a free frame is a model bug. */
  free(frame: number): void {
    if (frame === ZERO_FRAME) throw new KvmError('EINVAL', 'frame 0 is the shared zero page and is never freed');
    if (!this.isAllocated(frame)) throw new KvmError('EINVAL', `frame ${frame} is not allocated (double free?)`);
    this.#state[Math.floor(frame / this.#framesPerSlab)]![frame % this.#framesPerSlab] = 0;
    this.#free.push(frame);
    this.#inUse--;
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
