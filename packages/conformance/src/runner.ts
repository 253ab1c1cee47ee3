/**
 * The framework-free runner: builds each case's context (store, injected faults, capabilities,
 * expectations), applies gates and known divergences, and reports a status per case. The CLI and
 * the bug zoo use it directly; suite.ts registers the same cases into vitest.
 */
import type { Kvm, MemslotStoreKind } from '@kvmsim/kvm-core';
import { ALL_CASES } from './cases/index.js';
import { resolveExpectations } from './expectations.js';
import type { CaseContext, CaseEnv, CaseGroupId, CaseResult, ConformanceCase, ConformanceOptions, ConformanceVmOptions, InjectedFaults, KnownDivergence } from './types.js';

export interface RunCasesOptions {
  /** Only these groups. Default: all. */
  groups?: readonly CaseGroupId[];
  /** Only these case ids. */
  ids?: readonly string[];
  /** Stores. Default: the configuration's, else both. */
  stores?: readonly MemslotStoreKind[];
  /** Fault switches to turn on in every VM the cases create. */
  faults?: InjectedFaults;
  /** Reduced effort (fewer random runs, smaller explore budgets). */
  quick?: boolean;
  /** Stop at the first failed case. */
  stopAtFirstFailure?: boolean;
  /** Called before each case (progress bars). */
  onCaseStart?: (c: ConformanceCase, store: MemslotStoreKind) => void;
  /** Called after each case. */
  onResult?: (r: CaseResult) => void;
}

/** The gate's environment of one configuration on one store (from a probe VM). */
export function caseEnv(options: ConformanceOptions, store: MemslotStoreKind): CaseEnv {
  const probe = options.createVm({ memslots: store });
  const caps = options.capabilities ?? probe.caps;
  return {
    caps,
    expectations: resolveExpectations(caps, options.expectations),
    store,
    hasVcpu: probe.arch.mmu !== undefined,
    cachesMmio: probe.arch.mmu?.mapMmio !== undefined,
    hasGuestPaging: options.guestPaging !== undefined && probe.arch.mmu !== undefined,
  };
}

/** A case's context: a VM factory bound to the store with the run's faults switched on. */
export function caseContext(options: ConformanceOptions, env: CaseEnv, faults: InjectedFaults = {}, quick = false): CaseContext {
  return {
    ...env,
    options,
    quick,
    faults,
    vm(extra: Omit<ConformanceVmOptions, 'memslots'> = {}): Kvm {
      const o: ConformanceVmOptions = { ...extra, memslots: env.store };
      if (faults.core || extra.faults) o.faults = { ...faults.core, ...extra.faults };
      if (faults.store || extra.storeFaults) o.storeFaults = { ...faults.store, ...extra.storeFaults };
      if (faults.arch || extra.archFaults) o.archFaults = { ...faults.arch, ...extra.archFaults };
      return options.createVm(o);
    },
  };
}

/** The known divergence listed for a case (by id or title), if any. */
export function knownDivergence(options: ConformanceOptions, c: ConformanceCase): KnownDivergence | undefined {
  return options.knownDivergences?.find((d) => d.test === c.id || d.test === c.title);
}

/** `ARCHES=x86,arm64` narrows the matrix to those architectures (by capability `arch`). */
export function archSelected(arch: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const only = env['ARCHES'];
  return only === undefined || only.trim() === '' || only.split(',').map((a) => a.trim()).includes(arch);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Run one case and classify the outcome (a listed divergence must fail; if it passes, that is a failure of the run). */
export async function runCase(c: ConformanceCase, ctx: CaseContext, config: string): Promise<CaseResult> {
  const base = { id: c.id, title: c.title, group: c.group, see: c.see, config, store: ctx.store };
  const gated = c.gate?.(ctx);
  if (gated !== undefined) return { ...base, status: 'skipped', error: gated, ms: 0 };
  const known = knownDivergence(ctx.options, c);
  const t0 = performance.now();
  let error: string | undefined;
  try {
    await c.run(ctx);
  } catch (e) {
    error = message(e);
  }
  const ms = performance.now() - t0;
  if (known) {
    return error === undefined
      ? { ...base, status: 'divergence-fixed', error: `listed as a known divergence (${known.reason}) but it passes: remove it from knownDivergences`, ms }
      : { ...base, status: 'known-divergence', error: `${known.reason}: ${error}`, ms };
  }
  return error === undefined ? { ...base, status: 'passed', ms } : { ...base, status: 'failed', error, ms };
}

/** The cases a run selects, in suite order. */
export function selectCases(o: Pick<RunCasesOptions, 'groups' | 'ids'> = {}): ConformanceCase[] {
  return ALL_CASES.filter((c) => (o.groups === undefined || o.groups.includes(c.group)) && (o.ids === undefined || o.ids.includes(c.id)));
}

/** Run the suite (or a selection) for one configuration without any test framework. */
export async function runCases(options: ConformanceOptions, run: RunCasesOptions = {}): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const cases = selectCases(run);
  for (const store of run.stores ?? options.stores ?? ['scalable', 'legacy']) {
    const ctx = caseContext(options, caseEnv(options, store), run.faults, run.quick);
    for (const c of cases) {
      run.onCaseStart?.(c, store);
      const r = await runCase(c, ctx, options.name);
      results.push(r);
      run.onResult?.(r);
      if (run.stopAtFirstFailure && (r.status === 'failed' || r.status === 'divergence-fixed')) return results;
    }
  }
  return results;
}

/** A run fails when a case failed or a known divergence started passing. */
export function runFailed(results: readonly CaseResult[]): boolean {
  return results.some((r) => r.status === 'failed' || r.status === 'divergence-fixed');
}
