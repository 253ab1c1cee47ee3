/** @kvmsim/cli programmatic API: run `kvmsim` command lines in-process. */
export { createProgram, run, type RunIo } from './program.js';
export { EXIT, UsageError, type CommandContext } from './context.js';
export { stringSink, formatNs, type CliIo, type OutputSink, type StringSink } from './output.js';
export {
  runReplay,
  describeOp,
  describeAnswer,
  MEMSLOT_DESIGNS,
  type MemslotDesign,
  type ReplayCommandOptions,
  type ReplayJsonSummary,
  type ReplayDisagreement,
} from './commands/replay.js';
export {
  runBenchMemslots,
  benchOptionsFrom,
  parseSlotList,
  parseConfigList,
  writeBenchTables,
  BENCHMARKS,
  MAX_SLOT_COUNT,
  QUICK_SLOT_COUNTS,
  QUICK_MIN_TIME_MS,
  type BenchMemslotsCommandOptions,
} from './commands/bench.js';
export {
  runExplore,
  parseFaultList,
  traceText,
  CORE_FAULT_DOCS,
  CORE_FAULT_NAMES,
  DEFAULT_PREEMPTION_BOUND,
  DEFAULT_MAX_SCHEDULES,
  DEFAULT_EXPLORE_SEED,
  type ExploreCommandOptions,
  type ExploreJsonResult,
  type ExploreScenarioJson,
} from './commands/explore.js';
