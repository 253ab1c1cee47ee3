/**
 * The core's interleaving scenarios on the x86 backend (TDP MMU with and without the
 * SLOT_ZAP_ALL quirk, the shadow MMU, the shadow MMU with nested TDP): every one holds within the preemption bound, and the core's switches are
 * still caught through the x86 fault path.
 */
import { explore, formatTrace } from '@kvmsim/kvm-core/sched';
import { builtInScenarios, faultVsInvalidate } from '@kvmsim/kvm-core/scenarios';
import { describe, expect, it } from 'vitest';
import { x86Backend } from '../src/index.js';

describe.each([
  ['x86/tdp', {}],
  ['x86/tdp, SLOT_ZAP_ALL off', { quirks: { slotZapAll: false } }],
  ['x86/shadow', { mmu: 'shadow' }],
  ['x86/shadow + nestedTdp, SLOT_ZAP_ALL off', { mmu: 'shadow', nestedTdp: true, quirks: { slotZapAll: false } }],
] as const)('%s: built-in interleavings', (_name, options) => {
  for (const scenario of builtInScenarios({ archBackend: x86Backend(options) })) {
    it(scenario.name, () => {
      const r = explore(scenario, { preemptionBound: 2, maxSchedules: 20_000 });
      if (r.failure) throw new Error(formatTrace(r.failure));
      expect(r.complete).toBe(true);
    });
  }
});

it('x86/tdp: skipping the retry check is caught through the x86 fault path', () => {
  const r = explore(faultVsInvalidate({ archBackend: x86Backend(), faults: { skipRetryCheck: true } }), { preemptionBound: 3 });
  expect(r.failure?.message).toMatch(/stale mapping|reads/);
});
