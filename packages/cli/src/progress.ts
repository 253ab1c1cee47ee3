/**
 * Progress bars on stderr. A bar is drawn only when the caller allows it (no `--json` on stdout)
 * and stderr is a terminal; otherwise every method is a no-op.
 */
import cliProgress from 'cli-progress';
import type { OutputSink } from './output.js';

/** A started progress bar (or the no-op stand-in). */
export interface Progress {
  /** Set the absolute progress; `label` replaces the text shown after the bar. */
  update(value: number, label?: string): void;
  /** Change the total (for example once a file size is known). */
  setTotal(total: number): void;
  /** Remove the bar from the terminal. Idempotent. */
  stop(): void;
}

const NO_PROGRESS: Progress = {
  update(): void {},
  setTotal(): void {},
  stop(): void {},
};

/** Options of {@link startProgress}. */
export interface ProgressOptions {
  /** The total the bar counts towards. */
  total: number;
  /** Show the bar at all (false for `--json` runs). */
  enabled: boolean;
  /** `bytes` shows `1.2/8.0 MiB`; `count` shows `3/12`. Default `count`. */
  unit?: 'bytes' | 'count';
  /** Text shown after the bar at start. */
  label?: string;
}

function mib(n: number): string {
  return (n / (1024 * 1024)).toFixed(1);
}

/** Start a progress bar on `stderr` if it is a TTY and `enabled`; otherwise return a no-op. */
export function startProgress(stderr: OutputSink, options: ProgressOptions): Progress {
  if (!options.enabled || stderr.isTTY !== true) return NO_PROGRESS;
  const bytes = options.unit === 'bytes';
  const bar = new cliProgress.SingleBar(
    {
      stream: stderr as NodeJS.WriteStream,
      format: bytes
        ? '{bar} {percentage}% | {valueMiB}/{totalMiB} MiB | ETA {eta_formatted} {label}'
        : '{bar} {percentage}% | {value}/{total} | ETA {eta_formatted} {label}',
      hideCursor: true,
      clearOnComplete: true,
      stopOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let total = options.total;
  let stopped = false;
  const payload = (value: number, label: string): Record<string, string> =>
    bytes ? { label, valueMiB: mib(value), totalMiB: mib(total) } : { label };
  let label = options.label ?? '';
  bar.start(total, 0, payload(0, label));
  return {
    update(value: number, newLabel?: string): void {
      if (stopped) return;
      if (newLabel !== undefined) label = newLabel;
      bar.update(value, payload(value, label));
    },
    setTotal(newTotal: number): void {
      if (stopped) return;
      total = newTotal;
      bar.setTotal(newTotal);
    },
    stop(): void {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
