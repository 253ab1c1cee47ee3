/**
 * The vCPU and the fault path every backend shares: a guest access first walks the secondary
 * MMU (the architecture's {@link ArchMmu}); on a miss it faults: memslot lookup through the
 * vCPU's last-used-slot cache → hva → snapshot of mmu_invalidate_seq → the host page (GUP) →
 * mmu_lock → mmu_invalidate_retry_gfn() → the arch's map → mark dirty. Missing or INVALID slots
 * and writes to READONLY slots exit to userspace as MMIO; an unmapped hva fails KVM_RUN with
 * EFAULT (KVM_EXIT_MEMORY_FAULT).
 *
 * @see virt/kvm/kvm_main.c kvm_vcpu_gfn_to_memslot(), __kvm_faultin_pfn(), hva_to_pfn(), mark_page_dirty_in_slot() (6.18)
 * @see arch/x86/kvm/mmu/spte.c make_spte() (6.18) — a writable new SPTE marks the page dirty
 * @see arch/x86/kvm/mmu/mmu.c kvm_mmu_faultin_pfn(), is_page_fault_stale() (6.18) — the shape of the retry
 * Simplification: one access never crosses a page (accesses are aligned, at most 8 bytes).
 */
import { MMU_MMIO_EXIT, isSteps } from '../arch-backend.js';
import { markPageDirtyInSlot } from '../dirty-log/dirty-log.js';
import { KvmError } from '../errors.js';
import { PROT_WRITE } from '../host/host-address-space.js';
import { ZERO_FRAME, type AccessSize } from '../host/page-frames.js';
import type { Kvm } from '../kvm.js';
import { KVM_HVA_ERR_BAD, KVM_HVA_ERR_RO_BAD, KvmVcpuMemslotCache, gfnToHvaMany, kvmVcpuGfnToMemslot } from '../memslots/lookup.js';
import { SCHED, point, runSync, waitPoint, type Steps, type YieldPoint } from '../sched/steps.js';
import { KVM_MEMSLOT_INVALID, KVM_MEM_READONLY, PAGE_SIZE } from '../uapi.js';

/** What a guest access did. */
export type VcpuAccessResult =
  | { readonly exit: 'none'; readonly value: bigint }
  | { readonly exit: 'mmio'; readonly physAddr: number; readonly len: number; readonly isWrite: boolean; readonly data: bigint };

const P_ACCESS = point('vcpu: guest access');
/** Preemption points of every fault path (also the x86 shadow MMU's guest-virtual one). */
export const P_FAULT_SEQ: YieldPoint = point('fault: sampled mmu_invalidate_seq');
export const P_FAULT_PFN: YieldPoint = point('fault: got the host page (GUP)');
/**
 * The retry is a busy loop in the kernel (back to the guest, fault again). The model blocks it
 * until the cause is gone — no invalidation of this gfn in progress — so a scheduler that keeps
 * running the vCPU cannot livelock, while every interleaving a real spin allows stays possible.
 */
export function faultRetryPoint(kvm: Kvm, gfn: number): YieldPoint {
  return waitPoint('fault: retry (invalidation raced)', {
    ready: () => kvm.mmuInvalidateInProgress === 0 || gfn < kvm.mmuInvalidateRangeStart || gfn >= kvm.mmuInvalidateRangeEnd,
    describe: () => `the invalidation of gfn 0x${gfn.toString(16)} to end (in_progress=${kvm.mmuInvalidateInProgress})`,
  });
}

export class KvmVcpu {
  readonly id: number;
  readonly kvm: Kvm;
  /** vcpu->last_used_slot and its generation */
  readonly cache: KvmVcpuMemslotCache = new KvmVcpuMemslotCache();
  /** kvm_arch_vcpu_memslots_id(): the address space this vCPU's accesses use. */
  asId = 0;
  /** Faults taken (handled EPT/stage-2 violations), retries included. */
  faults = 0;
  /** Faults retried because an invalidation raced with them. */
  retries = 0;

  constructor(kvm: Kvm, id: number) {
    this.kvm = kvm;
    this.id = id;
  }

  /** A guest load of `size` bytes at `gpa`. */
  read(gpa: number, size: AccessSize): VcpuAccessResult {
    return runSync(vcpuAccessSteps(this, gpa, size, false, 0n));
  }

  /** A guest store. */
  write(gpa: number, size: AccessSize, value: bigint): VcpuAccessResult {
    return runSync(vcpuAccessSteps(this, gpa, size, true, value));
  }

  accessSteps(gpa: number, size: AccessSize, write: boolean, value: bigint): Steps<VcpuAccessResult> {
    return vcpuAccessSteps(this, gpa, size, write, value);
  }
}

export function invalidSlotRetryPoint(kvm: Kvm, asId: number, gen: number): YieldPoint {
  return waitPoint('fault: retry (memslot being deleted or moved)', {
    ready: () => kvm.memslots.active(asId).generation !== gen,
    describe: () => `the memslot update of address space ${asId} to install its next set`,
  });
}

