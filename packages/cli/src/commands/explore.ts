/**
 * `kvmsim explore [scenario…]`: run the core's built-in interleaving scenarios through
 * `explore()` (systematic under a preemption bound, or random sampling) and report, per scenario,
 * how many schedules were explored and whether one broke the scenario's checks or the kernel
 * invariants; a violation is printed as its failing schedule (`formatTrace`).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CoreFaults } from '@kvmsim/kvm-core';
import { builtInScenarios, type ScenarioOptions } from '@kvmsim/kvm-core/scenarios';
import { explore, formatTrace, type ExploreResult, type FailingSchedule, type Scenario, type TraceStep } from '@kvmsim/kvm-core/sched';
import { EXIT, UsageError, type CommandContext } from '../context.js';
import { renderTable, writeJson, writeLine, type OutputSink } from '../output.js';
import { startProgress } from '../progress.js';
import { MEMSLOT_DESIGNS, type MemslotDesign } from './replay.js';

/** Default of `--bound` (the preemption bound of systematic mode). */
export const DEFAULT_PREEMPTION_BOUND = 2;
/** Default of `--max-schedules`. */
export const DEFAULT_MAX_SCHEDULES = 20_000;
/** Default of `--seed` (random mode). */
export const DEFAULT_EXPLORE_SEED = 1;
/** Human output shows at most this many steps of a failing schedule (first and last ones); --json has all. */
const MAX_TRACE_STEPS = 200;
/** Of {@link MAX_TRACE_STEPS}, how many come from the start of the schedule. */
const TRACE_HEAD_STEPS = 40;
/** Of a schedule that long, this many choices from its start and as many from its end are shown. */
const CHOICES_SHOWN = 20;
/** First key of the JSON result. */
const RESULT_KIND = 'kvmsim-explore-result';

/**
 * One line per fault-injection switch of the core (`CoreFaults`, kvm-core's
 * `src/fault-injection.ts`, where each is documented in full). Typed as a complete record, so
 * adding a switch to the core without a line here fails the typecheck.
 */
export const CORE_FAULT_DOCS: Readonly<Record<keyof CoreFaults, string>> = {
  deleteWithoutInvalidStep: 'DELETE and MOVE skip the INVALID-slot step: a racing fault can re-map a slot being removed',
  overlapCheckCountsOwnSlot: "the memslot overlap check does not skip the slot's own id: a MOVE overlapping its old range fails with EEXIST",
  dirtyBitmapNotResetOnReenable: 'turning dirty logging off and on again reuses the old bitmap, stale bits included',
  clearDirtyLogSkipsAlignmentCheck: 'KVM_CLEAR_DIRTY_LOG skips the first_page/num_pages alignment checks',
  memslotsUpdatedAfterInstall: 'the new memslot generation is installed before kvm_arch_memslots_updated() is called',
  skipRetryCheck: 'the vCPU fault path maps without mmu_invalidate_retry_gfn(): a page invalidated after the fault began gets mapped',
  swapIgnoresInflightInvalidations: 'the memslot swap does not wait for in-flight invalidations: unbalanced begin/end, stale mappings',
  inProgressDropsBeforeSeqBump: 'invalidate_end drops the in-progress count before bumping the seq: a fault can map the page just zapped',
  walkInactiveHvaTree: "hva-range notifications walk the inactive memslot set's hva tree instead of the active one",
  hvaEndNotRoundedUp: 'hva-range notifications do not round the gfn end up: a partial last page is skipped',
  fastOnlyAgingTakesLock: 'the fast-only aging call takes mmu_lock instead of answering "not fast"',
  vcpuSlotCacheIgnoresGeneration: "the vCPU's last-used-slot cache survives a generation change: faults map through a moved or deleted slot",
  getDirtyLogSkipsReprotect: 'KVM_GET_DIRTY_LOG does not re-protect harvested pages: later guest writes to them go unlogged',
};

/** The names `--fault` accepts, in the order of {@link CORE_FAULT_DOCS}. */
export const CORE_FAULT_NAMES: readonly (keyof CoreFaults)[] = Object.keys(CORE_FAULT_DOCS) as (keyof CoreFaults)[];

/** Parsed options of `kvmsim explore`. */
export interface ExploreCommandOptions {
  bound?: number;
  maxSchedules?: number;
  random?: boolean;
  seed?: number;
  memslots?: MemslotDesign;
  fault?: (keyof CoreFaults)[];
  list?: boolean;
  json?: boolean;
}

