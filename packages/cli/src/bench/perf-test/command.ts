/**
 * `kvmsim bench perf-test`: option parsing, the kernel oracle, progress, terminal tables, JSON and
 * the markdown/SVG report.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { kernelOracleTarget } from '@kvmsim/conformance/targets';
import { runBenchCommand, writeTargets } from '../bench-runner.js';
import { UsageError, type CommandContext } from '../../context.js';
import { renderTable, whyNotWritable, writeLine, type OutputSink } from '../../output.js';
import { WORKLOADS, MAX_MEMSLOTS, type Workload } from './layout.js';
import { STORES, type MmuName, type StoreName } from './model-side.js';
import { metricTable, metricsOf, machineLine, renderReport, spliceDocs, writeReport } from './report.js';
import { DEFAULT_CELL_MS, DEFAULT_PERF_SLOT_COUNTS, METRIC_UNITS, runPerfTest, type PerfRow, type PerfTestOptions, type PerfTestResult } from './run.js';
import { evaluatePerfTargets } from './targets.js';

export interface BenchPerfTestCommandOptions {
  slots?: number[];
  workloads?: Workload[];
  stores?: StoreName[];
  mmu?: MmuName[];
  kernel?: boolean;
  oracle?: string;
  seconds?: number;
  seed?: number;
  quick?: boolean;
  json?: string | true;
  report?: string;
  docs?: string;
  from?: string;
}

/** `--quick`: tiny slot counts, short cells, few repetitions (a smoke run, for tests). */
export const PERF_QUICK: Readonly<Pick<Required<PerfTestOptions>, 'slotCounts' | 'cellMs' | 'updateReps' | 'faultReps' | 'faultPages'>> = {
  slotCounts: [1, 10],
  cellMs: 20,
  updateReps: 4,
  faultReps: 1,
  faultPages: 64,
};

function listParser<T extends string>(what: string, allowed: readonly T[]): (value: string) => T[] {
  return (value) => {
    const out: T[] = [];
    for (const raw of value.split(',')) {
      const item = raw.trim();
      if (item === '') throw new InvalidArgumentError(`expected a comma-separated list of ${what} (empty item).`);
      if (!(allowed as readonly string[]).includes(item)) throw new InvalidArgumentError(`unknown ${what.replace(/s$/, '')} '${item}' (allowed: ${allowed.join(', ')}).`);
      if (!out.includes(item as T)) out.push(item as T);
    }
    return out;
  };
}

function parseSlots(value: string): number[] {
  const out: number[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (!/^\d+$/.test(item)) throw new InvalidArgumentError(`'${item}' is not a positive integer.`);
    const n = Number(item);
    if (n < 1 || n > MAX_MEMSLOTS) throw new InvalidArgumentError(`slot count ${item} is out of range: must be 1 … ${MAX_MEMSLOTS}.`);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`'${value}' is not a positive number of seconds.`);
  return n;
}

function parseSeed(value: string): number {
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`'${value}' is not a non-negative integer.`);
  return Number(value);
}

