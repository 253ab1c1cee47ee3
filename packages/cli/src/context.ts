/**
 * What a command handler gets from the program: the run's I/O and a way to set the exit status.
 */
import type { CliIo } from './output.js';

/** Exit statuses of `kvmsim`. */
export const EXIT: { readonly OK: 0; readonly DISAGREE: 1; readonly USAGE: 2; readonly INTERNAL: 3 } = {
  /** Success. */
  OK: 0,
  /** The run completed but an annotated expectation disagreed. */
  DISAGREE: 1,
  /** Bad usage or bad input (unknown flag, invalid value, unreadable file). */
  USAGE: 2,
  /** A bug in kvmsim (an unexpected exception). */
  INTERNAL: 3,
};

export interface CommandContext {
  readonly io: CliIo;
  /** Set the exit status of the run (the last call wins). */
  setExitCode(code: number): void;
}

/**
 * A usage or input error: `run()` prints `error: <message>` on stderr and exits with status 2.
 * `command` (e.g. `replay`) adds a pointer to that command's `--help`.
 */
export class UsageError extends Error {
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}
