/**
 * runConformanceSuite(): registers the shared suite for one backend configuration, in the style
 * of unstorage's testDriver(). Cases are gated on the backend's capabilities, never its name.
 */
import type { MemslotStoreKind } from '@kvmsim/kvm-core';
import { describe } from 'vitest';
import { dirtyLogCases } from './cases/dirty-log.js';
import { hookOrderCases } from './cases/hook-order.js';
import { memslotAbiCases } from './cases/memslot-abi.js';
import { modelBasedCases } from './cases/model-based.js';
import type { CaseContext, ConformanceOptions } from './types.js';

/** The case groups, one module each. */
export const CASE_GROUPS: Readonly<Record<string, (ctx: CaseContext) => void>> = Object.freeze({
  'memslot ABI and change kinds': memslotAbiCases,
  'hook call order and generations': hookOrderCases,
  'dirty log': dirtyLogCases,
  'model-based random test': modelBasedCases,
});

/** `ARCHES=x86,arm64` narrows the matrix to those architectures (by capability `arch`). */
function selected(arch: string): boolean {
  const only = process.env['ARCHES'];
  return only === undefined || only.trim() === '' || only.split(',').map((a) => a.trim()).includes(arch);
}

export function runConformanceSuite(options: ConformanceOptions): void {
  const stores: readonly MemslotStoreKind[] = options.stores ?? ['scalable', 'legacy'];
  const arch = options.createVm({}).caps.arch;
  (selected(arch) ? describe : describe.skip)(`conformance: ${options.name}`, () => {
    for (const store of stores) {
      describe(`${store} memslots`, () => {
        const ctx: CaseContext = { options, store, vm: (extra = {}) => options.createVm({ ...extra, memslots: store }) };
        for (const [group, register] of Object.entries(CASE_GROUPS)) describe(group, () => register(ctx));
      });
    }
  });
}
