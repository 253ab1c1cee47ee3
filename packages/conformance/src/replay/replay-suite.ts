/**
 * Running the replay groups against a {@link ReplayTarget}: `runReplayCases()` without any test
 * framework (the CLI), `runReplayConformanceSuite()` registering them into vitest.
 */
import { formatReplayOutput, outputsAgree } from '@kvmsim/kvm-core/replay';
import type { ReplayTarget } from '../targets/replay-target.js';
import type { KnownDivergence } from '../types.js';
import { GUEST_VISIBLE_REPLAY_CASES, memslotAbiReplayCases, type ReplayCase } from './replay-cases.js';

export interface ReplayConformanceOptions {
  /** Target name for reports, e.g. "kernel 6.18.44". */
  name: string;
  /** A fresh target per case. */
  createTarget: () => Promise<ReplayTarget>;
  /** Skip the whole suite, giving the reason (e.g. "no /dev/kvm"). */
  skip?: string;
  /** Only these groups. Default: both. */
  groups?: readonly ('abi' | 'guest-visible')[];
  knownDivergences?: readonly KnownDivergence[];
}

/** Every replay case, ABI first. */
export function replayCases(groups: readonly ('abi' | 'guest-visible')[] = ['abi', 'guest-visible']): ReplayCase[] {
  return [...(groups.includes('abi') ? memslotAbiReplayCases() : []), ...(groups.includes('guest-visible') ? GUEST_VISIBLE_REPLAY_CASES : [])];
}

/** Run one case on a fresh target; throws an Error naming the first disagreeing line. */
export async function runReplayCase(c: ReplayCase, createTarget: () => Promise<ReplayTarget>): Promise<void> {
  const target = await createTarget();
  try {
    for (const line of c.setup) await target.send(line);
    for (const check of c.checks) {
      const got = await target.send(check.line);
      if (got === null || !outputsAgree(got, check.expect)) {
        throw new Error(`${c.id}: ${check.line}\n  expected ${formatReplayOutput(check.expect)}\n  got      ${got === null ? '(no output)' : formatReplayOutput(got)} from ${target.name}`);
      }
    }
  } finally {
    await target.close();
  }
}

export interface ReplayCaseResult {
  readonly id: string;
  readonly group: 'abi' | 'guest-visible';
  readonly title: string;
  readonly status: 'passed' | 'failed' | 'known-divergence' | 'divergence-fixed';
  readonly error?: string;
}

/** The framework-free runner of the replay groups. */
export async function runReplayCases(options: Omit<ReplayConformanceOptions, 'skip'>, onResult?: (r: ReplayCaseResult) => void): Promise<ReplayCaseResult[]> {
  const out: ReplayCaseResult[] = [];
  for (const c of replayCases(options.groups)) {
    let error: string | undefined;
    try {
      await runReplayCase(c, options.createTarget);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    const known = options.knownDivergences?.find((d) => d.test === c.id);
    const base = { id: c.id, group: c.group, title: c.title };
    const r: ReplayCaseResult = known
      ? error === undefined
        ? { ...base, status: 'divergence-fixed', error: `listed as a known divergence (${known.reason}) but it passes` }
        : { ...base, status: 'known-divergence', error }
      : error === undefined
        ? { ...base, status: 'passed' }
        : { ...base, status: 'failed', error };
    out.push(r);
    onResult?.(r);
  }
  return out;
}
