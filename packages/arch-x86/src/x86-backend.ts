/**
 * The x86 backend: kvm_arch_* memslot hooks, the MMU-notifier handlers and the vCPU's MMU over
 * the TDP MMU and/or the shadow MMU (arch/x86/kvm/x86.c, arch/x86/kvm/mmu/mmu.c, tdp_mmu.c,
 * paging_tmpl.h; Linux 6.18).
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
  runSync,
  type ArchCapabilities,
  type ArchMmu,
  type Kvm,
  type KvmGfnRange,
  type KvmVcpu,
  type MaybeSteps,
  type MemorySlot,
  type MrChange,
  type Steps,
} from '@kvmsim/kvm-core';
import { SCHED, point } from '@kvmsim/kvm-core/sched';
import {
  shadowAccessSteps,
  tdpGuestAccessSteps,
  type AccessSize,
  type GuestAccessResult,
  type ShadowAccessContext,
  type X86VcpuPaging,
} from './guest-paging.js';
import { LpageInfo, type PgLevel } from './lpage-info.js';
import { slotArch, type X86MemslotArch } from './memslot-arch.js';
import { SlotRmaps } from './mmu/rmap.js';
import { MODE_NESTED, MODE_NONPAGING, MODE_PAGING, SHADOW_MMIO_HIT, ShadowMmu } from './mmu/shadow-mmu.js';
import { MMIO_HIT, TdpMmu } from './mmu/tdp-mmu.js';
import { MMIO_SPTE_GEN_MASK } from './mmu/spte.js';
import { resolveX86Options, type ResolvedX86Options, type X86Options } from './options.js';
import {
  emitKvmMmuSetSpte,
  installKvmmmuTraceHook,
  traceKvmMmuSetSpte,
  traceKvmMmuSpteRequested,
  traceKvmMmuSpteRequestedNoslot,
  traceKvmMmuZapAllFast,
} from './trace/kvmmmu.js';

export type { X86MemslotArch } from './memslot-arch.js';

const P_AGE_ROOT = point('tdp aging: next root (rcu_read_lock held)');

export class X86Backend extends ArchBackendBase {
  readonly name: string;
  readonly capabilities: ArchCapabilities;
  readonly options: ResolvedX86Options;

  constructor(options: X86Options = {}) {
    super();
    this.options = resolveX86Options(options);
    this.name = `x86/${this.options.mmu}${this.options.nestedTdp ? '+nested-tdp' : ''}`;
    const tdp = this.options.mmu === 'tdp';
    this.capabilities = Object.freeze({
      arch: 'x86',
      // VMX TSS, APIC access page and identity-map page table (arch/x86/include/asm/kvm_host.h).
      internalMemSlots: 3,
      nrAddressSpaces: this.options.smm ? 2 : 1,
      readonlyMem: true,
      mmuLock: 'rwlock',
      // kvm_tdp_mmu_page_fault() under read_lock; direct_page_fault() / FNAME(page_fault) of the
      // shadow MMU under write_lock.
      faultLock: tdp ? 'read' : 'write',
      readFaultMapsWritable: true, // hva_to_pfn() + make_spte(): a read of a writable host page maps writable
      unmapRequestsFlush: true,
      // CONFIG_KVM_MMU_LOCKLESS_AGING is selected by x86 whatever the MMU: in 6.18 the shadow MMU
      // ages from rmaps under the per-rmap KVM_RMAP_LOCKED bit, without mmu_lock.
      locklessAging: true,
      elideTlbFlushIfYoung: true, // CONFIG_KVM_ELIDE_TLB_FLUSH_IF_YOUNG
      // The fast-only proposal (v5) counts only the TDP MMU as fast; rmaps make aging "not fast".
      fastAging: tdp && !this.options.nestedTdp,
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

/**
 * kvm_memslots_for_spte_role() + __gfn_to_memslot(): the slot of a gfn in the active set of an
 * address space, with a one-entry cache that is valid while that set's generation is unchanged
 * (a set's contents change only with a new generation).
 */
