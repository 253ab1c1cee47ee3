/**
 * KVM's side of the MMU notifier (kvm-generic.md §4): kvm_handle_hva_range() and the accounting
 * around it, aging, the proposed fast-only aging, release.
 */
import { describe, expect, it } from 'vitest';
import { MMU_NOTIFIER_FAST_FAILED, MMU_NOTIFIER_FAST_YOUNG, runSync, type KvmTraceEvent } from '../src/index.js';
import { MiB, mkVm, region, set } from './support/vm.js';

const HVA = 0x7f0000000000;
const R = (start: number, end: number) => ({ start, end, blockable: true, event: 'CLEAR' as const });

function setup(opts: Parameters<typeof mkVm>[1] = {}) {
  const events: string[] = [];
  const { kvm, arch } = mkVm('scalable', opts, { trace: (e: KvmTraceEvent) => events.push(e.name) });
  kvm.host.mmap(BigInt(HVA), 4n * MiB);
  set(kvm, region(1, 0xc0000000n, 2n * MiB, BigInt(HVA)));
  return { kvm, arch, events };
}

describe('invalidate_range_start/end', () => {
  it('counts every start, but begins an invalidation only when a memslot matches', () => {
    const { kvm } = setup();
    const n = kvm.mmuNotifier;
    runSync(n.invalidateRangeStart(R(HVA + 2 * 0x100000 * 2, HVA + 2 * 0x100000 * 2 + 4096))); // beyond the slot
    expect(kvm.mnActiveInvalidateCount).toBe(1);
    expect(kvm.mmuInvalidateInProgress).toBe(0);
    runSync(n.invalidateRangeStart(R(HVA + 4096, HVA + 3 * 4096)));
    expect(kvm.mnActiveInvalidateCount).toBe(2);
    expect(kvm.mmuInvalidateInProgress).toBe(1);
    expect([kvm.mmuInvalidateRangeStart, kvm.mmuInvalidateRangeEnd]).toEqual([0xc0001, 0xc0003]);
    runSync(n.invalidateRangeStart(R(HVA + 8 * 4096, HVA + 9 * 4096)));
    // the union hull of concurrent ranges
    expect([kvm.mmuInvalidateRangeStart, kvm.mmuInvalidateRangeEnd]).toEqual([0xc0001, 0xc0009]);
    runSync(n.invalidateRangeEnd(R(HVA + 4096, HVA + 3 * 4096)));
    runSync(n.invalidateRangeEnd(R(HVA + 8 * 4096, HVA + 9 * 4096)));
    runSync(n.invalidateRangeEnd(R(HVA + 2 * 0x100000 * 2, HVA + 2 * 0x100000 * 2 + 4096)));
    expect(kvm.mnActiveInvalidateCount).toBe(0);
    expect(kvm.mmuInvalidateInProgress).toBe(0);
    expect(kvm.mmuInvalidateSeq).toBe(2); // one bump per end that found a slot
  });

  it('flushes remote TLBs once per notifier call, and only if a mapping was zapped', () => {
    const { kvm } = setup();
    const vcpu = kvm.createVcpu(0);
    for (let i = 0; i < 4; i++) vcpu.read(0xc0000000 + i * 4096, 8);
    const before = kvm.remoteTlbFlushes;
    kvm.host.madvise(BigInt(HVA), 4n * 4096n, 'DONTNEED');
    expect(kvm.remoteTlbFlushes - before).toBe(1);
    kvm.host.madvise(BigInt(HVA), 4n * 4096n, 'DONTNEED'); // nothing mapped any more
    expect(kvm.remoteTlbFlushes - before).toBe(1);
  });

  it('aliases: one hva range reaches every slot that maps it, in every address space', () => {
    const { kvm, arch } = setup({ capabilities: { nrAddressSpaces: 2 } });
    set(kvm, region(2, 0xd0000000n, 2n * MiB, BigInt(HVA))); // alias in as 0
    set(kvm, region(0x10003, 0xc0000000n, 2n * MiB, BigInt(HVA))); // alias in as 1
    arch.calls.length = 0;
    kvm.host.madvise(BigInt(HVA), 4096n, 'DONTNEED');
    const unmaps = arch.calls.filter((c) => c.hook === 'kvm_unmap_gfn_range').map((c) => c.old);
    expect(unmaps.sort()).toEqual([1, 2, 3]);
  });

  it('rounds the gfn end up, so a partial last page counts (test_young on one byte)', () => {
    for (const [faults, young] of [[{}, true], [{ hvaEndNotRoundedUp: true }, false]] as const) {
      const { kvm } = mkVm('scalable', {}, { faults });
      kvm.host.mmap(BigInt(HVA), 2n * MiB);
      set(kvm, region(1, 0xc0000000n, 2n * MiB, BigInt(HVA)));
      kvm.createVcpu(0).read(0xc0000000, 8); // mapped and young
      expect(runSync(kvm.mmuNotifier.testYoung(HVA + 100))).toBe(young);
    }
  });
});

