/**
 * `kvmsim replay [file|-]`: replay protocol v1 (shared/specs/replay-protocol.md) against the
 * model, delegating every line to the core's `ReplaySession`.
 */
import { open, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { ArchBackend } from '@kvmsim/kvm-core';
import { referenceBackend } from '@kvmsim/kvm-core/testing';
import { x86Backend } from '@kvmsim/x86';
import {
  formatReplayOutput,
  MEMSLOT_ERRNO_SCENARIO,
  replayText,
  ReplaySession,
  addToReplaySummary,
  emptyReplaySummary,
  type ReplayOutput,
  type ReplayStep,
  type ReplaySummary,
} from '@kvmsim/kvm-core/replay';
import { EXIT, UsageError, type CommandContext } from '../context.js';
import { readLineBatches } from '../lines.js';
import { LineBuffer, renderKeyValues, renderTable, whyNotWritable, writeLine, type OutputSink } from '../output.js';
import { startProgress, type Progress } from '../progress.js';

/** The memslot store designs `--memslots` accepts. */
export const MEMSLOT_DESIGNS: readonly ['scalable', 'legacy'] = ['scalable', 'legacy'];
export type MemslotDesign = (typeof MEMSLOT_DESIGNS)[number];

/** Files at least this large get a progress bar (when stderr is a terminal). */
const PROGRESS_MIN_BYTES = 1024 * 1024;
/** At most this many disagreements are listed in the human summary (the JSON summary has all). */
const MAX_LISTED_DISAGREEMENTS = 20;
/** First key of the JSON summary; also marks a file `--json-summary FILE` may overwrite. */
const SUMMARY_KIND = 'kvmsim-replay-summary';

/** The backends `--arch` accepts: x86 (the default), or the core's reference backend with x86's limits. */
export const REPLAY_ARCHES = ['x86', 'reference'] as const;
/** The MMUs `--mmu` accepts (x86 only). */
export const REPLAY_MMUS = ['tdp', 'shadow'] as const;

/** The backend a replay runs on; `nestedTdp` adds x86's nested-TDP shadow MMU (rmaps) to either MMU. */
export function replayBackend(arch: string, mmu: string, nestedTdp = false): ArchBackend {
  if (!(REPLAY_ARCHES as readonly string[]).includes(arch)) throw new UsageError(`--arch: '${arch}' is not a backend (allowed: ${REPLAY_ARCHES.join(', ')})`, 'replay');
  if (!(REPLAY_MMUS as readonly string[]).includes(mmu)) throw new UsageError(`--mmu: '${mmu}' is not an MMU (allowed: ${REPLAY_MMUS.join(', ')})`, 'replay');
  if (arch === 'reference') {
    if (mmu !== 'tdp' || nestedTdp) throw new UsageError('--mmu and --nested-tdp apply to --arch x86 only', 'replay');
    return referenceBackend({ record: false });
  }
  return x86Backend({ mmu: mmu === 'shadow' ? 'shadow' : 'tdp', nestedTdp });
}

/** Parsed options of `kvmsim replay`. */
export interface ReplayCommandOptions {
  memslots: MemslotDesign;
  /** Default is `'x86'`. */
  arch?: string;
  /** Default is `'tdp'`. */
  mmu?: string;
  /** x86 nested TDP (shadow pages for an L2). Default is `false`. */
  nestedTdp?: boolean;
  raw?: boolean;
  json?: boolean;
  /** `true`: JSON summary on stderr; a string: write it to that file. */
  jsonSummary?: string | true;
}

/** One disagreement, as the JSON summary reports it. */
export interface ReplayDisagreement {
  line: number;
  case: string | null;
  input: string;
  output: ReplayOutput;
  expect: ReplayOutput;
}

/** The JSON summary of a replay (`--json`, `--json-summary`). */
export interface ReplayJsonSummary {
  kind: typeof SUMMARY_KIND;
  /** `builtin`, `stdin` or the file path as given. */
  source: string;
  memslots: MemslotDesign;
  ops: ReplaySummary['ops'];
  ok: ReplaySummary['ok'];
  errors: ReplaySummary['errors'];
  malformed: ReplaySummary['malformed'];
  /** Lines carrying an `expect` annotation. */
  expectations: ReplaySummary['expectations'];
  agreed: ReplaySummary['agreed'];
  allAgree: boolean;
  disagreements: ReplayDisagreement[];
  exitCode: number;
}

/** Register `replay` on the program. */
export function registerReplayCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('replay')
    .summary('replay protocol v1 operations against the model')
    .description(
      'Run replay protocol v1 (one JSON op per line in, one JSON answer per op out) against the model.\n' +
        'Without a file, run the built-in scenario: the memslot and dirty-log cases of the kernel errno\n' +
        'table, each annotated with the answer Linux 6.18.44 gave, and show model vs kernel as a table.',
    )
    .argument('[file]', "ops file (JSON lines); '-' reads stdin; omitted: the built-in scenario")
    .addOption(new Option('--arch <backend>', 'architecture backend').choices([...REPLAY_ARCHES]).default('x86'))
    .addOption(new Option('--mmu <mmu>', 'x86 MMU: the TDP MMU or the shadow MMU').choices([...REPLAY_MMUS]).default('tdp'))
    .option('--nested-tdp', 'x86: nested TDP (rmaps and shadow pages for an L2 next to L1\'s MMU)')
    .addOption(
      new Option('--memslots <design>', 'memslot store design').choices([...MEMSLOT_DESIGNS]).default('scalable'),
    )
    .option('--raw', 'built-in scenario: print protocol output lines instead of the table')
    .option('--json', 'machine-readable: stdout = protocol output lines (also for the built-in scenario), stderr = the summary as one JSON line')
    .option(
      '--json-summary [file]',
      'write the summary as JSON: one line on stderr (no file) or pretty-printed to FILE (stderr keeps the human summary)',
    )
    .addHelpText(
      'after',
      `
Output:
  stdout  exactly one protocol output line per input op, in input order, nothing else
          (so 'kvmsim replay ops.jsonl > out.jsonl' is a protocol peer). For the built-in
          scenario without --raw/--json: a human table (case, op, model answer, kernel answer).
  stderr  the summary after the run: ops, ok, errors by errno, malformed lines and, for lines
          annotated with "expect", how many agree (each disagreement listed with line number,
          case id, input, model output and expected output). With --json or a bare
          --json-summary it is one JSON object on one line instead. A progress bar is drawn on stderr for
          files of 1 MiB or more when stderr is a terminal and stdout is not (never with --json).
  Malformed lines are answered {"ret":-22,"errno":"EINVAL","error":...} and the run continues.
  Give FILE as '--json-summary=FILE' or after the ops file: a bare '--json-summary ops.jsonl'
  takes ops.jsonl as the summary file. An existing FILE is only overwritten if it is a
  previous kvmsim replay summary.

Exit status:
  0  the run completed and every "expect" annotation (if any) agreed
  1  at least one annotated expectation disagreed
  2  usage or input error (unknown option, invalid --memslots, unreadable file)
  3  internal error (a bug in kvmsim)

Examples:
  kvmsim replay                              built-in scenario, human table
  kvmsim replay ops.jsonl > answers.jsonl    replay a file, answers on stdout
  kvmsim replay - < ops.jsonl                the same from stdin
  kvmsim replay ops.jsonl --json-summary=summary.json --memslots legacy`,
    )
    .action(async (file: string | undefined, options: ReplayCommandOptions) => {
      ctx.setExitCode(await runReplay(file, options, ctx));
    });
}

