/**
 * The generic ↔ architecture interface (include/linux/kvm_host.h "kvm_arch_*" hooks, Linux 6.18).
 *
 * Shaped like kysely's dialects: an {@link ArchBackend} is a factory carrying readonly
 * {@link ArchCapabilities}; it creates one {@link ArchVm} per VM, which implements the hooks the
 * generic core calls. Third-party backends extend {@link ArchBackendBase} and {@link ArchVmBase} so
 * that capabilities and hooks added later get their documented defaults instead of breaking them.
 *
 * `docs/architecture.md` maps x86, arm64, s390, powerpc and mips onto this interface.
 */
import type { Kvm } from './kvm.js';
import type { MemorySlot } from './memslots/memory-slot.js';
import type { Steps } from './sched/steps.js';
import type { MrChange } from './uapi.js';

/**
 * A hook's result: a plain value, or preemptible {@link Steps} producing it. Hooks whose kernel
 * implementation takes mmu_lock or may sleep return Steps so the scheduler can interleave them;
 * simple backends return plain values.
 */
export type MaybeSteps<T> = T | Steps<T>;

/** Whether a hook returned Steps (use as `const r = hook(); if (isSteps(r)) yield* r;`). */
export function isSteps<T>(r: MaybeSteps<T>): r is Steps<T> {
  return typeof r === 'object' && r !== null && typeof (r as { next?: unknown }).next === 'function';
}


/** The lock flavour of kvm->mmu_lock: KVM_HAVE_MMU_RWLOCK gives an rwlock, else a spinlock. */
export type MmuLockFlavour = 'rwlock' | 'spinlock';

/**
 * What a backend declares about its architecture. Every member has a default, supplied by
 * {@link ArchBackendBase} and by {@link resolveCapabilities}.
 */
