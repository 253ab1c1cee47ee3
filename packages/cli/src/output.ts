/**
 * Shared output helpers: the injectable I/O of a run, tables, JSON and unit formatting.
 */
import { once } from 'node:events';
import { access, constants, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import Table from 'cli-table3';

/** Where a command writes. `process.stdout` / `process.stderr` fit, and so does {@link stringSink}. */
export interface OutputSink {
  write(chunk: string): unknown;
  /** True for a terminal; progress bars are drawn only on a TTY stderr. */
  readonly isTTY?: boolean;
  /** Terminal width, when known. */
  readonly columns?: number;
}

/** The streams of one run. `stdin` is read only by `kvmsim replay -`. */
export interface CliIo {
  stdin: NodeJS.ReadableStream;
  stdout: OutputSink;
  stderr: OutputSink;
}

/** A sink that collects everything written to it, for tests and embedding. */
export interface StringSink extends OutputSink {
  /** Everything written so far. */
  readonly text: string;
}

/** Create a {@link StringSink}; `isTTY` lets tests pretend to be a terminal. */
export function stringSink(isTTY = false): StringSink {
  const chunks: string[] = [];
  return {
    isTTY,
    write(chunk: string): boolean {
      chunks.push(chunk);
      return true;
    },
    get text(): string {
      return chunks.join('');
    },
  };
}

/** Write one line (a newline is appended). */
export function writeLine(sink: OutputSink, line = ''): void {
  sink.write(`${line}\n`);
}

/** Write a value as pretty JSON (one document, newline-terminated). */
export function writeJson(sink: OutputSink, value: unknown): void {
  sink.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Options of {@link renderTable}. */
export interface TableSpec {
  head: string[];
  rows: string[][];
  /** Column alignment, one per column; default left. */
  align?: ('left' | 'right' | 'center')[];
  /** No separator lines between body rows. */
  compact?: boolean;
  /**
   * Fit the table into this many columns by wrapping the widest columns' cells (at spaces, and
   * inside words longer than the column). Default: no limit.
   */
  maxWidth?: number;
}

/** Narrowest a column is shrunk to by {@link TableSpec.maxWidth}. */
const MIN_COLUMN_WIDTH = 8;

function textWidth(s: string): number {
  return Math.max(0, ...s.split('\n').map((line) => [...line].length));
}

/** Wrap `text` into lines of at most `width` characters, at spaces where possible. */
export function wrapText(text: string, width: number): string {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      let w = word;
      const candidate = line === '' ? w : `${line} ${w}`;
      if ([...candidate].length <= width) {
        line = candidate;
        continue;
      }
      if (line !== '') out.push(line);
      while ([...w].length > width) {
        out.push([...w].slice(0, width).join(''));
        w = [...w].slice(width).join('');
      }
      line = w;
    }
    out.push(line);
  }
  return out.join('\n');
}

/** Render a plain (uncoloured) box table, without a trailing newline. */
export function renderTable(spec: TableSpec): string {
  const ncols = spec.head.length;
  const widths = spec.head.map((h, i) => Math.max(textWidth(h), ...spec.rows.map((r) => textWidth(r[i] ?? ''))));
  let head = spec.head;
  let rows = spec.rows;
  let colWidths: number[] | undefined;
  if (spec.maxWidth !== undefined && Number.isFinite(spec.maxWidth)) {
    // Each column has one space of padding on both sides, plus ncols + 1 border characters.
    let total = widths.reduce((a, w) => a + w + 2, ncols + 1);
    // Shrink, one character at a time, the column where that adds the fewest wrapped lines (ties:
    // the widest), so a few long outliers (bitmaps) wrap before a column of long cells does.
    const lineCount = (i: number, w: number): number =>
      spec.rows.reduce((n, r) => n + wrapText(r[i] ?? '', w).split('\n').length, 0);
    const lines = widths.map((w, i) => lineCount(i, w));
    while (total > spec.maxWidth) {
      let best = -1;
      let bestCost = Infinity;
      let bestLines = 0;
      for (let i = 0; i < ncols; i++) {
        const w = widths[i]!;
        if (w <= Math.max(MIN_COLUMN_WIDTH, textWidth(spec.head[i]!))) continue;
        const narrower = lineCount(i, w - 1);
        const cost = narrower - lines[i]!;
        if (cost < bestCost || (cost === bestCost && w > widths[best]!)) {
          best = i;
          bestCost = cost;
          bestLines = narrower;
        }
      }
      if (best < 0) break;
      widths[best]!--;
      lines[best] = bestLines;
      total--;
    }
    head = spec.head.map((h, i) => wrapText(h, widths[i]!));
    rows = spec.rows.map((r) => r.map((c, i) => wrapText(c, widths[i]!)));
    colWidths = widths.map((w) => w + 2);
  }
  const table = new Table({
    head,
    style: { head: [], border: [], compact: spec.compact === true },
    ...(spec.align ? { colAligns: spec.align } : {}),
    ...(colWidths ? { colWidths } : {}),
  });
  for (const row of rows) table.push(row);
  return table.toString();
}

/** Render `key: value` pairs as a borderless two-column block, without a trailing newline. */
export function renderKeyValues(pairs: readonly (readonly [string, string])[], indent = '  '): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join('\n');
}

/** Format a duration in nanoseconds with three significant digits and a unit: `842 ns`, `1.23 µs`, `45.6 ms`. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return String(ns);
  const units: readonly (readonly [string, number])[] = [
    ['s', 1e9],
    ['ms', 1e6],
    ['µs', 1e3],
    ['ns', 1],
  ];
  const abs = Math.abs(ns);
  for (const [unit, scale] of units) {
    if (abs >= scale || unit === 'ns') {
      const v = ns / scale;
      const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
      // Rounding may carry into the next unit (999.6 ns → "1000 ns"); good enough for a table.
      return `${v.toFixed(digits)} ${unit}`;
    }
  }
  return `${ns} ns`;
}

/**
 * Buffers output lines and writes them in large chunks. {@link flush} honours back-pressure when
 * the sink is a real stream (it waits for `drain` when `write` returns false).
 */
export class LineBuffer {
  private readonly sink: OutputSink;
  private readonly limit: number;
  private parts: string[] = [];
  private size = 0;

  constructor(sink: OutputSink, limit: number = 64 * 1024) {
    this.sink = sink;
    this.limit = limit;
  }

  /** Queue one line; returns true when the buffer is over its limit and should be flushed. */
  push(line: string): boolean {
    this.parts.push(line, '\n');
    this.size += line.length + 1;
    return this.size >= this.limit;
  }

  /** Write everything queued. */
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const text = this.parts.join('');
    this.parts = [];
    this.size = 0;
    const ok = this.sink.write(text);
    const emitter = this.sink as Partial<NodeJS.EventEmitter>;
    if (ok === false && typeof emitter.once === 'function') await once(emitter as NodeJS.EventEmitter, 'drain');
  }
}

/**
 * Before a long run: a message saying why `path` cannot be written (its directory is missing or
 * not writable, or it is a directory), or undefined when it looks writable. Creates nothing.
 */
export async function whyNotWritable(path: string): Promise<string | undefined> {
  try {
    if ((await stat(path)).isDirectory()) return 'it is a directory';
    await access(path, constants.W_OK);
    return undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return 'permission denied';
  }
  const dir = dirname(path);
  try {
    if (!(await stat(dir)).isDirectory()) return `'${dir}' is not a directory`;
    await access(dir, constants.W_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? `directory '${dir}' does not exist` : `directory '${dir}' is not writable`;
  }
}
