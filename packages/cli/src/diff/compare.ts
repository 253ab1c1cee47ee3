/**
 * The comparison engine of `kvmsim diff`: one sequence through two {@link ReplayTarget}s, compared
 * line by line by the protocol's rule (equal JSON after dropping `"error"`), stopping at the first
 * disagreeing line (later lines run on diverged state, so they say nothing new).
 */
import type { ReplayTarget } from '@kvmsim/conformance/targets';
import { outputsAgree, parseReplayLine, type ReplayOutput } from '@kvmsim/kvm-core/replay';

/** The first line two targets answered differently. */
export interface LineDisagreement {
  /** 1-based physical line number in the sequence. */
  lineNo: number;
  input: string;
  left: ReplayOutput;
  right: ReplayOutput;
}

/** One sequence's outcome. */
export interface SequenceOutcome {
  /** Op lines (lines that get an answer). */
  ops: number;
  /** Op lines compared (up to and including a disagreement). */
  compared: number;
  /** Of those, lines skipped because the kernel answered ENOSPC (the oracle found no room). */
  skipped: number;
  disagreement: LineDisagreement | null;
  /** The right-hand target failed (e.g. the oracle died): the message and the line it died on. */
  failure: { lineNo: number; input: string; message: string; unavailable: boolean } | null;
}

type Settled = { ok: true; value: ReplayOutput | null } | { ok: false; error: Error };

function settle(p: Promise<ReplayOutput | null>): Promise<Settled> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (e: unknown) => ({ ok: false as const, error: e instanceof Error ? e : new Error(String(e)) }),
  );
}

/** The kernel answers ENOSPC where the oracle has no room for its guest: the protocol skips those lines. */
function isOracleNoRoom(target: ReplayTarget, o: ReplayOutput): boolean {
  return target.kind === 'kernel' && o.ret === -28 && o.errno === 'ENOSPC';
}

/**
 * Run `lines` through both targets and compare. Every line is sent to the right-hand target at
 * once (a child process answers in order; pipelining hides its round trips), and answers are
 * compared in input order. `onLine` is called after each compared op line (for progress).
 * The targets are not closed here.
 */
export async function diffSequence(lines: readonly string[], left: ReplayTarget, right: ReplayTarget, onLine?: () => void): Promise<SequenceOutcome> {
  const rightAnswers = lines.map((line) => settle(right.send(line)));
  const outcome: SequenceOutcome = { ops: 0, compared: 0, skipped: 0, disagreement: null, failure: null };
  for (let i = 0; i < lines.length; i++) {
    if (parseReplayLine(lines[i]!, i + 1).kind !== 'skip') outcome.ops++;
  }
  for (let i = 0; i < lines.length; i++) {
    const input = lines[i]!;
    const l = await left.send(input);
    const r = await rightAnswers[i]!;
    if (!r.ok) {
      outcome.failure = { lineNo: i + 1, input, message: r.error.message, unavailable: (r.error as { unavailable?: unknown }).unavailable === true };
      break;
    }
    if (l === null && r.value === null) continue;
    outcome.compared++;
    onLine?.();
    if (l !== null && r.value !== null && isOracleNoRoom(right, r.value)) {
      outcome.skipped++;
      continue;
    }
    if (l === null || r.value === null || !outputsAgree(l, r.value)) {
      outcome.disagreement = { lineNo: i + 1, input, left: l ?? { ret: 0 }, right: r.value ?? { ret: 0 } };
      break;
    }
  }
  return outcome;
}
