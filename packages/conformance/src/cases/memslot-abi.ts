/**
 * Memslot ABI and change kinds (kvm-generic.md §1; virt/kvm/kvm_main.c kvm_set_memory_region()).
 * Expectations derive from the VM's capabilities, so they hold for every architecture.
 */
import { expect } from 'vitest';
import { conformanceCase, errnoOf, MiB, region, UADDR } from '../harness.js';
import type { CaseContext } from '../types.js';

export function memslotAbiCases(ctx: CaseContext): void {
  const probe = ctx.vm();
  const caps = probe.caps;

  conformanceCase(ctx, 'KVM_CAP_NR_MEMSLOTS is KVM_USER_MEM_SLOTS and the first id past it is EINVAL (§1.3 rule 3)', () => {
    const kvm = ctx.vm();
    const n = kvm.checkExtension('KVM_CAP_NR_MEMSLOTS');
    expect(n).toBe(32767 - caps.internalMemSlots);
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(n, 0n, 2n * MiB)))).toBe('EINVAL');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(n - 1, 0n, 2n * MiB)))).toBe(0);
  });

  conformanceCase(ctx, 'misaligned size, gpa and uaddr are EINVAL, even for DELETE (§1.3 rules 5–7)', () => {
    const kvm = ctx.vm();
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(0, 0n, 0x1001n)))).toBe('EINVAL');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(0, 0x1800n, 2n * MiB)))).toBe('EINVAL');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(0, 0n, 2n * MiB, UADDR + 0x10n)))).toBe('EINVAL');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(0, 0n, 2n * MiB)))).toBe(0);
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(0, 0x1800n, 0n)))).toBe('EINVAL');
  });

  conformanceCase(ctx, 'an address space past kvm_arch_nr_memslot_as_ids() is EINVAL (§1.3 rule 9)', () => {
    const kvm = ctx.vm();
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(caps.nrAddressSpaces << 16, 0n, 2n * MiB)))).toBe('EINVAL');
  });

  conformanceCase(ctx, 'CREATE overlapping another slot is EEXIST; adjacency and hva aliases are fine (§1.3 rule 19)', () => {
    const kvm = ctx.vm();
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(10, 0xc0000000n, 2n * MiB)))).toBe(0);
    for (const [gpa, size] of [[0xc0000000n, 2n * MiB], [0xbff00000n, 2n * MiB], [0xc0100000n, 2n * MiB], [0xbff00000n, 4n * MiB], [0xc0080000n, 0x1000n]] as const) {
      expect(errnoOf(() => kvm.setUserMemoryRegion(region(11, gpa, size)))).toBe('EEXIST');
    }
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(11, 0xbfe00000n, 2n * MiB)))).toBe(0);
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(12, 0xc0200000n, 2n * MiB)))).toBe(0);
  });

  conformanceCase(ctx, 'an existing slot may only move or change LOG_DIRTY_PAGES; resize beats overlap (§1.3 rules 17–18)', () => {
    const kvm = ctx.vm();
    kvm.setUserMemoryRegion(region(10, 0xc0000000n, 2n * MiB));
    kvm.setUserMemoryRegion(region(12, 0xc0200000n, 2n * MiB));
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(10, 0xc0000000n, 4n * MiB)))).toBe('EINVAL');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(10, 0xc0000000n, 2n * MiB, UADDR + 0x200000n)))).toBe('EINVAL');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(10, 0xbfe00000n, 4n * MiB)))).toBe('EINVAL');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(10, 0xc0200000n, 2n * MiB)))).toBe('EEXIST');
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(10, 0xd0001000n, 2n * MiB)))).toBe(0);
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(10, 0xd0002000n, 2n * MiB)))).toBe(0);
  });

  conformanceCase(
    ctx,
    'READONLY: accepted, may not be toggled, may ride along with LOG_DIRTY_PAGES (§1.3 rule 4, 17)',
    () => {
      const kvm = ctx.vm();
      expect(kvm.checkExtension('KVM_CAP_READONLY_MEM')).toBe(1);
      expect(errnoOf(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 2)))).toBe(0);
      expect(errnoOf(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 3)))).toBe(0);
      expect(errnoOf(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 1)))).toBe('EINVAL');
    },
    !caps.readonlyMem,
  );

  conformanceCase(
    ctx,
    'READONLY is EINVAL where the architecture lacks it (kvm_arch_has_readonly_mem())',
    () => {
      const kvm = ctx.vm();
      expect(kvm.checkExtension('KVM_CAP_READONLY_MEM')).toBe(0);
      expect(errnoOf(() => kvm.setUserMemoryRegion(region(20, 0n, 2n * MiB, UADDR, 2)))).toBe('EINVAL');
    },
    caps.readonlyMem,
  );

  conformanceCase(ctx, 'DELETE of a missing slot is EINVAL; DELETE ignores gpa, uaddr and flags otherwise (§1.3 rule 13)', () => {
    const kvm = ctx.vm();
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(5, 0n, 0n)))).toBe('EINVAL');
    kvm.setUserMemoryRegion(region(5, 0n, 2n * MiB));
    expect(errnoOf(() => kvm.setUserMemoryRegion(region(5, 0x40000000n, 0n, UADDR + 0x100000n, 1)))).toBe(0);
    expect(kvm.kvmMemslots(0).size).toBe(0);
  });
}