export function registerPerfTestCommand(bench: Command, ctx: CommandContext): Command {
  return bench
    .command('perf-test')
    .summary('memslot_perf_test workloads on the model and the real kernel, side by side')
    .description(
      'Run memslot_perf_test\'s workloads (map, unmap, unmap chunked, move active, move inactive,\n' +
        'rw), its slot setup, the isolated memslot updates (create, delete, move, flags) and a 4 KiB\n' +
        'guest fault on the model — per memslot store and MMU, with a vCPU actor running the guest\n' +
        'loop against the host loop — and on the real kernel through tools/kvm-oracle when /dev/kvm\n' +
        'is usable, in the same run; report cost per op, model/kernel ratios and the targets.',
    )
    .option('--slots <list>', `comma-separated test-slot counts, each 1 … ${MAX_MEMSLOTS} (default: ${DEFAULT_PERF_SLOT_COUNTS.join(',')})`, parseSlots)
    .option('--workloads <list>', `comma-separated workloads out of ${WORKLOADS.join(', ')} (default: all)`, listParser('workloads', WORKLOADS))
    .option('--stores <list>', `comma-separated memslot stores out of ${STORES.join(', ')} (default: all)`, listParser('stores', STORES))
    .option('--mmu <list>', 'comma-separated x86 MMUs out of tdp, shadow (default: tdp,shadow; one that the backend cannot run is skipped with the reason)', listParser('MMUs', ['tdp', 'shadow'] as const))
    .option('--no-kernel', 'model only: do not run the workloads on the real kernel')
    .option('--oracle <path>', 'the kvm-oracle binary (default: $KVMSIM_ORACLE, else built from tools/kvm-oracle)')
    .option('--seconds <s>', `time per workload cell in seconds (default: ${DEFAULT_CELL_MS / 1000}; --quick: ${PERF_QUICK.cellMs / 1000})`, parseSeconds)
    .option('--seed <n>', 'seed of the actors\' interleavings (default: 1)', parseSeed)
    .option('--quick', `smoke run: slots ${PERF_QUICK.slotCounts.join(',')}, short cells, few repetitions, unless given explicitly`)
    .addOption(new Option('--json [file]', 'with FILE: also write the full result as JSON to FILE; without: print the JSON result on stdout instead of tables'))
    .option('--report <dir>', 'write a markdown report (perf-test.md), SVG plots and perf-test.json into DIR')
    .option('--docs <file>', 'also put the report, as a section linking the plots of --report DIR, between the perf-test markers of FILE (e.g. docs/benchmarks.md)')
    .option('--from <file>', 'measure nothing: take the result from a perf-test.json of an earlier run (to regenerate tables, report and docs)')
    .addHelpText(
      'after',
      `
Slot counts are memslot_perf_test's test slots (ids 1..N over the workload's memory, slot 0
being the VM's own memory); 32764 runs 32763 test slots, since slot 0 counts towards
KVM_CAP_NR_MEMSLOTS. A workload that cannot be laid out at N ("Memslot count too high for
this test") gives an n/a row. The kernel's guest side is approximated by guest passes between
host operations (the oracle cannot run its vCPU during host ioctls).

Output: a progress bar on stderr (when stderr is a terminal and the JSON is not on stdout), then
one table per metric (rows: N; columns: store/MMU and kernel; cells: cost per op and the
model/kernel ratio) and the target verdicts. Exit status 0 whether or not the targets are met,
1 if the model misbehaved in a workload (a violation), 2 for invalid options.

Examples:
  kvmsim bench perf-test --quick --no-kernel
  kvmsim bench perf-test --report docs/bench
  kvmsim bench perf-test --slots 509,32764 --workloads move-inactive --json=perf.json`,
    )
    .action(async (options: BenchPerfTestCommandOptions) => {
      ctx.setExitCode(await runBenchPerfTest(options, ctx));
    });
}

export function perfTestOptionsFrom(options: BenchPerfTestCommandOptions): PerfTestOptions {
  const quick = options.quick === true;
  const out: PerfTestOptions = { kernel: options.kernel ?? true, mmus: options.mmu ?? ['tdp', 'shadow'] };
  if (quick) Object.assign(out, PERF_QUICK);
  if (options.slots !== undefined) out.slotCounts = options.slots;
  if (options.workloads !== undefined) out.workloads = options.workloads;
  if (options.stores !== undefined) out.stores = options.stores;
  if (options.seconds !== undefined) out.cellMs = options.seconds * 1000;
  if (options.seed !== undefined) out.seed = options.seed;
  const binary = options.oracle;
  out.openKernel = () => kernelOracleTarget({ timing: true, ...(binary !== undefined ? { binary } : {}) });
  return out;
}

