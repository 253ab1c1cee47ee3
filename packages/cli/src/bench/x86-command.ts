/**
 * `kvmsim bench x86`: the command's run (progress, `--json [FILE]`) and its human report; the
 * options are registered in commands/bench.ts.
 */
import type { CommandContext } from '../context.js';
import { formatNs, renderTable, writeLine, type OutputSink } from '../output.js';
import { runBenchCommand, writeTargets } from './bench-runner.js';
import { runX86Bench, type X86BenchName, type X86BenchOptions, type X86BenchResult, type X86BenchRow } from './x86-bench.js';
import { sizeLabel } from './x86-vm.js';

/** Parsed options of `kvmsim bench x86`. */
export interface BenchX86CommandOptions {
  minTime?: number;
  quick?: boolean;
  /** `true`: the JSON result on stdout instead of tables; a string: also write it to that file. */
  json?: string | true;
}

/** Turn parsed command-line options into benchmark options. */
export function x86BenchOptionsFrom(options: BenchX86CommandOptions): X86BenchOptions {
  const out: X86BenchOptions = {};
  if (options.quick === true) out.quick = true;
  if (options.minTime !== undefined) out.minTimeMs = options.minTime;
  return out;
}

/** Run `kvmsim bench x86`; returns the exit status. */
export function runBenchX86(options: BenchX86CommandOptions, ctx: CommandContext): Promise<number> {
  const benchOptions = x86BenchOptionsFrom(options);
  return runBenchCommand(ctx, 'bench x86', options.json, (onProgress) => runX86Bench(benchOptions, onProgress), writeX86BenchTables);
}

function rate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k`;
  return perSecond.toFixed(0);
}

/** A row's cell: the value in its unit, with throughput for faults; '—' where the MMU has no such row. */
function formatValue(r: X86BenchRow | undefined): string {
  if (r === undefined) return '—';
  switch (r.unit) {
    case 'ns/fault':
      return `${formatNs(r.value)}/fault (${rate(1e9 / r.value)} faults/s)`;
    case 'ns/access':
      return `${formatNs(r.value)}/access`;
    case 'ns/MiB':
      return `${formatNs(r.value)}/MiB (${(1e9 / r.value / 1024).toFixed(2)} GiB/s)`;
    case 'ms/zap':
      return `${formatNs(r.value * 1e6)}/zap`;
    case 'bytes/page':
      return `${r.value.toFixed(2)} B/page`;
  }
}

function groupTitle(bench: X86BenchName, rows: readonly X86BenchRow[]): string {
  switch (bench) {
    case 'fault-4k':
      return 'fault-4k: guest read faults of new 4 KiB pages (time per fault)';
    case 'fault-2m':
      return 'fault-2m: guest read faults of new 2 MiB pages (THP-backed slot)';
    case 'zap-1g': {
      const pages = rows[0]?.pages ?? 0;
      return `zap-1g: zap of a fully mapped ${sizeLabel(pages)} slot (${pages} 4 KiB leaves), median time per zap`;
    }
    case 'bytes-per-page': {
      const pages = rows[0]?.pages ?? 0;
      return `bytes-per-page: memory per mapped 4 KiB page at ${pages} pages (${sizeLabel(pages)} mapped)`;
    }
  }
}

/** The human report: machine line, one table per benchmark (a column per MMU), notes, targets. */
export function writeX86BenchTables(stdout: OutputSink, result: X86BenchResult): void {
  const m = result.machine;
  const machine = ['node', 'cpu', 'cores', 'os']
    .filter((k) => m[k] !== undefined)
    .map((k) => `${k} ${String(m[k])}`)
    .join(', ');
  writeLine(
    stdout,
    `kvmsim bench x86${result.quick ? ' --quick (smaller sizes)' : ''} — ${result.startedAt}, ${(result.durationMs / 1000).toFixed(1)} s${machine === '' ? '' : ` — ${machine}`}`,
  );
  const width = stdout.columns ?? 160;
  const benches = [...new Set(result.rows.map((r) => r.bench))];
  for (const bench of benches) {
    const rows = result.rows.filter((r) => r.bench === bench);
    const ids = [...new Set(rows.map((r) => r.id))];
    const cell = (id: string, mmu: X86BenchRow['mmu']): X86BenchRow | undefined => rows.find((r) => r.id === id && r.mmu === mmu);
    writeLine(stdout);
    writeLine(stdout, groupTitle(bench, rows));
    writeLine(
      stdout,
      renderTable({
        head: ['row', 'measures', 'TDP MMU', 'shadow MMU'],
        rows: ids.map((id) => [id, (cell(id, 'tdp') ?? cell(id, 'shadow'))!.what, formatValue(cell(id, 'tdp')), formatValue(cell(id, 'shadow'))]),
        align: ['left', 'left', 'right', 'right'],
        maxWidth: width,
      }),
    );
  }
  if (result.notes.length > 0) {
    writeLine(stdout);
    writeLine(stdout, 'Notes');
    for (const note of result.notes) writeLine(stdout, `- ${note}`);
  }
  writeTargets(stdout, result.targets, width);
}
