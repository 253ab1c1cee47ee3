/**
 * Guest paging on x86: the guest's own page tables live in guest RAM (the host model's frames,
 * reached through the memslots' hvas), and a guest-virtual access walks them.
 *
 * - `walkGuestSteps()` is FNAME(walk_addr_generic) for two formats: the guest's 4-level x86 page
 *   tables (CR3 → PML4 → PDPT → PD → PT; P, R/W, A, D, PS) and, for nested TDP, L1's EPT tables
 *   for L2 (EPTP → PML4E … PTE; R/W/X, A/D with EPTP.AD, PS). It sets A on every gPTE it used and
 *   D on the leaf for a write, as FNAME(update_accessed_dirty_bits) does, marking the table's gfn
 *   dirty.
 * - `shadowAccessSteps()` is the shadow-MMU page fault for such an access: the hardware walk of the
 *   shadow root; on a miss the guest walk, memslot lookup, GUP, mmu_lock (write), the invalidation
 *   retry check and the gPTE re-check (FNAME(gpte_changed)), then FNAME(fetch). A write to a
 *   write-protected guest page table is emulated: the store goes to guest memory, then
 *   kvm_mmu_track_write() zaps the SPTE shadowing the written gPTE.
 * - `tdpGuestAccessSteps()`: with the TDP MMU the CPU walks the guest tables itself; the model
 *   walks them and then does the gpa access through the shared fault path.
 *
 * This is x86's code and not the core's: the core's vCPU accesses are by gpa (non-paging mode);
 * the guest walk, its #PF and the shadow fetch are x86 semantics. The fault protocol steps
 * (memslot lookup, INVALID-slot retry, mmu_invalidate_seq, GUP, retry check, dirty marking) are
 * the same as in kvm-core's vcpu.ts, in the same order.
 *
 * @see arch/x86/kvm/mmu/paging_tmpl.h FNAME(walk_addr_generic), FNAME(update_accessed_dirty_bits),
 *      FNAME(page_fault), FNAME(gpte_changed) (6.18)
 * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_page_fault(), kvm_mmu_track_write() (6.18)
 * Simplification: 4-level guest paging only (no 32-bit, PAE-3-level or 5-level guests), no U/S,
 * NX, SMEP/SMAP, PKU or reserved-bit checks, no MMIO SPTE caching for guest-virtual accesses (an
 * access to a gpa without a slot exits to MMIO every time), no TLB beyond the shadow tables.
 */
import {
  KVM_HVA_ERR_BAD,
  KVM_HVA_ERR_RO_BAD,
  KVM_MEMSLOT_INVALID,
  KVM_MEM_READONLY,
  KvmError,
  P_FAULT_PFN,
  P_FAULT_SEQ,
  faultRetryPoint,
  gfnToHvaMany,
  invalidSlotRetryPoint,
  kvmVcpuGfnToMemslot,
  markPageDirtyInSlot,
  type Kvm,
  type KvmVcpu,
  type MemorySlot,
  type VcpuAccessResult,
} from '@kvmsim/kvm-core';
import { SCHED, point, type Steps, type YieldPoint } from '@kvmsim/kvm-core/sched';
import { RET_PF_EMULATE, type ShadowMmu, type ShadowWalk } from './mmu/shadow-mmu.js';
import type { PgLevel } from './lpage-info.js';

/** The access sizes of a vCPU access (1, 2, 4, 8). */
export type AccessSize = Parameters<KvmVcpu['read']>[1];

/** Guest page-table formats. */
export type GuestPtFormat = 'x86' | 'ept';

/** Levels of the guest's tables (4-level paging, 4-level EPT). */
export const GUEST_PT_LEVELS = 4;

/** x86 PTE bits (arch/x86/include/asm/pgtable_types.h). */
export const PT_PRESENT = 0x1n;
export const PT_RW = 0x2n;
export const PT_ACCESSED = 0x20n;
export const PT_DIRTY = 0x40n;
export const PT_PSE = 0x80n;
/** EPT entry bits (arch/x86/include/asm/vmx.h). */
export const EPT_R = 0x1n;
export const EPT_W = 0x2n;
export const EPT_X = 0x4n;
export const EPT_A = 0x100n;
export const EPT_D = 0x200n;
const ADDR_MASK = 0x000ffffffffff000n;

/** What the guest walk found. */
export type GuestWalkResult =
  | (ShadowWalk & { readonly ok: true })
  | { readonly ok: false; readonly level: number; readonly reason: 'not-present' | 'write-protected' | 'no-memslot' };

