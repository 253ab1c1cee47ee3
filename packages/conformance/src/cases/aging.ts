/**
 * Aging (kvm-generic.md §4.8–§4.9): clear/test young through the notifier, the hva rounding of a
 * one-byte range, lockless versus locked walks, and the proposed fast-only aging call, which must
 * never contend for mmu_lock.
 */
import { MMU_NOTIFIER_FAST_FAILED, MMU_NOTIFIER_FAST_YOUNG, runSync } from '@kvmsim/kvm-core';
import { assert, defineCase, expectThrows, GPA, HVA, needsVcpu, withSlot } from '../harness.js';
import type { ConformanceCase } from '../types.js';

export const agingCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'aging/clear-and-test',
    group: 'aging',
    title: 'clear_young reports and clears young; test_young only reports; a guest access makes the page young again',
    see: 'kvm-generic.md §4.8; virt/kvm/kvm_main.c kvm_mmu_notifier_clear_young(), kvm_mmu_notifier_test_young() (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.createVcpu(0).read(GPA, 8);
      assert.equal(runSync(kvm.mmuNotifier.testYoung(HVA)), true);
      assert.equal(runSync(kvm.mmuNotifier.clearYoung(HVA, HVA + 4096)), true);
      assert.equal(runSync(kvm.mmuNotifier.testYoung(HVA)), false);
      kvm.createVcpu(0).read(GPA, 8);
      assert.equal(runSync(kvm.mmuNotifier.testYoung(HVA)), true);
    },
  }),
  defineCase({
    id: 'aging/partial-page',
    group: 'aging',
    title: 'a range ending inside a page covers that page: test_young of one byte of a young page is young',
    see: 'kvm-generic.md §4.1; virt/kvm/kvm_main.c kvm_handle_hva_range(): hva_to_gfn_memslot(hva_end + PAGE_SIZE - 1) (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.createVcpu(0).read(GPA, 8);
      assert.equal(runSync(kvm.mmuNotifier.testYoung(HVA + 100)), true, 'the partial last page was skipped');
      assert.equal(runSync(kvm.mmuNotifier.clearYoung(HVA + 8, HVA + 16)), true, 'the partial last page was skipped');
    },
  }),
  defineCase({
    id: 'aging/lock',
    group: 'aging',
    title: 'lockless aging answers while someone holds mmu_lock; locked aging waits for it',
    see: 'kvm-generic.md §4.8; CONFIG_KVM_MMU_LOCKLESS_AGING, virt/kvm/kvm_main.c kvm_handle_hva_range(): range->lockless (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.createVcpu(0).read(GPA, 8);
      runSync(kvm.mmuLock.write()); // another thread holds it
      try {
        const attempt = (): boolean => runSync(kvm.mmuNotifier.clearYoung(HVA, HVA + 4096));
        if (ctx.caps.locklessAging) assert.equal(attempt(), true);
        else expectThrows(attempt, /mmu_lock/);
      } finally {
        kvm.mmuLock.writeUnlock();
      }
    },
  }),
  defineCase({
    id: 'aging/speed',
    group: 'aging',
    title: 'aging speed follows the architecture table (x86: fast exactly with the TDP MMU)',
    see: 'kvm-generic.md §4.9; kvm-arch-backends.md §11 (aging per MMU)',
    run(ctx) {
      assert.equal(ctx.caps.fastAging, ctx.expectations.fastAging);
    },
  }),
  defineCase({
    id: 'aging/fast-only',
    group: 'aging',
    title: 'fast-only aging never takes mmu_lock: a fast MMU answers from a lockless walk, a slow one answers "not fast"',
    see: 'kvm-generic.md §4.9; "mm: multi-gen LRU: Have secondary MMUs participate in aging" v5 (test_clear_young_fast_only)',
    gate: (env) => needsVcpu(env) ?? (env.caps.fastAging && !env.caps.locklessAging ? 'fast aging without lockless aging' : undefined),
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.createVcpu(0).read(GPA, 8);
      runSync(kvm.mmuLock.write()); // contended: a fast-only call must not wait
      try {
        const r = runSync(kvm.mmuNotifier.testClearYoungFastOnly(HVA, HVA + 4096, true));
        assert.equal(r, ctx.caps.fastAging ? MMU_NOTIFIER_FAST_YOUNG : MMU_NOTIFIER_FAST_FAILED);
      } finally {
        kvm.mmuLock.writeUnlock();
      }
    },
  }),
  defineCase({
    id: 'aging/clear-flush-young',
    group: 'aging',
    title: 'clear_flush_young flushes remote TLBs unless the architecture elides the flush for young pages',
    see: 'virt/kvm/kvm_main.c kvm_mmu_notifier_clear_flush_young(), CONFIG_KVM_ELIDE_TLB_FLUSH_IF_YOUNG (6.18)',
    gate: needsVcpu,
    run(ctx) {
      const kvm = withSlot(ctx.vm());
      kvm.createVcpu(0).read(GPA, 8);
      const before = kvm.remoteTlbFlushes;
      assert.equal(runSync(kvm.mmuNotifier.clearFlushYoung(HVA, HVA + 4096)), true);
      assert.equal(kvm.remoteTlbFlushes - before, ctx.caps.elideTlbFlushIfYoung ? 0 : 1);
    },
  }),
];