export interface ArchCapabilities {
  /** Architecture name for reports ("x86", "arm64", …). Tests never branch on it. */
  readonly arch: string;
  /**
   * KVM_INTERNAL_MEM_SLOTS: ids in [KVM_USER_MEM_SLOTS, KVM_MEM_SLOTS_NUM) are reserved for the
   * architecture. KVM_CAP_NR_MEMSLOTS reports 32767 minus this.
   *
   * Default is `0` (x86: 3, giving 32764 user slots).
   */
  readonly internalMemSlots?: number;
  /**
   * kvm_arch_nr_memslot_as_ids(): the number of memslot address spaces.
   *
   * Default is `1` (x86 with CONFIG_KVM_SMM: 2).
   */
  readonly nrAddressSpaces?: number;
  /**
   * kvm_arch_has_readonly_mem() / KVM_CAP_READONLY_MEM: KVM_MEM_READONLY is accepted.
   *
   * Default is `false` (HAVE_KVM_READONLY_MEM: x86, arm64, mips, riscv, loongarch).
   */
  readonly readonlyMem?: boolean;
  /**
   * Flavour of kvm->mmu_lock. With `'rwlock'` the core's KVM_MMU_LOCK() means the write side and
   * architecture fault paths may take the read side.
   *
   * Default is `'spinlock'` (KVM_HAVE_MMU_RWLOCK: x86, arm64).
   */
  readonly mmuLock?: MmuLockFlavour;
  /**
   * Whether kvm_unmap_gfn_range() returns "flush needed" so that the core does one
   * kvm_flush_remote_tlbs() per notifier call (`true`), or the architecture invalidates its TLBs
   * itself and returns false (`false`).
   *
   * Default is `true` (x86, mips, e500; arm64, s390, powerpc HV/PR return false).
   */
  readonly unmapRequestsFlush?: boolean;
  /**
   * CONFIG_KVM_MMU_LOCKLESS_AGING: kvm_age_gfn()/kvm_test_age_gfn() run without mmu_lock.
   *
   * Default is `false` (x86 selects it).
   */
  readonly locklessAging?: boolean;
  /**
   * CONFIG_KVM_ELIDE_TLB_FLUSH_IF_YOUNG: clear_flush_young does not flush remote TLBs.
   *
   * Default is `false` (x86 selects it).
   */
  readonly elideTlbFlushIfYoung?: boolean;
  /**
   * Aging is "fast" as a fixed property of the MMU (the proposed test_clear_young_fast_only
   * notifier, kvm-generic.md §4.9): a fast-only aging call is answered without contending for
   * mmu_lock. An MMU that is not fast answers "not fast" instead of taking the lock.
   *
   * Default is `false` (x86 TDP MMU: true; shadow MMU: false).
   */
  readonly fastAging?: boolean;
  /**
   * How the architecture's vCPU fault path takes mmu_lock: `'read'` (x86 TDP MMU, arm64) or
   * `'write'` (shadow MMUs, spinlock architectures).
   *
   * Default is `'write'`.
   */
  readonly faultLock?: 'read' | 'write';
  /**
   * A read fault maps the page writable when the host page is already present and writable
   * (hva_to_pfn()'s opportunistic FOLL_WRITE), so with dirty logging on a guest *read* marks the
   * page dirty (x86 make_spte(); observed on Linux 6.18.44, docs/kernel-differences.md). An
   * architecture that maps read faults read-only while logging (arm64 user_mem_abort()) leaves
   * this off.
   *
   * Default is `false` (x86: true).
   */
  readonly readFaultMapsWritable?: boolean;
  /**
   * Opt-in to the scalable memslots' hva interval tree for MMU-notifier hva-range lookups.
   * A backend that does not opt in gets its lookups by scanning every slot, as before the tree.
   *
   * Default is `false`.
   */
  readonly usesHvaTree?: boolean;
  /**
   * CONFIG_KVM_GENERIC_MMU_NOTIFIER: the core's MMU notifier drives kvm_unmap_gfn_range() and
   * the aging hooks. (KVM_CAP_SYNC_MMU is 1 either way: s390 syncs through its own gmap notifier.)
   *
   * Default is `true` (every architecture but s390 in 6.18).
   */
  readonly genericMmuNotifier?: boolean;
  /**
   * CONFIG_KVM_GENERIC_DIRTYLOG_READ_PROTECT: generic KVM_GET_DIRTY_LOG with re-protection and
   * KVM_CLEAR_DIRTY_LOG (which is ENOTTY without it).
   *
   * Default is `false` (x86, arm64, mips, riscv, loongarch: true).
   */
  readonly dirtyLogReadProtect?: boolean;
  /**
   * KVM_DIRTY_LOG_MANUAL_CAPS: what KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 reports and accepts. The
   * capability exists only with {@link dirtyLogReadProtect}; without it the VM reports 0 and
   * rejects the enable (EINVAL), whatever this says.
   *
   * Default is `1` (ENABLE; x86 and arm64 add INITIALLY_SET: 3).
   */
  readonly dirtyLogManualCaps?: number;
}

/** Capabilities with every default filled in. */
export type ResolvedCapabilities = { readonly [K in keyof ArchCapabilities]-?: NonNullable<ArchCapabilities[K]> };

/** Documented defaults of {@link ArchCapabilities}. */
export const DEFAULT_CAPABILITIES: Omit<ResolvedCapabilities, 'arch'> = Object.freeze({
  internalMemSlots: 0,
  nrAddressSpaces: 1,
  readonlyMem: false,
  mmuLock: 'spinlock',
  unmapRequestsFlush: true,
  locklessAging: false,
  elideTlbFlushIfYoung: false,
  fastAging: false,
  usesHvaTree: false,
  genericMmuNotifier: true,
  dirtyLogReadProtect: false,
  dirtyLogManualCaps: 1,
  faultLock: 'write',
  readFaultMapsWritable: false,
});

export function resolveCapabilities(caps: ArchCapabilities): ResolvedCapabilities {
  const out: Record<string, unknown> = { ...DEFAULT_CAPABILITIES };
  for (const [k, v] of Object.entries(caps)) if (v !== undefined) out[k] = v;
  return out as ResolvedCapabilities;
}

