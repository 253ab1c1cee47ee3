/**
 * A deliberately naive model of the memslot ABI and dirty log: plain arrays, rules written
 * straight from kvm-generic.md §1 and §5, no trees, no sets, no protocol. Property tests run
 * the same operations against it and against a real VM and compare everything visible.
 *
 * It shares no code with the model it checks (on purpose), except the error-name type.
 */
import type { ErrnoName } from '../errors.js';

export interface NaiveSlot {
  asId: number;
  id: number;
  baseGfn: number;
  npages: number;
  hvaPfn: number;
  flags: number;
  /** one boolean per page, or null when the slot has no bitmap */
  dirty: boolean[] | null;
}

export interface NaiveRegion {
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
}

export interface NaiveModelOptions {
  userMemSlots: number;
  nrAddressSpaces: number;
  readonlyMem: boolean;
  /** highest gfn CREATE/MOVE may reach (the x86 arch rule) */
  maxGfn: number;
  taskSizeMax: bigint;
  /** KVM_DIRTY_LOG_MANUAL_CAPS */
  manualCaps: number;
  /** KVM_GENERIC_DIRTYLOG_READ_PROTECT: get-and-clear GET, CLEAR_DIRTY_LOG, manual protect. Default true. */
  readProtect?: boolean;
}

export type NaiveResult = 0 | ErrnoName;

export class NaiveMemslotModel {
  readonly opts: NaiveModelOptions;
  slots: NaiveSlot[] = [];
  /** generation per address space */
  generations: number[];
  manual = 0;

  constructor(opts: NaiveModelOptions) {
    this.opts = opts;
    this.generations = Array.from({ length: opts.nrAddressSpaces }, (_, i) => i);
  }

  find(asId: number, id: number): NaiveSlot | undefined {
    return this.slots.find((s) => s.asId === asId && s.id === id);
  }

  private bump(asId: number, swaps: number): void {
    this.generations[asId]! += swaps * this.opts.nrAddressSpaces;
  }

  private freshBitmap(npages: number): boolean[] {
    return new Array<boolean>(npages).fill((this.manual & 2) !== 0);
  }

  setUserMemoryRegion(m: NaiveRegion, v2: boolean): NaiveResult {
    const o = this.opts;
    const flags = m.flags >>> 0;
    if (!v2 && flags & ~3) return 'EINVAL';
    const id = flags >= 0 ? m.slot % 65536 : 0;
    const asId = Math.floor(m.slot / 65536);
    if (id >= o.userMemSlots) return 'EINVAL';
    // flags: LOG_DIRTY | GUEST_MEMFD, READONLY if supported; GUEST_MEMFD excludes the others
    const gmem = (flags & 4) !== 0;
    const allowed = gmem ? 4 : 1 | 4 | (o.readonlyMem ? 2 : 0);
    if (flags & ~allowed) return 'EINVAL';
    const size = m.memorySize;
    const gpa = m.guestPhysAddr;
    const ua = m.userspaceAddr;
    if (size % 4096n !== 0n || gpa % 4096n !== 0n || ua % 4096n !== 0n) return 'EINVAL';
    const sum = (ua + size) % 2n ** 64n;
    if (sum > o.taskSizeMax || sum < ua) return 'EINVAL';
    if (asId >= o.nrAddressSpaces) return 'EINVAL';
    if (gpa + size >= 2n ** 64n) return 'EINVAL';
    if (size / 4096n > 2n ** 31n - 1n) return 'EINVAL';
    const old = this.find(asId, id);
    if (size === 0n) {
      if (!old) return 'EINVAL';
      this.slots = this.slots.filter((s) => s !== old);
      this.bump(asId, 2);
      return 0;
    }
    const base = Number(gpa / 4096n);
    const npages = Number(size / 4096n);
    const hvaPfn = Number(ua / 4096n);
    let kind: 'create' | 'move' | 'flags';
    if (!old) kind = 'create';
    else {
      if (gmem) return 'EINVAL';
      if (hvaPfn !== old.hvaPfn || npages !== old.npages || (flags & 6) !== (old.flags & 6)) return 'EINVAL';
      if (base !== old.baseGfn) kind = 'move';
      else if (flags !== old.flags) kind = 'flags';
      else return 0;
    }
    if (kind !== 'flags') {
      for (const s of this.slots) {
        if (s.asId === asId && s.id !== id && s.baseGfn < base + npages && base < s.baseGfn + s.npages) return 'EEXIST';
      }
    }
    if (gmem) return 'EBADF';
    if (kind !== 'flags' && base + npages - 1 > o.maxGfn) {
      // the arch prepare fails: MOVE already swapped in the INVALID copy and swaps back
      if (kind === 'move') this.bump(asId, 2);
      return 'EINVAL';
    }
    const log = (flags & 1) !== 0;
    if (kind === 'create') {
      this.slots.push({ asId, id, baseGfn: base, npages, hvaPfn, flags, dirty: log ? this.freshBitmap(npages) : null });
      this.bump(asId, 1);
    } else {
      const s = old!;
      if (!log) s.dirty = null;
      else if (!s.dirty) s.dirty = this.freshBitmap(npages);
      s.flags = flags;
      s.baseGfn = base;
      this.bump(asId, kind === 'move' ? 2 : 1);
    }
    return 0;
  }

