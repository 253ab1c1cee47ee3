/**
 * struct kvm: one VM of the model, with its memslots, dirty-log state and architecture backend.
 *
 * Public methods are the ioctls userspace issues; each throws a {@link KvmError} with the errno
 * the kernel returns. The kernel functions they model live in memslots/ and dirty-log/.
 */
import { resolveCapabilities, type ArchBackend, type ArchVm, type ResolvedCapabilities } from './arch-backend.js';
import type { CoreFaults } from './fault-injection.js';
import { HostAddressSpace } from './host/host-address-space.js';
import type { MemorySlot } from './memslots/memory-slot.js';
import type { MemslotSet, MemslotStore, MemslotStoreKind, StoreFaults } from './memslots/memslot-store.js';
import { LegacyMemslotStore } from './memslots/legacy-store.js';
import { ScalableMemslotStore } from './memslots/scalable-store.js';
import { kvmVmIoctlSetUserMemoryRegion } from './memslots/set-memory-region.js';
import { kvmFlushShadowAll } from './notifier/kvm-mmu-notifier.js';
import {
  kvmVmIoctlClearDirtyLog,
  kvmVmIoctlEnableCapManualDirtyLogProtect,
  kvmVmIoctlGetDirtyLog,
} from './dirty-log/dirty-log.js';
import { KvmError } from './errors.js';
import { KvmMmuNotifier } from './notifier/kvm-mmu-notifier.js';
import { MmuLock, Mutex, Srcu } from './sched/primitives.js';
import { runSync, type Steps } from './sched/steps.js';
import { KvmVcpu } from './vcpu/vcpu.js';
import { KVM_MEM_SLOTS_NUM, TASK_SIZE_MAX_4LEVEL, type KvmCapName, type UserspaceMemoryRegion } from './uapi.js';

export interface KvmTraceEvent {
  /** Event name: a kernel function or hook name, e.g. "kvm_swap_active_memslots". */
  readonly name: string;
  readonly args: Readonly<Record<string, number | string | boolean | null>>;
}

/** Receives trace events; set it only when you want them (emission is skipped otherwise). */
export type KvmTraceSink = (event: KvmTraceEvent) => void;

export interface CreateVmOptions {
  /** The architecture backend (a factory). */
  backend: ArchBackend;
  /** Memslot store design. Default is `'scalable'` (Linux ≥ 5.17). */
  memslots?: MemslotStoreKind;
  /**
   * Override the backend's usesHvaTree opt-in for the scalable store (to measure the design
   * without the tree). Default: the backend's capability.
   */
  hvaTree?: boolean;
  /** The process's address space behind the memslots. Default: a new, empty one. */
  host?: HostAddressSpace;
  /** Core fault-injection switches. Default: none. */
  faults?: CoreFaults;
  /** Memslot-store fault-injection switches. Default: none. */
  storeFaults?: StoreFaults;
  /** Trace sink. Default: none. */
  trace?: KvmTraceSink;
  /**
   * TASK_SIZE_MAX of the host process, the bound of access_ok() on userspace_addr.
   * Default is x86-64 with 4-level paging, 0x7ffffffff000.
   */
  taskSizeMax?: bigint;
}

