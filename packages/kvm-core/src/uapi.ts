/**
 * The userspace ABI of KVM guest-memory management, as in include/uapi/linux/kvm.h (Linux 6.18),
 * plus the internal constants of include/linux/kvm_host.h the model needs.
 *
 * u64 fields are `bigint` here, at the ABI boundary only; the model works in page-frame numbers.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PAGE_SIZE_N = 4096n;

/** KVM_MEM_* flags of struct kvm_userspace_memory_region(2). */
export const KVM_MEM_LOG_DIRTY_PAGES: number = 1 << 0;
export const KVM_MEM_READONLY: number = 1 << 1;
export const KVM_MEM_GUEST_MEMFD: number = 1 << 2;
/** Flags the v1 ioctl accepts (KVM_SET_USER_MEMORY_REGION_V1_FLAGS, virt/kvm/kvm_main.c). */
export const KVM_SET_USER_MEMORY_REGION_V1_FLAGS: number = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
/** Internal flag, bit 16 (include/linux/kvm_host.h): the slot is being deleted or moved. */
export const KVM_MEMSLOT_INVALID: number = 1 << 16;
/** Internal flag, bit 17 (6.18): guest_memfd slot whose file supports mmap. */
export const KVM_MEMSLOT_GMEM_ONLY: number = 1 << 17;

/** KVM_MEM_SLOTS_NUM = SHRT_MAX (include/linux/kvm_host.h). */
export const KVM_MEM_SLOTS_NUM: number = 32767;
/** KVM_MEM_MAX_NR_PAGES = (1UL << 31) - 1: the dirty bitmap is indexed by unsigned int. */
export const KVM_MEM_MAX_NR_PAGES: number = 2 ** 31 - 1;
/**
 * KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS is BIT_ULL(63) in the kernel. The model keeps generations
 * as `number` and represents bit 63 by 2^52 (simplification: exact while fewer than 2^52
 * generations have passed, i.e. always in practice). Use {@link memslotsGenerationU64} to see
 * the kernel's u64 value.
 */
export const KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS: number = 2 ** 52;

export function memslotsGenerationU64(gen: number): bigint {
  return gen >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS
    ? BigInt(gen - KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) | (1n << 63n)
    : BigInt(gen);
}

/** x86-64 with 4-level paging: TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE (arch/x86/include/asm/page_64_types.h). */
export const TASK_SIZE_MAX_4LEVEL: bigint = (1n << 47n) - PAGE_SIZE_N;

/** struct kvm_userspace_memory_region (v1, 32 bytes) and the v2 fields the model reads. */
export interface UserspaceMemoryRegion {
  /** `as_id << 16 | id` */
  slot: number;
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
  /** v2 only; ignored unless flags has KVM_MEM_GUEST_MEMFD. */
  guestMemfdOffset?: bigint;
  /** v2 only; ignored unless flags has KVM_MEM_GUEST_MEMFD. */
  guestMemfd?: number;
}

/** enum kvm_mr_change (include/linux/kvm_host.h); the no-op case never reaches the arch. */
export type MrChange = 'CREATE' | 'DELETE' | 'MOVE' | 'FLAGS_ONLY';

/** KVM_CAP_* numbers the model answers (include/uapi/linux/kvm.h). */
export const KVM_CAP = {
  KVM_CAP_USER_MEMORY: 3,
  KVM_CAP_NR_MEMSLOTS: 10,
  KVM_CAP_SYNC_MMU: 16,
  KVM_CAP_READONLY_MEM: 81,
  KVM_CAP_MULTI_ADDRESS_SPACE: 118,
  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: 168,
  KVM_CAP_USER_MEMORY2: 231,
} as const;
export type KvmCapName = keyof typeof KVM_CAP;

/** KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE / KVM_DIRTY_LOG_INITIALLY_SET (include/uapi/linux/kvm.h). */
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1;
export const KVM_DIRTY_LOG_INITIALLY_SET = 2;

/** KVM_USER_MEM_SLOTS when the architecture has no internal slots (KVM_INTERNAL_MEM_SLOTS = 0). */
export const KVM_USER_MEM_SLOTS_DEFAULT: number = KVM_MEM_SLOTS_NUM;
