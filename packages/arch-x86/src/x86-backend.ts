/**
 * The x86 backend: kvm_arch_* memslot hooks, the MMU-notifier handlers and the vCPU's MMU over
 * the TDP MMU (arch/x86/kvm/x86.c, arch/x86/kvm/mmu/mmu.c, tdp_mmu.c; Linux 6.18).
 */
import {
  ArchBackendBase,
  ArchVmBase,
  KvmError,
  KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  MMU_MMIO_EXIT,
  PROT_WRITE,
  markPageDirtyInSlot,
  type ArchCapabilities,
  type ArchMmu,
  type Kvm,
  type KvmGfnRange,
  type MaybeSteps,
  type MemorySlot,
  type MrChange,
  type Steps,
} from '@kvmsim/kvm-core';
import { LpageInfo, type PgLevel } from './lpage-info.js';
import { MMIO_HIT, TdpMmu } from './mmu/tdp-mmu.js';
import { MMIO_SPTE_GEN_MASK } from './mmu/spte.js';
import { resolveX86Options, type ResolvedX86Options, type X86Options } from './options.js';
import {
  installKvmmmuTraceHook,
  traceKvmMmuSetSpte,
  traceKvmMmuSpteRequested,
  traceKvmMmuSpteRequestedNoslot,
  traceKvmMmuZapAllFast,
} from './trace/kvmmmu.js';

/** struct kvm_arch_memory_slot, as far as the model keeps it. */
export interface X86MemslotArch {
  lpage: LpageInfo;
}

function slotArch(slot: MemorySlot): X86MemslotArch {
  return slot.arch as X86MemslotArch;
}

export class X86Backend extends ArchBackendBase {
  readonly name: string;
  readonly capabilities: ArchCapabilities;
  readonly options: ResolvedX86Options;

  constructor(options: X86Options = {}) {
    super();
    this.options = resolveX86Options(options);
    this.name = `x86/${this.options.mmu}`;
    this.capabilities = Object.freeze({
      arch: 'x86',
      // VMX TSS, APIC access page and identity-map page table (arch/x86/include/asm/kvm_host.h).
      internalMemSlots: 3,
      nrAddressSpaces: this.options.smm ? 2 : 1,
      readonlyMem: true,
      mmuLock: 'rwlock',
      faultLock: 'read', // kvm_tdp_mmu_page_fault() under read_lock
      unmapRequestsFlush: true,
      locklessAging: true, // CONFIG_KVM_MMU_LOCKLESS_AGING
      elideTlbFlushIfYoung: true, // CONFIG_KVM_ELIDE_TLB_FLUSH_IF_YOUNG
      fastAging: true, // the TDP MMU ages from an RCU walk
      usesHvaTree: true,
      genericMmuNotifier: true,
      dirtyLogReadProtect: true,
      dirtyLogManualCaps: 3,
    } satisfies ArchCapabilities);
  }

  createArchVm(kvm: Kvm): X86ArchVm {
    return new X86ArchVm(kvm, this.options);
  }
}

/** Factory: `createVm({ backend: x86Backend({ quirks: { slotZapAll: false } }) })`. */
export function x86Backend(options: X86Options = {}): X86Backend {
  return new X86Backend(options);
}

export class X86ArchVm extends ArchVmBase {
  readonly options: ResolvedX86Options;
  readonly tdp: TdpMmu;
  readonly mmu: ArchMmu;
  /** kvm_mmu_max_gfn() */
  readonly maxGfn: number;
  /** Fast zaps done (kvm_mmu_zap_all_fast), for traces and tests. */
  fastZaps = 0;
  /** MMIO generation wraps handled. */
  mmioGenWraps = 0;

  constructor(kvm: Kvm, options: ResolvedX86Options) {
    super(kvm);
    this.options = options;
    this.maxGfn = 2 ** (options.maxPhysAddr - 12) - 1;
    this.tdp = new TdpMmu({ levels: options.levels, nrAddressSpaces: kvm.nrMemslotAsIds });
    // kvm_tdp_mmu_spte_changed: the hook exists only while a trace sink is attached.
    if (kvm.trace) installKvmmmuTraceHook(kvm, this.tdp);
    this.mmu = new X86Mmu(kvm, this);
  }

