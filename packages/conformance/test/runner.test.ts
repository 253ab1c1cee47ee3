/**
 * The framework-free runner, the expectations table and the replay groups: statuses (passed,
 * failed, skipped, known divergence, fixed divergence) come out right, injected faults reach the
 * VMs, and a replay target that answers wrongly fails its cases.
 */
import { createVm, type ResolvedCapabilities } from '@kvmsim/kvm-core';
import { referenceBackend } from '@kvmsim/kvm-core/testing';
import { describe, expect, it } from 'vitest';
import { modelTarget, type ReplayTarget } from '../src/targets/index.js';
import {
  memslotAbiReplayCases,
  resolveExpectations,
  runCases,
  runFailed,
  runReplayCases,
  runReplayConformanceSuite,
  type ConformanceOptions,
} from '../src/index.js';

const reference = (profile: 'x86' | 'generic' = 'x86'): ConformanceOptions => ({
  name: `reference/${profile}`,
  createVm: (o) => createVm({ backend: referenceBackend({ record: false, profile }), ...o }),
  expectations: { slotZapScope: 'slot' },
});

describe('runCases', () => {
  it('passes the ABI group on the reference backend and gates cases on capabilities', async () => {
    const r = await runCases(reference('generic'), { groups: ['memslot-abi'], stores: ['scalable'] });
    expect(runFailed(r)).toBe(false);
    const ro = r.find((x) => x.id === 'memslot-abi/readonly')!;
    expect(ro.status).toBe('skipped');
    expect(ro.error).toMatch(/READONLY/);
    expect(r.filter((x) => x.status === 'passed').length).toBeGreaterThan(5);
  });

  it('injected faults reach the VMs: a switched-on bug fails its case', async () => {
    const r = await runCases(reference(), { ids: ['memslot-abi/modify', 'memslot-abi/alignment'], stores: ['scalable'], faults: { core: { overlapCheckCountsOwnSlot: true } } });
    expect(r.map((x) => [x.id, x.status])).toEqual([
      ['memslot-abi/alignment', 'passed'],
      ['memslot-abi/modify', 'failed'],
    ]);
    expect(r[1]!.error).toMatch(/MOVE overlapping its own old range/);
    expect(runFailed(r)).toBe(true);
  });

  it('a known divergence must keep failing; one that passes fails the run', async () => {
    const options: ConformanceOptions = {
      ...reference(),
      knownDivergences: [
        { test: 'memslot-abi/modify', reason: 'this backend forgets its own id (test)' },
        { test: 'memslot-abi/alignment', reason: 'listed but fixed (test)' },
      ],
    };
    const r = await runCases(options, { ids: ['memslot-abi/modify', 'memslot-abi/alignment'], stores: ['legacy'], faults: { core: { overlapCheckCountsOwnSlot: true } } });
    expect(r.find((x) => x.id === 'memslot-abi/modify')!.status).toBe('known-divergence');
    expect(r.find((x) => x.id === 'memslot-abi/alignment')!.status).toBe('divergence-fixed');
    expect(runFailed(r)).toBe(true);
    expect(runFailed(r.filter((x) => x.status === 'known-divergence'))).toBe(false);
  });
});

describe('expectations table', () => {
  const caps = (over: Partial<ResolvedCapabilities>): ResolvedCapabilities => ({ ...createVm({ backend: referenceBackend() }).caps, ...over });

  it('x86: fast aging follows the MMU (fault lock), the zap scope is "all" unless overridden', () => {
    expect(resolveExpectations(caps({ arch: 'x86', faultLock: 'read' })).fastAging).toBe(true);
    expect(resolveExpectations(caps({ arch: 'x86', faultLock: 'write' })).fastAging).toBe(false);
    expect(resolveExpectations(caps({ arch: 'x86' })).slotZapScope).toBe('all');
    expect(resolveExpectations(caps({ arch: 'x86' }), { slotZapScope: 'slot' }).slotZapScope).toBe('slot');
    expect(resolveExpectations(caps({ arch: 'x86' })).mmioGenerationBits).toBe(19);
  });

  it('an unknown architecture gets what its capabilities claim', () => {
    const e = resolveExpectations(caps({ arch: 'toy', unmapRequestsFlush: false, mmuLock: 'spinlock', fastAging: false }));
    expect(e).toMatchObject({ slotZapScope: 'slot', unmapRequestsFlush: false, mmuLock: 'spinlock', fastAging: false, mmioGenerationBits: null });
  });
});

describe('replay groups', () => {
  it('one ABI case per case id of the built-in replay, checking all 109 annotated answers once', () => {
    const cases = memslotAbiReplayCases();
    expect(cases.length).toBe(99);
    expect(new Set(cases.map((c) => c.id)).size).toBe(99);
    expect(cases.reduce((n, c) => n + c.checks.length, 0)).toBe(109);
    const d18 = cases.find((c) => c.id === 'abi/D18')!;
    expect(d18.checks.map((c) => c.expect)).toEqual([{ ret: -22, errno: 'EINVAL' }]);
    expect(d18.setup.some((l) => l.includes('"slot":22'))).toBe(true);
  });

  it('a target that answers wrongly fails exactly the cases that see the wrong answer', async () => {
    const lying = (): Promise<ReplayTarget> => {
      const t = modelTarget();
      return Promise.resolve({
        ...t,
        async send(line: string) {
          const out = await t.send(line);
          // A stale mapping: every guest read after a DONTNEED still sees the old value.
          return out !== null && line.includes('vcpu_read') && out.value === '0x0' ? { ...out, value: '0x1111' } : out;
        },
      });
    };
    const r = await runReplayCases({ name: 'lying', createTarget: lying, groups: ['guest-visible'] });
    expect(r.filter((x) => x.status === 'failed').map((x) => x.id)).toEqual(['guest-visible/dontneed-rewrite', 'guest-visible/dirty-get-clear']);
    expect(r.find((x) => x.status === 'failed')!.error).toMatch(/expected \{"ret":0,"exit":"none","value":"0x0"\}/);
  });
});

// The replay groups through vitest, against the model with the reference backend (x86 limits).
runReplayConformanceSuite({ name: 'model reference/x86', createTarget: () => Promise.resolve(modelTarget()) });
runReplayConformanceSuite({ name: 'skipped target', createTarget: () => Promise.reject(new Error('never called')), skip: 'no kernel here (test of skip)' });
