/**
 * MMU-notifier invalidation (kvm-generic.md §4): what an hva-range invalidation zaps, how the
 * core accounts for it, who flushes TLBs (§13.2), and what DELETE/MOVE zap (§13.1).
 */
import { checkMmuCoherence, checkNotifierQuiescent } from '@kvmsim/kvm-core/testing';
import { assert, defineCase, GPA, HVA, MiB, needsVcpu, PAGE, region, seen, withSlot } from '../harness.js';
import type { ConformanceCase } from '../types.js';

export const notifierCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'notifier/invalidation-accounting',
    group: 'notifier',
    title: 'an invalidation that hits a slot bumps mmu_invalidate_seq once and leaves nothing in progress; one that misses every slot changes nothing',
    see: 'kvm-generic.md §4.2; virt/kvm/kvm_main.c kvm_mmu_notifier_invalidate_range_start/end(), kvm_mmu_invalidate_end() (6.18)',
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.host.mmap(BigInt(HVA + 4 * 0x100000), 0x200000n); // not behind any slot
      const seq = kvm.mmuInvalidateSeq;
      kvm.host.madvise(BigInt(HVA + 4 * 0x100000), 4096n, 'DONTNEED');
      assert.equal(kvm.mmuInvalidateSeq, seq, 'an invalidation outside every slot bumped the seq');
      kvm.host.madvise(BigInt(HVA), 4096n, 'DONTNEED');
      assert.equal(kvm.mmuInvalidateSeq, seq + 1);
      checkNotifierQuiescent(kvm);
    },
  }),
  defineCase({
    id: 'notifier/invalidate-zaps',
    group: 'notifier',
    title: 'DONTNEED zaps the secondary mapping of every slot aliasing the page; the guest then sees the host\'s new page',
    see: 'kvm-generic.md §4.3; virt/kvm/kvm_main.c kvm_handle_hva_range(), kvm_unmap_gfn_range() (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.setUserMemoryRegion(region(2, BigInt(GPA + 16 * 0x100000), 2n * MiB, BigInt(HVA))); // alias
      kvm.host.write(BigInt(HVA), 8, 0x1111n);
      const v = kvm.createVcpu(0);
      assert.equal(seen(v.read(GPA, 8)), '0x1111');
      assert.equal(seen(v.read(GPA + 16 * 0x100000, 8)), '0x1111');
      kvm.host.madvise(BigInt(HVA), 4096n, 'DONTNEED');
      checkMmuCoherence(kvm);
      kvm.host.write(BigInt(HVA), 8, 0x2222n);
      assert.equal(seen(v.read(GPA, 8)), '0x2222');
      assert.equal(seen(v.read(GPA + 16 * 0x100000, 8)), '0x2222');
      checkNotifierQuiescent(kvm);
    },
  }),
  defineCase({
    id: 'notifier/flush-protocol',
    group: 'notifier',
    title: 'the flush protocol follows the architecture table: kvm_unmap_gfn_range() asks the core to flush only when it zapped something',
    see: 'kvm-arch-backends.md §13.2; virt/kvm/kvm_main.c kvm_handle_hva_range(): flush_on_ret (6.18)',
    gate: needsVcpu,
    run(ctx) {
      assert.equal(ctx.caps.unmapRequestsFlush, ctx.expectations.unmapRequestsFlush, 'unmapRequestsFlush disagrees with the architecture table');
      const kvm = withSlot(ctx.vm());
      kvm.createVcpu(0).read(GPA, 8);
      let before = kvm.remoteTlbFlushes;
      kvm.host.madvise(BigInt(HVA + 64 * PAGE), 4096n, 'DONTNEED'); // never mapped by the guest
      if (ctx.expectations.unmapRequestsFlush) assert.equal(kvm.remoteTlbFlushes - before, 0, 'a flush although nothing was zapped');
      before = kvm.remoteTlbFlushes;
      kvm.host.madvise(BigInt(HVA), 4096n, 'DONTNEED');
      if (ctx.expectations.unmapRequestsFlush) assert.equal(kvm.remoteTlbFlushes - before, 1, 'one flush for the zapped mapping');
      checkMmuCoherence(kvm);
    },
  }),
  defineCase({
    id: 'notifier/slot-zap-scope',
    group: 'notifier',
    title: 'DELETE and MOVE zap the slot\'s mappings; other slots\' mappings go too exactly when the architecture zaps everything',
    see: 'kvm-arch-backends.md §13.1; arch/x86/kvm/mmu/mmu.c kvm_arch_flush_shadow_memslot(), KVM_X86_QUIRK_SLOT_ZAP_ALL (6.18)',
    gate: (env) => needsVcpu(env) ?? (env.expectations.slotZapScope === 'none' ? 'the architecture unmaps elsewhere (scope "none")' : undefined),
    run(ctx) {
      for (const change of ['DELETE', 'MOVE'] as const) {
        const kvm = withSlot(ctx.vm());
        kvm.host.mmap(BigInt(HVA + 2 * 0x100000), 0x200000n);
        kvm.setUserMemoryRegion(region(2, BigInt(GPA + 4 * 0x100000), 2n * MiB, BigInt(HVA + 2 * 0x100000)));
        const v = kvm.createVcpu(0);
        v.read(GPA, 8);
        v.read(GPA + 4 * 0x100000, 8);
        kvm.setUserMemoryRegion(region(1, change === 'DELETE' ? BigInt(GPA) : BigInt(GPA + 64 * 0x100000), change === 'DELETE' ? 0n : 2n * MiB, BigInt(HVA)));
        checkMmuCoherence(kvm);
        const faults = v.faults;
        v.read(GPA + 4 * 0x100000, 8);
        const zappedOther = v.faults > faults;
        assert.equal(zappedOther, ctx.expectations.slotZapScope === 'all', `${change}: the other slot's mapping was ${zappedOther ? '' : 'not '}zapped (expected scope "${ctx.expectations.slotZapScope}")`);
        assert.equal(seen(v.read(GPA, 8)), 'mmio', `${change}: the old gpa is still RAM`);
      }
    },
  }),
];