export class Kvm {
  readonly backend: ArchBackend;
  readonly caps: ResolvedCapabilities;
  readonly arch: ArchVm;
  readonly memslots: MemslotStore;
  readonly host: HostAddressSpace;
  readonly faults: CoreFaults;
  trace: KvmTraceSink | undefined;
  readonly taskSizeMax: bigint;
  /** KVM_USER_MEM_SLOTS = KVM_MEM_SLOTS_NUM - KVM_INTERNAL_MEM_SLOTS */
  readonly userMemSlots: number;
  /** kvm_arch_nr_memslot_as_ids() */
  readonly nrMemslotAsIds: number;
  /** kvm->nr_memslot_pages */
  nrMemslotPages = 0;
  /** kvm->nr_memslots_dirty_logging */
  nrMemslotsDirtyLogging = 0;
  /** kvm->manual_dirty_log_protect */
  manualDirtyLogProtect = 0;
  /** kvm->dirty_ring_size (the dirty ring is not modelled yet; always 0). */
  readonly dirtyRingSize = 0;
  /** kvm->vm_dead: every ioctl then fails with EIO. */
  vmDead = false;
  /** Remote TLB flushes requested (kvm_flush_remote_tlbs() calls). */
  remoteTlbFlushes = 0;
  /** Bitmaps kept by the dirtyBitmapNotResetOnReenable fault, by `as_id << 16 | id`. */
  readonly staleDirtyBitmaps: Map<number, Uint8Array> = new Map();

  // ---- locks (include/linux/kvm_host.h struct kvm) ------------------------------------------
  /** kvm->slots_lock: serialises memslot updates and dirty-log ioctls. */
  readonly slotsLock: Mutex = new Mutex('slots_lock');
  /** kvm->slots_arch_lock: held while the inactive set is edited, until the swap publishes it. */
  readonly slotsArchLock: Mutex = new Mutex('slots_arch_lock');
  /** kvm->mmu_lock: rwlock or spinlock per the architecture. */
  readonly mmuLock: MmuLock;
  /** kvm->srcu: readers of the memslots. */
  readonly srcu: Srcu = new Srcu('kvm->srcu');

  // ---- MMU-notifier state (kvm-generic.md §4) ----------------------------------------------
  /** kvm->mn_active_invalidate_count: invalidate_range_start calls not yet matched by their end. */
  mnActiveInvalidateCount = 0;
  /** kvm->mmu_invalidate_seq: bumped by every invalidation end. */
  mmuInvalidateSeq = 0;
  /** kvm->mmu_invalidate_in_progress: open invalidations that hit a memslot. */
  mmuInvalidateInProgress = 0;
  /** kvm->mmu_invalidate_range_start/end: the union of the open invalidations' gfn ranges (-1 = INVALID_GPA). */
  mmuInvalidateRangeStart = -1;
  mmuInvalidateRangeEnd = -1;
  /** The notifier KVM registers on the host mm (kvm->mmu_notifier), when the arch uses the generic one. */
  readonly mmuNotifier: KvmMmuNotifier;
  /** The host mm is gone (the notifier's release ran). */
  mmReleased = false;
  /** vCPUs inside KVM_RUN (threads holding the mm: exit_mmap waits for them). */
  vcpusRunning = 0;

  constructor(options: CreateVmOptions) {
    this.backend = options.backend;
    this.caps = resolveCapabilities(options.backend.capabilities);
    this.faults = options.faults ?? {};
    this.trace = options.trace;
    this.taskSizeMax = options.taskSizeMax ?? TASK_SIZE_MAX_4LEVEL;
    this.userMemSlots = KVM_MEM_SLOTS_NUM - this.caps.internalMemSlots;
    this.nrMemslotAsIds = this.caps.nrAddressSpaces;
    this.host = options.host ?? new HostAddressSpace();
    const storeOptions = {
      nrAddressSpaces: this.nrMemslotAsIds,
      hvaTree: options.hvaTree ?? this.caps.usesHvaTree,
      faults: options.storeFaults ?? {},
    };
    this.memslots =
      (options.memslots ?? 'scalable') === 'legacy'
        ? new LegacyMemslotStore(storeOptions)
        : new ScalableMemslotStore(storeOptions);
    this.mmuLock = new MmuLock(this.caps.mmuLock);
    this.arch = options.backend.createArchVm(this);
    this.mmuNotifier = new KvmMmuNotifier(this);
    // kvm_init_mmu_notifier(): mmu_notifier_register(&kvm->mmu_notifier, current->mm)
    if (this.caps.genericMmuNotifier) this.host.registerMmuNotifier(this.mmuNotifier);
  }

