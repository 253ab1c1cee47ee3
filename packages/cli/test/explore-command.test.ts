import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CoreFaults } from '@kvmsim/kvm-core';
import { builtInScenarios } from '@kvmsim/kvm-core/scenarios';
import { CORE_FAULT_DOCS, CORE_FAULT_NAMES, parseFaultList, traceText, type ExploreJsonResult } from '../src/commands/explore.js';
import { run } from '../src/program.js';
import { stringSink } from '../src/output.js';
import { cli } from './cli-harness.js';

const SCENARIOS = builtInScenarios().map((s) => s.name);
/** Keep the suite fast: no run below explores more than this many schedules per scenario. */
const MAX = '5000';

/** The table row of a scenario (the line of the box table that names it). */
function row(out: string, scenario: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`│ ${scenario} `));
  if (line === undefined) throw new Error(`no table row for ${scenario} in:\n${out}`);
  return line;
}

describe('kvmsim explore', () => {
  it('runs every built-in scenario by default: all ok, exit 0', async () => {
    const r = await cli(['explore', '--max-schedules', MAX]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(SCENARIOS.length).toBeGreaterThanOrEqual(6);
    for (const name of SCENARIOS) {
      const line = row(r.out, name);
      expect(line).toMatch(/│ systematic │\s+2 │\s+\d+ │ yes\s+│ ok\s+│$/);
    }
    expect(r.out).not.toContain('VIOLATION');
    expect(r.out).toContain(`${SCENARIOS.length} scenarios, no violation.`);
  });

  it('--fault skipRetryCheck fault-vs-invalidate: a violation and its failing schedule, exit 1', async () => {
    const r = await cli(['explore', '--fault', 'skipRetryCheck', 'fault-vs-invalidate', '--max-schedules', MAX]);
    expect(r.code).toBe(1);
    expect(row(r.out, 'fault-vs-invalidate')).toContain('VIOLATION');
    expect(r.out).not.toContain('delete-vs-fault');
    expect(r.out).toContain('faults: skipRetryCheck');
    const trace = r.out.slice(r.out.indexOf('violation: '));
    expect(trace).toMatch(/^violation: \S/);
    expect(trace).toMatch(/schedule \(\d+ preemptions?\): [\d ]+\n/);
    // One line per step, naming the actor that ran.
    expect(trace).toMatch(/#\s+0 (vcpu0|host)\s+→ /);
    expect(trace).toContain(' vcpu0 ');
    expect(trace).toContain(' host ');
    expect(r.out).toContain('1 scenario, 1 violation: fault-vs-invalidate.');
  });

  it('--json: one object with every result, the failure with its choices and trace', async () => {
    const r = await cli(['explore', '--json', '--fault=skipRetryCheck', '--max-schedules', MAX, 'fault-vs-invalidate', 'delete-vs-fault']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out) as ExploreJsonResult;
    expect(j).toMatchObject({ kind: 'kvmsim-explore-result', mode: 'systematic', bound: 2, seed: null, memslots: 'scalable', faults: ['skipRetryCheck'], violations: 1, exitCode: 1 });
    expect(j.scenarios.map((s) => s.name)).toEqual(['fault-vs-invalidate', 'delete-vs-fault']);
    const [fvi, del] = j.scenarios;
    expect(fvi!.result).toBe('violation');
    expect(fvi!.failure).not.toBeNull();
    const failure = fvi!.failure!;
    expect(failure.choices.length).toBeGreaterThan(0);
    expect(failure.choices.every((c) => Number.isInteger(c) && c >= 0)).toBe(true);
    expect(failure.trace.length).toBeGreaterThan(0);
    expect(new Set(failure.trace.map((t) => t.actor))).toEqual(new Set(['vcpu0', 'host']));
    expect(failure.text).toMatch(/^violation: /);
    expect(failure.text).toContain(failure.message);
    expect(del).toMatchObject({ result: 'ok', failure: null, complete: true });
  });

  it('--random --seed 3 --max-schedules 50: every scenario ok, reproducibly', async () => {
    const args = ['explore', '--random', '--seed', '3', '--max-schedules', '50'];
    const r = await cli(args);
    expect(r.code).toBe(0);
    for (const name of SCENARIOS) expect(row(r.out, name)).toMatch(/│ random\s+│\s+— │\s+50 │ no\s+│ ok\s+│$/);
    expect(r.out).toContain('random sampling, seed 3');
    const a = await cli([...args, '--json']);
    const b = await cli([...args, '--json']);
    expect(a.code).toBe(0);
    const j = JSON.parse(a.out) as ExploreJsonResult;
    expect(j).toMatchObject({ mode: 'random', bound: null, seed: 3, maxSchedules: 50, violations: 0 });
    expect(j.scenarios.every((s) => s.schedules === 50 && s.result === 'ok')).toBe(true);
    expect(a.out).toBe(b.out);
  });

  it('--memslots legacy and several faults (repeatable and comma-separated) are passed on', async () => {
    const r = await cli(['explore', '--json', '--memslots', 'legacy', '--fault', 'skipRetryCheck,hvaEndNotRoundedUp', '--fault', 'skipRetryCheck', '--bound', '1', '--max-schedules', MAX, 'release-vs-fault']);
    const j = JSON.parse(r.out) as ExploreJsonResult;
    expect(j).toMatchObject({ memslots: 'legacy', bound: 1, faults: ['skipRetryCheck', 'hvaEndNotRoundedUp'] });
    expect(r.code).toBe(j.exitCode);
  });

  it('an unknown fault switch exits 2 and lists the valid ones', async () => {
    for (const value of ['noSuchSwitch', 'skipRetryCheck,noSuchSwitch']) {
      const r = await cli(['explore', '--fault', value]);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain("unknown fault switch 'noSuchSwitch'");
      for (const name of CORE_FAULT_NAMES) expect(r.err).toContain(name);
    }
  });

  it('an unknown scenario exits 2 and names the valid ones', async () => {
    const r = await cli(['explore', 'fault-vs-invalidate', 'no-such-race']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain("unknown scenario 'no-such-race'");
    for (const name of SCENARIOS) expect(r.err).toContain(name);
  });

  it('invalid numbers and --memslots exit 2', async () => {
    for (const args of [['--bound', '-1'], ['--bound', 'two'], ['--max-schedules', '0'], ['--seed', '1.5'], ['--memslots', 'btree'], ['--bogus']]) {
      const r = await cli(['explore', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
    }
  });

  it('--list mentions every scenario and every fault switch with its description', async () => {
    const r = await cli(['explore', '--list']);
    expect(r.code).toBe(0);
    const flat = r.out.replace(/[│\s]+/g, ' ');
    for (const s of builtInScenarios()) expect(r.out).toContain(s.name);
    for (const name of CORE_FAULT_NAMES) {
      expect(r.out).toContain(name);
      expect(flat).toContain(CORE_FAULT_DOCS[name].split(' ').slice(0, 4).join(' '));
    }
    const j = await cli(['explore', '--list', '--json']);
    const list = JSON.parse(j.out) as { scenarios: { name: string }[]; faults: { name: string; description: string }[] };
    expect(list.scenarios.map((s) => s.name)).toEqual(SCENARIOS);
    expect(list.faults.map((f) => f.name)).toEqual(CORE_FAULT_NAMES);
  });

  it('--help describes the flags and the exit status', async () => {
    const r = await cli(['explore', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--bound', '--max-schedules', '--random', '--seed', '--memslots', '--fault', '--list', '--json']) expect(r.out).toContain(flag);
    expect(r.out).toContain('at least one scenario found a violation');
  });

  it('draws a progress bar on a terminal stderr, and none with --json', async () => {
    const stdout = stringSink();
    const stderr = stringSink(true);
    const code = await run(['explore', '--max-schedules', '200', 'delete-vs-fault'], { stdout, stderr });
    expect(code).toBe(0);
    expect(stdout.text).toContain('delete-vs-fault');
    expect(stderr.text).toContain('/200');
    const quiet = stringSink(true);
    await run(['explore', '--json', '--max-schedules', '200', 'delete-vs-fault'], { stdout: stringSink(), stderr: quiet });
    expect(quiet.text).toBe('');
  });
});

describe('the fault switch table', () => {
  it('has one line for exactly the switches of the core (CoreFaults)', () => {
    // TypeScript enforces completeness: this literal must name every key of CoreFaults, no more.
    const everySwitch: Record<keyof CoreFaults, true> = {
      deleteWithoutInvalidStep: true,
      overlapCheckCountsOwnSlot: true,
      dirtyBitmapNotResetOnReenable: true,
      clearDirtyLogSkipsAlignmentCheck: true,
      memslotsUpdatedAfterInstall: true,
      skipRetryCheck: true,
      swapIgnoresInflightInvalidations: true,
      inProgressDropsBeforeSeqBump: true,
      walkInactiveHvaTree: true,
      hvaEndNotRoundedUp: true,
      fastOnlyAgingTakesLock: true,
      vcpuSlotCacheIgnoresGeneration: true,
      getDirtyLogSkipsReprotect: true,
    };
    expect(Object.keys(CORE_FAULT_DOCS).sort()).toEqual(Object.keys(everySwitch).sort());
    expect([...CORE_FAULT_NAMES].sort()).toEqual(Object.keys(everySwitch).sort());
    // And at run time, against the switches declared in the core's source.
    const source = readFileSync(new URL('../../kvm-core/src/fault-injection.ts', import.meta.url), 'utf8');
    const body = source.slice(source.indexOf('export interface CoreFaults'));
    const declared = [...body.slice(0, body.indexOf('\n}')).matchAll(/^ {2}(\w+)\?: boolean;/gm)].map((m) => m[1]);
    expect(declared.sort()).toEqual(Object.keys(CORE_FAULT_DOCS).sort());
    for (const doc of Object.values(CORE_FAULT_DOCS)) expect(doc).not.toContain('\n');
  });

  it('parseFaultList accumulates, splits on commas and drops duplicates', () => {
    expect(parseFaultList('skipRetryCheck')).toEqual(['skipRetryCheck']);
    expect(parseFaultList(' walkInactiveHvaTree , skipRetryCheck', ['skipRetryCheck'])).toEqual(['skipRetryCheck', 'walkInactiveHvaTree']);
    expect(() => parseFaultList('skipRetryCheck,')).toThrow(/empty item/);
    expect(() => parseFaultList('SkipRetryCheck')).toThrow(/unknown fault switch 'SkipRetryCheck'; valid switches: deleteWithoutInvalidStep, /);
  });
});

describe('traceText', () => {
  it('prints a short schedule whole and leaves out the middle of a long one (a livelock)', () => {
    const step = (i: number): { step: number; actor: string; at: string } => ({ step: i, actor: i % 2 === 0 ? 'vcpu0' : 'host', at: `point ${i}` });
    const short = { choices: [0, 1], preemptions: 1, trace: [step(0), step(1)], message: 'boom' };
    expect(traceText(short)).toBe('violation: boom\nschedule (1 preemption): 0 1\n  #  0 vcpu0      → point 0\n  #  1 host       → point 1');
    const n = 100_000;
    const long = { choices: Array.from({ length: n }, (_, i) => i % 2), preemptions: 0, trace: Array.from({ length: n }, (_, i) => step(i)), message: 'livelock' };
    const lines = traceText(long).split('\n');
    expect(lines.length).toBeLessThan(210);
    expect(lines[0]).toBe('violation: livelock');
    expect(lines[1]).toMatch(/^schedule \(0 preemptions\): 0 1 0 1 .* … .* 0 1 \(100000 choices\)$/);
    expect(lines[2]).toContain('point 0');
    expect(lines.some((l) => /… \d+ steps left out \(--json has the whole schedule\)/.test(l))).toBe(true);
    expect(lines.at(-1)).toContain(`point ${n - 1}`);
  });
});