/** A guest-virtual (or L2) access: a vCPU access result, or a fault the guest (or L1) handles. */
export type GuestAccessResult =
  | VcpuAccessResult
  | { readonly exit: 'guest-fault'; readonly addr: number; readonly isWrite: boolean; readonly level: number; readonly reason: string };

/** One gPTE the walk used: where it is (for the re-check under mmu_lock) and its value. */
interface WalkedPte {
  gpa: number;
  hvaPfn: number;
  frame: number;
  offset: number;
  value: bigint;
}

/** Per-vCPU paging state (CR3 for guest paging, EPTP12 for L2). */
export interface X86VcpuPaging {
  /** CR3: gpa of the PML4, or -1 while paging is off. */
  cr3: number;
  /** vmcs12's EPT pointer: gpa of L1's EPT PML4 for L2, or -1. */
  eptp: number;
}

const PAGES = [0, 1, 2 ** 9, 2 ** 18, 2 ** 27];

function index(pn: number, level: number): number {
  return level <= 3 ? (pn >>> ((level - 1) * 9)) & 511 : Math.floor(pn / PAGES[level]!) & 511;
}

function present(format: GuestPtFormat, pte: bigint): boolean {
  return format === 'x86' ? (pte & PT_PRESENT) !== 0n : (pte & (EPT_R | EPT_W | EPT_X)) !== 0n;
}

const P_ACCESS = point('vcpu: guest-virtual access');

/** Read the gPTE at `gpa`: its location and value, or null if no usable memslot or host page. */
function* readGpte(kvm: Kvm, vcpu: KvmVcpu, gpa: number): Steps<WalkedPte | null> {
  const gfn = Math.floor(gpa / 4096);
  const slot = kvmVcpuGfnToMemslot(vcpu.cache, kvm.memslots.active(vcpu.asId), gfn);
  const hva = gfnToHvaMany(slot, gfn, false);
  if (hva === KVM_HVA_ERR_BAD || hva === KVM_HVA_ERR_RO_BAD) return null;
  const frame = yield* kvm.host.faultInSteps(hva, false);
  if (frame < 0) return null;
  const offset = gpa - gfn * 4096;
  return { gpa, hvaPfn: hva, frame, offset, value: kvm.host.readFrame(frame, offset, 8) };
}

/**
 * FNAME(walk_addr_generic): translate page number `pn` (gva >> 12, or L2 gpa >> 12) through the
 * guest tables rooted at `rootGpa`. `walked[l]` receives the gPTE used at level l.
 */
export function* walkGuestSteps(kvm: Kvm, vcpu: KvmVcpu, format: GuestPtFormat, rootGpa: number, pn: number, write: boolean, walked: (WalkedPte | null)[] = []): Steps<GuestWalkResult> {
  const tableGfn: number[] = [];
  const accW: boolean[] = [];
  tableGfn[GUEST_PT_LEVELS] = Math.floor(rootGpa / 4096);
  accW[GUEST_PT_LEVELS + 1] = true;
  const wBit = format === 'x86' ? PT_RW : EPT_W;
  for (let level = GUEST_PT_LEVELS; level >= 1; level--) {
    const gpa = tableGfn[level]! * 4096 + index(pn, level) * 8;
    const pte = yield* readGpte(kvm, vcpu, gpa);
    walked[level] = pte;
    if (pte === null) return { ok: false, level, reason: 'no-memslot' };
    if (!present(format, pte.value)) return { ok: false, level, reason: 'not-present' };
    accW[level] = accW[level + 1]! && (pte.value & wBit) !== 0n;
    const leaf = level === 1 || (level <= 3 && (pte.value & PT_PSE) !== 0n);
    const addrGfn = Number((pte.value & ADDR_MASK) >> 12n);
    if (!leaf) {
      tableGfn[level - 1] = addrGfn;
      continue;
    }
    if (write && !accW[level]) return { ok: false, level, reason: 'write-protected' };
    const base = addrGfn - (addrGfn % PAGES[level]!);
    yield* updateAccessedDirtyBits(kvm, vcpu, format, walked, tableGfn, level, write);
    const dirty = (walked[level]!.value & (format === 'x86' ? PT_DIRTY : EPT_D)) !== 0n;
    return { ok: true, level, tableGfn, accW, gfn: base + (pn % PAGES[level]!), dirty };
  }
  throw new Error('unreachable');
}

/**
 * FNAME(update_accessed_dirty_bits): A on every gPTE of the walk, D on the leaf for a write; each
 * changed table's gfn is marked dirty. A table in a READONLY slot is left alone.
 */