/** Accumulates a {@link ReplaySummary} one step at a time (the core's own counting). */
class SummaryAccumulator {
  readonly summary: ReplaySummary = emptyReplaySummary();

  add(step: ReplayStep): void {
    addToReplaySummary(this.summary, step);
  }
}

/** A bug surfaced while executing a line (not an input problem). */
class InternalReplayError extends Error {
  constructor(lineNo: number, cause: unknown) {
    super(`internal error while executing line ${lineNo}: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
    this.name = 'InternalReplayError';
  }
}

function executeLine(session: ReplaySession, text: string, lineNo: number): ReplayStep | null {
  try {
    return session.line(text, lineNo);
  } catch (e) {
    throw new InternalReplayError(lineNo, e);
  }
}

/** Run `kvmsim replay`; returns the exit status. */
export async function runReplay(file: string | undefined, options: ReplayCommandOptions, ctx: CommandContext): Promise<number> {
  const { io } = ctx;
  const memslots = options.memslots;
  if (!(MEMSLOT_DESIGNS as readonly string[]).includes(memslots)) {
    throw new UsageError(`--memslots: '${String(memslots)}' is not a memslot store design (allowed: ${MEMSLOT_DESIGNS.join(', ')})`, 'replay');
  }
  const backend = replayBackend(options.arch ?? 'x86', options.mmu ?? 'tdp', options.nestedTdp ?? false);
  const json = options.json === true;
  if (typeof options.jsonSummary === 'string') await checkSummaryTarget(options.jsonSummary, file);
  const acc = new SummaryAccumulator();
  let source: string;

  if (file === undefined) {
    source = 'builtin';
    const steps = [...replayText(MEMSLOT_ERRNO_SCENARIO, { memslots, backend })];
    for (const step of steps) acc.add(step);
    if (json || options.raw === true) {
      const out = new LineBuffer(io.stdout);
      for (const step of steps) out.push(formatReplayOutput(step.output));
      await out.flush();
    } else {
      writeBuiltinTable(io.stdout, steps, memslots);
    }
  } else {
    let stream: NodeJS.ReadableStream;
    let progress: Progress;
    if (file === '-') {
      source = 'stdin';
      stream = io.stdin;
      progress = startProgress(io.stderr, { total: 0, enabled: false });
    } else {
      source = file;
      const opened = await openInput(file);
      stream = opened.stream;
      progress = startProgress(io.stderr, {
        total: opened.size,
        unit: 'bytes',
        label: file,
        enabled: !json && opened.size >= PROGRESS_MIN_BYTES && io.stdout.isTTY !== true,
      });
    }
    try {
      await replayStream(stream, memslots, backend, io.stdout, acc, (bytes) => progress.update(bytes), source);
    } finally {
      progress.stop();
    }
  }

  const summary = acc.summary;
  const exitCode = summary.disagreements.length > 0 ? EXIT.DISAGREE : EXIT.OK;
  const jsonSummary = toJsonSummary(summary, source, memslots, exitCode);
  // On stderr the JSON summary is one line (easy to pick out of a log); in a file it is pretty-printed.
  if (json || options.jsonSummary === true) writeLine(io.stderr, JSON.stringify(jsonSummary));
  else writeHumanSummary(io.stderr, summary, source, memslots);
  if (typeof options.jsonSummary === 'string') await writeSummaryFile(options.jsonSummary, jsonSummary);
  return exitCode;
}

async function openInput(file: string): Promise<{ stream: NodeJS.ReadableStream; size: number }> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    throw new UsageError(`cannot read ops file '${file}': ${describeFsError(e)}`);
  }
  const st = await handle.stat();
  if (st.isDirectory()) {
    await handle.close();
    throw new UsageError(`cannot read ops file '${file}': it is a directory`);
  }
  return { stream: handle.createReadStream({ highWaterMark: 256 * 1024 }), size: st.size };
}

function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const text: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'it is a directory',
    ENOTDIR: 'a path component is not a directory',
  };
  if (err.code !== undefined && text[err.code] !== undefined) return `${text[err.code]} (${err.code})`;
  return err.message ?? String(e);
}

/** Replay a stream line by line; output is flushed after every chunk read, so interactive peers get their answers. */
async function replayStream(
  stream: NodeJS.ReadableStream,
  memslots: MemslotDesign,
  backend: ArchBackend,
  stdout: OutputSink,
  acc: SummaryAccumulator,
  onBytes: (bytes: number) => void,
  source: string,
): Promise<void> {
  const session = new ReplaySession({ memslots, backend });
  const out = new LineBuffer(stdout);
  let lineNo = 0;
  const batches = readLineBatches(stream, onBytes);
  for (;;) {
    let next: IteratorResult<string[]>;
    try {
      next = await batches.next();
    } catch (e) {
      throw new UsageError(`error reading ${source === 'stdin' ? 'stdin' : `'${source}'`} after line ${lineNo}: ${describeFsError(e)}`);
    }
    if (next.done === true) break;
    for (const text of next.value) {
      lineNo++;
      const step = executeLine(session, text, lineNo);
      if (step === null) continue;
      acc.add(step);
      if (out.push(formatReplayOutput(step.output))) await out.flush();
    }
    await out.flush();
  }
  await out.flush();
}

// =================================================================================================
// Human output
// =================================================================================================

/** Shorter op names for the table (the protocol names are long). */
const OP_ABBREV: Record<string, string> = {
  set_user_memory_region: 'set_region',
  check_extension: 'check_ext',
};

const FIELD_ABBREV: Record<string, string> = {
  guest_phys_addr: 'gpa',
  memory_size: 'size',
  userspace_addr: 'uaddr',
  first_page: 'first',
  num_pages: 'num',
};

/** A compact one-line description of an input op: `set_region slot=0 flags=2 gpa=0 size=0x1000 uaddr=…`. */
export function describeOp(input: string): string {
  let o: unknown;
  try {
    o = JSON.parse(input);
  } catch {
    return truncate(input, 60);
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return truncate(input, 60);
  const rec = o as Record<string, unknown>;
  const op = typeof rec['op'] === 'string' ? (OP_ABBREV[rec['op']] ?? rec['op']) : '(no op)';
  const args: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (k === 'op' || k === 'case' || k === 'expect') continue;
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    args.push(k === 'cap' ? value : `${FIELD_ABBREV[k] ?? k}=${value}`);
  }
  return [op, ...args].join(' ');
}

/** A compact answer: `0`, `32764`, `EINVAL`, `0 bitmap=ff…`. */
export function describeAnswer(o: ReplayOutput): string {
  const parts: string[] = [o.ret < 0 ? (o.errno ?? String(o.ret)) : String(o.ret)];
  for (const [k, v] of Object.entries(o)) {
    if (k === 'ret' || k === 'errno' || k === 'error' || v === undefined) continue;
    parts.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return parts.join(' ');
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function writeBuiltinTable(stdout: OutputSink, steps: readonly ReplayStep[], memslots: MemslotDesign): void {
  writeLine(
    stdout,
    `Built-in scenario: memslot ABI and dirty-log cases of the kernel errno table, answered by the model\n` +
      `(memslots: ${memslots}) and, as annotated, by Linux 6.18.44 x86_64.`,
  );
  const rows = steps.map((step) => [
    String(step.lineNo),
    step.caseId ?? '',
    describeOp(step.input),
    step.malformed ? `${describeAnswer(step.output)} (malformed)` : describeAnswer(step.output),
    step.expect === undefined ? '—' : describeAnswer(step.expect),
    step.agrees === undefined ? '' : step.agrees ? '✓' : '✗',
  ]);
  writeLine(
    stdout,
    renderTable({
      head: ['line', 'case', 'op', 'model', 'kernel 6.18.44', ''],
      rows,
      align: ['right', 'left', 'left', 'left', 'left', 'center'],
      compact: true,
      ...(stdout.isTTY === true && stdout.columns !== undefined ? { maxWidth: stdout.columns } : {}),
    }),
  );
  const malformed = steps.filter((s) => s.malformed);
  if (malformed.length > 0) {
    writeLine(stdout, 'Malformed lines are answered EINVAL and the run continues:');
    for (const s of malformed) writeLine(stdout, `  ${formatReplayOutput(s.output)}`);
  }
}

function sourceLabel(source: string): string {
  return source === 'builtin' ? 'the built-in scenario' : source === 'stdin' ? 'stdin' : `'${source}'`;
}

function writeHumanSummary(stderr: OutputSink, s: ReplaySummary, source: string, memslots: MemslotDesign): void {
  const errorTotal = Object.values(s.errors).reduce((a, b) => a + b, 0);
  const byErrno = Object.entries(s.errors)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([errno, n]) => `${errno} ${n}`)
    .join(', ');
  const pairs: [string, string][] = [
    ['ops', String(s.ops)],
    ['ok', String(s.ok)],
    ['errors', errorTotal === 0 ? '0' : `${errorTotal} (${byErrno})`],
    ['malformed', `${s.malformed}${s.malformed > 0 ? ' (answered EINVAL, counted in errors)' : ''}`],
  ];
  if (s.expectations > 0) {
    pairs.push(['expect', `${s.agreed}/${s.expectations} agree with the annotated kernel answers`]);
  } else {
    pairs.push(['expect', 'no lines carry an "expect" annotation']);
  }
  writeLine(stderr, `replay summary: ${sourceLabel(source)}, memslots ${memslots}`);
  writeLine(stderr, renderKeyValues(pairs));
  if (s.disagreements.length > 0) {
    writeLine(stderr, `${s.disagreements.length} disagreement${s.disagreements.length === 1 ? '' : 's'}:`);
    for (const d of s.disagreements.slice(0, MAX_LISTED_DISAGREEMENTS)) {
      writeLine(stderr, `  line ${d.lineNo}${d.caseId === undefined ? '' : ` [case ${d.caseId}]`}`);
      writeLine(stderr, `    input:    ${d.input.trim()}`);
      writeLine(stderr, `    model:    ${formatReplayOutput(d.output)}`);
      writeLine(stderr, `    expected: ${formatReplayOutput(d.expect ?? { ret: 0 })}`);
    }
    const more = s.disagreements.length - MAX_LISTED_DISAGREEMENTS;
    if (more > 0) writeLine(stderr, `  … and ${more} more (--json-summary lists them all)`);
  }
}

function toJsonSummary(s: ReplaySummary, source: string, memslots: MemslotDesign, exitCode: number): ReplayJsonSummary {
  return {
    kind: SUMMARY_KIND,
    source,
    memslots,
    ops: s.ops,
    ok: s.ok,
    errors: s.errors,
    malformed: s.malformed,
    expectations: s.expectations,
    agreed: s.agreed,
    allAgree: s.agreed === s.expectations,
    disagreements: s.disagreements.map((d) => ({
      line: d.lineNo,
      case: d.caseId ?? null,
      input: d.input,
      output: d.output,
      expect: d.expect ?? { ret: 0 },
    })),
    exitCode,
  };
}

/** Before the run: make sure `--json-summary FILE` will not clobber the ops file or some other data. */
async function checkSummaryTarget(path: string, inputFile: string | undefined): Promise<void> {
  if (path === '-') {
    throw new UsageError(
      "--json-summary: '-' is not a file (stdout carries the protocol output); to replay stdin, write 'kvmsim replay - --json-summary'",
      'replay',
    );
  }
  if (inputFile !== undefined && inputFile !== '-' && resolve(inputFile) === resolve(path)) {
    throw new UsageError(`--json-summary: refusing to write the summary over the ops file '${path}'`, 'replay');
  }
  const why = await whyNotWritable(path);
  if (why !== undefined) throw new UsageError(`--json-summary: cannot write '${path}': ${why}`, 'replay');
  let head = '';
  try {
    const handle = await open(path, 'r');
    try {
      const buf = Buffer.alloc(256);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      head = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return; // absent (or unreadable: the write after the run reports that)
  }
  if (head.trim() !== '' && !head.includes(`"${SUMMARY_KIND}"`)) {
    throw new UsageError(
      `--json-summary: refusing to overwrite '${path}': it exists and is not a kvmsim replay summary ` +
        `(to replay it, put it before the flag or write --json-summary=FILE)`,
      'replay',
    );
  }
}

async function writeSummaryFile(path: string, summary: ReplayJsonSummary): Promise<void> {
  try {
    await writeFile(path, `${JSON.stringify(summary, null, 2)}\n`);
  } catch (e) {
    throw new UsageError(`--json-summary: cannot write '${path}': ${describeFsError(e)}`);
  }
}
