/**
 * The test-only reference backend: implements every hook by recording it (and emitting it on the
 * VM's trace sink), so that tests can check the exact order and arguments of hook calls.
 *
 * Its `x86` profile gives the generic core x86's limits where the memslot ABI exposes them
 * (3 internal slots → 32764 user slots, READONLY, manual dirty-log caps 3, read-protecting dirty
 * log, and the max-gfn rule of kvm_arch_prepare_memory_region()), so replays agree with a real
 * x86 kernel before the x86 package exists.
 */
import { ArchBackendBase, ArchVmBase, type ArchCapabilities, type ArchVm, type KvmGfnRange } from '../arch-backend.js';
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

/** The per-VM side: a recorder of hook calls. */
export class ReferenceArchVm extends ArchVmBase implements ArchVm {
  readonly calls: HookCall[] = [];
  private readonly failPrepare: ReferenceBackendOptions['failPrepare'];
  private readonly maxGfn: number;
  private readonly recording: boolean;

  constructor(kvm: Kvm, options: ReferenceBackendOptions) {
    super(kvm);
    this.recording = options.record ?? true;
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

  override commitMemoryRegion(old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): void {
    if (this.recording) this.record({ hook: 'kvm_arch_commit_memory_region', change, old: old?.id ?? null, new: newSlot?.id ?? null });
  }

  override freeMemslot(slot: MemorySlot): void {
    if (this.recording) this.record({ hook: 'kvm_arch_free_memslot', old: slot.id });
  }

  override memslotsUpdated(gen: number): void {
    if (this.recording) this.record({ hook: 'kvm_arch_memslots_updated', gen });
  }

  override flushShadowMemslot(slot: MemorySlot): void {
    if (this.recording) this.record({ hook: 'kvm_arch_flush_shadow_memslot', old: slot.id, flags: slot.flags });
  }

  override flushShadowAll(): void {
    if (this.recording) this.record({ hook: 'kvm_arch_flush_shadow_all' });
  }

  override guestMemoryReclaimed(): void {
    if (this.recording) this.record({ hook: 'kvm_arch_guest_memory_reclaimed' });
  }

  override unmapGfnRange(range: KvmGfnRange): boolean {
    if (this.recording) this.record({ hook: 'kvm_unmap_gfn_range', old: range.slot.id, start: range.start, end: range.end });
    return false;
  }

  override ageGfn(range: KvmGfnRange): boolean {
    if (this.recording) this.record({ hook: 'kvm_age_gfn', old: range.slot.id, start: range.start, end: range.end });
    return false;
  }

  override testAgeGfn(range: KvmGfnRange): boolean {
    if (this.recording) this.record({ hook: 'kvm_test_age_gfn', old: range.slot.id, start: range.start, end: range.end });
    return false;
  }

  override mmuEnableLogDirtyPtMasked(slot: MemorySlot, gfnOffset: number, maskLo: number, maskHi: number): void {
    if (this.recording) this.record({ hook: 'kvm_arch_mmu_enable_log_dirty_pt_masked', old: slot.id, start: gfnOffset, maskLo, maskHi });
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
