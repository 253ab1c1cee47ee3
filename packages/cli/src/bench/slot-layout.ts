/**
 * The memslot layout every benchmark VM gets: N slots of a few pages each, with distinct gfn
 * ranges separated by gaps and distinct hva ranges, plus the precomputed lookup inputs.
 */
import { createVm, type Kvm, type UserspaceMemoryRegion } from '@kvmsim/kvm-core';
import { referenceBackend, type ReferenceArchVm } from '@kvmsim/kvm-core/testing';
import { deriveSeed, mulberry32, randomBelow } from './prng.js';

/** Pages per slot (16 KiB). */
export const SLOT_PAGES = 4;
/** Slot i starts at gfn GFN_BASE + i * GFN_STRIDE: a 4-page hole follows every slot. */
export const GFN_BASE = 0x100000;
export const GFN_STRIDE = 8;
/** Slot i's memory is at hva page HVA_BASE_PFN + i * HVA_STRIDE (0x7f00_0000_0000 upwards). */
export const HVA_BASE_PFN = 0x7f0000000;
export const HVA_STRIDE = 16;
/** The x86 reference profile's KVM_USER_MEM_SLOTS (32767 − 3 internal slots). */
export const MAX_BENCH_SLOTS = 32764;
/** Length of every precomputed lookup sequence (a power of two: indices are masked). */
export const LOOKUP_SEQUENCE_LENGTH = 4096;

export type StoreConfig = 'scalable' | 'legacy' | 'scalable-no-hva-tree';

export function slotBaseGfn(id: number): number {
  return GFN_BASE + id * GFN_STRIDE;
}

export function slotHvaPfn(id: number): number {
  return HVA_BASE_PFN + id * HVA_STRIDE;
}

/** A KVM_SET_USER_MEMORY_REGION argument for slot `id` at `baseGfn` (size 0 deletes). */
export function slotRegion(id: number, baseGfn: number, flags: number, pages: number = SLOT_PAGES): UserspaceMemoryRegion {
  return {
    slot: id,
    flags,
    guestPhysAddr: BigInt(baseGfn) << 12n,
    memorySize: BigInt(pages) << 12n,
    userspaceAddr: BigInt(slotHvaPfn(id)) << 12n,
  };
}

/**
 * A VM of the given store design holding slots 0..n-1.
 *
 * Slots are created in DESCENDING gfn order: the legacy store keeps its array sorted by base gfn
 * descending, so each new (lowest) slot is appended at the back without shifting anything, and
 * setup stays O(n) per create (the kvm_dup_memslots() copy) instead of O(n) copy + O(n) shifts —
 * a few seconds at n = 32764 rather than much longer. Setup is never timed.
 */
export function setupVm(config: StoreConfig, n: number): Kvm {
  const kvm = createVm({
    backend: referenceBackend({ record: false }),
    memslots: config === 'legacy' ? 'legacy' : 'scalable',
    ...(config === 'scalable-no-hva-tree' ? { hvaTree: false } : {}),
  });
  const arch = kvm.arch as ReferenceArchVm;
  for (let id = n - 1; id >= 0; id--) {
    kvm.setUserMemoryRegion(slotRegion(id, slotBaseGfn(id), 0));
    // The reference backend records every hook call; drop them so the log does not grow.
    if ((id & 255) === 0) arch.calls.length = 0;
  }
  arch.calls.length = 0;
  return kvm;
}

/** Drops the reference backend's hook log (outside timed regions). */
export function clearHookLog(kvm: Kvm): void {
  (kvm.arch as ReferenceArchVm).calls.length = 0;
}

/** The slot in the middle of the gfn order: what the update ops work on. */
export function middleSlot(n: number): number {
  return n >> 1;
}

/** The first gfn above every slot: a free range for `move`. */
export function freeGfnAbove(n: number): number {
  return GFN_BASE + n * GFN_STRIDE;
}

/** Which random sequence (mixed into the seed, so each has its own stream). */
const SEQ_GFN = 1;
const SEQ_HVA = 2;
const SEQ_CACHED = 3;

/** Random gfns, each inside a random slot of 0..n-1 (uncached lookups and the bsearch floor). */
export function randomSlotGfns(seed: number, n: number, length: number = LOOKUP_SEQUENCE_LENGTH): Float64Array {
  const rng = mulberry32(deriveSeed(seed, n, SEQ_GFN));
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = slotBaseGfn(randomBelow(rng, n)) + randomBelow(rng, SLOT_PAGES);
  return out;
}

/** Random hva pages, each inside a random slot of 0..n-1 (hva-range lookups). */
export function randomSlotHvaPfns(seed: number, n: number, length: number = LOOKUP_SEQUENCE_LENGTH): Float64Array {
  const rng = mulberry32(deriveSeed(seed, n, SEQ_HVA));
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = slotHvaPfn(randomBelow(rng, n)) + randomBelow(rng, SLOT_PAGES);
  return out;
}

/** Gfns all inside one random slot (so every lookup hits the last-used cache). */
export function cachedSlotGfns(seed: number, n: number, length: number = LOOKUP_SEQUENCE_LENGTH): Float64Array {
  const rng = mulberry32(deriveSeed(seed, n, SEQ_CACHED));
  const base = slotBaseGfn(randomBelow(rng, n));
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = base + randomBelow(rng, SLOT_PAGES);
  return out;
}

/** The slots' base gfns, ascending: the bare binary search's array. */
export function sortedBaseGfns(n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = slotBaseGfn(i);
  return out;
}