  /** Emit a trace event if a sink is attached. */
  emit(name: string, args: Record<string, number | string | boolean | null>): void {
    this.trace?.({ name, args });
  }

  /** __kvm_memslots(kvm, as_id): the active set of an address space. */
  kvmMemslots(asId: number): MemslotSet {
    return this.memslots.active(asId);
  }

  /** gfn_to_memslot(kvm, gfn): address space 0. */
  gfnToMemslot(gfn: number, asId = 0): MemorySlot | null {
    return this.memslots.active(asId).gfnToMemslot(gfn);
  }

  /** kvm_use_dirty_bitmap(): no dirty ring, or a ring with a bitmap. */
  kvmUseDirtyBitmap(): boolean {
    return this.dirtyRingSize === 0;
  }

  /** kvm_dirty_log_manual_protect_and_init_set() */
  kvmDirtyLogManualProtectAndInitSet(): boolean {
    return (this.manualDirtyLogProtect & 2) !== 0;
  }

  /** mmu_invalidate_retry_gfn(): must the fault that sampled `mmuSeq` retry for `gfn`? */
  mmuInvalidateRetryGfn(mmuSeq: number, gfn: number): boolean {
    if (this.mmuInvalidateInProgress !== 0) {
      // WARN: in progress with no range
      if (this.mmuInvalidateRangeStart === -1 || this.mmuInvalidateRangeEnd === -1) return true;
      if (gfn >= this.mmuInvalidateRangeStart && gfn < this.mmuInvalidateRangeEnd) return true;
    }
    return this.mmuInvalidateSeq !== mmuSeq;
  }

  /** @see virt/kvm/kvm_main.c kvm_flush_remote_tlbs() (6.18) */
  kvmFlushRemoteTlbs(): void {
    this.remoteTlbFlushes++;
    this.arch.flushRemoteTlbs();
  }

  /**
   * Simplification: the ranged flush (kvm_arch_flush_remote_tlbs_range()) is a full flush.
   * @see virt/kvm/kvm_main.c kvm_flush_remote_tlbs_memslot() (6.18)
   */
  kvmFlushRemoteTlbsMemslot(_slot: MemorySlot): void {
    this.kvmFlushRemoteTlbs();
  }

  // ---- ioctls --------------------------------------------------------------------------------

  private readonly vcpus = new Map<number, KvmVcpu>();

  /** KVM_CREATE_VCPU (or the existing vCPU of that id). */
  createVcpu(id = 0): KvmVcpu {
    let v = this.vcpus.get(id);
    if (v === undefined) {
      v = new KvmVcpu(this, id);
      this.vcpus.set(id, v);
    }
    return v;
  }

  /** KVM_SET_USER_MEMORY_REGION (v1) or KVM_SET_USER_MEMORY_REGION2 (`v2: true`). */
  setUserMemoryRegion(region: UserspaceMemoryRegion, v2 = false): void {
    runSync(kvmVmIoctlSetUserMemoryRegion(this, region, v2));
  }

  /** The same ioctl as preemptible steps, for an actor. */
  setUserMemoryRegionSteps(region: UserspaceMemoryRegion, v2 = false): Steps {
    return kvmVmIoctlSetUserMemoryRegion(this, region, v2);
  }

  /** KVM_GET_DIRTY_LOG: returns the bitmap bytes userspace would receive. */
  getDirtyLog(slot: number): Uint8Array {
    return runSync(kvmVmIoctlGetDirtyLog(this, slot));
  }

  getDirtyLogSteps(slot: number): Steps<Uint8Array> {
    return kvmVmIoctlGetDirtyLog(this, slot);
  }

  /**
   * KVM_CLEAR_DIRTY_LOG. `bitmap` is the user buffer; null models a NULL pointer, and a buffer
   * shorter than the kernel reads models an unreadable one (EFAULT).
   */
  clearDirtyLog(slot: number, firstPage: bigint, numPages: number, bitmap: Uint8Array | null): void {
    runSync(kvmVmIoctlClearDirtyLog(this, slot, firstPage, numPages, bitmap));
  }