function memslotOfGfn(kvm: Kvm): (asId: number, gfn: number) => MemorySlot | null {
  let cachedAs = -1;
  let cachedGen = -1;
  let cached: MemorySlot | null = null;
  return (asId, gfn) => {
    const set = kvm.memslots.active(asId);
    if (cached !== null && asId === cachedAs && set.generation === cachedGen && gfn >= cached.baseGfn && gfn < cached.baseGfn + cached.npages) return cached;
    const slot = set.searchMemslots(gfn, false);
    if (slot !== null) {
      cachedAs = asId;
      cachedGen = set.generation;
      cached = slot;
    }
    return slot;
  };
}

/** Factory: `createVm({ backend: x86Backend({ mmu: 'shadow', quirks: { slotZapAll: false } }) })`. */
export function x86Backend(options: X86Options = {}): X86Backend {
  return new X86Backend(options);
}

export class X86ArchVm extends ArchVmBase {
  readonly options: ResolvedX86Options;
  /** The TDP MMU (empty and unused with `mmu: 'shadow'`). */
  readonly tdp: TdpMmu;
  /** tdp_mmu_enabled: L1's faults go to the TDP MMU. */
  readonly tdpEnabled: boolean;
  /** The shadow MMU: L1's MMU with `mmu: 'shadow'`, L2's with `nestedTdp`; else null. */
  readonly shadow: ShadowMmu | null;
  readonly mmu: ArchMmu;
  /** kvm_mmu_max_gfn() */
  readonly maxGfn: number;
  /** Fast zaps done (kvm_mmu_zap_all_fast, or the 2013 kvm_mmu_invalidate_zap_all_pages), for traces and tests. */
  fastZaps = 0;
  /** MMIO generation wraps handled. */
  mmioGenWraps = 0;
  /** Per-vCPU paging state (CR3, EPTP12), by vCPU id. */
  private readonly paging = new Map<number, X86VcpuPaging>();
  private readonly shadowCtx: ShadowAccessContext | null;

  constructor(kvm: Kvm, options: ResolvedX86Options) {
    super(kvm);
    this.options = options;
    this.maxGfn = 2 ** (options.maxPhysAddr - 12) - 1;
    this.tdpEnabled = options.mmu === 'tdp';
    this.tdp = new TdpMmu({ levels: options.levels, nrAddressSpaces: kvm.nrMemslotAsIds, agingFreedRoot: options.faults.agingFreedRoot ?? false });
    // kvm_tdp_mmu_spte_changed: the hook exists only while a trace sink is attached.
    if (kvm.trace && this.tdpEnabled) installKvmmmuTraceHook(kvm, this.tdp);
    const mmu = new X86Mmu(kvm, this);
    this.mmu = mmu;
    if (options.mmu === 'shadow' || options.nestedTdp) {
      const shadow = new ShadowMmu({ levels: options.levels, slotOf: memslotOfGfn(kvm) });
      this.shadow = shadow;
      this.shadowCtx = {
        kvm,
        shadow,
        maxMappingLevel: (slot, gfn) => mmu.maxMappingLevel(slot, gfn),
        hostWritable: (slot, gfn) => mmu.hostWritable(slot, gfn),
        traceRequested: (gfn, pfn, level) => {
          if (kvm.trace) traceKvmMmuSpteRequested(kvm, this.tdp, gfn, pfn - (gfn % 2 ** ((level - 1) * 9)), level);
        },
        traceSetSpte: (gfn, level) => {
          if (kvm.trace) this.traceShadowSetSpte(gfn, level);
        },
      };
    } else {
      this.shadow = null;
      this.shadowCtx = null;
    }
  }

  /** kvm_mmu_set_spte for the leaf the shadow MMU just installed. */
  traceShadowSetSpte(gfn: number, level: number): void {
    const sh = this.shadow!;
    const o = sh.lastLeaf;
    if (o >= 0) emitKvmMmuSetSpte(this.kvm, gfn, level, sh.pool.lo[o]!, sh.pool.hi[o]!, o);
  }

  // ---- memslot hooks ---------------------------------------------------------------------

