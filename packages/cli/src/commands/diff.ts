/**
 * `kvmsim diff`: run replay protocol v1 sequences (generated from seeds, or read from files)
 * through the model and through the real kernel (tools/kvm-oracle) — or through a second model
 * configuration — and compare them line by line by the protocol's rule.
 */
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { locateKernelOracle } from '@kvmsim/conformance/targets';
import { formatReplayOutput } from '@kvmsim/kvm-core/replay';
import { EXIT, UsageError, type CommandContext } from '../context.js';
import { diffSequence } from '../diff/compare.js';
import { createAgainstTarget, createModelTarget, describeModel, modelConfig, parseAgainst, type AgainstConfig, type ModelConfig } from '../diff/configs.js';
import { GENERATOR_VERSION, generateSequence } from '../diff/generator.js';
import {
  DIFF_SUMMARY_KIND,
  addOutcome,
  disagreementProblem,
  emptyTally,
  saveFailingSequence,
  type DiffJsonSummary,
  type DiffProblem,
  type DiffSequence,
  type DiffTally,
} from '../diff/report.js';
import { renderKeyValues, renderTable, writeLine, type OutputSink } from '../output.js';
import { startProgress } from '../progress.js';
import { MEMSLOT_DESIGNS, REPLAY_ARCHES, REPLAY_MMUS } from './replay.js';

/** Exit status of `kvmsim diff` when the kernel target cannot be used here (no usable /dev/kvm). */
export const DIFF_EXIT_UNAVAILABLE = 4;

/** Default directory for failing sequences. */
export const DEFAULT_SAVE_DIR = 'kvmsim-diff-failures';

/** Parsed options of `kvmsim diff`. */
export interface DiffCommandOptions {
  seed?: string;
  ops: string;
  count: string;
  arch: string;
  mmu: string;
  memslots: string;
  against: string;
  oracle?: string;
  /** A directory, or false for --no-save. */
  save: string | false;
  keepGoing?: boolean;
  json?: boolean;
  emit?: boolean;
}

/** Register `diff` on the program. */
export function registerDiffCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('diff')
    .summary('compare the model with the real kernel (or two model configs) on replay sequences')
    .description(
      'Run replay protocol v1 sequences through the model and through the real kernel (tools/kvm-oracle on ' +
        '/dev/kvm), or through a second model configuration (--against model:…), and compare the answers line ' +
        'by line (equal JSON after dropping "error"; lines the kernel answers ENOSPC are skipped). Sequences come ' +
        'from FILEs, or from the seeded generator (--seed S --ops N --count K): sequence i (0-based) uses seed ' +
        'S+i, so any one can be rerun alone with --seed S+i --count 1.',
    )
    .argument('[files...]', 'replay files to compare (instead of --seed)')
    .option('--seed <n>', 'generate sequences from this seed (u32; sequence i uses seed+i)')
    .option('--ops <n>', 'op lines per generated sequence', '200')
    .option('--count <k>', 'number of generated sequences', '1')
    .addOption(new Option('--arch <backend>', 'model backend').choices([...REPLAY_ARCHES]).default('x86'))
    .addOption(new Option('--mmu <mmu>', 'x86 MMU of the model').choices([...REPLAY_MMUS]).default('tdp'))
    .addOption(new Option('--memslots <design>', 'memslot store design of the model').choices([...MEMSLOT_DESIGNS]).default('scalable'))
    .option('--against <target>', "'kernel', or 'model[:SETTING,…]' (e.g. model:shadow, model:legacy): the model with those settings changed", 'kernel')
    .option('--oracle <path>', 'the kvm-oracle binary (default: $KVMSIM_ORACLE, else built from tools/kvm-oracle)')
    .option('--save <dir>', 'where a failing sequence is saved', DEFAULT_SAVE_DIR)
    .option('--no-save', 'do not save failing sequences')
    .option('--keep-going', 'continue with the next sequence after a disagreement (default: stop at the first)')
    .option('--emit', 'print the generated sequences on stdout and compare nothing')
    .option('--json', 'print the summary as one JSON document on stdout')
    .addHelpText(
      'after',
      `
Each sequence gets a fresh VM on both sides and is compared up to its first disagreeing line
(what follows runs on diverged state). By default the run stops after the first disagreeing
sequence; --keep-going runs them all. A failing sequence is saved, up to the failing line, as
a replay file under --save (default ./${DEFAULT_SAVE_DIR}) with a header comment naming the
sequence, both sides, the line and both answers; 'kvmsim diff FILE' replays it.
A progress bar is drawn on stderr when it is a terminal (never with --json).

Exit status:
  0  every sequence agrees
  1  a disagreement (the first is printed with its line, input and both answers)
  2  usage or input error
  3  internal error (a bug in kvmsim, or the oracle died or answered out of protocol)
  4  the kernel target is unavailable here (one line on stderr says why: no /dev/kvm, no compiler, …)

Examples:
  kvmsim diff --seed 1 --ops 2000 --count 50                 model (x86/tdp) vs the kernel
  kvmsim diff --seed 1 --ops 2000 --count 50 --mmu shadow
  kvmsim diff --seed 1 --count 20 --against model:legacy     scalable vs legacy memslots, no kernel needed
  kvmsim diff kvmsim-diff-failures/seed-7-*.jsonl            replay a saved failure
  kvmsim diff --seed 7 --ops 50 --emit > seq.jsonl           just the generated sequence`,
    )
    .action(async (files: string[], options: DiffCommandOptions) => {
      ctx.setExitCode(await runDiff(files, options, ctx));
    });
}

