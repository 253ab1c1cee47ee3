/**
 * The perf-test report: per-metric tables (rows: slot count; columns: model configs and the
 * kernel; each model cell with its model/kernel ratio; a last row with the N=32764 / N=509
 * ratio), the targets, the machine, and the SVG plots written next to the markdown.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatNs } from '../../output.js';
import { renderPlot } from './plots.js';
import { METRICS, METRIC_UNITS, KERNEL_CONFIG, type Metric, type PerfRow, type PerfTestResult } from './run.js';
import { BASE_N, LARGE_N, fmtRatio } from './targets.js';

export const REPORT_FILE = 'perf-test.md';

export function plotFile(metric: Metric): string {
  return `perf-test-${metric.replace('/', '-')}.svg`;
}

/** The metrics with at least one row, in report order. */
export function metricsOf(result: PerfTestResult): Metric[] {
  return METRICS.filter((m) => result.rows.some((r) => r.metric === m));
}

function columnsOf(result: PerfTestResult): string[] {
  const cols = [...result.configs];
  if (result.rows.some((r) => r.config === KERNEL_CONFIG)) cols.push(KERNEL_CONFIG);
  return cols;
}

function find(result: PerfTestResult, metric: Metric, config: string, n: number): PerfRow | undefined {
  return result.rows.find((r) => r.metric === metric && r.config === config && r.n === n);
}

/** A table of one metric: header and body cells, plus footnotes for n/a and derived cells. */
export function metricTable(result: PerfTestResult, metric: Metric): { head: string[]; rows: string[][]; notes: string[] } {
  const cols = columnsOf(result);
  const notes: string[] = [];
  const noteIndex = new Map<string, number>();
  const mark = (text: string): string => {
    let i = noteIndex.get(text);
    if (i === undefined) {
      notes.push(text);
      i = notes.length;
      noteIndex.set(text, i);
    }
    return ` [${i}]`;
  };
  const body: string[][] = [];
  for (const n of result.slotCounts) {
    const k = find(result, metric, KERNEL_CONFIG, n)?.nsPerOp ?? null;
    const first = find(result, metric, cols[0] ?? '', n);
    const slots = first?.testSlots !== undefined && first.testSlots > 0 && first.testSlots !== n ? `${n} (${first.testSlots} test slots)` : String(n);
    const cells = cols.map((c) => {
      const r = find(result, metric, c, n);
      if (r === undefined) return '—';
      if (r.nsPerOp === null) return `n/a${r.note !== undefined ? mark(r.note) : ''}`;
      let cell = formatNs(r.nsPerOp);
      if (c !== KERNEL_CONFIG && k !== null) cell += ` (${fmtRatio(r.nsPerOp / k)} k)`;
      if (r.note !== undefined) cell += mark(r.note);
      return cell;
    });
    body.push([slots, ...cells]);
  }
  if (result.slotCounts.includes(LARGE_N) && result.slotCounts.includes(BASE_N)) {
    body.push([
      `${LARGE_N} / ${BASE_N}`,
      ...cols.map((c) => {
        const a = find(result, metric, c, LARGE_N)?.nsPerOp ?? null;
        const b = find(result, metric, c, BASE_N)?.nsPerOp ?? null;
        return a !== null && b !== null ? fmtRatio(a / b) : '—';
      }),
    ]);
  }
  return { head: ['N', ...cols], rows: body, notes };
}

