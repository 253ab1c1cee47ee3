/**
 * Dirty log through bitmaps (kvm-generic.md §5; virt/kvm/kvm_main.c kvm_get_dirty_log_protect(),
 * kvm_clear_dirty_log_protect()). Gated on KVM_GENERIC_DIRTYLOG_READ_PROTECT.
 */
import { markPageDirtyInSlot } from '@kvmsim/kvm-core';
import { expect } from 'vitest';
import { conformanceCase, errnoOf, MiB, region } from '../harness.js';
import type { CaseContext } from '../types.js';

export function dirtyLogCases(ctx: CaseContext): void {
  const caps = ctx.vm().caps;
  const noReadProtect = !caps.dirtyLogReadProtect;

  conformanceCase(
    ctx,
    'GET without manual protect returns and clears; the next GET is empty (§5.2)',
    () => {
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 100n * 4096n, undefined, 1));
      markPageDirtyInSlot(kvm.gfnToMemslot(3), 3);
      markPageDirtyInSlot(kvm.gfnToMemslot(99), 99);
      const first = kvm.getDirtyLog(1);
      expect(first.length).toBe(16);
      expect(first[0]).toBe(1 << 3);
      expect(first[12]).toBe(1 << 3);
      expect(kvm.getDirtyLog(1).every((b) => b === 0)).toBe(true);
    },
    noReadProtect,
  );

  conformanceCase(
    ctx,
    'INITIALLY_SET bitmaps start all ones; manual GET does not clear; CLEAR alignment rules (§5.3–5.4)',
    () => {
      const kvm = ctx.vm();
      kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [3n]);
      kvm.setUserMemoryRegion(region(1, 0n, 100n * 4096n, undefined, 1));
      const ones = kvm.getDirtyLog(1);
      expect(ones.reduce((n, b) => n + b.toString(2).replaceAll('0', '').length, 0)).toBe(100);
      expect(kvm.getDirtyLog(1)).toEqual(ones);
      expect(errnoOf(() => kvm.clearDirtyLog(1, 1n, 64, new Uint8Array(8)))).toBe('EINVAL');
      expect(errnoOf(() => kvm.clearDirtyLog(1, 0n, 10, new Uint8Array(8)))).toBe('EINVAL');
      expect(errnoOf(() => kvm.clearDirtyLog(1, 64n, 37, new Uint8Array(8)))).toBe('EINVAL');
      expect(errnoOf(() => kvm.clearDirtyLog(1, 0n, 64, null))).toBe('EFAULT');
      expect(errnoOf(() => kvm.clearDirtyLog(1, 64n, 36, new Uint8Array(8).fill(0xff)))).toBe(0);
      expect(Array.from(kvm.getDirtyLog(1).subarray(8))).toEqual(new Array(8).fill(0));
    },
    noReadProtect || (caps.dirtyLogManualCaps & 2) === 0,
  );

  conformanceCase(
    ctx,
    'MOVE keeps the bitmap; disabling logging frees it (ENOENT); re-enabling gives a fresh one (§5.1)',
    () => {
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB, undefined, 1));
      markPageDirtyInSlot(kvm.gfnToMemslot(5), 5);
      kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [1n]);
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB, undefined, 1));
      expect(kvm.getDirtyLog(1)[0]).toBe(1 << 5);
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB));
      expect(errnoOf(() => kvm.getDirtyLog(1))).toBe('ENOENT');
      kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB, undefined, 1));
      expect(kvm.getDirtyLog(1)[0]).toBe(0);
    },
    noReadProtect,
  );

  conformanceCase(
    ctx,
    'without READ_PROTECT: no CLEAR_DIRTY_LOG (ENOTTY), manual protect absent (0 / EINVAL)',
    () => {
      const kvm = ctx.vm();
      expect(kvm.checkExtension('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2')).toBe(0);
      expect(errnoOf(() => kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [1n]))).toBe('EINVAL');
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB, undefined, 1));
      expect(errnoOf(() => kvm.clearDirtyLog(1, 0n, 0, null))).toBe('ENOTTY');
    },
    !noReadProtect,
  );
}