export async function runBenchPerfTest(options: BenchPerfTestCommandOptions, ctx: CommandContext): Promise<number> {
  if (options.report !== undefined) {
    const why = await whyNotWritable(`${options.report}/perf-test.md`);
    if (why !== undefined && !/no such file|ENOENT|does not exist/i.test(why)) throw new UsageError(`--report: cannot write into '${options.report}': ${why}`, 'bench perf-test');
  }
  if (options.docs !== undefined && options.report === undefined) throw new UsageError('--docs needs --report DIR (the section links the plots written there)', 'bench perf-test');
  const earlier = options.from !== undefined ? await readResult(options.from) : undefined;
  const perfOptions = perfTestOptionsFrom(options);
  let result: PerfTestResult | undefined;
  const code = await runBenchCommand(
    ctx,
    'bench perf-test',
    options.json,
    async (onProgress) => {
      result = earlier ?? (await runPerfTest(perfOptions, onProgress));
      return result;
    },
    writePerfTables,
  );
  if (result === undefined) return code;
  if (options.report !== undefined) {
    const files = await writeReport(options.report, result);
    if (options.json !== true) writeLine(ctx.io.stdout, `Report written to ${files[files.length - 2] ?? options.report} (with ${files.length - 2} SVG plots and perf-test.json)`);
    if (options.docs !== undefined) {
      let doc = '';
      try {
        doc = await readFile(options.docs, 'utf8');
      } catch {
        // a new file: the section alone
      }
      const section = renderReport(result, { level: 3, title: `Latest run (${result.startedAt.slice(0, 10)})`, plotDir: relative(dirname(options.docs), options.report) || '.' });
      await writeFile(options.docs, spliceDocs(doc, section));
      if (options.json !== true) writeLine(ctx.io.stdout, `Section regenerated in ${options.docs}`);
    }
  }
  return result.violations.length > 0 ? 1 : code;
}

/** A perf-test.json of an earlier run (--from), checked for the fields the report reads. */
async function readResult(path: string): Promise<PerfTestResult> {
  let o: unknown;
  try {
    o = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--from: cannot read '${path}': ${(e as Error).message}`, 'bench perf-test');
  }
  const r = o as Partial<PerfTestResult> | null;
  for (const field of ['rows', 'slotCounts', 'configs', 'targets'] as const) {
    if (r === null || typeof r !== 'object' || !Array.isArray(r[field])) {
      throw new UsageError(`--from: '${path}' is not a perf-test result (field "${field}" must be an array)`, 'bench perf-test');
    }
  }
  // The verdicts are judged again from the rows, so a changed target definition applies.
  const result = r as PerfTestResult;
  return { ...result, targets: evaluatePerfTargets(result.rows as PerfRow[]) };
}

/** The terminal report: machine, kernel side, one table per metric, the violations and targets. */
export function writePerfTables(stdout: OutputSink, result: PerfTestResult): void {
  const width = stdout.columns ?? 160;
  writeLine(stdout, `kvmsim bench perf-test — ${result.startedAt}, ${(result.durationMs / 1000).toFixed(1)} s — ${machineLine(result.machine)}`);
  writeLine(stdout, result.kernel.available ? `kernel side: ${result.kernel.name ?? 'kernel'} (kvm-oracle --timing)` : `kernel side not measured: ${result.kernel.reason ?? 'unavailable'}`);
  for (const s of result.skippedConfigs) writeLine(stdout, `skipped ${s.config}: ${s.reason}`);
  for (const metric of metricsOf(result)) {
    const t = metricTable(result, metric);
    writeLine(stdout);
    writeLine(stdout, `${metric} — ${METRIC_UNITS[metric]}`);
    writeLine(stdout, renderTable({ head: t.head, rows: t.rows, align: ['left', ...t.head.slice(1).map(() => 'right' as const)], maxWidth: width }));
    t.notes.forEach((n, i) => writeLine(stdout, `  [${i + 1}] ${n}`));
  }
  if (result.violations.length > 0) {
    writeLine(stdout);
    writeLine(stdout, 'Violations (the model misbehaved during a workload):');
    for (const v of result.violations) writeLine(stdout, `  ${v}`);
  }
  writeTargets(stdout, result.targets, width);
}
