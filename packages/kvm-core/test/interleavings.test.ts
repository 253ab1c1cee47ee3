/**
 * Interleaving tests (issue: deterministic concurrency and the MMU-notifier protocol): every
 * built-in scenario survives `explore` within its stated preemption bound with all fault
 * switches off, and each switch that removes a protocol step is caught with a failing schedule.
 */
import { describe, expect, it } from 'vitest';
import { explore, formatTrace } from '../src/sched/index.js';
import { agingVsZap, createVsFaultVsInvalidate, faultVsInvalidate, memslotVsFault, releaseVsFault, swapVsInvalidation } from '../src/scenarios/index.js';
import type { CoreFaults } from '../src/index.js';

const BOUND = 2;

describe('every scenario holds with all switches off (explore, preemption bound 2)', () => {
  for (const make of [faultVsInvalidate, (o = {}) => memslotVsFault('DELETE', o), (o = {}) => memslotVsFault('MOVE', o), swapVsInvalidation, createVsFaultVsInvalidate, agingVsZap, releaseVsFault]) {
    const scenario = make();
    it(scenario.name, () => {
      const r = explore(scenario, { preemptionBound: BOUND, maxSchedules: 20_000 });
      if (r.failure) throw new Error(formatTrace(r.failure));
      expect(r.complete).toBe(true);
      expect(r.schedules).toBeGreaterThan(1);
    });
  }

  it('also on the legacy store, and with a spinlock mmu_lock that faults take for write', () => {
    for (const o of [{ memslots: 'legacy' as const }, { backend: { capabilities: { mmuLock: 'spinlock' as const, faultLock: 'write' as const, locklessAging: false } } }]) {
      for (const s of [faultVsInvalidate(o), memslotVsFault('DELETE', o), swapVsInvalidation(o), agingVsZap(o)]) {
        const r = explore(s, { preemptionBound: BOUND, maxSchedules: 20_000 });
        if (r.failure) throw new Error(`${s.name}: ${formatTrace(r.failure)}`);
      }
    }
  });
});

describe('each fault-injection switch is caught by explore', () => {
  const cases: [keyof CoreFaults, () => ReturnType<typeof faultVsInvalidate>][] = [
    ['skipRetryCheck', () => faultVsInvalidate({ faults: { skipRetryCheck: true } })],
    ['inProgressDropsBeforeSeqBump', () => faultVsInvalidate({ faults: { inProgressDropsBeforeSeqBump: true } })],
    ['deleteWithoutInvalidStep', () => memslotVsFault('DELETE', { faults: { deleteWithoutInvalidStep: true } })],
    ['swapIgnoresInflightInvalidations', () => swapVsInvalidation({ faults: { swapIgnoresInflightInvalidations: true } })],
    ['walkInactiveHvaTree', () => createVsFaultVsInvalidate({ faults: { walkInactiveHvaTree: true } })],
  ];
  for (const [sw, make] of cases) {
    it(`${sw}: a violation and a failing schedule`, () => {
      const r = explore(make(), { preemptionBound: 3, maxSchedules: 50_000 });
      expect(r.failure, `${sw} was not caught in ${r.schedules} schedules`).toBeDefined();
      const text = formatTrace(r.failure!);
      expect(text).toMatch(/violation: /);
      expect(r.failure!.trace.length).toBeGreaterThan(0);
    });
  }
});