/** One scenario's result, as the JSON result reports it. */
export interface ExploreScenarioJson {
  name: string;
  description: string;
  schedules: number;
  /** Every schedule within the bound was explored (systematic mode, no violation). */
  complete: boolean;
  result: 'ok' | 'violation';
  failure: {
    message: string;
    preemptions: number;
    /** The actor index chosen at each step (replays the schedule exactly). */
    choices: number[];
    /** One entry per step: the actor that ran, where it stopped, the VM state after the step. */
    trace: TraceStep[];
    /** `formatTrace()` of the failure: the human-readable schedule. */
    text: string;
  } | null;
}

/** The JSON result of `kvmsim explore --json`. */
export interface ExploreJsonResult {
  kind: typeof RESULT_KIND;
  mode: 'systematic' | 'random';
  /** Preemption bound (systematic mode), null in random mode. */
  bound: number | null;
  maxSchedules: number;
  /** Seed (random mode), null in systematic mode. */
  seed: number | null;
  memslots: MemslotDesign;
  faults: (keyof CoreFaults)[];
  scenarios: ExploreScenarioJson[];
  violations: number;
  exitCode: number;
}

function parseNonNegativeInt(what: string): (value: string) => number {
  return (value: string): number => {
    const v = value.trim();
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError(`'${value}' is not a non-negative integer (${what}).`);
    return Number(v);
  };
}

function parsePositiveInt(value: string): number {
  const v = value.trim();
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < 1) {
    throw new InvalidArgumentError(`'${value}' is not a positive integer.`);
  }
  return Number(v);
}

