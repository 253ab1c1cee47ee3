/**
 * What `kvmsim diff` reports: the run's tally, the JSON summary, and the file a failing sequence
 * is saved to (a replay file that reproduces the disagreement with `kvmsim diff FILE`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { formatReplayOutput, type ReplayOutput } from '@kvmsim/kvm-core/replay';
import type { LineDisagreement, SequenceOutcome } from './compare.js';

/** First key of the JSON summary. */
export const DIFF_SUMMARY_KIND = 'kvmsim-diff-summary';

/** One sequence to diff: generated from a seed, or read from a file. */
export interface DiffSequence {
  /** `seed 7` or the file path. */
  label: string;
  seed?: number;
  file?: string;
  lines: string[];
}

/** A disagreement (or an oracle failure) as reported and saved. */
export interface DiffProblem {
  sequence: string;
  seed: number | null;
  file: string | null;
  kind: 'disagreement' | 'failure';
  /** Line number in the sequence as generated or read. */
  line: number;
  input: string;
  /** The left (model under test) answer; null for a failure. */
  left: ReplayOutput | null;
  /** The right answer; null for a failure. */
  right: ReplayOutput | null;
  /** For a failure: what went wrong. */
  message: string | null;
  /** Where the sequence was saved, and the line number there; null with --no-save. */
  saved: string | null;
  savedLine: number | null;
}

/** Running totals over sequences. */
export interface DiffTally {
  sequences: number;
  ops: number;
  compared: number;
  skipped: number;
  agreeingSequences: number;
  problems: DiffProblem[];
}

export function emptyTally(): DiffTally {
  return { sequences: 0, ops: 0, compared: 0, skipped: 0, agreeingSequences: 0, problems: [] };
}

export function addOutcome(t: DiffTally, o: SequenceOutcome): void {
  t.sequences++;
  t.ops += o.ops;
  t.compared += o.compared;
  t.skipped += o.skipped;
  if (o.disagreement === null && o.failure === null) t.agreeingSequences++;
}

/** The JSON summary (`--json`). */
export interface DiffJsonSummary {
  kind: typeof DIFF_SUMMARY_KIND;
  left: string;
  right: string;
  /** Generated runs: the generator version and the flags; null for files. */
  generator: { version: number; seed: number; ops: number; count: number } | null;
  files: string[];
  sequences: number;
  agreeingSequences: number;
  ops: number;
  compared: number;
  skippedEnospc: number;
  problems: DiffProblem[];
  /** Set when the kernel target was unavailable (exit status 4). */
  unavailable: string | null;
  exitCode: number;
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9.]+/g, '-').replace(/^-+|-+$/g, '');
}

/**
 * Save the failing sequence, up to and including the failing line, under `dir`, with a header
 * comment naming the sequence, both sides and the failing line (numbered as in the saved file).
 * Returns the path and the failing line's number in it.
 */
export async function saveFailingSequence(
  dir: string,
  seq: DiffSequence,
  leftName: string,
  rightName: string,
  problem: { lineNo: number; input: string; left: ReplayOutput | null; right: ReplayOutput | null; message: string | null },
  rerun: string,
): Promise<{ path: string; line: number }> {
  const what = seq.seed !== undefined ? `seed-${seq.seed}` : slug(basename(seq.file ?? seq.label).replace(/\.jsonl?$/, ''));
  const path = join(dir, `${what}-${slug(leftName)}-vs-${slug(rightName)}.jsonl`);
  const header = (line: number): string[] => [
    `# kvmsim diff: ${problem.message === null ? 'disagreement' : 'failure'} in ${seq.label}: ${leftName} vs ${rightName}`,
    `# first ${problem.message === null ? 'disagreeing' : 'failing'} line: ${line} (of this file; line ${problem.lineNo} of the sequence)`,
    `#   input: ${problem.input}`,
    ...(problem.message === null
      ? [`#   ${leftName}: ${formatReplayOutput(problem.left ?? { ret: 0 })}`, `#   ${rightName}: ${formatReplayOutput(problem.right ?? { ret: 0 })}`]
      : [`#   error: ${problem.message.split('\n')[0] ?? ''}`, '#']),
    `# rerun: kvmsim diff ${rerun.replace('{file}', path)}`,
  ];
  const headerLines = header(0).length;
  const line = problem.lineNo + headerLines;
  const text = [...header(line), ...seq.lines.slice(0, problem.lineNo)].join('\n');
  await mkdir(dir, { recursive: true });
  await writeFile(path, `${text}\n`);
  return { path, line };
}

/** Turn a line disagreement into a problem record. */
export function disagreementProblem(seq: DiffSequence, d: LineDisagreement): DiffProblem {
  return {
    sequence: seq.label,
    seed: seq.seed ?? null,
    file: seq.file ?? null,
    kind: 'disagreement',
    line: d.lineNo,
    input: d.input,
    left: d.left,
    right: d.right,
    message: null,
    saved: null,
    savedLine: null,
  };
}
