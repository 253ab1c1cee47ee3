/**
 * Hook call order and generations per change kind (kvm-generic.md §2.4): recorded by wrapping
 * the backend's own hooks, so any backend can be checked.
 */
import { KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS, type ArchVm, type Kvm } from '@kvmsim/kvm-core';
import { assert, defineCase, MiB, region } from '../harness.js';
import type { ConformanceCase } from '../types.js';

const HOOKS = ['prepareMemoryRegion', 'commitMemoryRegion', 'freeMemslot', 'memslotsUpdated', 'flushShadowMemslot', 'guestMemoryReclaimed'] as const;
const SEE = 'kvm-generic.md §2.4; virt/kvm/kvm_main.c kvm_set_memslot(), kvm_swap_active_memslots() (6.18)';

/** Wrap the VM's hooks; `onUpdated` sees each kvm_arch_memslots_updated() call as it happens. */
function record(kvm: Kvm, onUpdated?: (gen: number) => void): string[] {
  const log: string[] = [];
  const arch = kvm.arch as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const h of HOOKS) {
    const orig = (kvm.arch as ArchVm)[h].bind(kvm.arch) as (...a: unknown[]) => unknown;
    arch[h] = (...args: unknown[]) => {
      const change = args.find((a) => typeof a === 'string');
      log.push(h === 'memslotsUpdated' ? `${h}(${String(args[0])})` : change ? `${h}(${String(change)})` : h);
      if (h === 'memslotsUpdated') onUpdated?.(args[0] as number);
      return orig(...args);
    };
  }
  return log;
}

export const hookOrderCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'hook-order/create',
    group: 'hook-order',
    title: 'CREATE: prepare, one swap (+nr_as), commit',
    see: SEE,
    run(ctx) {
      const n = ctx.caps.nrAddressSpaces;
      const kvm = ctx.vm();
      const log = record(kvm);
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      assert.deepEqual(log, ['prepareMemoryRegion(CREATE)', `memslotsUpdated(${n})`, 'commitMemoryRegion(CREATE)']);
    },
  }),
  defineCase({
    id: 'hook-order/move',
    group: 'hook-order',
    title: 'MOVE: INVALID swap, flush the old slot, prepare, swap, commit (+2·nr_as)',
    see: `${SEE}; kvm_invalidate_memslot()`,
    run(ctx) {
      const n = ctx.caps.nrAddressSpaces;
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      const log = record(kvm);
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB));
      assert.deepEqual(log, [`memslotsUpdated(${2 * n})`, 'flushShadowMemslot', 'guestMemoryReclaimed', 'prepareMemoryRegion(MOVE)', `memslotsUpdated(${3 * n})`, 'commitMemoryRegion(MOVE)']);
    },
  }),
  defineCase({
    id: 'hook-order/delete',
    group: 'hook-order',
    title: 'DELETE: INVALID swap, flush, prepare, swap, commit, free (+2·nr_as)',
    see: `${SEE}; kvm_invalidate_memslot(), kvm_delete_memslot()`,
    run(ctx) {
      const n = ctx.caps.nrAddressSpaces;
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      const log = record(kvm);
      kvm.setUserMemoryRegion(region(1, 0n, 0n));
      assert.deepEqual(log, [
        `memslotsUpdated(${2 * n})`,
        'flushShadowMemslot',
        'guestMemoryReclaimed',
        'prepareMemoryRegion(DELETE)',
        `memslotsUpdated(${3 * n})`,
        'commitMemoryRegion(DELETE)',
        'freeMemslot',
      ]);
    },
  }),
  defineCase({
    id: 'hook-order/flags-only',
    group: 'hook-order',
    title: 'FLAGS_ONLY: prepare, one swap, commit',
    see: SEE,
    run(ctx) {
      const n = ctx.caps.nrAddressSpaces;
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      const log = record(kvm);
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB, undefined, 1));
      assert.deepEqual(log, ['prepareMemoryRegion(FLAGS_ONLY)', `memslotsUpdated(${2 * n})`, 'commitMemoryRegion(FLAGS_ONLY)']);
    },
  }),
  defineCase({
    id: 'hook-order/updated-before-install',
    group: 'hook-order',
    title: 'kvm_arch_memslots_updated() runs before the new generation is installed (the set still says "update in progress")',
    see: 'virt/kvm/kvm_main.c kvm_swap_active_memslots() (6.18); commit 15248258b4f6 "KVM: Call kvm_arch_memslots_updated() before updating memslots" (2019)',
    run(ctx) {
      const kvm = ctx.vm();
      const seenGens: string[] = [];
      record(kvm, (gen) => {
        const as = gen % ctx.caps.nrAddressSpaces;
        const live = kvm.kvmMemslots(as).generation;
        seenGens.push(live === gen ? `installed ${gen}` : live >= KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS ? 'in progress' : `other ${live}`);
      });
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB));
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 0n));
      assert.deepEqual(seenGens, ['in progress', 'in progress', 'in progress', 'in progress', 'in progress']);
    },
  }),
  defineCase({
    id: 'hook-order/generations',
    group: 'hook-order',
    title: 'each address space\'s generation stays ≡ as_id (mod nr_as), grows by nr_as per swap, and a failed CREATE installs nothing',
    see: 'kvm-generic.md §2.3; virt/kvm/kvm_main.c kvm_swap_active_memslots(): gen += kvm_arch_nr_memslot_as_ids() (6.18)',
    run(ctx) {
      const n = ctx.caps.nrAddressSpaces;
      const kvm = ctx.vm();
      const gens = (): number[] => Array.from({ length: n }, (_, as) => kvm.kvmMemslots(as).generation);
      assert.deepEqual(gens(), Array.from({ length: n }, (_, as) => as));
      kvm.setUserMemoryRegion(region(((n - 1) << 16) | 1, 0n, 2n * MiB));
      const after = gens();
      assert.equal(after[n - 1], n - 1 + n);
      assert.throws(() => kvm.setUserMemoryRegion(region(((n - 1) << 16) | 2, 0n, 2n * MiB)));
      assert.deepEqual(gens(), after);
    },
  }),
];
