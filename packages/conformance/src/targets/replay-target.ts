/**
 * A target that answers replay protocol v1 lines (shared/specs/replay-protocol.md): the model
 * (a ReplaySession in this process) or the real kernel (tools/kvm-oracle, a child process).
 * The ABI and guest-visible case groups, `kvmsim diff` and `kvmsim bench perf-test` all speak to
 * targets through this one interface, so each can run against either side.
 */
import { ReplaySession, parseReplayLine, type ReplayOptions, type ReplayOutput } from '@kvmsim/kvm-core/replay';

export interface ReplayTarget {
  /** "model x86/tdp scalable", "kernel 6.18.44" … for reports. */
  readonly name: string;
  /** `'model'` or `'kernel'`. */
  readonly kind: 'model' | 'kernel';
  /**
   * Answer one input line. Blank and comment lines answer null (the protocol gives them no
   * output). Answers come back in input order.
   */
  send(line: string): Promise<ReplayOutput | null>;
  /** End the session (the kernel target's process exits; the model's VM is dropped). */
  close(): Promise<void>;
}

/** A target whose answers come from the model, through a fresh {@link ReplaySession}. */
export function modelTarget(options: ReplayOptions & { name?: string } = {}): ReplayTarget {
  const session = new ReplaySession(options);
  let lineNo = 0;
  return {
    name: options.name ?? `model ${options.backend?.name ?? 'reference'} ${options.memslots ?? 'scalable'}`,
    kind: 'model',
    send(line: string): Promise<ReplayOutput | null> {
      lineNo++;
      if (parseReplayLine(line, lineNo).kind === 'skip') return Promise.resolve(null);
      const step = session.line(line, lineNo);
      return Promise.resolve(step === null ? null : step.output);
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
