/**
 * Dirty log through bitmaps (kvm-generic.md §5; virt/kvm/kvm_main.c kvm_get_dirty_log_protect(),
 * kvm_clear_dirty_log_protect()). Gated on KVM_GENERIC_DIRTYLOG_READ_PROTECT.
 */
import { markPageDirtyInSlot } from '@kvmsim/kvm-core';
import { assert, defineCase, expectErrno, MiB, popcount, region } from '../harness.js';
import type { CaseEnv, ConformanceCase } from '../types.js';

const readProtect = (env: CaseEnv): string | undefined => (env.caps.dirtyLogReadProtect ? undefined : 'no KVM_GENERIC_DIRTYLOG_READ_PROTECT');

export const dirtyLogCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'dirty-log/get-clears',
    group: 'dirty-log',
    title: 'GET without manual protect returns and clears; the next GET is empty (§5.2)',
    see: 'kvm-generic.md §5.2; virt/kvm/kvm_main.c kvm_get_dirty_log_protect() (6.18)',
    gate: readProtect,
    run(ctx) {
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 100n * 4096n, undefined, 1));
      markPageDirtyInSlot(kvm.gfnToMemslot(3), 3);
      markPageDirtyInSlot(kvm.gfnToMemslot(99), 99);
      const first = kvm.getDirtyLog(1);
      assert.equal(first.length, 16);
      assert.equal(first[0], 1 << 3);
      assert.equal(first[12], 1 << 3);
      assert.ok(kvm.getDirtyLog(1).every((b) => b === 0));
    },
  }),
  defineCase({
    id: 'dirty-log/initially-set-and-clear-alignment',
    group: 'dirty-log',
    title: 'INITIALLY_SET bitmaps start all ones; manual GET does not clear; CLEAR alignment rules (§5.3–5.4)',
    see: 'kvm-generic.md §5.3–5.4; virt/kvm/kvm_main.c kvm_clear_dirty_log_protect(): first_page & 63, num_pages & 63 unless it reaches the end (6.18)',
    gate: (env) => readProtect(env) ?? ((env.caps.dirtyLogManualCaps & 2) === 0 ? 'no KVM_DIRTY_LOG_INITIALLY_SET' : undefined),
    run(ctx) {
      const kvm = ctx.vm();
      kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [3n]);
      kvm.setUserMemoryRegion(region(1, 0n, 100n * 4096n, undefined, 1));
      const ones = kvm.getDirtyLog(1);
      assert.equal(popcount(ones), 100);
      assert.deepEqual(kvm.getDirtyLog(1), ones);
      expectErrno(() => kvm.clearDirtyLog(1, 1n, 64, new Uint8Array(8)), 'EINVAL', 'first_page not a multiple of 64');
      expectErrno(() => kvm.clearDirtyLog(1, 0n, 10, new Uint8Array(8)), 'EINVAL', 'num_pages not a multiple of 64, short of the end');
      expectErrno(() => kvm.clearDirtyLog(1, 64n, 37, new Uint8Array(8)), 'EINVAL', 'past the end');
      expectErrno(() => kvm.clearDirtyLog(1, 0n, 64, null), 'EFAULT');
      expectErrno(() => kvm.clearDirtyLog(1, 64n, 36, new Uint8Array(8).fill(0xff)), 0);
      assert.deepEqual(Array.from(kvm.getDirtyLog(1).subarray(8)), new Array(8).fill(0));
    },
  }),
  defineCase({
    id: 'dirty-log/move-and-reenable',
    group: 'dirty-log',
    title: 'MOVE keeps the bitmap; disabling logging frees it (ENOENT); re-enabling gives a fresh one (§5.1)',
    see: 'kvm-generic.md §5.1; virt/kvm/kvm_main.c kvm_prepare_memory_region(): kvm_alloc_dirty_bitmap() when logging turns on (6.18)',
    gate: readProtect,
    run(ctx) {
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB, undefined, 1));
      markPageDirtyInSlot(kvm.gfnToMemslot(5), 5);
      kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [1n]);
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB, undefined, 1));
      assert.equal(kvm.getDirtyLog(1)[0], 1 << 5);
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB));
      expectErrno(() => kvm.getDirtyLog(1), 'ENOENT');
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB, undefined, 1));
      assert.equal(popcount(kvm.getDirtyLog(1)), 0, 'the re-enabled bitmap carries stale bits');
    },
  }),
  defineCase({
    id: 'dirty-log/no-read-protect',
    group: 'dirty-log',
    title: 'without READ_PROTECT: no CLEAR_DIRTY_LOG (ENOTTY), manual protect absent (0 / EINVAL)',
    see: 'virt/kvm/kvm_main.c kvm_vm_ioctl(): KVM_CLEAR_DIRTY_LOG under CONFIG_KVM_GENERIC_DIRTYLOG_READ_PROTECT (6.18)',
    gate: (env) => (env.caps.dirtyLogReadProtect ? 'the architecture has KVM_GENERIC_DIRTYLOG_READ_PROTECT' : undefined),
    run(ctx) {
      const kvm = ctx.vm();
      assert.equal(kvm.checkExtension('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2'), 0);
      expectErrno(() => kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [1n]), 'EINVAL');
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB, undefined, 1));
      expectErrno(() => kvm.clearDirtyLog(1, 0n, 0, null), 'ENOTTY');
    },
  }),
];
