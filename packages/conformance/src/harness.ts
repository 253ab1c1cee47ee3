import type { UserspaceMemoryRegion } from '@kvmsim/kvm-core';
import { it } from 'vitest';
import type { CaseContext } from './types.js';

export { errnoOf } from '@kvmsim/kvm-core';

export const MiB = 0x100000n;
export const UADDR = 0x7f0000000000n;

export function region(slot: number, gpa: bigint, size: bigint, uaddr: bigint = UADDR, flags = 0): UserspaceMemoryRegion {
  return { slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr };
}

/**
 * Register one case, honouring the known-divergence list: a listed case is registered with
 * `it.fails`, so it must keep failing — a divergence that starts passing fails the run.
 * `skip` gates a case on capabilities (never on backend names).
 */
export function conformanceCase(ctx: CaseContext, title: string, fn: () => void, skip = false): void {
  if (skip) {
    it.skip(title, fn);
    return;
  }
  const known = ctx.options.knownDivergences?.some((d) => d.test === title);
  (known ? it.fails : it)(title, fn);
}