/**
 * struct kvm_gfn_range (include/linux/kvm_host.h, 6.18): what the notifier walk hands to the
 * architecture, one slot at a time. The core reuses one object per walk (no allocation).
 */
export interface KvmGfnRange {
  slot: MemorySlot;
  /** first gfn */
  start: number;
  /** one past the last gfn */
  end: number;
  /** may the handler yield mmu_lock or sleep */
  mayBlock: boolean;
  /** run without mmu_lock (lockless aging) */
  lockless: boolean;
}

/**
 * The per-VM architecture hooks. Every method models one kernel hook; {@link ArchVmBase} gives
 * each the kernel's default (the `__weak` or empty implementation).
 */
export interface ArchVm {
  /**
   * kvm_arch_prepare_memory_region(): validate and allocate arch data for the change. Throw a
   * `KvmError` to fail the ioctl with that errno (the core then undoes the change).
   * `old` is null for CREATE; `new` is null for DELETE.
   */
  prepareMemoryRegion(old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): MaybeSteps<void>;
  /** kvm_arch_commit_memory_region(): runs after the new memslots are active. */
  commitMemoryRegion(old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): MaybeSteps<void>;
  /** kvm_arch_free_memslot(): free `slot.arch` of a deleted slot. */
  freeMemslot(slot: MemorySlot): void;
  /**
   * kvm_arch_memslots_updated(): after every swap, with the final generation (not yet stored).
   * The address space is implied: generations of address space `as` are ≡ as (mod nr_as).
   */
  memslotsUpdated(gen: number): MaybeSteps<void>;
  /** kvm_arch_flush_shadow_memslot(): drop every mapping of `slot` (DELETE and MOVE only). */
  flushShadowMemslot(slot: MemorySlot): MaybeSteps<void>;
  /** kvm_arch_flush_shadow_all(): drop every mapping (notifier release, VM destroy). */
  flushShadowAll(): MaybeSteps<void>;
  /** kvm_arch_guest_memory_reclaimed(): after flush_shadow_* and notifier invalidations that hit a slot. */
  guestMemoryReclaimed(): void;
  /** kvm_unmap_gfn_range(): zap the range's mappings; return true if the core must flush TLBs. */
  unmapGfnRange(range: KvmGfnRange): MaybeSteps<boolean>;
  /** kvm_age_gfn(): test and clear the accessed state; return true if any page was young. */
  ageGfn(range: KvmGfnRange): MaybeSteps<boolean>;
  /** kvm_test_age_gfn(): test the accessed state without clearing it. */
  testAgeGfn(range: KvmGfnRange): MaybeSteps<boolean>;
  /**
   * kvm_arch_mmu_enable_log_dirty_pt_masked(): re-protect the pages whose dirty bits were just
   * harvested. The kernel's 64-bit `mask` is passed as two u32 halves: bit i of `maskLo` is
   * gfn `slot.baseGfn + gfnOffset + i`, bit i of `maskHi` is `… + 32 + i`.
   */
  mmuEnableLogDirtyPtMasked(slot: MemorySlot, gfnOffset: number, maskLo: number, maskHi: number): void;
  /** kvm_arch_sync_dirty_log(): flush hardware dirty state (x86 PML, s390) into the bitmap. */
  syncDirtyLog(slot: MemorySlot): MaybeSteps<void>;
  /** kvm_arch_flush_remote_tlbs(): flush every vCPU's TLB for this VM. */
  flushRemoteTlbs(): void;
  /** kvm_arch_destroy_vm() */
  destroyVm(): void;
  /**
   * The secondary MMU as the vCPU sees it. Optional: a backend without it has no vCPU model
   * (guest accesses answer EOPNOTSUPP).
   */
  readonly mmu?: ArchMmu;
}

/** {@link ArchMmu.translate}'s answer for a valid cached MMIO entry. */
export const MMU_MMIO_EXIT = -2;

/**
 * The architecture's secondary MMU, as the generic fault path ({@link vcpuAccessSteps}) uses it.
 * Frames are host page-frame numbers of the host address-space model.
 */