/** `--fault`: a switch name or a comma-separated list; repeatable (the lists accumulate, duplicates dropped). */
export function parseFaultList(value: string, previous: (keyof CoreFaults)[] = []): (keyof CoreFaults)[] {
  const out = [...previous];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') throw new InvalidArgumentError(`expected a fault switch name or a comma-separated list of them (empty item); valid switches: ${CORE_FAULT_NAMES.join(', ')}.`);
    if (!(CORE_FAULT_NAMES as readonly string[]).includes(item)) {
      throw new InvalidArgumentError(`unknown fault switch '${item}'; valid switches: ${CORE_FAULT_NAMES.join(', ')} (see 'kvmsim explore --list').`);
    }
    const name = item as keyof CoreFaults;
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** The built-in scenarios (names and descriptions only; options do not change them). */
function scenarioCatalogue(): readonly Scenario[] {
  return builtInScenarios();
}

/** Register `explore` on the program. */
export function registerExploreCommand(program: Command, ctx: CommandContext): Command {
  const names = scenarioCatalogue().map((s) => s.name);
  return program
    .command('explore')
    .summary('search the interleavings of the built-in concurrency scenarios for violations')
    .description(
      'Run the built-in interleaving scenarios (all of them, or those named) through the core\'s\n' +
        'explore(): every schedule of the racing actors within a preemption bound (systematic, the\n' +
        'default), or a seeded random sample (--random). Each schedule is a fresh run checked against the\n' +
        'scenario\'s assertions and the kernel invariants. A violation is printed as its failing schedule\n' +
        '(systematic mode finds one with the fewest preemptions). --fault turns on fault-injection switches\n' +
        'of the core to see a broken protocol caught.',
    )
    .argument('[scenario...]', `scenarios to run (default: all): ${names.join(', ')}`)
    .option('--bound <n>', `preemption bound of systematic mode (default: ${DEFAULT_PREEMPTION_BOUND})`, parseNonNegativeInt('--bound'))
    .option('--max-schedules <n>', `stop each scenario after this many schedules (default: ${DEFAULT_MAX_SCHEDULES})`, parsePositiveInt)
    .option('--random', 'sample schedules at random instead of enumerating them')
    .option('--seed <n>', `seed of --random (default: ${DEFAULT_EXPLORE_SEED})`, parseNonNegativeInt('--seed'))
    .addOption(new Option('--memslots <design>', 'memslot store design').choices([...MEMSLOT_DESIGNS]).default('scalable'))
    .option('--fault <names>', 'turn on core fault-injection switches (repeatable, or comma-separated; see --list)', parseFaultList)
    .option('--list', 'list the scenarios and the fault switches, and exit')
    .option('--json', 'print one JSON object with every scenario\'s result (failing schedules included) instead of tables')
    .addHelpText(
      'after',
      `
Output: a table on stdout (scenario, mode, bound, schedules explored, complete, result), then
each violation's failing schedule: the message, the choice sequence (actor index per step) and one
line per step (actor, where it stopped, the VM state after it). With --json, one JSON object
instead. A progress bar (schedules explored vs --max-schedules) is drawn on stderr for each
scenario when stderr is a terminal and --json is not given. "complete: no" on an ok row means
--max-schedules was reached first (systematic), or random mode (which never proves anything).

Exit status:
  0  no scenario found a violation
  1  at least one scenario found a violation
  2  usage error (unknown scenario or fault switch, invalid number)
  3  internal error (a bug in kvmsim)

Examples:
  kvmsim explore                                   every scenario, bound 2
  kvmsim explore fault-vs-invalidate --bound 3
  kvmsim explore --fault skipRetryCheck fault-vs-invalidate   (exits 1 with the failing schedule)
  kvmsim explore --random --seed 7 --max-schedules 5000
  kvmsim explore --list`,
    )
    .action((scenarios: string[], options: ExploreCommandOptions) => {
      ctx.setExitCode(runExplore(scenarios, options, ctx));
    });
}

/** Run `kvmsim explore`; returns the exit status. */
export function runExplore(scenarioNames: readonly string[], options: ExploreCommandOptions, ctx: CommandContext): number {
  const { io } = ctx;
  const json = options.json === true;
  if (options.list === true) {
    writeList(io.stdout, json);
    return EXIT.OK;
  }
  const memslots = options.memslots ?? 'scalable';
  if (!(MEMSLOT_DESIGNS as readonly string[]).includes(memslots)) {
    throw new UsageError(`--memslots: '${String(memslots)}' is not a memslot store design (allowed: ${MEMSLOT_DESIGNS.join(', ')})`, 'explore');
  }
  const random = options.random === true;
  const bound = options.bound ?? DEFAULT_PREEMPTION_BOUND;
  const seed = options.seed ?? DEFAULT_EXPLORE_SEED;
  const maxSchedules = options.maxSchedules ?? DEFAULT_MAX_SCHEDULES;
  const faultNames = options.fault ?? [];
  const faults: CoreFaults = {};
  for (const f of faultNames) faults[f] = true;

  const scenarioOptions: ScenarioOptions = { faults, memslots };
  const all = builtInScenarios(scenarioOptions);
  const selected = selectScenarios(all, scenarioNames);

  if (!json) {
    if (random && options.bound !== undefined) writeLine(io.stderr, 'note: --bound has no effect with --random');
    if (!random && options.seed !== undefined) writeLine(io.stderr, 'note: --seed has no effect without --random');
  }

  const results: ExploreResult[] = [];
  for (const scenario of selected) {
    const progress = startProgress(io.stderr, { total: maxSchedules, enabled: !json, label: scenario.name });
    try {
      results.push(
        explore(scenario, {
          maxSchedules,
          ...(random ? { mode: 'random' as const, seed } : { mode: 'systematic' as const, preemptionBound: bound }),
          onProgress: (explored, b) => progress.update(explored, b >= 0 ? `${scenario.name} (bound ${b})` : scenario.name),
        }),
      );
    } finally {
      progress.stop();
    }
  }

  const violations = results.filter((r) => r.failure !== undefined).length;
  const exitCode = violations > 0 ? EXIT.DISAGREE : EXIT.OK;
  if (json) {
    writeJson(io.stdout, {
      kind: RESULT_KIND,
      mode: random ? 'random' : 'systematic',
      bound: random ? null : bound,
      maxSchedules,
      seed: random ? seed : null,
      memslots,
      faults: [...faultNames],
      scenarios: results.map((r, i) => scenarioJson(r, selected[i]!)),
      violations,
      exitCode,
    } satisfies ExploreJsonResult);
  } else {
    writeReport(io.stdout, results, { random, bound, seed, maxSchedules, memslots, faults: faultNames });
  }
  return exitCode;
}

/** The scenarios named on the command line (in the order given, duplicates dropped), or all of them. */
function selectScenarios(all: readonly Scenario[], names: readonly string[]): Scenario[] {
  if (names.length === 0) return [...all];
  const valid = all.map((s) => s.name);
  const unknown = names.filter((n) => !valid.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown scenario${unknown.length === 1 ? '' : 's'} ${unknown.map((n) => `'${n}'`).join(', ')} (valid: ${valid.join(', ')})`,
      'explore',
    );
  }
  return [...new Set(names)].map((n) => all.find((s) => s.name === n)!);
}

function scenarioJson(r: ExploreResult, scenario: Scenario): ExploreScenarioJson {
  return {
    name: r.scenario,
    description: scenario.description,
    schedules: r.schedules,
    complete: r.complete,
    result: r.failure === undefined ? 'ok' : 'violation',
    failure:
      r.failure === undefined
        ? null
        : {
            message: r.failure.message,
            preemptions: r.failure.preemptions,
            choices: [...r.failure.choices],
            trace: r.failure.trace.map((t) => ({ ...t })),
            text: formatTrace(r.failure),
          },
  };
}

// =================================================================================================
// Human output
// =================================================================================================

interface RunSettings {
  random: boolean;
  bound: number;
  seed: number;
  maxSchedules: number;
  memslots: MemslotDesign;
  faults: readonly (keyof CoreFaults)[];
}

function writeReport(stdout: OutputSink, results: readonly ExploreResult[], s: RunSettings): void {
  const mode = s.random ? `random sampling, seed ${s.seed}` : `systematic, preemption bound ${s.bound}`;
  writeLine(
    stdout,
    `kvmsim explore — ${mode}, at most ${s.maxSchedules} schedules per scenario, memslots ${s.memslots}, ` +
      `faults: ${s.faults.length === 0 ? 'none' : s.faults.join(', ')}`,
  );
  writeLine(
    stdout,
    renderTable({
      head: ['scenario', 'mode', 'bound', 'schedules', 'complete', 'result'],
      rows: results.map((r) => [
        r.scenario,
        s.random ? 'random' : 'systematic',
        s.random ? '—' : String(s.bound),
        String(r.schedules),
        r.complete ? 'yes' : 'no',
        r.failure === undefined ? 'ok' : 'VIOLATION',
      ]),
      align: ['left', 'left', 'right', 'right', 'left', 'left'],
      ...(stdout.isTTY === true && stdout.columns !== undefined ? { maxWidth: stdout.columns } : {}),
    }),
  );
  const failed = results.filter((r): r is ExploreResult & { failure: FailingSchedule } => r.failure !== undefined);
  const incomplete = results.filter((r) => r.failure === undefined && !r.complete);
  if (incomplete.length > 0) {
    writeLine(
      stdout,
      s.random
        ? 'complete: random mode samples schedules and never explores them all.'
        : `not complete: ${incomplete.map((r) => r.scenario).join(', ')} reached --max-schedules ${s.maxSchedules} before every schedule within bound ${s.bound} was explored.`,
    );
  }
  for (const r of failed) {
    writeLine(stdout);
    writeLine(
      stdout,
      s.random
        ? `${r.scenario}: failing schedule (random sample, not minimised):`
        : `${r.scenario}: failing schedule with the fewest preemptions (found after ${r.schedules} schedule${r.schedules === 1 ? '' : 's'}):`,
    );
    writeLine(stdout, traceText(r.failure));
  }
  writeLine(stdout);
  writeLine(
    stdout,
    failed.length === 0
      ? `${results.length} scenario${results.length === 1 ? '' : 's'}, no violation.`
      : `${results.length} scenario${results.length === 1 ? '' : 's'}, ${failed.length} violation${failed.length === 1 ? '' : 's'}: ${failed.map((r) => r.scenario).join(', ')}.`,
  );
}

/**
 * `formatTrace()`, with the middle of a very long schedule (a livelock runs 100000 steps) left
 * out; the step numbers on the lines show the gap.
 */
export function traceText(f: FailingSchedule): string {
  if (f.trace.length <= MAX_TRACE_STEPS) return formatTrace(f);
  const head = f.trace.slice(0, TRACE_HEAD_STEPS);
  const tail = f.trace.slice(f.trace.length - (MAX_TRACE_STEPS - TRACE_HEAD_STEPS));
  const omitted = f.trace.length - head.length - tail.length;
  const lines = formatTrace({ ...f, choices: [], trace: [...head, ...tail] }).split('\n');
  const c = f.choices;
  lines[1] = `${lines[1]!.trimEnd()} ${c.slice(0, CHOICES_SHOWN).join(' ')} … ${c.slice(c.length - CHOICES_SHOWN).join(' ')} (${c.length} choices)`;
  // Two header lines (message, choices), then one line per step.
  lines.splice(2 + head.length, 0, `  … ${omitted} steps left out (--json has the whole schedule)`);
  return lines.join('\n');
}

function writeList(stdout: OutputSink, json: boolean): void {
  const scenarios = scenarioCatalogue();
  if (json) {
    writeJson(stdout, {
      scenarios: scenarios.map((s) => ({ name: s.name, description: s.description })),
      faults: CORE_FAULT_NAMES.map((name) => ({ name, description: CORE_FAULT_DOCS[name] })),
    });
    return;
  }
  const maxWidth = stdout.isTTY === true && stdout.columns !== undefined ? stdout.columns : 120;
  writeLine(stdout, 'Scenarios (run: kvmsim explore [scenario…]):');
  writeLine(stdout, renderTable({ head: ['scenario', 'what races, and what must hold'], rows: scenarios.map((s) => [s.name, s.description]), maxWidth }));
  writeLine(stdout);
  writeLine(stdout, 'Fault switches of the core (turn on with --fault NAME[,NAME…]; all off by default):');
  writeLine(stdout, renderTable({ head: ['switch', 'what it breaks'], rows: CORE_FAULT_NAMES.map((n) => [n, CORE_FAULT_DOCS[n]]), maxWidth }));
}
