/**
 * @kvmsim/kvm-core: the generic core of the kvmsim model of Linux KVM guest memory (Linux 6.18).
 */
export * from './errors.js';
export * from './uapi.js';
export * from './arch-backend.js';
export type { CoreFaults } from './fault-injection.js';
export { Kvm, createVm, type CreateVmOptions, type KvmTraceEvent, type KvmTraceSink } from './kvm.js';
export {
  MemorySlot,
  kvmCopyMemslot,
  kvmDirtyBitmapBytes,
  kvmIsVisibleMemslot,
  gfnToHvaPfnMemslot,
  hvaPfnToGfnMemslot,
  memslotIsReadonly,
} from './memslots/memory-slot.js';
export type { MemslotSet, MemslotStore, MemslotStoreKind, MemslotStoreOptions, SlotCursor, StoreFaults } from './memslots/memslot-store.js';
export { ScalableMemslotStore, ScalableMemslotSet } from './memslots/scalable-store.js';
export { LegacyMemslotStore, LegacyMemslotSet } from './memslots/legacy-store.js';
export { RbTree } from './memslots/rb-tree.js';
export {
  kvmVmIoctlSetUserMemoryRegion,
  kvmSetMemoryRegion,
  kvmSetMemslot,
  kvmSwapActiveMemslots,
  kvmCheckMemslotOverlap,
  checkMemoryRegionFlags,
} from './memslots/set-memory-region.js';
export { kvmVcpuGfnToMemslot, KvmVcpuMemslotCache, gfnToHvaMany, KVM_HVA_ERR_BAD, KVM_HVA_ERR_RO_BAD } from './memslots/lookup.js';
export { markPageDirtyInSlot, kvmVmIoctlGetDirtyLog, kvmVmIoctlClearDirtyLog } from './dirty-log/dirty-log.js';
export { HostAddressSpace, PROT_NONE, PROT_READ, PROT_WRITE } from './host/host-address-space.js';
export {
  KvmVcpu,
  P_FAULT_PFN,
  P_FAULT_SEQ,
  faultRetryPoint,
  invalidSlotRetryPoint,
  vcpuAccessSteps,
  type VcpuAccessResult,
} from './vcpu/vcpu.js';
export { KvmMmuNotifier, kvmHandleHvaRange, kvmMmuInvalidateBegin, kvmMmuInvalidateEnd, kvmMmuInvalidateRangeAdd, kvmFlushShadowAll } from './notifier/kvm-mmu-notifier.js';
export * from './host/mmu-notifier.js';
export { runSync, point, waitPoint, type Steps, type YieldPoint, type WaitCondition } from './sched/steps.js';
export * from './trace/index.js';
