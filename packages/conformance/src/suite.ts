/**
 * runConformanceSuite(): registers the shared suite for one backend configuration into vitest,
 * in the style of unstorage's testDriver(). The cases are the framework-free ones of cases/;
 * gated-out cases are registered with `it.skip`, known divergences with `it.fails` (so one that
 * starts passing fails the run). Cases are gated on the backend's capabilities, never its name.
 */
import type { MemslotStoreKind } from '@kvmsim/kvm-core';
import { describe, it } from 'vitest';
import { CASE_GROUPS } from './cases/index.js';
import { archSelected, caseContext, caseEnv, knownDivergence } from './runner.js';
import type { ConformanceOptions } from './types.js';

export function runConformanceSuite(options: ConformanceOptions): void {
  const stores: readonly MemslotStoreKind[] = options.stores ?? ['scalable', 'legacy'];
  const arch = (options.capabilities ?? options.createVm({}).caps).arch;
  (archSelected(arch) ? describe : describe.skip)(`conformance: ${options.name}`, () => {
    for (const store of stores) {
      describe(`${store} memslots`, () => {
        const env = caseEnv(options, store);
        const ctx = caseContext(options, env);
        for (const group of Object.values(CASE_GROUPS)) {
          describe(group.title, () => {
            for (const c of group.cases) {
              const name = `${c.title} [${c.id}]`;
              if (c.gate?.(env) !== undefined) it.skip(name, () => {});
              else (knownDivergence(options, c) ? it.fails : it)(name, () => c.run(ctx));
            }
          });
        }
      });
    }
  });
}