function mdTable(head: readonly string[], rows: readonly (readonly string[])[], align: string[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [`| ${head.map(esc).join(' | ')} |`, `|${align.join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

export function machineLine(m: Record<string, string | number>): string {
  return `CPU ${String(m['cpu'])}, ${String(m['cores'])} cores, ${String(m['totalMemoryMiB'])} MiB; node ${String(m['node'])} (V8 ${String(m['v8'])}); kernel ${String(m['kernelRelease'])} (${String(m['os'])})`;
}

export interface RenderOptions {
  /** Where the SVG plots are, relative to the markdown (`''`: next to it); undefined: no plots. */
  plotDir?: string;
  /** Heading level of the title (1 for the report, 3 inside the perf-test section of docs/benchmarks.md). */
  level?: 1 | 2 | 3;
  /** The title. Default: the report's. */
  title?: string;
}

/** The markdown report (or the docs section with `level: 2`). */
export function renderReport(result: PerfTestResult, options: RenderOptions = {}): string {
  const out: string[] = [];
  const h = '#'.repeat(options.level ?? 1);
  const plotPath = (m: Metric): string => (options.plotDir ? `${options.plotDir.replace(/\/$/, '')}/${plotFile(m)}` : plotFile(m));
  out.push(`${h} ${options.title ?? '`kvmsim bench perf-test` — memslot_perf_test on the model and the kernel'}`, '');
  out.push(`Run of ${result.startedAt}, ${(result.durationMs / 1000).toFixed(1)} s. Machine: ${machineLine(result.machine)}.`, '');
  out.push(
    result.kernel.available
      ? `Kernel side: ${result.kernel.name ?? 'kernel'} through tools/kvm-oracle --timing (each figure sums the kernel time of the syscalls and ioctls, protocol overhead excluded).`
      : `Kernel side: **not measured** — ${result.kernel.reason ?? 'unavailable'}.`,
    '',
  );
  for (const s of result.skippedConfigs) out.push(`Skipped ${s.config}: ${s.reason}.`, '');
  out.push(
    `Model configs: ${result.configs.join(', ')}. Cell time ${result.options.cellMs} ms per workload; ${result.options.updateReps} kernel round trips per isolated update; fault figure from ${result.options.faultReps} × ${result.options.faultPages} pages; seed ${result.options.seed}.`,
    '',
  );
  out.push('Cells read `cost per op (model / kernel ratio k)`; the last row of a table is the N=32764 / N=509 ratio.', '');
  if (result.violations.length > 0) {
    out.push('**Violations found** (the model misbehaved during a workload):', '', ...result.violations.map((v) => `- ${v}`), '');
  }
  out.push(`${h}# Targets`, '');
  out.push(
    mdTable(
      ['target', 'verdict', 'figures'],
      result.targets.map((t) => [t.target, t.met ? 'met' : '**not met**', t.detail]),
      ['---', '---', '---'],
    ),
    '',
  );
  for (const metric of metricsOf(result)) {
    out.push(`${h}# ${metric}`, '', `${METRIC_UNITS[metric]}.`, '');
    if (options.plotDir !== undefined) out.push(`![${metric}](${plotPath(metric)})`, '');
    const t = metricTable(result, metric);
    out.push(mdTable(t.head, t.rows, ['---', ...t.head.slice(1).map(() => '---:')]), '');
    t.notes.forEach((note, i) => out.push(`[${i + 1}] ${note}`, ''));
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** Write the report and its plots into `dir`; returns the files written. */
export async function writeReport(dir: string, result: PerfTestResult): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const metric of metricsOf(result)) {
    const svg = await renderPlot(metric, METRIC_UNITS[metric], result.rows);
    const path = join(dir, plotFile(metric));
    await writeFile(path, svg);
    files.push(path);
  }
  const md = join(dir, REPORT_FILE);
  await writeFile(md, renderReport(result, { plotDir: '' }));
  files.push(md);
  await writeFile(join(dir, 'perf-test.json'), `${JSON.stringify(result, null, 2)}\n`);
  files.push(join(dir, 'perf-test.json'));
  return files;
}

/** The markers around the generated perf-test section of docs/benchmarks.md. */
export const DOCS_BEGIN = '<!-- perf-test:begin — generated by `kvmsim bench perf-test --docs`; do not edit by hand -->';
export const DOCS_END = '<!-- perf-test:end -->';

/**
 * Put `section` between the markers of `doc`, replacing what was there; without markers, append
 * it (with the markers) at the end.
 */
export function spliceDocs(doc: string, section: string): string {
  const block = `${DOCS_BEGIN}\n\n${section.trimEnd()}\n\n${DOCS_END}`;
  const b = doc.indexOf(DOCS_BEGIN);
  const e = doc.indexOf(DOCS_END);
  if (b >= 0 && e > b) return `${doc.slice(0, b)}${block}${doc.slice(e + DOCS_END.length)}`;
  return `${doc.trimEnd()}\n\n${block}\n`;
}
