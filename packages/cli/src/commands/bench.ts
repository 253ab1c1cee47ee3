/**
 * `kvmsim bench` (lists the benchmarks) and `kvmsim bench memslots` (wiring of
 * `src/bench/memslots-bench.ts`: option parsing, progress, tables, JSON); `kvmsim bench x86` is
 * registered here and run by `src/bench/x86-command.ts`.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  DEFAULT_SLOT_COUNTS,
  MEMSLOTS_BENCH_CONFIGS,
  runMemslotsBench,
  type BenchRow,
  type MemslotsBenchOptions,
  type MemslotsBenchResult,
} from '../bench/memslots-bench.js';
import { runBenchCommand, writeTargets } from '../bench/bench-runner.js';
import { runBenchX86, type BenchX86CommandOptions } from '../bench/x86-command.js';
import { registerPerfTestCommand } from '../bench/perf-test/command.js';
import { UsageError, type CommandContext } from '../context.js';
import { formatNs, renderKeyValues, renderTable, writeJson, writeLine, type OutputSink } from '../output.js';

/** The largest slot count `--slots` accepts (x86's `KVM_USER_MEM_SLOTS`). */
export const MAX_SLOT_COUNT = 32764;
/** Slot counts of `--quick`. */
export const QUICK_SLOT_COUNTS: readonly number[] = [1, 10, 100, 509];
/** Per-cell measuring time of `--quick`, ms. */
export const QUICK_MIN_TIME_MS = 20;

/** The benchmarks `kvmsim bench <name>` runs. */
export const BENCHMARKS: readonly { readonly name: string; readonly description: string }[] = [
  {
    name: 'memslots',
    description: 'per-op cost of the memslot stores (updates, gfn and hva lookups) by store design and slot count',
  },
  {
    name: 'x86',
    description: 'x86 TDP MMU and shadow MMU: 4 KiB and 2 MiB fault throughput, zap of a 1 GiB slot, heap bytes per mapped page',
  },
  {
    name: 'perf-test',
    description: 'memslot_perf_test workloads (map, unmap, move, rw, slot setup) on the model per store/MMU and on the real kernel, with ratios, report and plots',
  },
];

/** Parsed options of `kvmsim bench memslots`. */
export interface BenchMemslotsCommandOptions {
  slots?: number[];
  configs?: string[];
  minTime?: number;
  seed?: number;
  quick?: boolean;
  /** `true`: the JSON result on stdout instead of tables; a string: also write it to that file. */
  json?: string | true;
}

/** `--slots`: comma-separated positive integers ≤ 32764, duplicates dropped. */
export function parseSlotList(value: string): number[] {
  const items = value.split(',').map((s) => s.trim());
  const out: number[] = [];
  for (const item of items) {
    if (item === '') throw new InvalidArgumentError('expected a comma-separated list of slot counts, e.g. 1,10,100 (empty item).');
    if (!/^\d+$/.test(item)) throw new InvalidArgumentError(`'${item}' is not a positive integer.`);
    const n = Number(item);
    if (n < 1 || n > MAX_SLOT_COUNT) throw new InvalidArgumentError(`slot count ${item} is out of range: must be 1 … ${MAX_SLOT_COUNT}.`);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** `--configs`: comma-separated names, each one of MEMSLOTS_BENCH_CONFIGS. */
export function parseConfigList(value: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  const out: string[] = [];
  for (const item of items) {
    if (item === '') throw new InvalidArgumentError('expected a comma-separated list of configs (empty item).');
    if (!MEMSLOTS_BENCH_CONFIGS.includes(item)) {
      throw new InvalidArgumentError(`unknown config '${item}' (allowed: ${MEMSLOTS_BENCH_CONFIGS.join(', ')}).`);
    }
    if (!out.includes(item)) out.push(item);
  }
  return out;
}

function parseMinTime(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`'${value}' is not a positive number of milliseconds.`);
  }
  return n;
}

function parseSeed(value: string): number {
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`'${value}' is not a non-negative integer.`);
  }
  return Number(value);
}