function* updateAccessedDirtyBits(kvm: Kvm, vcpu: KvmVcpu, format: GuestPtFormat, walked: (WalkedPte | null)[], tableGfn: number[], leafLevel: number, write: boolean): Steps {
  const aBit = format === 'x86' ? PT_ACCESSED : EPT_A;
  const dBit = format === 'x86' ? PT_DIRTY : EPT_D;
  for (let level = GUEST_PT_LEVELS; level >= leafLevel; level--) {
    const w = walked[level]!;
    const want = w.value | aBit | (level === leafLevel && write ? dBit : 0n);
    if (want === w.value) continue;
    const gfn = tableGfn[level]!;
    const slot = kvmVcpuGfnToMemslot(vcpu.cache, kvm.memslots.active(vcpu.asId), gfn);
    if (slot === null || slot.flags & (KVM_MEM_READONLY | KVM_MEMSLOT_INVALID)) continue;
    const frame = yield* kvm.host.faultInSteps(w.hvaPfn, true);
    if (frame < 0) continue;
    kvm.host.writeFrame(frame, w.offset, 8, want);
    w.frame = frame;
    w.value = want;
    markPageDirtyInSlot(slot, gfn);
  }
}

/**
 * FNAME(gpte_changed) for the whole walk, under mmu_lock: has any gPTE changed since it was read?
 * Each is re-read through the vCPU's current memslots (kvm_vcpu_read_guest_atomic()), so a table
 * whose slot is being deleted or moved counts as changed and the fault retries: no shadow page
 * for it can be created after the slot's zap.
 */
function gpteChanged(kvm: Kvm, vcpu: KvmVcpu, walked: (WalkedPte | null)[], leafLevel: number): boolean {
  const slots = kvm.memslots.active(vcpu.asId);
  for (let level = GUEST_PT_LEVELS; level >= leafLevel; level--) {
    const w = walked[level]!;
    const gfn = Math.floor(w.gpa / 4096);
    if (gfnToHvaMany(kvmVcpuGfnToMemslot(vcpu.cache, slots, gfn), gfn, false) !== w.hvaPfn) return true;
    const frame = kvm.host.frameOf(w.hvaPfn);
    if (frame !== w.frame || kvm.host.readFrame(frame, w.offset, 8) !== w.value) return true;
  }
  return false;
}

/** What the shadow access path needs from the backend. */
export interface ShadowAccessContext {
  readonly kvm: Kvm;
  readonly shadow: ShadowMmu;
  /** kvm_mmu_max_mapping_level() for the data gfn (slot eligibility, host level, dirty logging). */
  maxMappingLevel(slot: MemorySlot, gfn: number): PgLevel;
  hostWritable(slot: MemorySlot, gfn: number): boolean;
  /** Trace hooks, called under mmu_lock around fetch (only with a trace sink). */
  traceRequested?(gfn: number, pfn: number, level: number): void;
  traceSetSpte?(gfn: number, level: number): void;
}

/**
 * A guest access at `addr` (a gva with `format` 'x86', an L2 gpa with 'ept') through the shadow
 * MMU in `mode` (MODE_PAGING or MODE_NESTED), the guest tables rooted at `rootGpa`.
 */
