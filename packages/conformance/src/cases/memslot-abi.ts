/**
 * Memslot ABI and change kinds (kvm-generic.md §1; virt/kvm/kvm_main.c kvm_set_memory_region()).
 * Expectations derive from the VM's capabilities, so they hold for every architecture.
 */
import { assert, defineCase, expectErrno, MiB, region, UADDR } from '../harness.js';
import type { ConformanceCase } from '../types.js';

const SEE = 'virt/kvm/kvm_main.c kvm_set_memory_region() (6.18)';

export const memslotAbiCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'memslot-abi/nr-memslots',
    group: 'memslot-abi',
    title: 'KVM_CAP_NR_MEMSLOTS is KVM_USER_MEM_SLOTS and the first id past it is EINVAL (§1.3 rule 3)',
    see: `kvm-generic.md §1.3 rule 3; ${SEE}: id >= KVM_USER_MEM_SLOTS`,
    run(ctx) {
      const kvm = ctx.vm();
      const n = kvm.checkExtension('KVM_CAP_NR_MEMSLOTS');
      assert.equal(n, 32767 - ctx.caps.internalMemSlots);
      expectErrno(() => kvm.setUserMemoryRegion(region(n, 0n, 2n * MiB)), 'EINVAL');
      expectErrno(() => kvm.setUserMemoryRegion(region(n - 1, 0n, 2n * MiB)), 0);
    },
  }),
  defineCase({
    id: 'memslot-abi/alignment',
    group: 'memslot-abi',
    title: 'misaligned size, gpa and uaddr are EINVAL, even for DELETE (§1.3 rules 5–7)',
    see: `kvm-generic.md §1.3 rules 5–7; ${SEE}: PAGE_SIZE checks before the DELETE branch`,
    run(ctx) {
      const kvm = ctx.vm();
      expectErrno(() => kvm.setUserMemoryRegion(region(0, 0n, 0x1001n)), 'EINVAL');
      expectErrno(() => kvm.setUserMemoryRegion(region(0, 0x1800n, 2n * MiB)), 'EINVAL');
      expectErrno(() => kvm.setUserMemoryRegion(region(0, 0n, 2n * MiB, UADDR + 0x10n)), 'EINVAL');
      expectErrno(() => kvm.setUserMemoryRegion(region(0, 0n, 2n * MiB)), 0);
      expectErrno(() => kvm.setUserMemoryRegion(region(0, 0x1800n, 0n)), 'EINVAL');
    },
  }),
  defineCase({
    id: 'memslot-abi/address-space',
    group: 'memslot-abi',
    title: 'an address space past kvm_arch_nr_memslot_as_ids() is EINVAL (§1.3 rule 9)',
    see: `kvm-generic.md §1.3 rule 9; ${SEE}: as_id >= kvm_arch_nr_memslot_as_ids()`,
    run(ctx) {
      const kvm = ctx.vm();
      expectErrno(() => kvm.setUserMemoryRegion(region(ctx.caps.nrAddressSpaces << 16, 0n, 2n * MiB)), 'EINVAL');
    },
  }),
  defineCase({
    id: 'memslot-abi/create-overlap',
    group: 'memslot-abi',
    title: 'CREATE overlapping another slot is EEXIST; adjacency and hva aliases are fine (§1.3 rule 19)',
    see: 'kvm-generic.md §1.3 rule 19; virt/kvm/kvm_main.c kvm_check_memslot_overlap() (6.18)',
    run(ctx) {
      const kvm = ctx.vm();
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xc0000000n, 2n * MiB)), 0);
      for (const [gpa, size] of [[0xc0000000n, 2n * MiB], [0xbff00000n, 2n * MiB], [0xc0100000n, 2n * MiB], [0xbff00000n, 4n * MiB], [0xc0080000n, 0x1000n]] as const) {
        expectErrno(() => kvm.setUserMemoryRegion(region(11, gpa, size)), 'EEXIST', `slot 11 at 0x${gpa.toString(16)}`);
      }
      expectErrno(() => kvm.setUserMemoryRegion(region(11, 0xbfe00000n, 2n * MiB)), 0);
      expectErrno(() => kvm.setUserMemoryRegion(region(12, 0xc0200000n, 2n * MiB)), 0);
    },
  }),
  defineCase({
    id: 'memslot-abi/modify',
    group: 'memslot-abi',
    title: 'an existing slot may only move or change LOG_DIRTY_PAGES; resize beats overlap; a MOVE may overlap its own old range (§1.3 rules 17–19)',
    see: 'kvm-generic.md §1.3 rules 17–19; virt/kvm/kvm_main.c kvm_set_memory_region(), kvm_check_memslot_overlap() skips the slot\'s own id (6.18)',
    run(ctx) {
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(10, 0xc0000000n, 2n * MiB));
      kvm.setUserMemoryRegion(region(12, 0xc0200000n, 2n * MiB));
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xc0000000n, 4n * MiB)), 'EINVAL');
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xc0000000n, 2n * MiB, UADDR + 0x200000n)), 'EINVAL');
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xbfe00000n, 4n * MiB)), 'EINVAL');
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xc0200000n, 2n * MiB)), 'EEXIST');
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xd0000000n, 2n * MiB)), 0);
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xd0001000n, 2n * MiB)), 0, 'a MOVE overlapping its own old range');
      expectErrno(() => kvm.setUserMemoryRegion(region(10, 0xd0002000n, 2n * MiB)), 0, 'a MOVE overlapping its own old range');
    },
  }),
  defineCase({
    id: 'memslot-abi/readonly',
    group: 'memslot-abi',
    title: 'READONLY: accepted, may not be toggled, may ride along with LOG_DIRTY_PAGES (§1.3 rules 4, 17)',
    see: 'kvm-generic.md §1.3 rules 4, 17; virt/kvm/kvm_main.c check_memory_region_flags() (6.18)',
    gate: (env) => (env.caps.readonlyMem ? undefined : 'no KVM_CAP_READONLY_MEM'),
    run(ctx) {
      const kvm = ctx.vm();
      assert.equal(kvm.checkExtension('KVM_CAP_READONLY_MEM'), 1);
      expectErrno(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 2)), 0);
      expectErrno(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 3)), 0);
      expectErrno(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 1)), 'EINVAL');
    },
  }),
  defineCase({
    id: 'memslot-abi/no-readonly',
    group: 'memslot-abi',
    title: 'READONLY is EINVAL where the architecture lacks it (kvm_arch_has_readonly_mem())',
    see: 'virt/kvm/kvm_main.c check_memory_region_flags(): kvm_arch_has_readonly_mem() (6.18)',
    gate: (env) => (env.caps.readonlyMem ? 'the architecture has KVM_CAP_READONLY_MEM' : undefined),
    run(ctx) {
      const kvm = ctx.vm();
      assert.equal(kvm.checkExtension('KVM_CAP_READONLY_MEM'), 0);
      expectErrno(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 2)), 'EINVAL');
    },
  }),
  defineCase({
    id: 'memslot-abi/delete',
    group: 'memslot-abi',
    title: 'DELETE of a missing slot is EINVAL; DELETE ignores gpa, uaddr and flags otherwise (§1.3 rule 13)',
    see: `kvm-generic.md §1.3 rule 13; ${SEE}: the !mem->memory_size branch`,
    run(ctx) {
      const kvm = ctx.vm();
      expectErrno(() => kvm.setUserMemoryRegion(region(5, 0n, 0n)), 'EINVAL');
      kvm.setUserMemoryRegion(region(5, 0n, 2n * MiB));
      expectErrno(() => kvm.setUserMemoryRegion(region(5, 0x40000000n, 0n, UADDR + 0x100000n, 1)), 0);
      assert.equal(kvm.kvmMemslots(0).size, 0);
    },
  }),
  defineCase({
    id: 'memslot-abi/max-gfn',
    group: 'memslot-abi',
    title: 'CREATE and MOVE past the architecture\'s max gfn are EINVAL; up to it they succeed',
    see: 'arch/x86/kvm/x86.c kvm_arch_prepare_memory_region(): kvm_mmu_max_gfn() (6.18)',
    gate: (env) => (env.expectations.maxGfn < 2 ** 48 ? undefined : 'no architectural max gfn'),
    run(ctx) {
      const kvm = ctx.vm();
      const last = BigInt(ctx.expectations.maxGfn) * 4096n;
      expectErrno(() => kvm.setUserMemoryRegion(region(1, last, 0x1000n)), 0, 'CREATE ending at the max gfn');
      expectErrno(() => kvm.setUserMemoryRegion(region(2, last + 0x1000n, 0x1000n)), 'EINVAL', 'CREATE past the max gfn');
      expectErrno(() => kvm.setUserMemoryRegion(region(3, 0n, 0x2000n)), 0);
      expectErrno(() => kvm.setUserMemoryRegion(region(3, last + 0x1000n, 0x2000n)), 'EINVAL', 'MOVE past the max gfn');
      expectErrno(() => kvm.setUserMemoryRegion(region(3, last - 0x2000n, 0x2000n)), 0, 'MOVE ending just below the max gfn');
    },
  }),
];