function parseCount(flag: string, text: string, min: number, max: number): number {
  const n = /^(0x[0-9a-f]+|[0-9]+)$/i.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag}: '${text}' is not an integer in ${min}…${max}`, 'diff');
  return n;
}

async function readSequenceFile(file: string): Promise<DiffSequence> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`cannot read replay file '${file}': ${err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EISDIR' ? 'it is a directory' : err.message}`, 'diff');
  }
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return { label: file, file, lines };
}

/** The sequences of a run, produced lazily (generated sequences are made one at a time). */
interface SequenceSource {
  total: number;
  opsEach: number | null;
  next(i: number): Promise<DiffSequence>;
}

function sequenceSource(files: readonly string[], options: DiffCommandOptions): SequenceSource {
  if (options.seed !== undefined) {
    if (files.length > 0) throw new UsageError('give either FILEs or --seed, not both', 'diff');
    const seed = parseCount('--seed', options.seed, 0, 0xffff_ffff);
    const ops = parseCount('--ops', options.ops, 1, 1_000_000);
    const count = parseCount('--count', options.count, 1, 1_000_000);
    return {
      total: count,
      opsEach: ops,
      next: (i) => {
        const s = (seed + i) >>> 0;
        return Promise.resolve({ label: `seed ${s}`, seed: s, lines: generateSequence({ seed: s, ops }) });
      },
    };
  }
  if (files.length === 0) throw new UsageError('nothing to compare: give replay FILEs or --seed S (see --help)', 'diff');
  return { total: files.length, opsEach: null, next: (i) => readSequenceFile(files[i]!) };
}

/** The flags that rerun one saved sequence with the same configuration. */
function rerunFlags(model: ModelConfig, againstSpec: string): string {
  return `{file} --arch ${model.arch} --mmu ${model.mmu} --memslots ${model.memslots}${againstSpec === 'kernel' ? '' : ` --against ${againstSpec}`}`;
}

