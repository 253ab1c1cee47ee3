/**
 * The sequence generator of `kvmsim diff`: seeded, reproducible replay protocol v1 sequences
 * (shared/specs/replay-protocol.md) that exercise what both the model and the kernel can answer.
 *
 * The generator keeps a rough prediction of the VM's state (which pool pages are mapped, which
 * slots exist with which flags, whether manual dirty-log protection is on) only to *steer*: most
 * memslot ops are valid against that prediction, most guest accesses land inside existing slots,
 * most dirty-log ops name a logged slot. The prediction is never an expected answer; the model
 * and the kernel answer, and `kvmsim diff` compares them. A fixed share of ops is deliberately
 * invalid (misaligned, overflowing, bad ids and flags, overlaps, malformed lines).
 *
 * Determinism: every choice comes from one mulberry32 stream seeded from the sequence seed, and
 * the text depends on nothing else, so one seed always gives the same text.
 */
import { REPLAY_CHECK_EXTENSION_CAPS, hex } from '@kvmsim/kvm-core/replay';
import { deriveSeed, mulberry32, type Prng } from '../bench/prng.js';
import {
  GPA_GRANULE,
  GPA_HIGH_BASE,
  GPA_LIMIT,
  GPA_LOW_GRANULES,
  HOST_BASE,
  HOST_POOL_PAGES,
  HOST_REGION_COUNT,
  HOST_REGION_PAGES,
  HOST_REGION_STRIDE,
  MEM_LOG_DIRTY_PAGES,
  MEM_READONLY,
  PAGE_SIZE,
  SLOT_IDS,
  SLOT_ID_MAX_VALID,
  SLOT_PAGES,
} from './layout.js';

/** Bumped whenever the same seed would give different text. */
export const GENERATOR_VERSION = 2;

export interface GenerateOptions {
  /** The sequence seed (a u32). */
  seed: number;
  /** Number of op lines (the header comment is not counted). */
  ops: number;
}

/** A slot as the generator predicts it. */
interface PredictedSlot {
  id: number;
  gpa: number;
  npages: number;
  uaddr: number;
  flags: number;
}

type Access = 1 | 2 | 4 | 8;
const ACCESS_SIZES: readonly Access[] = [1, 2, 4, 8];

/** Generate one sequence: a header comment, then `ops` op lines (JSON, one per line). */
export function generateSequence(options: GenerateOptions): string[] {
  return new SequenceGenerator(options.seed).generate(options.ops);
}

/** {@link generateSequence} as file text (newline-terminated lines). */
export function generateSequenceText(options: GenerateOptions): string {
  return `${generateSequence(options).join('\n')}\n`;
}

