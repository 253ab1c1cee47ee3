/**
 * ftrace text, for diffing against /sys/kernel/tracing/trace (or, with the glibc flavour, against
 * `trace-cmd report`). A line is what trace_print_context() + trace_raw_output_prep() + TP_printk
 * print:
 *
 *     "%16s-%-7d [%03d] %s %5lu.%06lu: %s: " TASK, PID, CPU, FLAGS, secs, usecs, EVENT, then PRINTK
 *
 * e.g. `          kvmsim-1       [000] .....     0.000003: kvm_age_hva: mmu notifier age hva: …`.
 * FLAGS is the 5-character irqs-off/need-resched/hardirq-softirq/preempt-depth/migrate-disable
 * column of 6.x kernels (`.....` = none). The timestamp is the model's deterministic clock: by
 * default the event's sequence number (1, 2, …) in microseconds.
 *
 * @see kernel/trace/trace_output.c trace_print_context(), trace_print_lat_fmt(),
 *      trace_print_time(), trace_raw_output_prep() (6.12)
 */
import type { KvmTraceEvent, KvmTraceSink } from '../kvm.js';
import { defaultTraceFormatRegistry, formatRawArgs, type TraceFormatRegistry } from './formats.js';
import type { PrintfFlavor } from './printk.js';

/** The deterministic model clock: microseconds of the event with sequence number `seq` (1-based). */
export type TraceClock = (seq: number, event: KvmTraceEvent) => number;

/** Default clock: event n happens at n µs. */
export const sequenceClock: TraceClock = (seq) => seq;

export interface FtraceTextOptions {
  /** Formats to print with. Default: {@link defaultTraceFormatRegistry}. */
  readonly registry?: TraceFormatRegistry;
  /** Task comm. Default `'kvmsim'`. */
  readonly task?: string;
  /** Task pid. Default `1`. */
  readonly pid?: number;
  /** CPU column. Default `0`. */
  readonly cpu?: number;
  /** The latency-format flags column. Default `'.....'`. */
  readonly flags?: string;
  /** Microseconds of an event. Default {@link sequenceClock}. */
  readonly clock?: TraceClock;
  /** printf flavour of the message. Default `'kernel'` (as /sys/kernel/tracing/trace). */
  readonly flavor?: PrintfFlavor;
  /**
   * Events without a registered format: `'raw'` prints their args as `field=value` pairs (default),
   * `'skip'` drops them (no kernel tracepoint to diff against).
   */
  readonly unknown?: 'raw' | 'skip';
}

/** A trace sink that collects ftrace text lines. */
export interface FtraceTextSink extends KvmTraceSink {
  /** The lines so far, without newlines. */
  readonly lines: string[];
  /** The lines joined, each ending with a newline. */
  text(): string;
  /** Forget the lines and restart the sequence numbers. */
  clear(): void;
}

/** ` %5lu.%06lu` without the leading space: microseconds as seconds. */
export function formatFtraceTimestamp(us: number): string {
  const t = Math.max(0, Math.floor(us));
  const secs = Math.floor(t / 1e6);
  const rem = t - secs * 1e6;
  return `${String(secs).padStart(5)}.${String(rem).padStart(6, '0')}`;
}

/** One ftrace line for a message already formatted. */
export function formatFtraceLine(name: string, message: string, us: number, options: FtraceTextOptions = {}): string {
  const task = (options.task ?? 'kvmsim').padStart(16);
  const pid = String(options.pid ?? 1).padEnd(7);
  const cpu = String(options.cpu ?? 0).padStart(3, '0');
  return `${task}-${pid} [${cpu}] ${options.flags ?? '.....'} ${formatFtraceTimestamp(us)}: ${name}: ${message}`;
}

/**
 * A sink writing one ftrace line per event. Attach it with `createVm({ trace: sink })` (or
 * `kvm.trace = sink`, which some backends only notice at their next emission).
 */
export function createFtraceTextSink(options: FtraceTextOptions = {}): FtraceTextSink {
  const registry = options.registry ?? defaultTraceFormatRegistry;
  const clock = options.clock ?? sequenceClock;
  const flavor = options.flavor ?? 'kernel';
  const lines: string[] = [];
  let seq = 0;
  const sink = (event: KvmTraceEvent): void => {
    // Every event advances the clock, skipped or not, so that sinks on one VM agree on times.
    seq++;
    let message = registry.format(event, flavor);
    if (message === undefined) {
      if (options.unknown === 'skip') return;
      message = formatRawArgs(event.args);
    }
    lines.push(formatFtraceLine(event.name, message, clock(seq, event), options));
  };
  return Object.assign(sink, {
    lines,
    text: (): string => lines.map((l) => `${l}\n`).join(''),
    clear: (): void => {
      lines.length = 0;
      seq = 0;
    },
  });
}
