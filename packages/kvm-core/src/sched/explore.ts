/**
 * explore(): search the interleavings of a scenario's actors for one that breaks the scenario's
 * assertions or the kernel invariants.
 *
 * Systematic mode enumerates schedules statelessly — every schedule is a fresh run of the
 * scenario following a prefix of choices — in depth-first order under a preemption bound that
 * grows from 0 (iterative deepening), so the first failure found has the fewest preemptions.
 * Random mode samples schedules from a seeded PRNG.
 */
import { Scheduler, type RunResult, type TraceStep } from './scheduler.js';
import type { Steps } from './steps.js';

/** One instance of a scenario: fresh state, its actors, and its checks. */
export interface ScenarioInstance {
  readonly actors: readonly { readonly name: string; readonly steps: Steps<unknown> }[];
  /** After all actors finished: throw to report a violation. */
  check(): void;
  /** Optional: a short description of the state, appended to every trace line. */
  describeState?(): string;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Build a fresh instance (a new VM, new host memory, new actors). */
  setup(): ScenarioInstance;
}

export interface ExploreOptions {
  /** Largest number of preemptions per schedule (systematic mode). Default 2. */
  preemptionBound?: number;
  /** Stop after this many schedules. Default 10000. */
  maxSchedules?: number;
  /** 'systematic' (default) or 'random'. */
  mode?: 'systematic' | 'random';
  /** Seed of random mode. Default 1. */
  seed?: number;
  /** Called after each schedule. */
  onProgress?: (explored: number, bound: number) => void;
}

export interface FailingSchedule {
  readonly choices: readonly number[];
  readonly preemptions: number;
  readonly trace: readonly TraceStep[];
  /** what went wrong */
  readonly message: string;
}

export interface ExploreResult {
  readonly scenario: string;
  readonly schedules: number;
  /** true when every schedule within the bound was explored (systematic mode) */
  readonly complete: boolean;
  readonly failure?: FailingSchedule;
}

function runOnce(scenario: Scenario, prefix: readonly number[], policy: 'continue' | 'random', seed: number): { result: RunResult; message?: string } {
  const inst = scenario.setup();
  const s = new Scheduler();
  for (const a of inst.actors) s.spawn(a.name, a.steps);
  const result = s.run({ prefix, policy, seed, ...(inst.describeState ? { describeState: () => inst.describeState!() } : {}) });
  if (result.error !== undefined) return { result, message: errorMessage(result.error) };
  try {
    inst.check();
  } catch (e) {
    return { result, message: errorMessage(e) };
  }
  return { result };
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Preemptions in a choice sequence given the runnable sets. */
function countPreemptions(choices: readonly number[], runnable: readonly (readonly number[])[], upTo: number): number {
  let n = 0;
  for (let i = 1; i <= upTo && i < choices.length; i++) {
    if (choices[i] !== choices[i - 1] && runnable[i]!.includes(choices[i - 1]!)) n++;
  }
  return n;
}

export function explore(scenario: Scenario, options: ExploreOptions = {}): ExploreResult {
  const maxSchedules = options.maxSchedules ?? 10_000;
  let schedules = 0;
  const fail = (r: RunResult, message: string): ExploreResult => ({
    scenario: scenario.name,
    schedules,
    complete: false,
    failure: { choices: r.choices, preemptions: r.preemptions, trace: r.trace, message },
  });

  if (options.mode === 'random') {
    const seed = options.seed ?? 1;
    for (let i = 0; i < maxSchedules; i++) {
      const { result, message } = runOnce(scenario, [], 'random', (seed * 0x9e3779b1 + i) >>> 0);
      schedules++;
      options.onProgress?.(schedules, -1);
      if (message !== undefined) return fail(result, message);
    }
    return { scenario: scenario.name, schedules, complete: false };
  }

  const bound = options.preemptionBound ?? 2;
  const seen = new Set<string>();
  for (let b = 0; b <= bound; b++) {
    // Depth-first over choice prefixes; each run extends its prefix with the default policy.
    const stack: number[][] = [[]];
    let exhausted = true;
    while (stack.length > 0) {
      if (schedules >= maxSchedules) {
        exhausted = false;
        break;
      }
      const prefix = stack.pop()!;
      const { result, message } = runOnce(scenario, prefix, 'continue', 1);
      const key = result.choices.join(',');
      const fresh = !seen.has(key);
      if (fresh) {
        seen.add(key);
        schedules++;
        options.onProgress?.(schedules, b);
        if (message !== undefined && result.preemptions <= b) return fail(result, message);
      }
      // Branch at every step past the prefix onto each other runnable actor, within the bound.
      for (let i = result.choices.length - 1; i >= prefix.length; i--) {
        for (const alt of result.runnable[i]!) {
          if (alt === result.choices[i]) continue;
          const next = [...result.choices.slice(0, i), alt];
          const p = countPreemptions(next, result.runnable, i);
          if (p <= b) stack.push(next);
        }
      }
    }
    if (!exhausted) return { scenario: scenario.name, schedules, complete: false };
  }
  return { scenario: scenario.name, schedules, complete: true };
}

/** A failing schedule as readable lines: step, actor, where it stopped, state. */
export function formatTrace(f: FailingSchedule): string {
  const lines = [`violation: ${f.message}`, `schedule (${f.preemptions} preemption${f.preemptions === 1 ? '' : 's'}): ${f.choices.join(' ')}`];
  for (const t of f.trace) lines.push(`  #${String(t.step).padStart(3)} ${t.actor.padEnd(10)} → ${t.at}${t.state ? `   [${t.state}]` : ''}`);
  return lines.join('\n');
}