describe('aging', () => {
  it('clear_young reports and clears young; test_young only reports', () => {
    const { kvm } = setup();
    kvm.createVcpu(0).read(0xc0000000, 8);
    expect(runSync(kvm.mmuNotifier.testYoung(HVA))).toBe(true);
    expect(runSync(kvm.mmuNotifier.clearYoung(HVA, HVA + 4096))).toBe(true);
    expect(runSync(kvm.mmuNotifier.testYoung(HVA))).toBe(false);
    kvm.createVcpu(0).read(0xc0000000, 8); // the hardware sets the accessed bit again
    expect(runSync(kvm.mmuNotifier.testYoung(HVA))).toBe(true);
  });

  it('clear_flush_young flushes only where the arch does not elide it', () => {
    for (const [elide, flushes] of [[true, 0], [false, 1]] as const) {
      const { kvm } = setup({ capabilities: { elideTlbFlushIfYoung: elide } });
      kvm.createVcpu(0).read(0xc0000000, 8);
      const before = kvm.remoteTlbFlushes;
      expect(runSync(kvm.mmuNotifier.clearFlushYoung(HVA, HVA + 4096))).toBe(true);
      expect(kvm.remoteTlbFlushes - before).toBe(flushes);
    }
  });

  it('lockless aging does not take mmu_lock; locked aging waits for it', () => {
    for (const [lockless, blocks] of [[true, false], [false, true]] as const) {
      const { kvm } = setup({ capabilities: { locklessAging: lockless } });
      kvm.createVcpu(0).read(0xc0000000, 8);
      runSync(kvm.mmuLock.write()); // someone else holds it (the test, as main)
      const attempt = () => runSync(kvm.mmuNotifier.clearYoung(HVA, HVA + 4096));
      if (blocks) expect(attempt).toThrow(/mmu_lock/);
      else expect(attempt()).toBe(true);
      kvm.mmuLock.writeUnlock();
    }
  });

  it('fast-only aging: a fast MMU answers locklessly; a slow one answers "not fast" without the lock', () => {
    const fast = setup({ capabilities: { fastAging: true, locklessAging: true } });
    fast.kvm.createVcpu(0).read(0xc0000000, 8);
    runSync(fast.kvm.mmuLock.write());
    expect(runSync(fast.kvm.mmuNotifier.testClearYoungFastOnly(HVA, HVA + 4096, true))).toBe(MMU_NOTIFIER_FAST_YOUNG);
    fast.kvm.mmuLock.writeUnlock();

    const slow = setup({ capabilities: { fastAging: false, locklessAging: false } });
    slow.kvm.createVcpu(0).read(0xc0000000, 8);
    runSync(slow.kvm.mmuLock.write());
    expect(runSync(slow.kvm.mmuNotifier.testClearYoungFastOnly(HVA, HVA + 4096, true))).toBe(MMU_NOTIFIER_FAST_FAILED);
    expect(slow.kvm.mmuNotifier.fastOnlyFailed).toBe(1);
    slow.kvm.mmuLock.writeUnlock();

    // the switch: the slow MMU takes the lock instead — blocked by the holder
    const bug = mkVm('scalable', { capabilities: { fastAging: false, locklessAging: false } }, { faults: { fastOnlyAgingTakesLock: true } });
    bug.kvm.host.mmap(BigInt(HVA), 2n * MiB);
    set(bug.kvm, region(1, 0xc0000000n, 2n * MiB, BigInt(HVA)));
    runSync(bug.kvm.mmuLock.write());
    expect(() => runSync(bug.kvm.mmuNotifier.testClearYoungFastOnly(HVA, HVA + 4096, true))).toThrow(/mmu_lock/);
  });
});

describe('release', () => {
  it('exit_mmap: release flushes every mapping before the pages go; later runs fail', () => {
    const { kvm, arch } = setup();
    kvm.createVcpu(0).read(0xc0000000, 8);
    expect(arch.mmu.mappings).toBe(1);
    kvm.host.exitMmap();
    expect(arch.mmu.mappings).toBe(0);
    expect(arch.calls.some((c) => c.hook === 'kvm_arch_flush_shadow_all')).toBe(true);
    expect(() => kvm.createVcpu(0).read(0xc0000000, 8)).toThrow(/EIO/);
  });
});