  clearDirtyLogSteps(slot: number, firstPage: bigint, numPages: number, bitmap: Uint8Array | null): Steps {
    return kvmVmIoctlClearDirtyLog(this, slot, firstPage, numPages, bitmap);
  }

  /** KVM_ENABLE_CAP on the VM fd. Only KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is modelled. */
  enableCap(cap: KvmCapName, flags: number, args: readonly bigint[]): void {
    if (this.vmDead) throw new KvmError('EIO', 'the VM is dead');
    if (cap === 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2' && this.caps.dirtyLogReadProtect) {
      kvmVmIoctlEnableCapManualDirtyLogProtect(this, flags, args[0] ?? 0n);
      return;
    }
    // kvm_vm_ioctl_enable_cap() of the architecture: unknown capabilities are EINVAL.
    throw new KvmError('EINVAL', `KVM_ENABLE_CAP: capability ${cap} cannot be enabled on this VM`);
  }

  /**
   * KVM_CHECK_EXTENSION on the VM fd.
   * @see virt/kvm/kvm_main.c kvm_vm_ioctl_check_extension_generic() (6.18)
   */
  checkExtension(cap: KvmCapName): number {
    switch (cap) {
      case 'KVM_CAP_USER_MEMORY':
      case 'KVM_CAP_USER_MEMORY2':
        return 1;
      case 'KVM_CAP_NR_MEMSLOTS':
        return this.userMemSlots;
      case 'KVM_CAP_MULTI_ADDRESS_SPACE':
        // Only compiled in when KVM_MAX_NR_ADDRESS_SPACES > 1; otherwise the arch answers 0.
        return this.nrMemslotAsIds > 1 ? this.nrMemslotAsIds : 0;
      case 'KVM_CAP_READONLY_MEM':
        return this.caps.readonlyMem ? 1 : 0;
      case 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2':
        // Only compiled in with CONFIG_KVM_GENERIC_DIRTYLOG_READ_PROTECT.
        return this.caps.dirtyLogReadProtect ? this.caps.dirtyLogManualCaps : 0;
      case 'KVM_CAP_SYNC_MMU':
        // Every architecture answers 1 in 6.18 (s390 from its own gmap notifier).
        return 1;
    }
  }

  /**
   * VM teardown: the architecture's destroy hook, then free every slot once.
   * @see virt/kvm/kvm_main.c kvm_destroy_vm(), kvm_free_memslots() (6.18)
   */
  destroy(): void {
    runSync(this.destroySteps());
  }

  *destroySteps(): Steps {
    // mmu_notifier_unregister() → .release → kvm_flush_shadow_all(); arches without the
    // generic notifier call kvm_flush_shadow_all() here directly. Either way: flush, reclaimed.
    if (this.caps.genericMmuNotifier && !this.mmReleased) yield* this.host.unregisterMmuNotifier(this.mmuNotifier);
    else if (!this.caps.genericMmuNotifier) yield* kvmFlushShadowAll(this);
    // An unregister between an invalidation's start and end leaves the count unbalanced.
    if (this.mnActiveInvalidateCount !== 0) this.mnActiveInvalidateCount = 0;
    this.arch.destroyVm();
    for (let as = 0; as < this.nrMemslotAsIds; as++) {
      const slots: MemorySlot[] = [];
      this.memslots.active(as).forEachMemslot((s) => slots.push(s));
      for (const s of slots) {
        s.dirtyBitmap = null;
        this.arch.freeMemslot(s);
      }
    }
    this.vmDead = true;
  }
}

/** Create a VM: KVM_CREATE_VM with the given backend. */
export function createVm(options: CreateVmOptions): Kvm {
  return new Kvm(options);
}