/** Register `bench` and `bench memslots` on the program. */
export function registerBenchCommand(program: Command, ctx: CommandContext): Command {
  const bench = program
    .command('bench')
    .summary('run a benchmark (without a name: list them)')
    .description('Run one of the benchmarks; without a name, list the available benchmarks.')
    .argument('[name]', 'benchmark to run (see the list below)')
    .option('--json', 'list the benchmarks as JSON on stdout')
    .addHelpText('after', `\nBenchmarks:\n${renderKeyValues(BENCHMARKS.map((b) => [b.name, b.description] as const))}`)
    .action((name: string | undefined, options: { json?: boolean }) => {
      if (name !== undefined) {
        throw new UsageError(`unknown benchmark '${name}' (available: ${BENCHMARKS.map((b) => b.name).join(', ')})`, 'bench');
      }
      listBenchmarks(ctx.io.stdout, options.json === true);
    });

  bench
    .command('memslots')
    .summary('per-op cost of the memslot stores by design and slot count')
    .description(
      'Measure memslot updates (create, delete, move, flags) and lookups (uncached and cached gfn\n' +
        'lookups, 4 KiB hva-range walks) per store configuration and slot count, and judge the targets.',
    )
    .option(
      '--slots <list>',
      `comma-separated slot counts, each 1 … ${MAX_SLOT_COUNT} (default: ${DEFAULT_SLOT_COUNTS.join(',')})`,
      parseSlotList,
    )
    .option(
      '--configs <list>',
      `comma-separated configurations out of ${MEMSLOTS_BENCH_CONFIGS.join(', ')} (default: all)`,
      parseConfigList,
    )
    .option('--min-time <ms>', 'measuring time per cell in milliseconds (default: the benchmark\'s, 200)', parseMinTime)
    .option('--seed <n>', 'seed of every random choice (default: 1)', parseSeed)
    .option('--quick', `smoke run: slots ${QUICK_SLOT_COUNTS.join(',')} and --min-time ${QUICK_MIN_TIME_MS} unless given explicitly`)
    .addOption(
      new Option('--json [file]', 'with FILE: also write the full result as JSON to FILE; without: print the JSON result on stdout instead of tables'),
    )
    .addHelpText(
      'after',
      `
Output: a progress bar on stderr while running (when stderr is a terminal and the JSON result
is not going to stdout), then on stdout one table per op (rows: config, columns: slot count,
cells: time per op) and the target verdicts. Exit status 0 whether or not the targets are
met (benchmark numbers are informational); 2 for invalid options.

Examples:
  kvmsim bench memslots --quick
  kvmsim bench memslots --slots 509,32764 --configs scalable,legacy --json=result.json`,
    )
    .action(async (options: BenchMemslotsCommandOptions) => {
      ctx.setExitCode(await runBenchMemslots(options, ctx));
    });

  bench
    .command('x86')
    .summary('x86 TDP MMU and shadow MMU: fault throughput, 1 GiB slot zap, bytes per mapped page')
    .description(
      'Measure the x86 backend on the TDP MMU and on the shadow MMU: guest read faults of new 4 KiB\n' +
        'and 2 MiB pages through the whole fault path, the zap of a fully mapped 1 GiB slot (DELETE\n' +
        'with the quirk on and off; madvise(DONTNEED)), and the memory per mapped 4 KiB page at 4 Mi\n' +
        'pages; judge the bytes-per-page target (TDP MMU).',
    )
    .option('--min-time <ms>', 'wall-clock time per fault cell in milliseconds, preparation included (default: 2000; --quick: 50)', parseMinTime)
    .option('--quick', 'smoke run: 64 MiB zap slot, 1 GiB for bytes-per-page, short fault cells')
    .addOption(
      new Option('--json [file]', 'with FILE: also write the full result as JSON to FILE; without: print the JSON result on stdout instead of tables'),
    )
    .addHelpText(
      'after',
      `
Output: a progress bar on stderr while running (when stderr is a terminal and the JSON result
is not going to stdout), then on stdout one table per benchmark (fault-4k, fault-2m, zap-1g,
bytes-per-page), the shadow-MMU line, notes on how each row was measured, and the target
verdict. A full run takes about half a minute. Exit status 0 whether or not the target is met;
2 for invalid options.

Examples:
  kvmsim bench x86 --quick
  kvmsim bench x86 --json=x86.json`,
    )
    .action(async (options: BenchX86CommandOptions) => {
      ctx.setExitCode(await runBenchX86(options, ctx));
    });

  registerPerfTestCommand(bench, ctx);

  return bench;
}

