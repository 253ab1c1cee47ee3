/**
 * Trace output: the printk formatter (kernel and glibc flavours), the format registry, the ftrace
 * text and Chrome JSON sinks, and the generic `kvm` events of the MMU notifier end to end.
 */
import { describe, expect, it } from 'vitest';
import { runSync, type KvmTraceEvent } from '../src/index.js';
import {
  KVM_TRACE_FORMATS,
  TraceFormatRegistry,
  createChromeTraceSink,
  createFtraceTextSink,
  createTraceFormatRegistry,
  formatFtraceLine,
  formatFtraceTimestamp,
  formatPrintk,
  teeTraceSinks,
  type ChromeTraceFile,
} from '../src/trace/index.js';
import { MiB, mkVm, region, set } from './support/vm.js';

const HVA = 0x7f0000000000;

describe('formatPrintk', () => {
  it('%#016lx pads to 16 characters including 0x', () => {
    expect(formatPrintk('%#016lx', [0x7f1234000000])).toBe('0x007f1234000000');
    expect(formatPrintk('%#016lx', [0x7f1234000000], { flavor: 'glibc' })).toBe('0x007f1234000000');
  });

  it('%#016lx of zero: the kernel keeps the 0x prefix (16 chars), glibc drops it (16 zeros)', () => {
    // lib/vsprintf.c number(): SPECIAL with base 16 always reserves and writes "0x".
    expect(formatPrintk('%#016lx', [0])).toBe('0x00000000000000');
    expect(formatPrintk('%#016lx', [0])).toHaveLength(16);
    // ISO C: '#' prefixes only nonzero values (what trace-cmd report prints, via libtraceevent).
    expect(formatPrintk('%#016lx', [0], { flavor: 'glibc' })).toBe('0000000000000000');
    expect(formatPrintk('%#x', [0])).toBe('0x0');
    expect(formatPrintk('%#x', [0], { flavor: 'glibc' })).toBe('0');
  });

  it('%#016lx of values wider than 14 digits is not truncated', () => {
    expect(formatPrintk('%#016lx', ['0xff00000000000000'])).toBe('0xff00000000000000');
    expect(formatPrintk('%#016lx', [0x00fffffffffff000n])).toBe('0xfffffffffff000');
  });

  it('%llx takes 64-bit values as bigints or hex strings, and wraps negatives', () => {
    expect(formatPrintk('%llx', ['0x80000000000b0ef7'])).toBe('80000000000b0ef7');
    expect(formatPrintk('%llx', [2n ** 64n - 1n])).toBe('ffffffffffffffff');
    expect(formatPrintk('%llx', [-1])).toBe('ffffffffffffffff');
    expect(formatPrintk('%llx', [0xc0000])).toBe('c0000');
    expect(formatPrintk('%x', [-1])).toBe('ffffffff'); // int: 32 bits
    expect(formatPrintk('%x', [0x123456789])).toBe('23456789');
    expect(formatPrintk('%hhx', [0x1ff])).toBe('ff');
    expect(formatPrintk('%X', [0xabc])).toBe('ABC');
  });

  it('%d, %u, %s, %c and %%', () => {
    expect(formatPrintk('level %d errno %d', [2, -12])).toBe('level 2 errno -12');
    expect(formatPrintk('%u', [-1])).toBe('4294967295');
    expect(formatPrintk('%u', [true])).toBe('1');
    expect(formatPrintk('(%s%s%s%s)', ['r', 'w', '-', ''])).toBe('(rw-)');
    expect(formatPrintk('%s', [null])).toBe('(null)');
    expect(formatPrintk('%5s|%-5s|%.2s', ['ab', 'cd', 'xyz'])).toBe('   ab|cd   |xy');
    expect(formatPrintk('%c%c', [65, 'bc'])).toBe('Ab');
    expect(formatPrintk('100%% %d', [1])).toBe('100% 1');
  });

  it('width, flags and precision follow number() (kernel) or C (glibc)', () => {
    expect(formatPrintk('%05d', [-42])).toBe('-0042');
    expect(formatPrintk('%-5d|', [42])).toBe('42   |');
    expect(formatPrintk('%+d % d', [5, 5])).toBe('+5  5');
    expect(formatPrintk('%*d|%-*d|', [4, 7, 3, 7])).toBe('   7|7  |');
    expect(formatPrintk('%#o %#o', [8, 0])).toBe('010 0');
    expect(formatPrintk('%#o %#o', [8, 0], { flavor: 'glibc' })).toBe('010 0');
    // %.0d of 0: the kernel still prints the digit, C prints nothing.
    expect(formatPrintk('[%.0d]', [0])).toBe('[0]');
    expect(formatPrintk('[%.0d]', [0], { flavor: 'glibc' })).toBe('[]');
    // A precision: the kernel keeps the 0 flag, C ignores it.
    expect(formatPrintk('[%08.3d]', [5])).toBe('[00000005]');
    expect(formatPrintk('[%08.3d]', [5], { flavor: 'glibc' })).toBe('[     005]');
  });

  it('rejects unsupported conversions, missing arguments and non-integers', () => {
    expect(() => formatPrintk('%p', [0])).toThrow(SyntaxError);
    expect(() => formatPrintk('%d %d', [1])).toThrow(/missing argument/);
    expect(() => formatPrintk('%d', ['zz'])).toThrow(TypeError);
  });
});