export interface ArchMmu {
  /**
   * The hardware walk: the frame `gfn` maps to for this access, -1 if the access faults (no
   * mapping, or a write through a read-only one), or {@link MMU_MMIO_EXIT} if a cached MMIO entry
   * whose generation matches `memslotsGen` (the vCPU's memslot set's generation, in-progress bit
   * included) says "emulate" without any memslot lookup. Sets accessed/dirty state like hardware.
   */
  translate(asId: number, gfn: number, write: boolean, memslotsGen: number): number;
  /**
   * Cache "no memslot here" for `gfn` (x86's MMIO SPTE, make_mmio_spte()), under mmu_lock after the
   * retry check. Optional: architectures that do not cache MMIO leave it out.
   */
  mapMmio?(asId: number, gfn: number, memslotsGen: number): MaybeSteps<void>;
  /**
   * A fault on an INVALID (being deleted or moved) slot retries instead of exiting to MMIO
   * (x86 kvm_mmu_faultin_pfn(): "ensures any existing SPTEs for the old memslot will be zapped
   * before KVM inserts a new MMIO SPTE"). Default is `false` (arm64: the bad hva becomes MMIO).
   */
  readonly retryOnInvalidSlot?: boolean;
  /**
   * Install the mapping after a fault, with mmu_lock held as `faultLock` says and the
   * invalidation retry check passed (the arch's map step: kvm_tdp_mmu_map(), user_mem_abort()…).
   * `writable` is false for read faults, so that a later write faults again (dirty logging).
   */
  map(slot: MemorySlot, gfn: number, frame: number, writable: boolean): MaybeSteps<void>;
  /** Every mapping, for invariant checks: calls `visit(asId, gfn, frame, writable)`. */
  forEachMapping(visit: (asId: number, gfn: number, frame: number, writable: boolean) => void): void;
  /** Number of live mappings. */
  readonly mappings: number;
}

/** The factory a user passes to `createVm()`. */
export interface ArchBackend {
  /** Human-readable configuration name, e.g. "x86/tdp". */
  readonly name: string;
  readonly capabilities: ArchCapabilities;
  /** Creates the per-VM architecture state; called once by `createVm()`. */
  createArchVm(kvm: Kvm): ArchVm;
}

/**
 * Base class for backends: subclasses override only the capabilities they change.
 * Adding a capability to kvm-core is then a minor release for every backend.
 */
export abstract class ArchBackendBase implements ArchBackend {
  abstract readonly name: string;
  abstract readonly capabilities: ArchCapabilities;
  abstract createArchVm(kvm: Kvm): ArchVm;
}

/**
 * Hook defaults: the kernel's `__weak` / empty implementations. A backend overrides what its
 * architecture implements.
 */
export class ArchVmBase implements ArchVm {
  protected readonly kvm: Kvm;
  constructor(kvm: Kvm) {
    this.kvm = kvm;
  }
  prepareMemoryRegion(_old: MemorySlot | null, _newSlot: MemorySlot | null, _change: MrChange): MaybeSteps<void> {}
  commitMemoryRegion(_old: MemorySlot | null, _newSlot: MemorySlot | null, _change: MrChange): MaybeSteps<void> {}
  freeMemslot(_slot: MemorySlot): void {}
  memslotsUpdated(_gen: number): MaybeSteps<void> {}
  flushShadowMemslot(_slot: MemorySlot): MaybeSteps<void> {}
  flushShadowAll(): MaybeSteps<void> {}
  guestMemoryReclaimed(): void {}
  unmapGfnRange(_range: KvmGfnRange): MaybeSteps<boolean> {
    return false;
  }
  ageGfn(_range: KvmGfnRange): MaybeSteps<boolean> {
    return false;
  }
  testAgeGfn(_range: KvmGfnRange): MaybeSteps<boolean> {
    return false;
  }
  mmuEnableLogDirtyPtMasked(_slot: MemorySlot, _gfnOffset: number, _maskLo: number, _maskHi: number): void {}
  syncDirtyLog(_slot: MemorySlot): MaybeSteps<void> {}
  flushRemoteTlbs(): void {}
  destroyVm(): void {}
}
