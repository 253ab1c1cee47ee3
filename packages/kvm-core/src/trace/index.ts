/**
 * Trace output of the model's KvmTraceEvents: the kernel's printk formats (a registry the
 * architecture packages extend), ftrace text and Chrome trace-event JSON sinks.
 */
export { formatPrintk, printkArgToBigInt, type PrintkArg, type PrintfFlavor, type PrintkOptions } from './printk.js';
export {
  KVM_TRACE_FORMATS,
  TraceFormatRegistry,
  createTraceFormatRegistry,
  defaultTraceFormatRegistry,
  formatRawArgs,
  registerTraceFormats,
  type PrintkArgSource,
  type TraceArgs,
  type TraceEventFormat,
} from './formats.js';
export {
  createFtraceTextSink,
  formatFtraceLine,
  formatFtraceTimestamp,
  sequenceClock,
  type FtraceTextOptions,
  type FtraceTextSink,
  type TraceClock,
} from './ftrace-text.js';
export {
  createChromeTraceSink,
  teeTraceSinks,
  type ChromeInstantEvent,
  type ChromeMetadataEvent,
  type ChromeTraceEvent,
  type ChromeTraceFile,
  type ChromeTraceOptions,
  type ChromeTraceSink,
} from './chrome-trace.js';
