/**
 * @kvmsim/conformance/runner: everything but the vitest registration — the cases, the runner,
 * the expectations table, the bug zoo and the replay groups — so the CLI can run the suite
 * without a test framework.
 */
export { ALL_CASES, CASE_GROUPS, agingVsFastZap } from './cases/index.js';
export { archSelected, caseContext, caseEnv, runCase, runCases, runFailed, selectCases, type RunCasesOptions } from './runner.js';
export { ARCH_EXPECTATIONS, resolveExpectations, type ArchExpectations } from './expectations.js';
export { BUG_ZOO, runZoo, supportsSwitch, type RunZooOptions, type ZooBug, type ZooResult, type ZooRun, type ZooSwitch } from './zoo.js';
export { GUEST_VISIBLE_REPLAY_CASES, memslotAbiReplayCases, type ReplayCase, type ReplayCheck } from './replay/replay-cases.js';
export { replayCases, runReplayCase, runReplayCases, type ReplayCaseResult, type ReplayConformanceOptions } from './replay/replay-suite.js';
export { CASE_GROUP_IDS } from './types.js';
export { writeFourLevelTables } from './harness.js';
export type {
  CaseContext,
  CaseEnv,
  CaseGroupId,
  CaseResult,
  CaseStatus,
  ConformanceCase,
  ConformanceOptions,
  ConformanceVmOptions,
  GuestPagingAdapter,
  InjectedFaults,
  KnownDivergence,
} from './types.js';
