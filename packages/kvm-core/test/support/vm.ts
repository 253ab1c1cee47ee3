import { createVm, errnoOf, type CreateVmOptions, type ErrnoName, type Kvm, type MemslotStoreKind, type UserspaceMemoryRegion } from '../../src/index.js';
import { referenceBackend, type ReferenceArchVm, type ReferenceBackendOptions } from '../../src/testing/index.js';

export const STORES: readonly MemslotStoreKind[] = ['scalable', 'legacy'];

export function mkVm(
  store: MemslotStoreKind = 'scalable',
  backendOptions: ReferenceBackendOptions = {},
  extra: Partial<CreateVmOptions> = {},
): { kvm: Kvm; arch: ReferenceArchVm } {
  const kvm = createVm({ backend: referenceBackend(backendOptions), memslots: store, ...extra });
  return { kvm, arch: kvm.arch as ReferenceArchVm };
}

export const MiB = 0x100000n;

export function region(slot: number, gpa: bigint, size: bigint, uaddr: bigint = 0x7f0000000000n, flags = 0): UserspaceMemoryRegion {
  return { slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr };
}

export { errnoOf };

export function set(kvm: Kvm, r: UserspaceMemoryRegion, v2 = false): 0 | ErrnoName {
  return errnoOf(() => kvm.setUserMemoryRegion(r, v2));
}