export function* shadowAccessSteps(
  ctx: ShadowAccessContext,
  vcpu: KvmVcpu,
  mode: number,
  format: GuestPtFormat,
  rootGpa: number,
  addr: number,
  size: AccessSize,
  write: boolean,
  value: bigint,
): Steps<GuestAccessResult> {
  const kvm = ctx.kvm;
  const sh = ctx.shadow;
  if (kvm.mmReleased) throw new KvmError('EIO', 'the VM has no mm (released)');
  const pn = Math.floor(addr / 4096);
  const offset = addr - pn * 4096;
  const rootGfn = Math.floor(rootGpa / 4096);
  const asId = vcpu.asId;
  kvm.vcpusRunning++;
  try {
    for (;;) {
      if (SCHED.preemptive) yield P_ACCESS;
      const idx = kvm.srcu.readLock();
      let retry: YieldPoint | null = null;
      let emulate: { hva: number; slot: MemorySlot; gfn: number } | null = null;
      try {
        const slots = kvm.memslots.active(asId);
        const hit = sh.translate(mode, rootGfn, asId, pn, write);
        if (hit >= 0) {
          if (write) {
            kvm.host.writeFrame(hit, offset, size, value);
            return { exit: 'none', value: 0n };
          }
          return { exit: 'none', value: kvm.host.readFrame(hit, offset, size) };
        }
        vcpu.faults++;
        const walked: (WalkedPte | null)[] = [];
        const walk = yield* walkGuestSteps(kvm, vcpu, format, rootGpa, pn, write, walked);
        if (!walk.ok) return { exit: 'guest-fault', addr, isWrite: write, level: walk.level, reason: walk.reason };
        const gfn = walk.gfn;
        const gpa = gfn * 4096 + offset;
        const slot = kvmVcpuGfnToMemslot(vcpu.cache, slots, gfn);
        if (slot !== null && slot.flags & KVM_MEMSLOT_INVALID) {
          retry = invalidSlotRetryPoint(kvm, asId, slots.generation);
        } else {
          const hva = gfnToHvaMany(slot, gfn, write);
          if (hva === KVM_HVA_ERR_BAD || hva === KVM_HVA_ERR_RO_BAD) {
            return { exit: 'mmio', physAddr: gpa, len: size, isWrite: write, data: write ? value : 0n };
          }
          const mmuSeq = kvm.mmuInvalidateSeq;
          if (SCHED.preemptive) yield P_FAULT_SEQ;
          const frame = yield* kvm.host.faultInSteps(hva, write);
          if (frame < 0) throw new KvmError('EFAULT', `KVM_RUN: gpa 0x${gpa.toString(16)} is in slot ${slot!.id} but its hva page is not mapped (KVM_EXIT_MEMORY_FAULT)`);
          if (SCHED.preemptive) yield P_FAULT_PFN;
          yield* kvm.mmuLock.write();
          try {
            if (gpteChanged(kvm, vcpu, walked, walk.level)) {
              // RET_PF_RETRY: the guest changed a gPTE since the walk; walk again.
            } else if (!kvm.faults.skipRetryCheck && kvm.mmuInvalidateRetryGfn(mmuSeq, gfn)) {
              retry = faultRetryPoint(kvm, gfn);
            } else {
              const level = Math.min(walk.level, ctx.maxMappingLevel(slot!, gfn)) as PgLevel;
              ctx.traceRequested?.(gfn, frame, level);
              sh.flushNeeded = false;
              const r = sh.fetch(mode, asId, pn, walk, frame, level, write, ctx.hostWritable(slot!, gfn));
              ctx.traceSetSpte?.(gfn, level);
              if (sh.flushNeeded) kvm.kvmFlushRemoteTlbs();
              if (r === RET_PF_EMULATE) emulate = { hva, slot: slot!, gfn };
              else if (write) markPageDirtyInSlot(slot, gfn);
            }
          } finally {
            kvm.mmuLock.writeUnlock();
          }
        }
        if (emulate !== null) {
          // x86_emulate_instruction(): the store goes to guest memory through the hva (faulting
          // the host page in again if it went meanwhile), then the page-track notifier lets the
          // MMU drop what shadowed the written gPTE.
          const frame = yield* kvm.host.faultInSteps(emulate.hva, true);
          if (frame < 0) throw new KvmError('EFAULT', `emulated write: hva page 0x${(emulate.hva * 4096).toString(16)} is not mapped`);
          kvm.host.writeFrame(frame, offset, size, value);
          markPageDirtyInSlot(emulate.slot, emulate.gfn);
          yield* kvm.mmuLock.write();
          try {
            if (sh.trackWrite(asId, emulate.gfn, offset, size)) kvm.kvmFlushRemoteTlbs();
          } finally {
            kvm.mmuLock.writeUnlock();
          }
          return { exit: 'none', value: 0n };
        }
      } finally {
        kvm.srcu.readUnlock(idx);
      }
      if (retry !== null) {
        vcpu.retries++;
        yield retry;
      }
    }
  } finally {
    kvm.vcpusRunning--;
  }
}

/**
 * With the TDP MMU the CPU walks the guest's tables (reading them through TDP) and then accesses
 * the gpa: the model walks, then runs the shared gpa fault path.
 */
export function* tdpGuestAccessSteps(kvm: Kvm, vcpu: KvmVcpu, rootGpa: number, addr: number, size: AccessSize, write: boolean, value: bigint): Steps<GuestAccessResult> {
  const pn = Math.floor(addr / 4096);
  const idx = kvm.srcu.readLock();
  let walk: GuestWalkResult;
  try {
    walk = yield* walkGuestSteps(kvm, vcpu, 'x86', rootGpa, pn, write);
  } finally {
    kvm.srcu.readUnlock(idx);
  }
  if (!walk.ok) return { exit: 'guest-fault', addr, isWrite: write, level: walk.level, reason: walk.reason };
  return yield* vcpu.accessSteps(walk.gfn * 4096 + (addr - pn * 4096), size, write, value);
}