  enableManualProtect(flags: number, arg0: bigint): NaiveResult {
    if (this.opts.readProtect === false) return 'EINVAL';
    const allowed = arg0 & 1n ? BigInt(this.opts.manualCaps) : 1n;
    if (flags !== 0 || (arg0 & ~allowed) !== 0n) return 'EINVAL';
    this.manual = Number(arg0);
    return 0;
  }

  private logged(slotField: number): NaiveSlot | ErrnoName {
    const asId = Math.floor(slotField / 65536);
    const id = slotField % 65536;
    if (asId >= this.opts.nrAddressSpaces || id >= this.opts.userMemSlots) return 'EINVAL';
    const s = this.find(asId, id);
    return s && s.dirty ? s : 'ENOENT';
  }

  /** Bitmap bytes, as KVM_GET_DIRTY_LOG returns them (x86: get-and-clear unless manual). */
  getDirtyLog(slotField: number): Uint8Array | ErrnoName {
    const s = this.logged(slotField);
    if (typeof s === 'string') return s;
    const out = new Uint8Array(Math.ceil(s.npages / 64) * 8);
    s.dirty!.forEach((d, i) => {
      if (d) out[i >> 3]! |= 1 << (i & 7);
    });
    if (this.manual === 0 && this.opts.readProtect !== false) s.dirty!.fill(false);
    return out;
  }

  clearDirtyLog(slotField: number, firstPage: bigint, numPages: number, bitmap: Uint8Array | null): NaiveResult {
    if (this.opts.readProtect === false) return 'ENOTTY';
    const asId = Math.floor(slotField / 65536);
    const id = slotField % 65536;
    if (asId >= this.opts.nrAddressSpaces || id >= this.opts.userMemSlots) return 'EINVAL';
    if (firstPage % 64n !== 0n) return 'EINVAL';
    const s = this.find(asId, id);
    if (!s || !s.dirty) return 'ENOENT';
    const n = BigInt(s.npages);
    const num = BigInt(numPages);
    if (firstPage > n || num > n - firstPage) return 'EINVAL';
    if (num < n - firstPage && numPages % 64 !== 0) return 'EINVAL';
    const bytes = Math.ceil(numPages / 64) * 8;
    if (bytes > 0 && (!bitmap || bitmap.length < bytes)) return 'EFAULT';
    for (let i = 0; i < numPages; i++) {
      if (bitmap![i >> 3]! & (1 << (i & 7))) s.dirty[Number(firstPage) + i] = false;
    }
    return 0;
  }

  /** A guest write: marks the page dirty if its slot logs. */
  markDirty(asId: number, gfn: number): void {
    const s = this.slots.find((x) => x.asId === asId && gfn >= x.baseGfn && gfn < x.baseGfn + x.npages);
    if (s && s.flags & 1 && s.dirty) s.dirty[gfn - s.baseGfn] = true;
  }
}
