/**
 * The reference backend's secondary MMU: a flat map gfn → entry per address space, where an entry
 * packs the host frame with writable, young (accessed) and dirty bits. Small and obviously right,
 * so the generic fault path and the notifier protocol can be tested before a real MMU exists.
 */
import type { ArchMmu } from '../arch-backend.js';
import type { MemorySlot } from '../memslots/memory-slot.js';

const W = 1;
const YOUNG = 2;
const DIRTY = 4;
const SHIFT = 8;

export class ReferenceMmu implements ArchMmu {
  /** per address space: gfn → frame << 3 | dirty | young | writable */
  readonly tables: Map<number, number>[];

  constructor(nrAddressSpaces: number) {
    this.tables = Array.from({ length: nrAddressSpaces }, () => new Map<number, number>());
  }

  get mappings(): number {
    let n = 0;
    for (const t of this.tables) n += t.size;
    return n;
  }

  translate(asId: number, gfn: number, write: boolean, _memslotsGen: number): number {
    const t = this.tables[asId]!;
    const e = t.get(gfn);
    if (e === undefined || (write && !(e & W))) return -1;
    // hardware sets the accessed (and, on writes, dirty) bits
    const ne = e | YOUNG | (write ? DIRTY : 0);
    if (ne !== e) t.set(gfn, ne);
    return Math.floor(e / SHIFT);
  }

  map(slot: MemorySlot, gfn: number, frame: number, writable: boolean): void {
    this.tables[slot.asId]!.set(gfn, frame * SHIFT + (writable ? W : 0) | YOUNG);
  }

  forEachMapping(visit: (asId: number, gfn: number, frame: number, writable: boolean) => void): void {
    this.tables.forEach((t, asId) => {
      for (const [gfn, e] of t) visit(asId, gfn, Math.floor(e / SHIFT), (e & W) !== 0);
    });
  }

  /** Remove every mapping of [start, end) in one address space; true if any existed. */
  zap(asId: number, start: number, end: number): boolean {
    const t = this.tables[asId]!;
    let any = false;
    if (end - start <= t.size) {
      for (let g = start; g < end; g++) any = t.delete(g) || any;
    } else {
      for (const g of [...t.keys()]) if (g >= start && g < end) any = t.delete(g) || any;
    }
    return any;
  }

  /** Clear the writable bit of the given gfns (write-protect for dirty logging). */
  writeProtect(asId: number, gfn: number): void {
    const t = this.tables[asId]!;
    const e = t.get(gfn);
    if (e !== undefined && e & W) t.set(gfn, e & ~W);
  }

  /** Entries of [start, end) (a snapshot, for walks that may be preempted). */
  entriesIn(asId: number, start: number, end: number): [number, number][] {
    const t = this.tables[asId]!;
    const out: [number, number][] = [];
    if (end - start <= t.size) {
      for (let g = start; g < end; g++) {
        const e = t.get(g);
        if (e !== undefined) out.push([g, e]);
      }
    } else for (const [g, e] of t) if (g >= start && g < end) out.push([g, e]);
    return out;
  }

  static isYoung(e: number): boolean {
    return (e & YOUNG) !== 0;
  }

  static withoutYoung(e: number): number {
    return e & ~YOUNG;
  }
}
