/**
 * The timed inner loops of the lookup ops. Each loop is written once per concrete set class
 * (ScalableMemslotSet, LegacyMemslotSet) rather than against the MemslotSet interface: V8 keeps
 * type feedback per function, so a shared loop would turn its call site polymorphic as soon as
 * the second store design runs, and the two designs would be measured through different ICs.
 * Duplicated bodies keep every call site monomorphic.
 *
 * All loops are allocation-free: inputs are precomputed Float64Arrays read with a power-of-two
 * mask, and each returns an int32 checksum of the slots found, which the caller consumes so the
 * work cannot be dropped as dead code.
 */
import type { LegacyMemslotSet, ScalableMemslotSet } from '@kvmsim/kvm-core';

// ---- lookup-uncached: search_memslots(gfn, approx = false) -----------------------------------

export function searchLoopScalable(set: ScalableMemslotSet, gfns: Float64Array, start: number, iters: number): number {
  const mask = gfns.length - 1;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const s = set.searchMemslots(gfns[(start + i) & mask]!, false);
    if (s !== null) sum = (sum + s.id) | 0;
  }
  return sum;
}

export function searchLoopLegacy(set: LegacyMemslotSet, gfns: Float64Array, start: number, iters: number): number {
  const mask = gfns.length - 1;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const s = set.searchMemslots(gfns[(start + i) & mask]!, false);
    if (s !== null) sum = (sum + s.id) | 0;
  }
  return sum;
}

// ---- lookup-cached: ____gfn_to_memslot() hitting the last-used slot ---------------------------

export function cachedLoopScalable(set: ScalableMemslotSet, gfns: Float64Array, start: number, iters: number): number {
  const mask = gfns.length - 1;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const s = set.gfnToMemslot(gfns[(start + i) & mask]!);
    if (s !== null) sum = (sum + s.id) | 0;
  }
  return sum;
}

export function cachedLoopLegacy(set: LegacyMemslotSet, gfns: Float64Array, start: number, iters: number): number {
  const mask = gfns.length - 1;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const s = set.gfnToMemslot(gfns[(start + i) & mask]!);
    if (s !== null) sum = (sum + s.id) | 0;
  }
  return sum;
}

// ---- hva-range: kvm_for_each_memslot_in_hva_range() over one 4 KiB page ----------------------

export function hvaRangeLoopScalable(set: ScalableMemslotSet, pfns: Float64Array, start: number, iters: number): number {
  const mask = pfns.length - 1;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const p = pfns[(start + i) & mask]!;
    for (let c = set.hvaRangeFirst(p, p); c !== 0; c = set.hvaRangeNext(c, p, p)) {
      sum = (sum + set.hvaCursorSlot(c).id) | 0;
    }
  }
  return sum;
}

export function hvaRangeLoopLegacy(set: LegacyMemslotSet, pfns: Float64Array, start: number, iters: number): number {
  const mask = pfns.length - 1;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    const p = pfns[(start + i) & mask]!;
    for (let c = set.hvaRangeFirst(p, p); c !== 0; c = set.hvaRangeNext(c, p, p)) {
      sum = (sum + set.hvaCursorSlot(c).id) | 0;
    }
  }
  return sum;
}

// ---- bsearch-floor: the bare floor search every gfn lookup is compared against ---------------

/** Index of the greatest base ≤ gfn in an ascending array, or -1. */
export function floorIndex(bases: Float64Array, gfn: number): number {
  let lo = 0;
  let hi = bases.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bases[mid]! <= gfn) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

export function bsearchFloorLoop(bases: Float64Array, gfns: Float64Array, start: number, iters: number): number {
  const mask = gfns.length - 1;
  let sum = 0;
  for (let i = 0; i < iters; i++) {
    sum = (sum + floorIndex(bases, gfns[(start + i) & mask]!)) | 0;
  }
  return sum;
}