describe('TraceFormatRegistry', () => {
  it('preloads the generic kvm events with their 6.12 TP_printk strings', () => {
    const r = createTraceFormatRegistry();
    expect(r.names()).toEqual(KVM_TRACE_FORMATS.map((f) => f.name));
    expect(r.get('kvm_unmap_hva_range')).toMatchObject({ system: 'kvm', printk: 'mmu notifier unmap range: %#016lx -- %#016lx', args: ['start', 'end'] });
    expect(r.get('kvm_age_hva')?.printk).toBe('mmu notifier age hva: %#016lx -- %#016lx');
    expect(r.format({ name: 'kvm_unmap_hva_range', args: { start: HVA, end: HVA + 0x2000 } })).toBe('mmu notifier unmap range: 0x007f0000000000 -- 0x007f0000002000');
    expect(r.format({ name: 'kvm_age_hva', args: { start: 0, end: 4096 } }, 'glibc')).toBe('mmu notifier age hva: 0000000000000000 -- 0x00000000001000');
  });

  it('lets a backend register formats with field names and TP_printk expressions', () => {
    const r = new TraceFormatRegistry().register({
      name: 'x_evt',
      system: 'xsys',
      printk: 'a %d (%s)',
      args: ['a', (args) => (args['ok'] ? 'ok' : 'bad')],
    });
    expect(r.format({ name: 'x_evt', args: { a: 3, ok: false } })).toBe('a 3 (bad)');
    expect(r.format({ name: 'other', args: {} })).toBeUndefined();
    expect(() => r.format({ name: 'x_evt', args: { ok: true } })).toThrow(/no field 'a'/);
  });
});

describe('ftrace text', () => {
  it('has the shape of /sys/kernel/tracing/trace', () => {
    expect(formatFtraceTimestamp(1)).toBe('    0.000001');
    expect(formatFtraceTimestamp(5075958079)).toBe(' 5075.958079');
    expect(formatFtraceLine('sched_switch', 'x', 5075958079, { task: 'bash', pid: 1234, cpu: 2, flags: '...1.' })).toBe(
      '            bash-1234    [002] ...1.  5075.958079: sched_switch: x',
    );
  });

  it('numbers events in µs, prints unknown events raw or skips them', () => {
    const raw = createFtraceTextSink();
    const skip = createFtraceTextSink({ unknown: 'skip', task: 'qemu-system-x86', pid: 4242, cpu: 3 });
    const tee = teeTraceSinks(raw, skip);
    tee({ name: 'kvm_swap_active_memslots', args: { as_id: 0, gen: 2, s: 'x', n: null } });
    tee({ name: 'kvm_age_hva', args: { start: HVA, end: HVA + 4096 } });
    expect(raw.lines).toEqual([
      '          kvmsim-1       [000] .....     0.000001: kvm_swap_active_memslots: as_id=0 gen=2 s=x n=(null)',
      '          kvmsim-1       [000] .....     0.000002: kvm_age_hva: mmu notifier age hva: 0x007f0000000000 -- 0x007f0000001000',
    ]);
    // The skipped event still advanced the clock.
    expect(skip.text()).toBe(' qemu-system-x86-4242    [003] .....     0.000002: kvm_age_hva: mmu notifier age hva: 0x007f0000000000 -- 0x007f0000001000\n');
    raw.clear();
    raw({ name: 'kvm_age_hva', args: { start: 0, end: 0 } });
    expect(raw.lines).toEqual(['          kvmsim-1       [000] .....     0.000001: kvm_age_hva: mmu notifier age hva: 0x00000000000000 -- 0x00000000000000']);
  });

  it('the glibc flavour prints like trace-cmd report', () => {
    const s = createFtraceTextSink({ flavor: 'glibc' });
    s({ name: 'kvm_unmap_hva_range', args: { start: 0, end: 0x200000 } });
    expect(s.lines[0]).toMatch(/: kvm_unmap_hva_range: mmu notifier unmap range: 0000000000000000 -- 0x00000000200000$/);
  });
});

