/**
 * Trace-event formats: for each event name, its system, its TP_printk format and the printk
 * arguments, each either the name of a field of the event's args (`__entry->field`) or a function
 * of the args (a TP_printk expression such as `__entry->r ? "r" : "-"`).
 *
 * The generic `kvm` events come preloaded; architecture packages add theirs with
 * {@link TraceFormatRegistry.register} (e.g. `registerKvmmmuTraceFormats(registry)` of
 * @kvmsim/x86). Formats are per registry, so a registry can be built per kernel version.
 *
 * @see include/trace/events/kvm.h (6.12; unchanged for these events in 6.18)
 */
import type { KvmTraceEvent } from '../kvm.js';
import { formatPrintk, type PrintfFlavor, type PrintkArg } from './printk.js';

/** The raw argument values an event carries (KvmTraceEvent.args). */
export type TraceArgs = KvmTraceEvent['args'];

/** One printk argument: a field name of the event's args, or an expression over them. */
export type PrintkArgSource = string | ((args: TraceArgs) => PrintkArg);

/** An event's TP_printk. */
export interface TraceEventFormat {
  /** Event name, e.g. `kvm_unmap_hva_range`. */
  readonly name: string;
  /** TRACE_SYSTEM, e.g. `kvm` or `kvmmmu`. */
  readonly system: string;
  /** The TP_printk format string, verbatim. */
  readonly printk: string;
  /** The TP_printk arguments, in order. */
  readonly args: readonly PrintkArgSource[];
}

/**
 * The generic events the core emits.
 * - `kvm_unmap_hva_range`: kvm_mmu_notifier_invalidate_range_start(); `end` is exclusive
 *   (range->end).
 * - `kvm_age_hva`: kvm_mmu_notifier_clear_flush_young() and clear_young().
 * - `kvm_test_age_hva`: kvm_mmu_notifier_test_young() (6.12..6.18: one address). Registered for
 *   completeness; the core currently emits `kvm_age_hva` for test_young too.
 */
export const KVM_TRACE_FORMATS: readonly TraceEventFormat[] = [
  { name: 'kvm_unmap_hva_range', system: 'kvm', printk: 'mmu notifier unmap range: %#016lx -- %#016lx', args: ['start', 'end'] },
  { name: 'kvm_age_hva', system: 'kvm', printk: 'mmu notifier age hva: %#016lx -- %#016lx', args: ['start', 'end'] },
  { name: 'kvm_test_age_hva', system: 'kvm', printk: 'mmu notifier test age hva: %#016lx', args: ['hva'] },
];

/** Event name → format. */
export class TraceFormatRegistry {
  private readonly formats = new Map<string, TraceEventFormat>();

  constructor(formats: readonly TraceEventFormat[] = []) {
    for (const f of formats) this.register(f);
  }

  /** Add or replace the format of `format.name`. Returns the registry (chainable). */
  register(format: TraceEventFormat): this {
    this.formats.set(format.name, format);
    return this;
  }

  /** Register several formats. */
  registerAll(formats: readonly TraceEventFormat[]): this {
    for (const f of formats) this.register(f);
    return this;
  }

  get(name: string): TraceEventFormat | undefined {
    return this.formats.get(name);
  }

  has(name: string): boolean {
    return this.formats.has(name);
  }

  /** Registered event names, in registration order. */
  names(): string[] {
    return [...this.formats.keys()];
  }

  /** The printk arguments of an event, in TP_printk order, or undefined for an unknown event. */
  printkArgs(event: KvmTraceEvent): PrintkArg[] | undefined {
    const f = this.formats.get(event.name);
    if (f === undefined) return undefined;
    return f.args.map((src) => (typeof src === 'string' ? event.args[src] : src(event.args)));
  }

  /**
   * The event's message as TP_printk prints it, or undefined for an unknown event. Throws if
   * the event lacks a field the format needs.
   */
  format(event: KvmTraceEvent, flavor: PrintfFlavor = 'kernel'): string | undefined {
    const f = this.formats.get(event.name);
    if (f === undefined) return undefined;
    const args = this.printkArgs(event)!;
    for (let i = 0; i < f.args.length; i++) {
      const src = f.args[i];
      if (typeof src === 'string' && args[i] === undefined) throw new TypeError(`trace: ${event.name} has no field '${src}'`);
    }
    return formatPrintk(f.printk, args, { flavor });
  }
}

/** A registry holding the generic `kvm` formats plus `formats`. */
export function createTraceFormatRegistry(formats: readonly TraceEventFormat[] = []): TraceFormatRegistry {
  return new TraceFormatRegistry(KVM_TRACE_FORMATS).registerAll(formats);
}

/** The registry sinks use when given none; backends may register their formats here. */
export const defaultTraceFormatRegistry: TraceFormatRegistry = createTraceFormatRegistry();

/** Register formats in the default registry (the API for backends). */
export function registerTraceFormats(formats: readonly TraceEventFormat[]): void {
  defaultTraceFormatRegistry.registerAll(formats);
}

/**
 * The message of an event without a registered format: `field=value` pairs in args order
 * (strings as they are, null as `(null)`), like an event printed from its raw fields.
 */
export function formatRawArgs(args: TraceArgs): string {
  return Object.entries(args)
    .map(([k, v]) => `${k}=${v === null ? '(null)' : String(v)}`)
    .join(' ');
}