  /** @see arch/x86/kvm/x86.c kvm_arch_prepare_memory_region() (6.18) */
  override prepareMemoryRegion(_old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): void {
    if (change === 'CREATE' || change === 'MOVE') {
      const slot = newSlot!;
      if (slot.baseGfn + slot.npages - 1 > this.maxGfn) {
        throw new KvmError('EINVAL', `last gfn 0x${(slot.baseGfn + slot.npages - 1).toString(16)} is beyond kvm_mmu_max_gfn() 0x${this.maxGfn.toString(16)}`);
      }
      // kvm_alloc_memslot_metadata(): MOVE gets fresh arrays.
      slot.arch = { lpage: new LpageInfo(slot) } satisfies X86MemslotArch;
    } else if (change === 'FLAGS_ONLY') {
      // The metadata is shared with the old slot (memcpy of new->arch = old->arch).
      newSlot!.arch = _old!.arch;
    }
  }

  /**
   * @see arch/x86/kvm/x86.c kvm_arch_commit_memory_region(), kvm_mmu_slot_apply_flags() (6.18)
   * Simplification: disabling logging zaps the slot's 4 KiB leaves so that faults map huge again
   * (the rmap path's "zap collapsible SPTEs"); the TDP MMU recovers in place.
   */
  override commitMemoryRegion(old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): MaybeSteps<void> {
    if (change !== 'FLAGS_ONLY' || newSlot === null || newSlot.flags & KVM_MEM_READONLY) return undefined;
    const wasLogging = ((old?.flags ?? 0) & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    const logging = (newSlot.flags & KVM_MEM_LOG_DIRTY_PAGES) !== 0;
    if (wasLogging === logging) return undefined;
    return this.applyDirtyLogging(newSlot, logging);
  }

  private *applyDirtyLogging(slot: MemorySlot, logging: boolean): Steps {
    const kvm = this.kvm;
    const start = slot.baseGfn;
    const end = slot.baseGfn + slot.npages;
    if (!logging) {
      yield* kvm.mmuLock.read();
      this.tdp.zapLeafs(slot.asId, start, end);
      kvm.mmuLock.readUnlock();
      kvm.kvmFlushRemoteTlbsMemslot(slot);
      return;
    }
    // With manual protect and INITIALLY_SET, protection happens lazily per CLEAR.
    if (kvm.kvmDirtyLogManualProtectAndInitSet()) return;
    yield* kvm.mmuLock.read();
    if (this.options.eagerSplit) this.tdp.splitHugePages(slot.asId, start, end, 1);
    if (this.options.pml) {
      this.tdp.clearDirtyRange(slot.asId, start, end);
      this.tdp.writeProtectRange(slot.asId, start, end, 2);
    } else {
      this.tdp.writeProtectRange(slot.asId, start, end, 1);
    }
    kvm.mmuLock.readUnlock();
    // Unconditional: a !writable SPTE does not prove no CPU has a stale writable TLB entry.
    kvm.kvmFlushRemoteTlbsMemslot(slot);
  }

  /**
   * Invalidate cached MMIO SPTEs: the generation they carry no longer matches, except after a
   * wrap of the masked generation, where everything is zapped.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_invalidate_mmio_sptes() (6.18)
   */
  override memslotsUpdated(gen: number): MaybeSteps<void> {
    if (gen >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) throw new Error('kvm_mmu_invalidate_mmio_sptes: in-progress generation (WARN)');
    let g = gen % (MMIO_SPTE_GEN_MASK + 1);
    // Strip the address-space part so a wrap in any address space is detected.
    if (!this.options.faults.mmioWrapOnlyAs0) g -= g % this.kvm.nrMemslotAsIds;
    if (g !== 0) return undefined;
    this.mmioGenWraps++;
    return this.zapAllFast();
  }

  /**
   * kvm_mmu_zap_all_fast(): every root obsolete (front half, write lock), then the invalidated
   * roots zapped (back half, read lock) before the memslot update completes.
   */
  *zapAllFast(): Steps {
    const kvm = this.kvm;
    yield* kvm.mmuLock.write();
    // Before the toggle: mmu_valid_gen = fastZaps mod 2; used_pages = 0 (no shadow-MMU pages).
    if (kvm.trace) traceKvmMmuZapAllFast(kvm, this.tdp, this.fastZaps % 2, 0);
    this.tdp.invalidateAllRoots();
    this.fastZaps++;
    kvm.mmuLock.writeUnlock();
    kvm.kvmFlushRemoteTlbs();
    yield* kvm.mmuLock.read();
    this.tdp.zapInvalidatedRoots();
    kvm.mmuLock.readUnlock();
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_arch_flush_shadow_memslot() (6.18) */
  override flushShadowMemslot(slot: MemorySlot): MaybeSteps<void> {
    if (this.options.quirks.slotZapAll) return this.zapAllFast();
    return this.zapSlot(slot);
  }

  /** The quirk off: only the slot's leaves (no shadow pages to account for without a shadow MMU). */
  private *zapSlot(slot: MemorySlot): Steps {
    const kvm = this.kvm;
    yield* kvm.mmuLock.write();
    const flush = this.tdp.zapLeafs(slot.asId, slot.baseGfn, slot.baseGfn + slot.npages);
    kvm.mmuLock.writeUnlock();
    if (flush) kvm.kvmFlushRemoteTlbs();
  }

  /** kvm_mmu_zap_all(): the VM is dying or the mm is going away; no flush. */
  override flushShadowAll(): MaybeSteps<void> {
    return this.zapAll();
  }

  private *zapAll(): Steps {
    yield* this.kvm.mmuLock.write();
    this.tdp.zapAll();
    this.kvm.mmuLock.writeUnlock();
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_unmap_gfn_range() (6.18) */
  override unmapGfnRange(range: KvmGfnRange): boolean {
    return this.tdp.zapLeafs(range.slot.asId, range.start, range.end);
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_age_gfn() → kvm_tdp_mmu_age_gfn_range() (6.18): lockless */
  override ageGfn(range: KvmGfnRange): boolean {
    return this.tdp.ageRange(range.slot.asId, range.start, range.end, true);
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_test_age_gfn() (6.18) */
  override testAgeGfn(range: KvmGfnRange): boolean {
    return this.tdp.ageRange(range.slot.asId, range.start, range.end, false);
  }

  /**
   * Re-protect harvested pages: clear D (PML) or W of the 4 KiB leaves in the mask; with
   * INITIALLY_SET, first split and write-protect the huge pages the mask touches.
   * @see arch/x86/kvm/mmu/mmu.c kvm_arch_mmu_enable_log_dirty_pt_masked() (6.18)
   */
  override mmuEnableLogDirtyPtMasked(slot: MemorySlot, gfnOffset: number, maskLo: number, maskHi: number): void {
    const base = slot.baseGfn + gfnOffset;
    if (this.kvm.kvmDirtyLogManualProtectAndInitSet()) {
      const first = maskLo !== 0 ? Math.clz32(maskLo & -maskLo) ^ 31 : 32 + (Math.clz32(maskHi & -maskHi) ^ 31);
      const last = maskHi !== 0 ? 63 - Math.clz32(maskHi) : 31 - Math.clz32(maskLo);
      const start = base + first;
      const end = base + last + 1;
      if (this.options.eagerSplit) this.tdp.splitHugePages(slot.asId, start, end, 1);
      this.tdp.writeProtectRange(slot.asId, start, end, 2);
    }
    this.tdp.clearDirtyMasked(slot.asId, base, maskLo, maskHi, !this.options.pml);
  }

  /**
   * PML: flush the hardware's log into the dirty bitmap (modelled as harvesting D bits of the
   * slot's 4 KiB leaves). Without PML there is nothing to do.
   * @see arch/x86/kvm/x86.c kvm_arch_sync_dirty_log() (6.18)
   */
  override syncDirtyLog(slot: MemorySlot): void {
    if (!this.options.pml) return;
    const end = slot.baseGfn + slot.npages;
    this.tdp.forEachLeaf((asId, gfn, level, _pfn, _w, _a, dirty) => {
      if (asId === slot.asId && level === 1 && dirty && gfn >= slot.baseGfn && gfn < end) markPageDirtyInSlot(slot, gfn);
    });
    this.tdp.clearDirtyRange(slot.asId, slot.baseGfn, end);
  }
}

/** The vCPU's view of the TDP MMU, for the shared fault path. */
class X86Mmu implements ArchMmu {
  readonly retryOnInvalidSlot = true;
  private readonly kvm: Kvm;
  private readonly vm: X86ArchVm;

  constructor(kvm: Kvm, vm: X86ArchVm) {
    this.kvm = kvm;
    this.vm = vm;
  }

  get mappings(): number {
    const s = this.vm.tdp.stats();
    return s.leaves[0] + s.leaves[1] + s.leaves[2];
  }

  /**
   * The hardware walk; an MMIO SPTE is an EPT misconfiguration: emulate if its generation matches
   * the vCPU's memslots (never while an update is in progress), else take the slow path.
   * @see arch/x86/kvm/mmu/mmu.c handle_mmio_page_fault(), check_mmio_spte() (6.18)
   */
  translate(asId: number, gfn: number, write: boolean, memslotsGen: number): number {
    const r = this.vm.tdp.translate(asId, gfn, write);
    if (r !== MMIO_HIT) return r;
    if (this.vm.options.faults.mmioCachedWhileInFlux) return MMU_MMIO_EXIT;
    if (memslotsGen >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) return -1;
    return this.vm.tdp.mmioGeneration(asId, gfn) === memslotsGen % (MMIO_SPTE_GEN_MASK + 1) ? MMU_MMIO_EXIT : -1;
  }

  /** make_mmio_spte(): the generation without the in-progress bit. */
  mapMmio(asId: number, gfn: number, memslotsGen: number): void {
    const g = memslotsGen >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS ? memslotsGen - KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS : memslotsGen;
    if (this.kvm.trace) traceKvmMmuSpteRequestedNoslot(this.kvm, this.vm.tdp, gfn);
    this.vm.tdp.mapMmio(asId, gfn, g % (MMIO_SPTE_GEN_MASK + 1));
  }

  /**
   * kvm_tdp_mmu_map() at the level kvm_mmu_hugepage_adjust() allows: 4 KiB while the slot logs
   * dirty pages, else the largest level the slot's lpage_info and the host mapping allow.
   */
  map(slot: MemorySlot, gfn: number, frame: number, writable: boolean): void {
    // Simplification: the root level is fixed by the `levels` option; the kernel picks 5-level EPT
    // when the guest's MAXPHYADDR exceeds 48 bits (kvm_mmu_get_tdp_level()).
    if (gfn >= 2 ** (9 * this.vm.options.levels)) {
      throw new KvmError('EFAULT', `gfn 0x${gfn.toString(16)} is beyond the reach of a ${this.vm.options.levels}-level TDP root`);
    }
    const level = this.maxMappingLevel(slot, gfn);
    const mask = 2 ** ((level - 1) * 9) - 1;
    const base = frame - (gfn & mask);
    if (this.kvm.trace) traceKvmMmuSpteRequested(this.kvm, this.vm.tdp, gfn, base, level);
    this.vm.tdp.map(slot.asId, gfn, base, level, writable, this.hostWritable(slot, gfn));
    if (this.kvm.trace) traceKvmMmuSetSpte(this.kvm, this.vm.tdp, slot.asId, gfn, level);
  }

  private hostWritable(slot: MemorySlot, gfn: number): boolean {
    const vma = this.kvm.host.findVma(slot.hvaPfn + (gfn - slot.baseGfn));
    return vma !== undefined && (vma.prot & PROT_WRITE) !== 0;
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_mmu_max_mapping_level(), kvm_mmu_hugepage_adjust() (6.18) */
  maxMappingLevel(slot: MemorySlot, gfn: number): PgLevel {
    if (slot.flags & KVM_MEM_LOG_DIRTY_PAGES) return 1;
    const lpage = slotArch(slot).lpage;
    let max: PgLevel = this.vm.options.hugePage1G ? 3 : 2;
    while (max > 1 && !lpage.allowed(slot, gfn, max)) max = (max - 1) as PgLevel;
    const hostLevel = this.kvm.host.hostMappingLevel(slot.hvaPfn + (gfn - slot.baseGfn));
    return Math.min(max, hostLevel) as PgLevel;
  }

  forEachMapping(visit: (asId: number, gfn: number, frame: number, writable: boolean) => void): void {
    this.vm.tdp.forEachLeaf((asId, gfn, level, pfn, writable, _a, _d, valid) => {
      if (!valid) return;
      const n = 2 ** ((level - 1) * 9);
      for (let i = 0; i < n; i++) visit(asId, gfn + i, pfn + i, writable);
    });
  }
}