/** Run `kvmsim diff`; returns the exit status. */
export async function runDiff(files: readonly string[], options: DiffCommandOptions, ctx: CommandContext): Promise<number> {
  const { io } = ctx;
  const source = sequenceSource(files, options);
  const model = modelConfig(options.arch, options.mmu, options.memslots);
  const parsedAgainst = parseAgainst(options.against, model);
  const json = options.json === true;
  let against: AgainstConfig = parsedAgainst;
  let unavailable: string | null = null;
  if (parsedAgainst.kind === 'kernel' && options.emit !== true) {
    // Locate (or build) the oracle once, not once per sequence.
    const located = locateKernelOracle(options.oracle === undefined ? {} : { binary: options.oracle });
    if ('reason' in located) unavailable = located.reason;
    else against = { kind: 'kernel', binary: located.binary };
  }

  if (options.emit === true) {
    if (options.seed === undefined) throw new UsageError('--emit needs --seed (it prints generated sequences)', 'diff');
    for (let i = 0; i < source.total; i++) io.stdout.write(`${(await source.next(i)).lines.join('\n')}\n`);
    return EXIT.OK;
  }

  const leftName = `model ${describeModel(model)}`;
  let rightName = against.kind === 'model' ? `model ${describeModel(against.model)}` : 'kernel';
  const tally = emptyTally();
  const progress = startProgress(io.stderr, {
    total: source.opsEach === null ? source.total : source.total * source.opsEach,
    enabled: !json && (source.opsEach === null ? source.total > 1 : source.opsEach * source.total >= 2000),
    label: leftName,
  });
  let done = 0;
  try {
    for (let i = 0; i < source.total && unavailable === null; i++) {
      const seq = await source.next(i);
      const right = await createAgainstTarget(against);
      if ('unavailable' in right) {
        unavailable = right.unavailable;
        break;
      }
      rightName = right.name;
      const left = createModelTarget(model);
      let outcome;
      try {
        outcome = await diffSequence(seq.lines, left, right, () => {
          if (source.opsEach !== null) progress.update(++done, seq.label);
        });
      } finally {
        await Promise.all([left.close(), right.close()]);
      }
      if (source.opsEach === null) progress.update(i + 1, seq.label);
      else progress.update((done = (i + 1) * source.opsEach), seq.label);
      addOutcome(tally, outcome);
      if (outcome.failure?.unavailable === true) {
        unavailable = outcome.failure.message;
        break;
      }
      let problem: DiffProblem | null = null;
      if (outcome.disagreement !== null) problem = disagreementProblem(seq, outcome.disagreement);
      else if (outcome.failure !== null) {
        const f = outcome.failure;
        problem = { sequence: seq.label, seed: seq.seed ?? null, file: seq.file ?? null, kind: 'failure', line: f.lineNo, input: f.input, left: null, right: null, message: f.message, saved: null, savedLine: null };
      }
      if (problem === null) continue;
      if (options.save !== false) {
        const saved = await saveFailingSequence(
          options.save,
          seq,
          leftName,
          rightName,
          { lineNo: problem.line, input: problem.input, left: problem.left, right: problem.right, message: problem.message },
          rerunFlags(model, options.against),
        );
        problem.saved = saved.path;
        problem.savedLine = saved.line;
      }
      tally.problems.push(problem);
      if (options.keepGoing !== true) break;
    }
  } finally {
    progress.stop();
  }

  const exitCode =
    unavailable !== null ? DIFF_EXIT_UNAVAILABLE : tally.problems.some((p) => p.kind === 'failure') ? EXIT.INTERNAL : tally.problems.length > 0 ? EXIT.DISAGREE : EXIT.OK;
  if (unavailable !== null) writeLine(io.stderr, `kvmsim diff: the kernel target is unavailable: ${unavailable}`);
  if (json) {
    const summary: DiffJsonSummary = {
      kind: DIFF_SUMMARY_KIND,
      left: leftName,
      right: rightName,
      generator:
        options.seed === undefined ? null : { version: GENERATOR_VERSION, seed: Number(options.seed), ops: Number(options.ops), count: Number(options.count) },
      files: [...files],
      sequences: tally.sequences,
      agreeingSequences: tally.agreeingSequences,
      ops: tally.ops,
      compared: tally.compared,
      skippedEnospc: tally.skipped,
      problems: tally.problems,
      unavailable,
      exitCode,
    };
    io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else if (unavailable === null || tally.sequences > 0) {
    writeHumanSummary(io.stdout, tally, leftName, rightName, source.total);
  }
  return exitCode;
}

function writeHumanSummary(out: OutputSink, t: DiffTally, leftName: string, rightName: string, planned: number): void {
  writeLine(out, `kvmsim diff: ${leftName} vs ${rightName}`);
  writeLine(
    out,
    renderTable({
      head: ['sequences', 'agree', 'disagree', 'failed', 'op lines', 'compared', 'skipped (ENOSPC)'],
      rows: [
        [
          t.sequences === planned ? String(t.sequences) : `${t.sequences} of ${planned}`,
          String(t.agreeingSequences),
          String(t.problems.filter((p) => p.kind === 'disagreement').length),
          String(t.problems.filter((p) => p.kind === 'failure').length),
          String(t.ops),
          String(t.compared),
          String(t.skipped),
        ],
      ],
      align: ['right', 'right', 'right', 'right', 'right', 'right', 'right'],
    }),
  );
  for (const p of t.problems) {
    const where = `${p.sequence}, line ${p.line}`;
    const pairs: [string, string][] = [['input', p.input]];
    if (p.kind === 'disagreement') {
      pairs.push([leftName, formatReplayOutput(p.left ?? { ret: 0 })], [rightName, formatReplayOutput(p.right ?? { ret: 0 })]);
    } else {
      pairs.push(['error', p.message ?? '']);
    }
    if (p.saved !== null) pairs.push(['saved', `${p.saved} (line ${String(p.savedLine)})`]);
    writeLine(out, `${p.kind === 'disagreement' ? 'disagreement' : 'failure'} in ${where}:`);
    writeLine(out, renderKeyValues(pairs));
  }
  if (t.problems.length === 0 && t.sequences === planned) writeLine(out, `all ${t.sequences} sequence${t.sequences === 1 ? '' : 's'} agree`);
  else if (t.problems.length > 0 && t.sequences < planned) writeLine(out, `stopped after the first disagreeing sequence (--keep-going runs all ${planned})`);
}