  /** @see arch/x86/kvm/x86.c kvm_arch_prepare_memory_region(), kvm_alloc_memslot_metadata() (6.18) */
  override prepareMemoryRegion(_old: MemorySlot | null, newSlot: MemorySlot | null, change: MrChange): void {
    if (change === 'CREATE' || change === 'MOVE') {
      const slot = newSlot!;
      if (slot.baseGfn + slot.npages - 1 > this.maxGfn) {
        throw new KvmError('EINVAL', `last gfn 0x${(slot.baseGfn + slot.npages - 1).toString(16)} is beyond kvm_mmu_max_gfn() 0x${this.maxGfn.toString(16)}`);
      }
      // kvm_alloc_memslot_metadata(): MOVE gets fresh arrays; rmaps while shadow pages can exist.
      slot.arch = {
        lpage: new LpageInfo(slot),
        rmap: this.shadow !== null ? new SlotRmaps(slot.baseGfn, slot.npages) : null,
        freed: false,
      } satisfies X86MemslotArch;
    } else if (change === 'FLAGS_ONLY') {
      // The metadata is shared with the old slot (memcpy of new->arch = old->arch).
      newSlot!.arch = _old!.arch;
    }
  }

  /** @see arch/x86/kvm/x86.c kvm_arch_free_memslot() (6.18) */
  override freeMemslot(slot: MemorySlot): void {
    const arch = slot.arch as X86MemslotArch | undefined;
    if (arch) arch.freed = true;
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
      if (this.tdpEnabled) {
        yield* kvm.mmuLock.read();
        this.tdp.zapLeafs(slot.asId, start, end);
        kvm.mmuLock.readUnlock();
      }
      if (this.shadow) {
        yield* kvm.mmuLock.write();
        this.shadow.zapRange(slot, start, end);
        kvm.mmuLock.writeUnlock();
      }
      kvm.kvmFlushRemoteTlbsMemslot(slot);
      return;
    }
    // With manual protect and INITIALLY_SET, protection happens lazily per CLEAR.
    if (kvm.kvmDirtyLogManualProtectAndInitSet()) return;
    if (this.tdpEnabled) {
      yield* kvm.mmuLock.read();
      if (this.options.eagerSplit) this.tdp.splitHugePages(slot.asId, start, end, 1);
      if (this.options.pml) {
        this.tdp.clearDirtyRange(slot.asId, start, end);
        this.tdp.writeProtectRange(slot.asId, start, end, 2);
      } else {
        this.tdp.writeProtectRange(slot.asId, start, end, 1);
      }
      kvm.mmuLock.readUnlock();
    }
    if (this.shadow) {
      // Shadow MMU, under the write lock: huge leaves go (the model's stand-in for the shadow
      // MMU's eager split: faults re-map 4K while the slot logs), then the 4K leaves lose W (or D).
      yield* kvm.mmuLock.write();
      this.shadow.zapRange(slot, start, end, 2);
      if (this.options.pml) this.shadow.clearDirtyRange(slot, start, end);
      else this.shadow.writeProtectRange(slot, start, end, 1);
      kvm.mmuLock.writeUnlock();
    }
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
    return this.options.zapStrategy === 'fast-invalidate-2013' ? this.kvmMmuInvalidateZapAllPages() : this.zapAllFast();
  }

  /**
   * kvm_mmu_zap_all_fast(): front half under the write lock — mmu_valid_gen toggles 0↔1 (every
   * shadow page obsolete), every TDP root invalid, obsolete shadow pages zapped (oldest first);
   * back half under the read lock — the invalidated TDP roots zapped and freed.
   * @see arch/x86/kvm/mmu/mmu.c __kvm_mmu_zap_all_fast_front_half(), kvm_zap_obsolete_pages(),
   *      __kvm_mmu_zap_all_fast_back_half() (6.18)
   */
  *zapAllFast(): Steps {
    const kvm = this.kvm;
    const sh = this.shadow;
    yield* kvm.mmuLock.write();
    if (kvm.trace) traceKvmMmuZapAllFast(kvm, this.tdp, sh ? sh.mmuValidGen : this.fastZaps % 2, sh ? sh.pool.inUse : 0);
    if (sh) {
      sh.mmuValidGen = sh.mmuValidGen ? 0 : 1;
      sh.zapObsoletePages();
    }
    if (this.tdpEnabled) this.tdp.invalidateAllRoots();
    this.fastZaps++;
    kvm.mmuLock.writeUnlock();
    kvm.kvmFlushRemoteTlbs();
    if (!this.tdpEnabled) return;
    yield* kvm.mmuLock.read();
    this.tdp.zapInvalidatedRoots();
    kvm.mmuLock.readUnlock();
  }

  /**
   * The 2013 fast invalidate (3.11–5.0): mmu_valid_gen++ (an unsigned long, never reused), reload
   * every vCPU's MMU, zap all obsolete pages, all in one mmu_lock section.
   * @see arch/x86/kvm/mmu.c kvm_mmu_invalidate_zap_all_pages(), kvm_zap_obsolete_pages() (v4.20)
   */
  *kvmMmuInvalidateZapAllPages(): Steps {
    const kvm = this.kvm;
    const sh = this.shadow!;
    yield* kvm.mmuLock.write();
    if (kvm.trace) kvm.emit('kvm_mmu_invalidate_zap_all_pages', { mmu_valid_gen: sh.mmuValidGen, mmu_used_pages: sh.pool.inUse });
    sh.mmuValidGen++;
    kvm.kvmFlushRemoteTlbs(); // kvm_reload_remote_mmus()
    sh.zapObsoletePages();
    this.fastZaps++;
    kvm.mmuLock.writeUnlock();
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_arch_flush_shadow_memslot() (6.18) */
  override flushShadowMemslot(slot: MemorySlot): MaybeSteps<void> {
    if (this.options.zapStrategy === 'fast-invalidate-2013') return this.kvmMmuInvalidateZapAllPages();
    if (this.options.quirks.slotZapAll) return this.zapAllFast();
    return this.zapSlot(slot);
  }

  /**
   * The quirk off: the slot's leaves (kvm_unmap_gfn_range() over the slot, both MMUs), plus every
   * shadow page that shadows a guest page table in the slot.
   * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_zap_memslot_pages_and_flush() (6.18)
   */
  private *zapSlot(slot: MemorySlot): Steps {
    const kvm = this.kvm;
    const start = slot.baseGfn;
    const end = slot.baseGfn + slot.npages;
    yield* kvm.mmuLock.write();
    let flush = this.unmapRange(slot, start, end);
    if (this.shadow && !this.options.faults.slotZapMissesShadowedGptes) {
      this.shadow.flushNeeded = false;
      this.shadow.zapGptPagesInRange(slot.asId, start, end);
      flush = this.shadow.flushNeeded || flush;
    }
    kvm.mmuLock.writeUnlock();
    if (flush) kvm.kvmFlushRemoteTlbs();
  }

  /** kvm_mmu_zap_all(): the VM is dying or the mm is going away; no flush. */
  override flushShadowAll(): MaybeSteps<void> {
    return this.zapAll();
  }

  private *zapAll(): Steps {
    yield* this.kvm.mmuLock.write();
    this.shadow?.zapAll();
    this.tdp.zapAll();
    this.kvm.mmuLock.writeUnlock();
  }

  // ---- notifier handlers -----------------------------------------------------------------

  private unmapRange(slot: MemorySlot, start: number, end: number): boolean {
    let flush = false;
    if (this.shadow) {
      this.shadow.flushNeeded = false;
      this.shadow.zapRange(slot, start, end);
      flush = this.shadow.flushNeeded;
    }
    if (this.tdpEnabled) flush = this.tdp.zapLeafs(slot.asId, start, end) || flush;
    return flush;
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_unmap_gfn_range() (6.18): rmaps, then the TDP MMU */
  override unmapGfnRange(range: KvmGfnRange): boolean {
    return this.unmapRange(range.slot, range.start, range.end);
  }

  /** kvm_may_have_shadow_mmu_sptes(): rmaps are aged only when shadow pages may map guest memory. */
  private mayHaveShadowSptes(): boolean {
    return this.shadow !== null && (!this.tdpEnabled || this.shadow.indirectShadowPages > 0);
  }

  /**
   * @see arch/x86/kvm/mmu/mmu.c kvm_age_gfn() (6.18): lockless; the TDP MMU's RCU walk, then the
   * rmaps if shadow pages may exist.
   */
  override ageGfn(range: KvmGfnRange): MaybeSteps<boolean> {
    if (!this.tdpEnabled) return this.shadow!.ageRange(range.slot, range.start, range.end, true);
    return this.ageSteps(range, true);
  }

  /** @see arch/x86/kvm/mmu/mmu.c kvm_test_age_gfn() (6.18): the rmaps only if the TDP MMU found nothing young */
  override testAgeGfn(range: KvmGfnRange): MaybeSteps<boolean> {
    if (!this.tdpEnabled) return this.shadow!.ageRange(range.slot, range.start, range.end, false);
    return this.ageSteps(range, false);
  }

  private *ageSteps(range: KvmGfnRange, clear: boolean): Steps<boolean> {
    let young = yield* this.tdp.ageRangeSteps(range.slot.asId, range.start, range.end, clear, SCHED.preemptive ? P_AGE_ROOT : null);
    if (young && !clear) return true;
    if (this.mayHaveShadowSptes()) young = this.shadow!.ageRange(range.slot, range.start, range.end, clear) || young;
    return young;
  }

  /**
   * Re-protect harvested pages: clear D (PML) or W of the 4 KiB leaves in the mask; with
   * INITIALLY_SET, first split and write-protect the huge pages the mask touches (shadow MMU:
   * zap them, so the next fault maps 4K).
   * @see arch/x86/kvm/mmu/mmu.c kvm_arch_mmu_enable_log_dirty_pt_masked() (6.18)
   */
  override mmuEnableLogDirtyPtMasked(slot: MemorySlot, gfnOffset: number, maskLo: number, maskHi: number): void {
    const base = slot.baseGfn + gfnOffset;
    if (this.kvm.kvmDirtyLogManualProtectAndInitSet()) {
      const first = maskLo !== 0 ? Math.clz32(maskLo & -maskLo) ^ 31 : 32 + (Math.clz32(maskHi & -maskHi) ^ 31);
      const last = maskHi !== 0 ? 63 - Math.clz32(maskHi) : 31 - Math.clz32(maskLo);
      const start = base + first;
      const end = base + last + 1;
      if (this.tdpEnabled) {
        if (this.options.eagerSplit) this.tdp.splitHugePages(slot.asId, start, end, 1);
        this.tdp.writeProtectRange(slot.asId, start, end, 2);
      }
      this.shadow?.zapRange(slot, start, end, 2);
    }
    if (this.tdpEnabled) this.tdp.clearDirtyMasked(slot.asId, base, maskLo, maskHi, !this.options.pml);
    this.shadow?.clearMasked(slot, base, maskLo, maskHi, !this.options.pml);
  }

  /**
   * PML: flush the hardware's log into the dirty bitmap (modelled as harvesting D bits of the
   * slot's 4 KiB leaves). Without PML there is nothing to do.
   * @see arch/x86/kvm/x86.c kvm_arch_sync_dirty_log() (6.18)
   */
  override syncDirtyLog(slot: MemorySlot): void {
    if (!this.options.pml) return;
    const end = slot.baseGfn + slot.npages;
    if (this.tdpEnabled) {
      this.tdp.forEachLeaf((asId, gfn, level, _pfn, _w, _a, dirty) => {
        if (asId === slot.asId && level === 1 && dirty && gfn >= slot.baseGfn && gfn < end) markPageDirtyInSlot(slot, gfn);
      });
      this.tdp.clearDirtyRange(slot.asId, slot.baseGfn, end);
    }
    if (this.shadow) {
      this.shadow.forEachDirty4k(slot, slot.baseGfn, end, (gfn) => markPageDirtyInSlot(slot, gfn));
      this.shadow.clearDirtyRange(slot, slot.baseGfn, end);
    }
  }

  // ---- guest paging (the vCPU's CR3 and nested EPT) ----------------------------------------

  private pagingOf(vcpu: KvmVcpu): X86VcpuPaging {
    let p = this.paging.get(vcpu.id);
    if (p === undefined) this.paging.set(vcpu.id, (p = { cr3: -1, eptp: -1 }));
    return p;
  }

  /**
   * MOV to CR3 with CR0.PG=1: the vCPU translates guest-virtual addresses through the 4-level
   * tables at `cr3` (a gpa); -1 turns paging off. The vCPU's gpa accesses (`read`/`write`) stay
   * in non-paging mode.
   */
  setGuestCr3(vcpu: KvmVcpu, cr3: number): void {
    this.pagingOf(vcpu).cr3 = cr3 < 0 ? -1 : cr3 - (cr3 % 4096);
  }

  /**
   * VMLAUNCH of an L2 whose vmcs12 EPT pointer is `eptp` (a gpa of L1's EPT PML4; EPTP.AD set):
   * needs `nestedTdp`.
   */
  setNestedEptp(vcpu: KvmVcpu, eptp: number): void {
    if (!this.options.nestedTdp) throw new KvmError('EINVAL', 'nested TDP is off (x86Backend({ nestedTdp: true }))');
    this.pagingOf(vcpu).eptp = eptp < 0 ? -1 : eptp - (eptp % 4096);
  }

  /** A guest-virtual access of L1 (paging on): the guest walk, then the MMU. */
  guestAccessSteps(vcpu: KvmVcpu, gva: number, size: AccessSize, write: boolean, value: bigint): Steps<GuestAccessResult> {
    const cr3 = this.pagingOf(vcpu).cr3;
    if (cr3 < 0) throw new KvmError('EINVAL', 'guest paging is off: setGuestCr3() first');
    if (this.tdpEnabled) return tdpGuestAccessSteps(this.kvm, vcpu, cr3, gva, size, write, value);
    return shadowAccessSteps(this.shadowCtx!, vcpu, MODE_PAGING, 'x86', cr3, gva, size, write, value);
  }

  guestRead(vcpu: KvmVcpu, gva: number, size: AccessSize): GuestAccessResult {
    return runSync(this.guestAccessSteps(vcpu, gva, size, false, 0n));
  }

  guestWrite(vcpu: KvmVcpu, gva: number, size: AccessSize, value: bigint): GuestAccessResult {
    return runSync(this.guestAccessSteps(vcpu, gva, size, true, value));
  }

  /** An L2 access by L2 gpa: L1's EPT12 walk, then the nested shadow pages (role.guest_mode). */
  l2AccessSteps(vcpu: KvmVcpu, l2gpa: number, size: AccessSize, write: boolean, value: bigint): Steps<GuestAccessResult> {
    const eptp = this.pagingOf(vcpu).eptp;
    if (eptp < 0) throw new KvmError('EINVAL', 'no L2: setNestedEptp() first');
    return shadowAccessSteps(this.shadowCtx!, vcpu, MODE_NESTED, 'ept', eptp, l2gpa, size, write, value);
  }

  l2Read(vcpu: KvmVcpu, l2gpa: number, size: AccessSize): GuestAccessResult {
    return runSync(this.l2AccessSteps(vcpu, l2gpa, size, false, 0n));
  }

  l2Write(vcpu: KvmVcpu, l2gpa: number, size: AccessSize, value: bigint): GuestAccessResult {
    return runSync(this.l2AccessSteps(vcpu, l2gpa, size, true, value));
  }
}

/** The vCPU's view of L1's MMU (TDP MMU, or the shadow MMU's non-paging direct pages), for the shared fault path. */
class X86Mmu implements ArchMmu {
  readonly retryOnInvalidSlot = true;
  private readonly kvm: Kvm;
  private readonly vm: X86ArchVm;

  constructor(kvm: Kvm, vm: X86ArchVm) {
    this.kvm = kvm;
    this.vm = vm;
  }

  get mappings(): number {
    let n = 0;
    if (this.vm.tdpEnabled) {
      const s = this.vm.tdp.stats();
      n += s.leaves[0] + s.leaves[1] + s.leaves[2];
    }
    if (this.vm.shadow) {
      const s = this.vm.shadow.stats();
      n += s.leaves[0] + s.leaves[1] + s.leaves[2];
    }
    return n;
  }

  /**
   * The hardware walk; an MMIO SPTE is an EPT misconfiguration: emulate if its generation matches
   * the vCPU's memslots (never while an update is in progress), else take the slow path.
   * @see arch/x86/kvm/mmu/mmu.c handle_mmio_page_fault(), check_mmio_spte() (6.18)
   */
  translate(asId: number, gfn: number, write: boolean, memslotsGen: number): number {
    const vm = this.vm;
    const r = vm.tdpEnabled ? vm.tdp.translate(asId, gfn, write) : vm.shadow!.translate(MODE_NONPAGING, 0, asId, gfn, write);
    if (r !== MMIO_HIT && r !== SHADOW_MMIO_HIT) return r;
    if (vm.options.faults.mmioCachedWhileInFlux) return MMU_MMIO_EXIT;
    if (memslotsGen >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) return -1;
    const g = vm.tdpEnabled ? vm.tdp.mmioGeneration(asId, gfn) : vm.shadow!.mmioGeneration(asId, gfn);
    return g === memslotsGen % (MMIO_SPTE_GEN_MASK + 1) ? MMU_MMIO_EXIT : -1;
  }

  /** make_mmio_spte(): the generation without the in-progress bit. */
  mapMmio(asId: number, gfn: number, memslotsGen: number): void {
    const g = memslotsGen >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS ? memslotsGen - KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS : memslotsGen;
    if (this.kvm.trace) traceKvmMmuSpteRequestedNoslot(this.kvm, this.vm.tdp, gfn);
    if (this.vm.tdpEnabled) this.vm.tdp.mapMmio(asId, gfn, g % (MMIO_SPTE_GEN_MASK + 1));
    else this.vm.shadow!.mapMmio(asId, gfn, g % (MMIO_SPTE_GEN_MASK + 1));
  }

  /**
   * kvm_tdp_mmu_map() or the shadow MMU's direct_map() at the level kvm_mmu_hugepage_adjust()
   * allows: 4 KiB while the slot logs dirty pages, else the largest level the slot's lpage_info
   * and the host mapping allow. A shadow-MMU write to a gfn whose guest page table is shadowed
   * unprotects it first (kvm_mmu_unprotect_gfn_and_retry(): its shadow pages are zapped).
   */
  map(slot: MemorySlot, gfn: number, frame: number, writable: boolean): void {
    const vm = this.vm;
    // Simplification: the root level is fixed by the `levels` option; the kernel picks 5-level EPT
    // when the guest's MAXPHYADDR exceeds 48 bits (kvm_mmu_get_tdp_level()).
    if (gfn >= 2 ** (9 * vm.options.levels)) {
      throw new KvmError('EFAULT', `gfn 0x${gfn.toString(16)} is beyond the reach of a ${vm.options.levels}-level root`);
    }
    if (!vm.tdpEnabled) {
      const sh = vm.shadow!;
      sh.flushNeeded = false;
      if (writable && sh.hasGptPage(slot.asId, gfn)) sh.unprotectGfn(slot.asId, gfn);
    }
    const level = this.maxMappingLevel(slot, gfn);
    const mask = 2 ** ((level - 1) * 9) - 1;
    const base = frame - (gfn & mask);
    if (this.kvm.trace) traceKvmMmuSpteRequested(this.kvm, vm.tdp, gfn, base, level);
    if (vm.tdpEnabled) {
      vm.tdp.map(slot.asId, gfn, base, level, writable, this.hostWritable(slot, gfn));
      if (this.kvm.trace) traceKvmMmuSetSpte(this.kvm, vm.tdp, slot.asId, gfn, level);
      return;
    }
    const sh = vm.shadow!;
    sh.mapDirect(slot.asId, gfn, base, level, writable, this.hostWritable(slot, gfn));
    if (this.kvm.trace) vm.traceShadowSetSpte(gfn, level);
    if (sh.flushNeeded) this.kvm.kvmFlushRemoteTlbs();
  }

  hostWritable(slot: MemorySlot, gfn: number): boolean {
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
    if (this.vm.tdpEnabled) {
      this.vm.tdp.forEachLeaf((asId, gfn, level, pfn, writable, _a, _d, valid) => {
        if (!valid) return;
        const n = 2 ** ((level - 1) * 9);
        for (let i = 0; i < n; i++) visit(asId, gfn + i, pfn + i, writable);
      });
    }
    this.vm.shadow?.forEachLeaf((asId, gfn, level, pfn, writable) => {
      const n = 2 ** ((level - 1) * 9);
      for (let i = 0; i < n; i++) visit(asId, gfn + i, pfn + i, writable);
    });
  }
}