describe('Chrome trace JSON', () => {
  it('emits thread-scoped instants with raw args, in order, and parses', () => {
    const c = createChromeTraceSink({ pid: 7, tid: 2, includeMessage: true });
    c({ name: 'kvm_unmap_hva_range', args: { start: HVA, end: HVA + 4096 } });
    c({ name: 'model_only', args: { x: '0x8000000000000000' } });
    const parsed = JSON.parse(c.json()) as ChromeTraceFile;
    expect(parsed.displayTimeUnit).toBe('ns');
    expect(parsed.traceEvents).toEqual([
      { name: 'process_name', ph: 'M', pid: 7, tid: 2, args: { name: 'kvmsim VM' } },
      {
        name: 'kvm_unmap_hva_range',
        cat: 'kvm',
        ph: 'I',
        s: 't',
        ts: 1,
        pid: 7,
        tid: 2,
        args: { start: HVA, end: HVA + 4096, printk: 'mmu notifier unmap range: 0x007f0000000000 -- 0x007f0000001000' },
      },
      { name: 'model_only', cat: 'kvmsim', ph: 'I', s: 't', ts: 2, pid: 7, tid: 2, args: { x: '0x8000000000000000' } },
    ]);
    c.clear();
    expect(c.events).toHaveLength(1);
  });
});

describe('the MMU notifier events, end to end', () => {
  function vm() {
    const ftrace = createFtraceTextSink({ unknown: 'skip' });
    const chrome = createChromeTraceSink({ processName: null });
    const { kvm } = mkVm('scalable', { record: false }, { trace: teeTraceSinks(ftrace, chrome) });
    kvm.host.mmap(BigInt(HVA), 4n * MiB);
    set(kvm, region(1, 0xc0000000n, 2n * MiB, BigInt(HVA)));
    const vcpu = kvm.createVcpu(0);
    for (let i = 0; i < 4; i++) vcpu.read(0xc0000000 + i * 4096, 8);
    ftrace.clear();
    chrome.clear();
    return { kvm, ftrace, chrome };
  }

  it('kvm_unmap_hva_range and kvm_age_hva print as in the kernel', () => {
    const { kvm, ftrace, chrome } = vm();
    kvm.host.madvise(BigInt(HVA), 2n * 4096n, 'DONTNEED');
    runSync(kvm.mmuNotifier.clearYoung(HVA + 0x2000, HVA + 0x3000));
    expect(ftrace.lines).toEqual([
      '          kvmsim-1       [000] .....     0.000001: kvm_unmap_hva_range: mmu notifier unmap range: 0x007f0000000000 -- 0x007f0000002000',
      '          kvmsim-1       [000] .....     0.000002: kvm_age_hva: mmu notifier age hva: 0x007f0000002000 -- 0x007f0000003000',
    ]);
    expect(chrome.events.map((e) => [e.name, e.args])).toEqual([
      ['kvm_unmap_hva_range', { start: HVA, end: HVA + 0x2000 }],
      ['kvm_age_hva', { start: HVA + 0x2000, end: HVA + 0x3000 }],
    ]);
  });

  it('nothing is emitted once the sink is detached', () => {
    const events: KvmTraceEvent[] = [];
    const { kvm } = mkVm('scalable', { record: false }, { trace: (e) => events.push(e) });
    kvm.host.mmap(BigInt(HVA), 4n * MiB);
    set(kvm, region(1, 0xc0000000n, 2n * MiB, BigInt(HVA)));
    kvm.trace = undefined;
    events.length = 0;
    kvm.host.madvise(BigInt(HVA), 4096n, 'DONTNEED');
    runSync(kvm.mmuNotifier.clearYoung(HVA, HVA + 4096));
    expect(events).toEqual([]);
  });
});