class SequenceGenerator {
  private readonly rng: Prng;
  private readonly seed: number;
  /** One byte per page of the host pool: 1 = mapped (as predicted). */
  private readonly mapped = new Uint8Array(HOST_POOL_PAGES);
  private readonly slots = new Map<number, PredictedSlot>();

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.rng = mulberry32(deriveSeed(this.seed, GENERATOR_VERSION));
  }

  // ---------------------------------------------------------------------------------------------
  // random helpers

  private below(n: number): number {
    return Math.floor(this.rng() * n);
  }

  private chance(p: number): boolean {
    return this.rng() < p;
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  private u32(): bigint {
    return BigInt(Math.floor(this.rng() * 0x1_0000_0000));
  }

  /** A random value that fits in `size` bytes (small values now and then: 0 and 1 matter). */
  private value(size: Access): bigint {
    if (this.chance(0.1)) return BigInt(this.below(2));
    const v = (this.u32() << 32n) | this.u32();
    return v & ((1n << BigInt(8 * size)) - 1n);
  }

  // ---------------------------------------------------------------------------------------------
  // predicted state

  private hostPage(addr: number): number {
    return (addr - HOST_BASE) / PAGE_SIZE;
  }

  private regionBase(r: number): number {
    return HOST_BASE + r * HOST_REGION_STRIDE;
  }

  private setMapped(addr: number, pages: number, on: 0 | 1): void {
    const first = Math.max(0, this.hostPage(addr));
    const end = Math.min(HOST_POOL_PAGES, this.hostPage(addr) + pages);
    for (let p = first; p < end; p++) this.mapped[p] = on;
  }

  private anyMapped(addr: number, pages: number): boolean {
    const first = this.hostPage(addr);
    for (let p = first; p < first + pages; p++) if (p >= 0 && p < HOST_POOL_PAGES && this.mapped[p] === 1) return true;
    return false;
  }

  private mappedPageCount(): number {
    let n = 0;
    for (const m of this.mapped) n += m;
    return n;
  }

  private overlaps(gpa: number, npages: number, except?: number): boolean {
    const end = gpa + npages * PAGE_SIZE;
    for (const s of this.slots.values()) {
      if (s.id === except) continue;
      if (gpa < s.gpa + s.npages * PAGE_SIZE && s.gpa < end) return true;
    }
    return false;
  }

  private randomSlot(): PredictedSlot | undefined {
    if (this.slots.size === 0) return undefined;
    return this.pick([...this.slots.values()]);
  }

  private loggedSlots(): PredictedSlot[] {
    return [...this.slots.values()].filter((s) => (s.flags & MEM_LOG_DIRTY_PAGES) !== 0);
  }

  private freeId(): number | undefined {
    if (this.chance(0.03) && !this.slots.has(SLOT_ID_MAX_VALID)) return SLOT_ID_MAX_VALID;
    const free = SLOT_IDS.filter((id) => !this.slots.has(id));
    return free.length === 0 ? undefined : this.pick(free);
  }

  /** A slot base that keeps `npages` below 2^32; mostly low, now and then just below 4 GiB. */
  private randomGpa(npages: number): number {
    if (this.chance(0.1)) {
      const room = (GPA_LIMIT - GPA_HIGH_BASE) / GPA_GRANULE - Math.ceil((npages * PAGE_SIZE) / GPA_GRANULE);
      if (room >= 0) return GPA_HIGH_BASE + this.below(room + 1) * GPA_GRANULE;
    }
    return this.below(GPA_LOW_GRANULES) * GPA_GRANULE;
  }

  /** A free slot base (a few tries), or a random one when none was found. */
  private freeGpa(npages: number, except?: number): number {
    let gpa = this.randomGpa(npages);
    for (let i = 0; i < 8 && this.overlaps(gpa, npages, except); i++) gpa = this.randomGpa(npages);
    return gpa;
  }

  /** Regions whose every page is mapped (as predicted). */
  private mappedRegions(): number[] {
    const out: number[] = [];
    for (let r = 0; r < HOST_REGION_COUNT; r++) {
      const first = this.hostPage(this.regionBase(r));
      if (this.mapped.subarray(first, first + HOST_REGION_PAGES).every((m) => m === 1)) out.push(r);
    }
    return out;
  }

  /**
   * A host range for a slot: mostly inside one fully mapped region (so guest accesses reach
   * memory); now and then anywhere in the pool, or across a region's end into its gap.
   */
  private slotUaddr(npages: number): number {
    const full = this.mappedRegions();
    const base = this.regionBase(full.length > 0 && this.chance(0.85) ? this.pick(full) : this.below(HOST_REGION_COUNT));
    if (npages <= HOST_REGION_PAGES && this.chance(0.9)) return base + this.below(HOST_REGION_PAGES - npages + 1) * PAGE_SIZE;
    return base + this.below(HOST_REGION_PAGES) * PAGE_SIZE;
  }

  // ---------------------------------------------------------------------------------------------
  // line builders

  private region(slot: number, flags: number, gpa: number | bigint, size: number | bigint, uaddr: number | bigint): string {
    return JSON.stringify({ op: 'set_user_memory_region', slot, flags, guest_phys_addr: hex(gpa), memory_size: hex(size), userspace_addr: hex(uaddr) });
  }

  private slotLine(s: PredictedSlot): string {
    return this.region(s.id, s.flags, s.gpa, s.npages * PAGE_SIZE, s.uaddr);
  }

  // ---------------------------------------------------------------------------------------------
  // ops

  private createSlot(): string {
    const id = this.freeId();
    if (id === undefined) return this.moveSlot();
    const npages = this.pick(SLOT_PAGES);
    const gpa = this.freeGpa(npages);
    const uaddr = this.slotUaddr(npages);
    const f = this.rng();
    const flags = f < 0.55 ? 0 : f < 0.85 ? MEM_LOG_DIRTY_PAGES : f < 0.95 ? MEM_READONLY : MEM_LOG_DIRTY_PAGES | MEM_READONLY;
    const s: PredictedSlot = { id, gpa, npages, uaddr, flags };
    if (!this.overlaps(gpa, npages)) this.slots.set(id, s);
    return this.slotLine(s);
  }

  private deleteSlot(): string {
    const s = this.randomSlot();
    if (s === undefined || this.chance(0.05)) {
      // DELETE of a slot that does not exist: EINVAL.
      const id = this.pick(SLOT_IDS.filter((i) => !this.slots.has(i)).concat([SLOT_ID_MAX_VALID]));
      return this.region(id, 0, 0, 0, 0);
    }
    this.slots.delete(s.id);
    // DELETE ignores gpa, uaddr and (most) flags as long as they are aligned and defined (V33).
    if (this.chance(0.3)) return this.region(s.id, s.flags & MEM_LOG_DIRTY_PAGES, this.below(64) * PAGE_SIZE, 0, this.slotUaddr(1));
    return this.region(s.id, s.flags, s.gpa, 0, s.uaddr);
  }

  private moveSlot(): string {
    const s = this.randomSlot();
    if (s === undefined) return this.createSlot();
    const gpa = this.chance(0.8) ? this.freeGpa(s.npages, s.id) : this.randomGpa(s.npages);
    // MOVE may change LOG_DIRTY at the same time (M22).
    const flags = this.chance(0.2) ? s.flags ^ MEM_LOG_DIRTY_PAGES : s.flags;
    const moved: PredictedSlot = { ...s, gpa, flags };
    if (!this.overlaps(gpa, s.npages, s.id)) this.slots.set(s.id, moved);
    return this.slotLine(moved);
  }

  private toggleFlags(): string {
    const s = this.randomSlot();
    if (s === undefined) return this.createSlot();
    if (this.chance(0.1)) return this.slotLine({ ...s, flags: s.flags ^ MEM_READONLY }); // EINVAL (M14)
    if (this.chance(0.05)) return this.slotLine(s); // identical: a no-op, 0 (M15)
    const toggled = { ...s, flags: s.flags ^ MEM_LOG_DIRTY_PAGES };
    this.slots.set(s.id, toggled);
    return this.slotLine(toggled);
  }

  /** A memslot op that must fail, chosen from the ABI's validation steps. */
  private invalidSlotOp(): string {
    const s = this.randomSlot();
    const id = this.freeId() ?? 0;
    const uaddr = this.slotUaddr(1);
    const gpa = this.randomGpa(1);
    switch (this.below(14)) {
      case 0:
        return this.region(id, 0, gpa + 0x800, PAGE_SIZE, uaddr); // misaligned gpa
      case 1:
        return this.region(id, 0, gpa, PAGE_SIZE + 1, uaddr); // misaligned size
      case 2:
        return this.region(id, 0, gpa, PAGE_SIZE, uaddr + 0x10); // misaligned uaddr
      case 3:
        return this.region(id, 0, 0xffff_ffff_ffff_f000n, 0x2000, uaddr); // gpa + size wraps
      case 4:
        return this.region(this.pick([32764, 0x7fff, 0xffff]), 0, gpa, PAGE_SIZE, uaddr); // id out of range
      case 5:
        return this.region((1 << 16) | id, 0, gpa, PAGE_SIZE, uaddr); // as_id 1: one address space
      case 6:
        return this.region(id, this.pick([4, 8, 1 << 16, 0x8000_0000]), gpa, PAGE_SIZE, uaddr); // undefined flag
      case 7:
        return this.region(id, 0, gpa, PAGE_SIZE, 0xffff_8000_0000_0000n); // kernel address
      case 8:
        return this.region(id, 0, 1n << 52n, PAGE_SIZE, uaddr); // last gfn 2^40, past the x86 max gfn (V26)
      case 9:
        return this.region(id, 0, gpa, 0x800_0000_0000, uaddr); // npages 2^31
      case 10:
        // CREATE over an existing slot: EEXIST
        return s === undefined ? this.region(id, 0, gpa, 0x800, uaddr) : this.region(id, 0, s.gpa, PAGE_SIZE, uaddr);
      case 11:
        // resize an existing slot: EINVAL (M11/M12)
        return s === undefined ? this.region(id, 0, gpa, 0, uaddr) : this.region(s.id, s.flags, s.gpa, (s.npages + 1) * PAGE_SIZE, s.uaddr);
      case 12:
        // new uaddr for an existing slot: EINVAL (M13)
        return s === undefined ? this.region(id, 3, gpa, PAGE_SIZE, 0x7ffffffff000) : this.region(s.id, s.flags, s.gpa, s.npages * PAGE_SIZE, s.uaddr + PAGE_SIZE);
      default: {
        // MOVE onto another slot: EEXIST (M19)
        const other = [...this.slots.values()].find((o) => s !== undefined && o.id !== s.id && o.npages >= 1);
        return s === undefined || other === undefined ? this.region(id, 0, gpa, PAGE_SIZE, uaddr | 0x800) : this.region(s.id, s.flags, other.gpa, s.npages * PAGE_SIZE, s.uaddr);
      }
    }
  }

  /** A page range in the pool: a whole region, or part of one (sometimes running into its gap). */
  private hostRange(): { addr: number; pages: number } {
    const base = this.regionBase(this.below(HOST_REGION_COUNT));
    if (this.chance(0.6)) return { addr: base, pages: HOST_REGION_PAGES };
    const first = this.below(HOST_REGION_PAGES);
    const pages = 1 + this.below(this.chance(0.85) ? HOST_REGION_PAGES - first : HOST_REGION_PAGES);
    return { addr: base + first * PAGE_SIZE, pages };
  }

  private mmap(): string {
    if (this.chance(0.04)) {
      const { addr } = this.hostRange();
      return this.pick([
        JSON.stringify({ op: 'mmap', addr: hex(addr + 0x100), length: hex(PAGE_SIZE) }),
        JSON.stringify({ op: 'mmap', addr: hex(addr), length: '0x0' }),
        JSON.stringify({ op: 'mmap', addr: hex(addr), length: '0x1800' }),
        JSON.stringify({ op: 'mmap', addr: '0x7ffffffff000', length: '0x2000' }),
      ]);
    }
    // Mostly: map a whole unmapped region, preferably one behind a slot (its accesses then reach
    // memory); otherwise any range (which may overlap a mapping: EEXIST).
    let { addr, pages } = this.hostRange();
    const unmapped: number[] = [];
    for (let r = 0; r < HOST_REGION_COUNT; r++) if (!this.anyMapped(this.regionBase(r), HOST_REGION_PAGES)) unmapped.push(r);
    if (unmapped.length > 0 && this.chance(0.85)) {
      const behindSlot = unmapped.filter((r) => [...this.slots.values()].some((s) => Math.floor((s.uaddr - HOST_BASE) / HOST_REGION_STRIDE) === r));
      addr = this.regionBase(this.pick(behindSlot.length > 0 && this.chance(0.7) ? behindSlot : unmapped));
      pages = HOST_REGION_PAGES;
    }
    if (!this.anyMapped(addr, pages)) this.setMapped(addr, pages, 1);
    return JSON.stringify({ op: 'mmap', addr: hex(addr), length: hex(pages * PAGE_SIZE) });
  }

  private munmap(): string {
    if (this.chance(0.05)) {
      const { addr } = this.hostRange();
      return this.pick([
        JSON.stringify({ op: 'munmap', addr: hex(addr + 0x10), length: hex(PAGE_SIZE) }),
        JSON.stringify({ op: 'munmap', addr: hex(addr), length: '0x0' }),
        JSON.stringify({ op: 'munmap', addr: hex(addr), length: '0x1001' }),
      ]);
    }
    const { addr, pages } = this.hostRange();
    this.setMapped(addr, pages, 0);
    return JSON.stringify({ op: 'munmap', addr: hex(addr), length: hex(pages * PAGE_SIZE) });
  }

  private madvise(): string {
    const s = this.randomSlot();
    let addr: number;
    let length: number;
    if (s !== undefined && this.chance(0.6)) {
      // drop part of a slot's backing: the guest must see zeroes afterwards
      const first = this.below(s.npages);
      addr = s.uaddr + first * PAGE_SIZE;
      length = (1 + this.below(s.npages - first)) * PAGE_SIZE;
    } else {
      const r = this.hostRange();
      addr = r.addr;
      length = r.pages * PAGE_SIZE;
    }
    if (this.chance(0.05)) length = this.pick([0, length - 0x800, length + 1]);
    return JSON.stringify({ op: 'madvise', addr: hex(addr), length: hex(Math.max(0, length)), advice: 'DONTNEED' });
  }

  /** A host address: mostly behind a slot, else anywhere in the pool; not necessarily aligned. */
  private hostAddr(size: Access): number {
    const s = this.randomSlot();
    const page = s !== undefined && this.chance(0.7) ? s.uaddr + this.below(s.npages) * PAGE_SIZE : HOST_BASE + this.below(HOST_POOL_PAGES) * PAGE_SIZE;
    const offset = this.chance(0.85) ? this.below(PAGE_SIZE / size) * size : this.below(PAGE_SIZE);
    return page + offset;
  }

  private hostWrite(): string {
    const size = this.pick(ACCESS_SIZES);
    const value = this.chance(0.02) && size < 8 ? 1n << BigInt(8 * size) : this.value(size); // too wide: EINVAL
    return JSON.stringify({ op: 'host_write', addr: hex(this.hostAddr(size)), size, value: hex(value) });
  }

  private hostRead(): string {
    const size = this.pick(ACCESS_SIZES);
    return JSON.stringify({ op: 'host_read', addr: hex(this.hostAddr(size)), size });
  }

  /** A guest-physical address for an aligned access: mostly inside a slot. */
  private guestGpa(size: Access): bigint {
    const r = this.rng();
    const s = this.randomSlot();
    if (r < 0.02) return BigInt(GPA_LIMIT + this.below(16) * PAGE_SIZE); // beyond 2^32: EINVAL
    if (r < 0.05) return BigInt(this.below(GPA_LOW_GRANULES * 16) * PAGE_SIZE + 1 + this.below(size === 1 ? 1 : size - 1)); // misaligned
    if (s === undefined || r < 0.2) return BigInt(this.randomGpa(1) + this.below(16) * PAGE_SIZE + this.below(PAGE_SIZE / size) * size);
    return BigInt(s.gpa + this.below(s.npages) * PAGE_SIZE + this.below(PAGE_SIZE / size) * size);
  }

  private vcpuRead(): string {
    const size = this.pick(ACCESS_SIZES);
    return JSON.stringify({ op: 'vcpu_read', gpa: hex(this.guestGpa(size)), size });
  }

  private vcpuWrite(): string {
    const size = this.pick(ACCESS_SIZES);
    const value = this.chance(0.02) && size < 8 ? 1n << BigInt(8 * size) : this.value(size);
    return JSON.stringify({ op: 'vcpu_write', gpa: hex(this.guestGpa(size)), size, value: hex(value) });
  }

  private getDirtyLog(): string {
    const logged = this.loggedSlots();
    const r = this.rng();
    let slot: number;
    if (logged.length > 0 && r < 0.75) slot = this.pick(logged).id;
    else if (r < 0.85) slot = this.randomSlot()?.id ?? this.pick(SLOT_IDS);
    else if (r < 0.95) slot = this.pick(SLOT_IDS);
    else slot = this.pick([32764, 1 << 16]);
    return JSON.stringify({ op: 'get_dirty_log', slot });
  }

  private clearDirtyLog(): string {
    const logged = this.loggedSlots();
    const s = logged.length > 0 && this.chance(0.85) ? this.pick(logged) : this.randomSlot();
    if (s === undefined) return JSON.stringify({ op: 'clear_dirty_log', slot: this.pick(SLOT_IDS), first_page: 0, num_pages: 64, bitmap: 'ff'.repeat(8) });
    const words = Math.ceil(s.npages / 64);
    let first = this.below(words) * 64;
    let num = this.chance(0.5) ? s.npages - first : Math.min(s.npages - first, 64 * (1 + this.below(words)));
    const r = this.rng();
    if (r < 0.04) first += 1; // first_page not a multiple of 64: EINVAL
    else if (r < 0.08) num = s.npages - first + 1; // past the end: EINVAL
    else if (r < 0.1) num = 0;
    // A NULL bitmap (legal only with num_pages 0, else EFAULT) or one shorter than the kernel reads (EFAULT).
    if (r < 0.13) return JSON.stringify({ op: 'clear_dirty_log', slot: s.id, first_page: first, num_pages: this.chance(0.5) ? 0 : num });
    let bytes = 8 * Math.ceil(num / 64);
    if (r < 0.15 && bytes > 0) bytes -= 1 + this.below(bytes);
    let bitmap = '';
    const allOnes = this.chance(0.4);
    for (let i = 0; i < bytes; i++) bitmap += (allOnes ? 0xff : this.below(256)).toString(16).padStart(2, '0');
    return JSON.stringify({ op: 'clear_dirty_log', slot: this.chance(0.02) ? (1 << 16) | s.id : s.id, first_page: first, num_pages: num, bitmap });
  }

  private enableCap(): string {
    const args = this.pick([1, 3, 3, 0, 2, 4]);
    const flags = this.chance(0.1) ? 1 : 0;
    // Only args[0] counts; the others are ignored (kvm_vm_ioctl_enable_cap_generic()).
    const rest = this.chance(0.2) ? [hex(this.u32())] : [];
    return JSON.stringify({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', flags, args: [args, ...rest] });
  }

  private checkExtension(): string {
    return JSON.stringify({ op: 'check_extension', cap: this.pick(REPLAY_CHECK_EXTENSION_CAPS) });
  }

  /** Lines the protocol calls malformed (both sides answer EINVAL), or create_vm once too often. */
  private oddLine(): string {
    return this.pick([
      '{"op":"create_vm"}',
      '{"op":"vcpu_read","gpa":"0x1000","size":3}',
      '{"op":"no_such_op"}',
      '{"op":"set_user_memory_region","slot":-1,"flags":0,"guest_phys_addr":"0x0","memory_size":"0x1000","userspace_addr":"0x0"}',
      '{"op":"host_read","addr":"0x10000000000000000","size":8}',
      'not json',
    ]);
  }

  // ---------------------------------------------------------------------------------------------

  private nextOp(): string {
    const noSlots = this.slots.size < 2;
    const fewPages = this.mappedPageCount() < HOST_REGION_PAGES;
    const table: readonly (readonly [number, () => string])[] = [
      [noSlots ? 40 : 12, () => this.createSlot()],
      [4, () => this.deleteSlot()],
      [4, () => this.moveSlot()],
      [5, () => this.toggleFlags()],
      [6, () => this.invalidSlotOp()],
      [fewPages ? 30 : 5, () => this.mmap()],
      [2, () => this.munmap()],
      [4, () => this.madvise()],
      [7, () => this.hostWrite()],
      [4, () => this.hostRead()],
      [12, () => this.vcpuRead()],
      [12, () => this.vcpuWrite()],
      [6, () => this.getDirtyLog()],
      [4, () => this.clearDirtyLog()],
      [1, () => this.enableCap()],
      [1, () => this.checkExtension()],
      [0.6, () => this.oddLine()],
    ];
    let total = 0;
    for (const [w] of table) total += w;
    let x = this.rng() * total;
    for (const [w, op] of table) {
      x -= w;
      if (x < 0) return op();
    }
    return table[table.length - 1]![1]();
  }

  generate(ops: number): string[] {
    const out = [`# kvmsim diff generator v${GENERATOR_VERSION}, seed ${this.seed}, ${ops} ops`];
    const prologue: string[] = [];
    if (this.chance(0.5)) prologue.push('{"op":"create_vm"}');
    // Manual dirty-log protection (with or without INITIALLY_SET) in about half the sequences,
    // before any slot exists, as VMMs do.
    if (this.chance(0.5)) prologue.push(JSON.stringify({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', args: [this.pick([1, 3])] }));
    // Map a region or two up front, so the first slots have memory behind them.
    for (let i = 1 + this.below(2); i > 0; i--) {
      const base = this.regionBase(this.below(HOST_REGION_COUNT));
      if (!this.anyMapped(base, HOST_REGION_PAGES)) this.setMapped(base, HOST_REGION_PAGES, 1);
      prologue.push(JSON.stringify({ op: 'mmap', addr: hex(base), length: hex(HOST_REGION_PAGES * PAGE_SIZE) }));
    }
    for (const line of prologue.slice(0, ops)) out.push(line);
    while (out.length - 1 < ops) out.push(this.nextOp());
    return out;
  }
}
