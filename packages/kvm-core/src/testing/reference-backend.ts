/**
 * The test-only reference backend: implements every hook by recording it (and emitting it on the
 * VM's trace sink), so that tests can check the exact order and arguments of hook calls.
 *
 * Its `x86` profile gives the generic core x86's limits where the memslot ABI exposes them
 * (3 internal slots → 32764 user slots, READONLY, manual dirty-log caps 3, read-protecting dirty
 * log, and the max-gfn rule of kvm_arch_prepare_memory_region()), so replays agree with a real
 * x86 kernel before the x86 package exists.
 */
import { ArchBackendBase, ArchVmBase, type ArchCapabilities, type ArchVm, type KvmGfnRange, type MaybeSteps } from '../arch-backend.js';
import { SCHED, point, type Steps } from '../sched/steps.js';
import { KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from '../uapi.js';
import { ReferenceMmu } from './reference-mmu.js';
import { KvmError, type ErrnoName } from '../errors.js';
import type { Kvm } from '../kvm.js';
import type { MemorySlot } from '../memslots/memory-slot.js';
import type { MrChange } from '../uapi.js';

/** One recorded hook call. */
export interface HookCall {
  /** Kernel hook name, e.g. "kvm_arch_prepare_memory_region". */
  readonly hook: string;
  readonly change?: MrChange;
  /** `old` slot id (or the slot argument) */
  readonly old?: number | null;
  readonly new?: number | null;
  readonly gen?: number;
  readonly flags?: number;
  readonly start?: number;
  readonly end?: number;
  readonly maskLo?: number;
  readonly maskHi?: number;
}

export type ReferenceProfile = 'x86' | 'generic';

export interface ReferenceBackendOptions {
  /** Default is `'x86'`. */
  profile?: ReferenceProfile;
  /** Capabilities overriding the profile's. */
  capabilities?: Partial<ArchCapabilities>;
  /** Make kvm_arch_prepare_memory_region() fail with this errno when the predicate says so. */
  failPrepare?: (old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange) => ErrnoName | undefined;
  /** The largest gfn a slot may reach (x86 kvm_mmu_max_gfn()). Default 2^40−1 for x86, none otherwise. */
  maxGfn?: number;
  /**
   * Record hook calls in `calls` and on the trace sink. Default is `true`; benchmarks and the CLI
   * turn it off so that recording does not cost allocations on every hook.
   */
  record?: boolean;
}

/** x86's answers as observed on Linux 6.18.44 (kvm-generic.md §8), one address space. */
export const X86_REFERENCE_CAPABILITIES: ArchCapabilities = Object.freeze({
  arch: 'x86',
  internalMemSlots: 3,
  nrAddressSpaces: 1,
  readonlyMem: true,
  mmuLock: 'rwlock',
  unmapRequestsFlush: true,
  locklessAging: true,
  elideTlbFlushIfYoung: true,
  fastAging: true,
  usesHvaTree: true,
  genericMmuNotifier: true,
  dirtyLogReadProtect: true,
  dirtyLogManualCaps: 3,
  faultLock: 'read',
  readFaultMapsWritable: true,
});

export const GENERIC_REFERENCE_CAPABILITIES: ArchCapabilities = Object.freeze({ arch: 'reference', usesHvaTree: true });

export class ReferenceBackend extends ArchBackendBase {
  readonly name: string;
  readonly capabilities: ArchCapabilities;
  readonly options: ReferenceBackendOptions;

  constructor(options: ReferenceBackendOptions = {}) {
    super();
    this.options = options;
    const profile = options.profile ?? 'x86';
    const base = profile === 'x86' ? X86_REFERENCE_CAPABILITIES : GENERIC_REFERENCE_CAPABILITIES;
    this.capabilities = Object.freeze({ ...base, ...options.capabilities });
    this.name = `reference/${profile}`;
  }

  createArchVm(kvm: Kvm): ReferenceArchVm {
    return new ReferenceArchVm(kvm, this.options);
  }
}

const P_AGE_READ = point('reference age: read the entry (lockless)');

/**
 * The per-VM side: a recorder of hook calls, over a flat secondary MMU ({@link ReferenceMmu}).
 * Hooks that take mmu_lock in the kernel take it here too.
 */
export class ReferenceArchVm extends ArchVmBase implements ArchVm {
  readonly calls: HookCall[] = [];
  readonly mmu: ReferenceMmu;
  private readonly failPrepare: ReferenceBackendOptions['failPrepare'];
  private readonly maxGfn: number;
  private readonly recording: boolean;

  constructor(kvm: Kvm, options: ReferenceBackendOptions) {
    super(kvm);
    this.recording = options.record ?? true;
    this.mmu = new ReferenceMmu(kvm.nrMemslotAsIds);
    this.failPrepare = options.failPrepare;
    this.maxGfn = options.maxGfn ?? ((options.profile ?? 'x86') === 'x86' ? 2 ** 40 - 1 : Number.MAX_SAFE_INTEGER);
  }

  private record(call: HookCall): void {
    this.calls.push(call);
    if (this.kvm.trace) {
      const args: Record<string, number | string | boolean | null> = {};
      for (const [k, v] of Object.entries(call)) if (k !== 'hook' && v !== undefined) args[k] = v as number | string | null;
      this.kvm.emit(call.hook, args);
    }
  }

  override prepareMemoryRegion(old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): void {
    if (this.recording) this.record({ hook: 'kvm_arch_prepare_memory_region', change, old: old?.id ?? null, new: newSlot?.id ?? null });
    // x86: CREATE/MOVE beyond kvm_mmu_max_gfn() (arch/x86/kvm/x86.c kvm_arch_prepare_memory_region()).
    if ((change === 'CREATE' || change === 'MOVE') && newSlot !== null && newSlot.baseGfn + newSlot.npages - 1 > this.maxGfn) {
      throw new KvmError('EINVAL', `last gfn 0x${(newSlot.baseGfn + newSlot.npages - 1).toString(16)} is beyond the max gfn 0x${this.maxGfn.toString(16)}`);
    }
    const errno = this.failPrepare?.(old, newSlot, change);
    if (errno !== undefined) throw new KvmError(errno, 'kvm_arch_prepare_memory_region failed (injected by the test)');
  }

  override commitMemoryRegion(old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): MaybeSteps<void> {
    if (this.recording) this.record({ hook: 'kvm_arch_commit_memory_region', change, old: old?.id ?? null, new: newSlot?.id ?? null });
    // Logging turned on: write-protect the slot so the next write of each page faults and is
    // logged (unless INITIALLY_SET defers it to the first CLEAR, as x86 does).
    const logs = (f: number | undefined): boolean => ((f ?? 0) & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    if (change === 'FLAGS_ONLY' && newSlot !== null && logs(newSlot.flags) && !logs(old?.flags) && !(newSlot.flags & KVM_MEM_READONLY)) {
      if (!this.kvm.kvmDirtyLogManualProtectAndInitSet()) return this.writeProtectSlot(newSlot);
    }
    return undefined;
  }

  private *writeProtectSlot(slot: MemorySlot): Steps {
    yield* this.kvm.mmuLock.write();
    for (const [g] of this.mmu.entriesIn(slot.asId, slot.baseGfn, slot.baseGfn + slot.npages)) this.mmu.writeProtect(slot.asId, g);
    this.kvm.mmuLock.writeUnlock();
    this.kvm.kvmFlushRemoteTlbsMemslot(slot);
  }

  override freeMemslot(slot: MemorySlot): void {
    if (this.recording) this.record({ hook: 'kvm_arch_free_memslot', old: slot.id });
  }

  override memslotsUpdated(gen: number): void {
    if (this.recording) this.record({ hook: 'kvm_arch_memslots_updated', gen });
  }

  override flushShadowMemslot(slot: MemorySlot): MaybeSteps<void> {
    if (this.recording) this.record({ hook: 'kvm_arch_flush_shadow_memslot', old: slot.id, flags: slot.flags });
    // Uncontended and unpreemptible: zap inline, without a generator.
    if (this.kvm.mmuLock.tryWriteFast()) {
      const flush = this.mmu.zap(slot.asId, slot.baseGfn, slot.baseGfn + slot.npages);
      this.kvm.mmuLock.writeUnlock();
      if (flush) this.kvm.kvmFlushRemoteTlbs();
      return undefined;
    }
    return this.zapSlot(slot);
  }

  /** Zap only the slot's range (arm64/mips style), under mmu_lock, then flush. */
  private *zapSlot(slot: MemorySlot): Steps {
    if (!this.kvm.mmuLock.tryWriteFast()) yield* this.kvm.mmuLock.write();
    const flush = this.mmu.zap(slot.asId, slot.baseGfn, slot.baseGfn + slot.npages);
    this.kvm.mmuLock.writeUnlock();
    if (flush) this.kvm.kvmFlushRemoteTlbs();
  }

  override flushShadowAll(): MaybeSteps<void> {
    if (this.recording) this.record({ hook: 'kvm_arch_flush_shadow_all' });
    return this.zapAll();
  }

  private *zapAll(): Steps {
    yield* this.kvm.mmuLock.write();
    for (let as = 0; as < this.mmu.tables.length; as++) this.mmu.zap(as, 0, Number.MAX_SAFE_INTEGER);
    this.kvm.mmuLock.writeUnlock();
  }

  override guestMemoryReclaimed(): void {
    if (this.recording) this.record({ hook: 'kvm_arch_guest_memory_reclaimed' });
  }

  override unmapGfnRange(range: KvmGfnRange): boolean {
    if (this.recording) this.record({ hook: 'kvm_unmap_gfn_range', old: range.slot.id, start: range.start, end: range.end });
    const zapped = this.mmu.zap(range.slot.asId, range.start, range.end);
    // The return protocol: "please flush" when the architecture leaves TLB flushing to the core.
    return zapped && this.kvm.caps.unmapRequestsFlush;
  }

  override ageGfn(range: KvmGfnRange): MaybeSteps<boolean> {
    if (this.recording) this.record({ hook: 'kvm_age_gfn', old: range.slot.id, start: range.start, end: range.end });
    return range.lockless ? this.ageLockless(range) : this.ageLocked(range);
  }

  /** Under mmu_lock: test and clear in one go. */
  private ageLocked(range: KvmGfnRange): boolean {
    const t = this.mmu.tables[range.slot.asId]!;
    let young = false;
    for (const [g, e] of this.mmu.entriesIn(range.slot.asId, range.start, range.end)) {
      if (ReferenceMmu.isYoung(e)) {
        young = true;
        t.set(g, ReferenceMmu.withoutYoung(e));
      }
    }
    return young;
  }

  /**
   * Without mmu_lock (KVM_MMU_LOCKLESS_AGING): read each entry, then clear its young bit with a
   * compare-and-exchange that fails if a racing zap or fault changed the entry meanwhile — a
   * plain store would resurrect a zapped mapping.
   */
  private *ageLockless(range: KvmGfnRange): Steps<boolean> {
    const asId = range.slot.asId;
    const t = this.mmu.tables[asId]!;
    let young = false;
    for (const [g, e] of this.mmu.entriesIn(asId, range.start, range.end)) {
      if (!ReferenceMmu.isYoung(e)) continue;
      young = true;
      if (SCHED.preemptive) yield P_AGE_READ;
      if (t.get(g) === e) t.set(g, ReferenceMmu.withoutYoung(e)); // cmpxchg
    }
    return young;
  }

  override testAgeGfn(range: KvmGfnRange): boolean {
    if (this.recording) this.record({ hook: 'kvm_test_age_gfn', old: range.slot.id, start: range.start, end: range.end });
    for (const [, e] of this.mmu.entriesIn(range.slot.asId, range.start, range.end)) if (ReferenceMmu.isYoung(e)) return true;
    return false;
  }

  override mmuEnableLogDirtyPtMasked(slot: MemorySlot, gfnOffset: number, maskLo: number, maskHi: number): void {
    if (this.recording) this.record({ hook: 'kvm_arch_mmu_enable_log_dirty_pt_masked', old: slot.id, start: gfnOffset, maskLo, maskHi });
    // Re-protect the harvested pages so their next write faults and is logged again.
    for (let i = 0; i < 32; i++) {
      if ((maskLo >>> i) & 1) this.mmu.writeProtect(slot.asId, slot.baseGfn + gfnOffset + i);
      if ((maskHi >>> i) & 1) this.mmu.writeProtect(slot.asId, slot.baseGfn + gfnOffset + 32 + i);
    }
  }

  override syncDirtyLog(slot: MemorySlot): void {
    if (this.recording) this.record({ hook: 'kvm_arch_sync_dirty_log', old: slot.id });
  }

  override flushRemoteTlbs(): void {
    if (this.recording) this.record({ hook: 'kvm_arch_flush_remote_tlbs' });
  }

  override destroyVm(): void {
    if (this.recording) this.record({ hook: 'kvm_arch_destroy_vm' });
  }
}

/** Factory in the unstorage style: `createVm({ backend: referenceBackend() })`. */
export function referenceBackend(options: ReferenceBackendOptions = {}): ReferenceBackend {
  return new ReferenceBackend(options);
}
