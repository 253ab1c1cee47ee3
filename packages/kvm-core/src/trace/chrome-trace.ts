/**
 * Chrome trace-event JSON, for ui.perfetto.dev (toolchain-and-style.md §B.8): every KVM trace
 * event becomes a thread-scoped instant (`ph: 'I'`, `s: 't'`) carrying the event's raw args, with
 * `cat` = the event's system from the format registry (`kvm`, `kvmmmu`; `kvmsim` for model-only
 * events) and `ts` from the same deterministic clock as the ftrace sink (event n at n µs).
 *
 * @see google/perfetto docs/getting-started/other-formats.md; the Trace Event Format document
 */
import type { KvmTraceEvent, KvmTraceSink } from '../kvm.js';
import { defaultTraceFormatRegistry, type TraceArgs, type TraceFormatRegistry } from './formats.js';
import { sequenceClock, type TraceClock } from './ftrace-text.js';
import type { PrintfFlavor } from './printk.js';

/** One instant event of the JSON. */
export interface ChromeInstantEvent {
  readonly name: string;
  readonly cat: string;
  readonly ph: 'I';
  /** Scope: thread. */
  readonly s: 't';
  /** Microseconds. */
  readonly ts: number;
  readonly pid: number;
  readonly tid: number;
  readonly args: TraceArgs;
}

/** Process/thread names (`ph: 'M'`). */
export interface ChromeMetadataEvent {
  readonly name: 'process_name' | 'thread_name';
  readonly ph: 'M';
  readonly pid: number;
  readonly tid: number;
  readonly args: { readonly name: string };
}

export type ChromeTraceEvent = ChromeInstantEvent | ChromeMetadataEvent;

/** The JSON object format. */
export interface ChromeTraceFile {
  readonly traceEvents: readonly ChromeTraceEvent[];
  readonly displayTimeUnit: 'ns' | 'ms';
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ChromeTraceOptions {
  /** For `cat` (the event's system) and the optional message. Default {@link defaultTraceFormatRegistry}. */
  readonly registry?: TraceFormatRegistry;
  /** pid of every event: the VM. Default `1`. */
  readonly pid?: number;
  /** tid of every event. Default `0`. */
  readonly tid?: number;
  /** Name of the process track (a `process_name` metadata event). Default `'kvmsim VM'`; `null` for none. */
  readonly processName?: string | null;
  /** Microseconds of an event. Default: its sequence number (1-based). */
  readonly clock?: TraceClock;
  /**
   * Add the TP_printk message as `args.printk` to events with a registered format (the raw
   * fields stay). Default `false`.
   */
  readonly includeMessage?: boolean;
  /** printf flavour of that message. Default `'kernel'`. */
  readonly flavor?: PrintfFlavor;
}

/** A trace sink that collects Chrome trace events. */
export interface ChromeTraceSink extends KvmTraceSink {
  /** Metadata events first, then one instant per KVM event, in emission order. */
  readonly events: ChromeTraceEvent[];
  /** `{ traceEvents, displayTimeUnit: 'ns' }`. */
  toJSON(): ChromeTraceFile;
  /** `JSON.stringify(this.toJSON())`. */
  json(): string;
  /** Forget the instants (metadata stays) and restart the sequence numbers. */
  clear(): void;
}

export function createChromeTraceSink(options: ChromeTraceOptions = {}): ChromeTraceSink {
  const registry = options.registry ?? defaultTraceFormatRegistry;
  const clock = options.clock ?? sequenceClock;
  const pid = options.pid ?? 1;
  const tid = options.tid ?? 0;
  const processName = options.processName === undefined ? 'kvmsim VM' : options.processName;
  const meta: ChromeTraceEvent[] = processName === null ? [] : [{ name: 'process_name', ph: 'M', pid, tid, args: { name: processName } }];
  const events: ChromeTraceEvent[] = [...meta];
  let seq = 0;
  const sink = (event: KvmTraceEvent): void => {
    seq++;
    const format = registry.get(event.name);
    let args: TraceArgs = { ...event.args };
    if (options.includeMessage && format !== undefined) args = { ...args, printk: registry.format(event, options.flavor ?? 'kernel')! };
    events.push({ name: event.name, cat: format?.system ?? 'kvmsim', ph: 'I', s: 't', ts: clock(seq, event), pid, tid, args });
  };
  const toJSON = (): ChromeTraceFile => ({ traceEvents: [...events], displayTimeUnit: 'ns' });
  return Object.assign(sink, {
    events,
    toJSON,
    json: (): string => JSON.stringify(toJSON()),
    clear: (): void => {
      events.length = 0;
      events.push(...meta);
      seq = 0;
    },
  });
}

/** One sink feeding several (kvm.trace takes one). */
export function teeTraceSinks(...sinks: readonly KvmTraceSink[]): KvmTraceSink {
  return (event) => {
    for (const s of sinks) s(event);
  };
}