/** One guest access, with the generic fault path on a secondary-MMU miss. */
export function* vcpuAccessSteps(vcpu: KvmVcpu, gpa: number, size: AccessSize, write: boolean, value: bigint): Steps<VcpuAccessResult> {
  const kvm = vcpu.kvm;
  const mmu = kvm.arch.mmu;
  if (mmu === undefined) throw new KvmError('EOPNOTSUPP', `backend ${kvm.backend.name} has no vCPU model`);
  if (kvm.mmReleased) throw new KvmError('EIO', 'the VM has no mm (released)');
  const gfn = Math.floor(gpa / PAGE_SIZE);
  const offset = gpa - gfn * PAGE_SIZE;
  // The vCPU thread is a user of the mm while in KVM_RUN: exit_mmap() cannot start meanwhile.
  kvm.vcpusRunning++;
  try {
    for (;;) {
      // In guest mode: no SRCU held (vcpu_enter_guest() drops it before VM-entry), so a retrying
      // vCPU never holds up a memslot update's synchronize_srcu().
      if (SCHED.preemptive) yield P_ACCESS;
      const idx = kvm.srcu.readLock(); // kvm_vcpu_srcu_read_lock() after the exit
      let retry: YieldPoint | null = null;
      try {
        const slots = kvm.memslots.active(vcpu.asId); // kvm_vcpu_memslots()
        const hit = mmu.translate(vcpu.asId, gfn, write, slots.generation);
        if (hit === MMU_MMIO_EXIT) return { exit: 'mmio', physAddr: gpa, len: size, isWrite: write, data: write ? value : 0n };
        if (hit >= 0) {
          if (write) {
            kvm.host.writeFrame(hit, offset, size, value);
            return { exit: 'none', value: 0n };
          }
          return { exit: 'none', value: kvm.host.readFrame(hit, offset, size) };
        }
        // The secondary MMU missed: the page fault handler.
        vcpu.faults++;
        const slot = kvmVcpuGfnToMemslot(vcpu.cache, slots, gfn, kvm.faults.vcpuSlotCacheIgnoresGeneration === true);
        if (slot !== null && slot.flags & KVM_MEMSLOT_INVALID && mmu.retryOnInvalidSlot) {
          // RET_PF_RETRY until the DELETE/MOVE is over.
          retry = invalidSlotRetryPoint(kvm, vcpu.asId, slots.generation);
        } else {
          const hva = gfnToHvaMany(slot, gfn, write);
          if (hva === KVM_HVA_ERR_BAD || hva === KVM_HVA_ERR_RO_BAD) {
            if (slot === null && mmu.mapMmio !== undefined) {
              // kvm_handle_noslot_fault(): cache the MMIO gfn, stamped with this set's generation,
              // under mmu_lock and the same retry check as any mapping.
              const mmuSeq = kvm.mmuInvalidateSeq;
              if (!kvm.mmuLock.tryWriteFast()) yield* kvm.mmuLock.write();
              try {
                if (kvm.faults.skipRetryCheck || !kvm.mmuInvalidateRetryGfn(mmuSeq, gfn)) {
                  const m = mmu.mapMmio(vcpu.asId, gfn, slots.generation);
                  if (isSteps(m)) yield* m;
                }
              } finally {
                kvm.mmuLock.writeUnlock();
              }
            }
            // No usable memslot, or a write to a READONLY one: emulated MMIO, an exit to userspace.
            return { exit: 'mmio', physAddr: gpa, len: size, isWrite: write, data: write ? value : 0n };
          }
          const mmuSeq = kvm.mmuInvalidateSeq; // smp_rmb() follows
          if (SCHED.preemptive) yield P_FAULT_SEQ;
          const frame = yield* kvm.host.faultInSteps(hva, write); // __kvm_faultin_pfn() → hva_to_pfn() (GUP)
          if (frame < 0) {
            throw new KvmError('EFAULT', `KVM_RUN: gpa 0x${gpa.toString(16)} is in slot ${slot!.id} but its hva page 0x${(hva * PAGE_SIZE).toString(16)} is not mapped (KVM_EXIT_MEMORY_FAULT)`);
          }
          // hva_to_pfn(): where the architecture maps read faults writable, a read fault is
          // mapped writable when the host page is already present and writable (its FOLL_WRITE
          // fast-GUP attempt succeeds: never the zero page), except in a READONLY slot.
          const mapWritable = write || (kvm.caps.readFaultMapsWritable && frame !== ZERO_FRAME && (slot!.flags & KVM_MEM_READONLY) === 0 && ((kvm.host.findVma(hva)?.prot ?? 0) & PROT_WRITE) !== 0);
          if (SCHED.preemptive) yield P_FAULT_PFN;
          const readLock = kvm.caps.faultLock === 'read' && kvm.mmuLock.flavour === 'rwlock';
          if (readLock) yield* kvm.mmuLock.read();
          else yield* kvm.mmuLock.write();
          try {
            // is_page_fault_stale(): an invalidation of this gfn started or finished since the sample.
            if (!kvm.faults.skipRetryCheck && kvm.mmuInvalidateRetryGfn(mmuSeq, gfn)) {
              retry = faultRetryPoint(kvm, gfn);
            } else {
              const m = mmu.map(slot!, gfn, frame, mapWritable);
              if (isSteps(m)) yield* m;
            }
          } finally {
            if (readLock) kvm.mmuLock.readUnlock();
            else kvm.mmuLock.writeUnlock();
          }
          // make_spte(): a writable SPTE in a dirty-logged slot marks the page dirty, also when a
          // read fault was mapped writable.
          if (retry === null && mapWritable) markPageDirtyInSlot(slot, gfn);
        }
      } finally {
        kvm.srcu.readUnlock(idx);
      }
      if (retry !== null) {
        // Back to the guest, which faults again: a busy loop, modelled as a wait for the cause.
        vcpu.retries++;
        yield retry;
      }
      // Re-execute the access: it hits the new mapping (or faults again if it was zapped).
    }
  } finally {
    kvm.vcpusRunning--;
  }
}