function listBenchmarks(stdout: OutputSink, json: boolean): void {
  if (json) {
    writeJson(
      stdout,
      BENCHMARKS.map((b) => ({ ...b, command: `kvmsim bench ${b.name}` })),
    );
    return;
  }
  writeLine(stdout, 'Available benchmarks (run: kvmsim bench <name> [options], see kvmsim bench <name> --help):');
  writeLine(stdout, renderTable({ head: ['name', 'measures'], rows: BENCHMARKS.map((b) => [b.name, b.description]) }));
}

/** Turn parsed command-line options into benchmark options (`--quick` fills what was not given). */
export function benchOptionsFrom(options: BenchMemslotsCommandOptions): MemslotsBenchOptions {
  const out: MemslotsBenchOptions = {};
  const quick = options.quick === true;
  if (options.slots !== undefined) out.slotCounts = options.slots;
  else if (quick) out.slotCounts = [...QUICK_SLOT_COUNTS];
  if (options.configs !== undefined) out.configs = options.configs;
  if (options.minTime !== undefined) out.minTimeMs = options.minTime;
  else if (quick) out.minTimeMs = QUICK_MIN_TIME_MS;
  if (options.seed !== undefined) out.seed = options.seed;
  return out;
}

/** Run `kvmsim bench memslots`; returns the exit status. */
export function runBenchMemslots(options: BenchMemslotsCommandOptions, ctx: CommandContext): Promise<number> {
  const benchOptions = benchOptionsFrom(options);
  return runBenchCommand(ctx, 'bench memslots', options.json, (onProgress) => runMemslotsBench(benchOptions, onProgress), writeBenchTables);
}

/** The human report: machine line, one table per op, then the target verdicts. */
export function writeBenchTables(stdout: OutputSink, result: MemslotsBenchResult): void {
  const m = result.machine;
  const machine = ['node', 'cpu', 'cores', 'os']
    .filter((k) => m[k] !== undefined)
    .map((k) => `${k} ${String(m[k])}`)
    .join(', ');
  writeLine(stdout, `kvmsim bench memslots — ${result.startedAt}, ${(result.durationMs / 1000).toFixed(1)} s${machine === '' ? '' : ` — ${machine}`}`);
  const ops = unique(result.rows.map((r) => r.op));
  const configs = unique(result.rows.map((r) => r.config));
  const slotCounts = unique(result.rows.map((r) => r.n)).sort((a, b) => a - b);
  const cell = new Map<string, BenchRow>();
  for (const r of result.rows) cell.set(`${r.op}\u0000${r.config}\u0000${r.n}`, r);
  for (const op of ops) {
    const rows: string[][] = [];
    for (const config of configs) {
      const cells = slotCounts.map((n) => cell.get(`${op}\u0000${config}\u0000${n}`));
      if (cells.every((c) => c === undefined)) continue;
      rows.push([config, ...cells.map((c) => (c === undefined ? '—' : formatNs(c.nsPerOp)))]);
    }
    writeLine(stdout);
    writeLine(stdout, `${op} (time per op)`);
    writeLine(
      stdout,
      renderTable({
        head: ['config', ...slotCounts.map((n) => `N=${n}`)],
        rows,
        align: ['left', ...slotCounts.map(() => 'right' as const)],
        maxWidth: stdout.columns ?? 160,
      }),
    );
  }
  writeTargets(stdout, result.targets, stdout.columns ?? 160);
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
