/**
 * Hook call order and generations per change kind (kvm-generic.md §2.4): recorded by wrapping
 * the backend's own hooks, so any backend can be checked.
 */
import type { ArchVm, Kvm } from '@kvmsim/kvm-core';
import { expect } from 'vitest';
import { conformanceCase, MiB, region } from '../harness.js';
import type { CaseContext } from '../types.js';

const HOOKS = ['prepareMemoryRegion', 'commitMemoryRegion', 'freeMemslot', 'memslotsUpdated', 'flushShadowMemslot', 'guestMemoryReclaimed'] as const;

function record(kvm: Kvm): string[] {
  const log: string[] = [];
  const arch = kvm.arch as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const h of HOOKS) {
    const orig = (kvm.arch as ArchVm)[h].bind(kvm.arch) as (...a: unknown[]) => unknown;
    arch[h] = (...args: unknown[]) => {
      const change = args.find((a) => typeof a === 'string');
      log.push(h === 'memslotsUpdated' ? `${h}(${String(args[0])})` : change ? `${h}(${String(change)})` : h);
      return orig(...args);
    };
  }
  return log;
}

export function hookOrderCases(ctx: CaseContext): void {
  const n = ctx.vm().caps.nrAddressSpaces;

  conformanceCase(ctx, 'CREATE: prepare, one swap (+nr_as), commit', () => {
    const kvm = ctx.vm();
    const log = record(kvm);
    kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
    expect(log).toEqual(['prepareMemoryRegion(CREATE)', `memslotsUpdated(${n})`, 'commitMemoryRegion(CREATE)']);
  });

  conformanceCase(ctx, 'MOVE: INVALID swap, flush the old slot, prepare, swap, commit (+2·nr_as)', () => {
    const kvm = ctx.vm();
    kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
    const log = record(kvm);
    kvm.setUserMemoryRegion(region(1, 4n * MiB, 2n * MiB));
    expect(log).toEqual([`memslotsUpdated(${2 * n})`, 'flushShadowMemslot', 'guestMemoryReclaimed', 'prepareMemoryRegion(MOVE)', `memslotsUpdated(${3 * n})`, 'commitMemoryRegion(MOVE)']);
  });

  conformanceCase(ctx, 'DELETE: INVALID swap, flush, prepare, swap, commit, free (+2·nr_as)', () => {
    const kvm = ctx.vm();
    kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
    const log = record(kvm);
    kvm.setUserMemoryRegion(region(1, 0n, 0n));
    expect(log).toEqual([
      `memslotsUpdated(${2 * n})`,
      'flushShadowMemslot',
      'guestMemoryReclaimed',
      'prepareMemoryRegion(DELETE)',
      `memslotsUpdated(${3 * n})`,
      'commitMemoryRegion(DELETE)',
      'freeMemslot',
    ]);
  });

  conformanceCase(ctx, 'FLAGS_ONLY: prepare, one swap, commit', () => {
    const kvm = ctx.vm();
    kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
    const log = record(kvm);
    kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB, undefined, 1));
    expect(log).toEqual(['prepareMemoryRegion(FLAGS_ONLY)', `memslotsUpdated(${2 * n})`, 'commitMemoryRegion(FLAGS_ONLY)']);
  });
}
