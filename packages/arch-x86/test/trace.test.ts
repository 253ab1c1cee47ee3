/**
 * The kvmmmu tracepoints of the x86 backend: golden ftrace messages for a small scenario (a 4 KiB
 * fault, a 2 MiB fault, splits on dirty logging, a fast zap on DELETE with the SLOT_ZAP_ALL
 * quirk, a notifier unmap), the Chrome JSON of the same run, and the no-sink case (no events, no
 * TdpMmu hook).
 */
import { createVm, type Kvm, type KvmTraceEvent } from '@kvmsim/kvm-core';
import { describe, expect, it } from 'vitest';
// The trace module of kvm-core is not re-exported by its package index yet: use its source.
import {
  createChromeTraceSink,
  createFtraceTextSink,
  createTraceFormatRegistry,
  teeTraceSinks,
  type ChromeInstantEvent,
  type ChromeTraceFile,
  type FtraceTextSink,
} from '@kvmsim/kvm-core';
import { x86Backend, type X86ArchVm, type X86Options } from '../src/index.js';
import { KVMMMU_TRACE_FORMATS, registerKvmmmuTraceFormats, spteOffset } from '../src/trace/kvmmmu.js';

const MiB = 0x100000;
const HVA4K = 0x7f0000000000; // 4 MiB without THP
const HVA2M = 0x7f0000400000; // 4 MiB with THP, 2 MiB aligned
const GPA4K = 0xc0000000;
const GPA2M = 0x100000000;

const registry = createTraceFormatRegistry();
registerKvmmmuTraceFormats(registry);

interface Traced {
  kvm: Kvm;
  arch: X86ArchVm;
  ftrace: FtraceTextSink;
  raw: KvmTraceEvent[];
  /** `event: message` of the lines since the last call (and forget them). */
  take(): string[];
}

function traced(options: X86Options = {}): Traced {
  const ftrace = createFtraceTextSink({ registry, unknown: 'skip' });
  const raw: KvmTraceEvent[] = [];
  const kvm = createVm({ backend: x86Backend(options), trace: teeTraceSinks(ftrace, (e) => raw.push(e)) });
  kvm.host.mmap(BigInt(HVA4K), BigInt(4 * MiB));
  kvm.host.mmap(BigInt(HVA2M), BigInt(4 * MiB), { thp: true });
  slot(kvm, 1, GPA4K, 2 * MiB, HVA4K);
  slot(kvm, 2, GPA2M, 4 * MiB, HVA2M);
  ftrace.clear();
  raw.length = 0;
  const take = (): string[] => {
    const out = ftrace.lines.map((l) => l.slice(l.indexOf(': ') + 2));
    ftrace.clear();
    raw.length = 0;
    return out;
  };
  return { kvm, arch: kvm.arch as X86ArchVm, ftrace, raw, take };
}

function slot(kvm: Kvm, id: number, gpa: number, size: number, hva: number, flags = 0): void {
  kvm.setUserMemoryRegion({ slot: id, flags, guestPhysAddr: BigInt(gpa), memorySize: BigInt(size), userspaceAddr: BigInt(hva) });
}

function counts(msgs: readonly string[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const s of msgs) {
    const n = s.slice(0, s.indexOf(':'));
    m[n] = (m[n] ?? 0) + 1;
  }
  return m;
}

describe('kvmmmu formats', () => {
  it('are the TP_printk strings of mmutrace.h, registered under system kvmmmu', () => {
    expect(Object.fromEntries(KVMMMU_TRACE_FORMATS.map((f) => [f.name, f.printk]))).toEqual({
      kvm_mmu_spte_requested: 'gfn %llx pfn %llx level %d',
      kvm_mmu_set_spte: 'gfn %llx spte %llx (%s%s%s%s) level %d at %llx',
      kvm_tdp_mmu_spte_changed: 'as id %d gfn %llx level %d old_spte %llx new_spte %llx',
      kvm_mmu_split_huge_page: 'gfn %llx spte %llx level %d errno %d',
      kvm_mmu_zap_all_fast: 'kvm-mmu-valid-gen %u used_pages %x',
    });
    for (const f of KVMMMU_TRACE_FORMATS) expect(registry.get(f.name)?.system).toBe('kvmmmu');
  });

  it('kvm_mmu_set_spte prints the r/w/x/u flags as the kernel does (u = -1 prints nothing)', () => {
    const ev = (spte: string, x: boolean, u: number): KvmTraceEvent => ({ name: 'kvm_mmu_set_spte', args: { gfn: 1, spte, sptep: 8, level: 1, r: true, x, u } });
    expect(registry.format(ev('0x2', true, 1))).toBe('gfn 1 spte 2 (rwxu) level 1 at 8');
    expect(registry.format(ev('0x0', false, 0))).toBe('gfn 1 spte 0 (r---) level 1 at 8');
    expect(registry.format(ev('0x2', true, -1))).toBe('gfn 1 spte 2 (rwx) level 1 at 8');
  });
});

describe('x86/tdp: kvmmmu events of a small scenario', () => {
  it('a 4 KiB fault: spte_requested, the table links, the leaf, set_spte', () => {
    const t = traced();
    t.kvm.createVcpu(0).read(GPA4K + 0x3000, 8);
    expect(t.ftrace.lines[0]).toBe('          kvmsim-1       [000] .....     0.000001: kvm_mmu_spte_requested: gfn c0003 pfn 0 level 1');
    expect(t.take()).toEqual([
      'kvm_mmu_spte_requested: gfn c0003 pfn 0 level 1',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 0 level 4 old_spte 8000000000000000 new_spte 8000000000001907',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn c0000 level 3 old_spte 8000000000000000 new_spte 8000000000002907',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn c0000 level 2 old_spte 8000000000000000 new_spte 8000000000003907',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn c0003 level 1 old_spte 8000000000000000 new_spte 8200000000000975',
      // at = table 3 × 4096 + entry 3 × 8 (the model's stand-in for virt_to_phys(sptep))
      'kvm_mmu_set_spte: gfn c0003 spte 8200000000000975 (r-xu) level 1 at 3018',
    ]);
    expect(spteOffset(t.arch.tdp, 0, 0xc0003, 1) * 8).toBe(0x3018);
  });

  it('a 2 MiB fault: pfn carries the gfn offset in the huge page; gfn of set_spte is aligned', () => {
    const t = traced();
    t.kvm.createVcpu(0).write(GPA2M + 0x1234, 8, 1n);
    expect(t.take()).toEqual([
      'kvm_mmu_spte_requested: gfn 100001 pfn 201 level 2',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 0 level 4 old_spte 8000000000000000 new_spte 8000000000001907',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 100000 level 3 old_spte 8000000000000000 new_spte 8000000000002907',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 100000 level 2 old_spte 8000000000000000 new_spte 8600000000200bf7',
      'kvm_mmu_set_spte: gfn 100000 spte 8600000000200bf7 (rwxu) level 2 at 2000',
    ]);
  });

  it('a fault without a memslot: spte_requested with KVM_PFN_NOSLOT, the MMIO SPTE, no set_spte', () => {
    const t = traced();
    t.kvm.createVcpu(0).read(0xd0000000, 8);
    const msgs = t.take();
    expect(msgs[0]).toBe('kvm_mmu_spte_requested: gfn d0000 pfn 8000000000000000 level 1');
    expect(msgs.at(-1)).toMatch(/^kvm_tdp_mmu_spte_changed: as id 0 gfn d0000 level 1 old_spte 8000000000000000 new_spte d0000[0-9a-f]{3}$/);
    expect(counts(msgs)).toEqual({ kvm_mmu_spte_requested: 1, kvm_tdp_mmu_spte_changed: 4 });
  });

  it('enabling dirty logging splits eagerly: the link, then kvm_mmu_split_huge_page, then 512 write-protections', () => {
    const t = traced();
    t.kvm.createVcpu(0).write(GPA2M + 0x1234, 8, 1n);
    t.take();
    slot(t.kvm, 2, GPA2M, 4 * MiB, HVA2M, 1);
    const msgs = t.take();
    expect(msgs.slice(0, 4)).toEqual([
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 100000 level 2 old_spte 8600000000200bf7 new_spte 8000000000003907',
      'kvm_mmu_split_huge_page: gfn 100000 spte 8600000000200bf7 level 2 errno 0',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 100000 level 1 old_spte 8600000000200b77 new_spte 8600000000200b75',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 100001 level 1 old_spte 8600000000201b77 new_spte 8600000000201b75',
    ]);
    expect(counts(msgs)).toEqual({ kvm_tdp_mmu_spte_changed: 513, kvm_mmu_split_huge_page: 1 });
  });

  it('without eager split, the next write fault splits in place (tdp_mmu_split_huge_page from kvm_tdp_mmu_map)', () => {
    const t = traced({ eagerSplit: false });
    const v = t.kvm.createVcpu(0);
    v.write(GPA2M + 0x1234, 8, 1n);
    t.take();
    slot(t.kvm, 2, GPA2M, 4 * MiB, HVA2M, 1);
    expect(t.take()).toEqual(['kvm_tdp_mmu_spte_changed: as id 0 gfn 100000 level 2 old_spte 8600000000200bf7 new_spte 8600000000200bf5']);
    v.write(GPA2M + 0x5000, 8, 1n);
    expect(t.take()).toEqual([
      'kvm_mmu_spte_requested: gfn 100005 pfn 205 level 1',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 100000 level 2 old_spte 8600000000200bf5 new_spte 8000000000003907',
      'kvm_mmu_split_huge_page: gfn 100000 spte 8600000000200bf5 level 2 errno 0',
      'kvm_tdp_mmu_spte_changed: as id 0 gfn 100005 level 1 old_spte 8600000000205b75 new_spte 8600000000205b77',
      'kvm_mmu_set_spte: gfn 100005 spte 8600000000205b77 (rwxu) level 1 at 3028',
    ]);
  });

  it('DELETE with SLOT_ZAP_ALL: kvm_mmu_zap_all_fast with the retired generation (0, then 1), then the root zaps', () => {
    const t = traced();
    const v = t.kvm.createVcpu(0);
    v.read(GPA4K + 0x3000, 8);
    v.write(GPA2M, 8, 1n);
    t.take();
    slot(t.kvm, 2, GPA2M, 0, HVA2M);
    const msgs = t.take();
    expect(msgs[0]).toBe('kvm_mmu_zap_all_fast: kvm-mmu-valid-gen 0 used_pages 0');
    expect(msgs[1]).toBe('kvm_tdp_mmu_spte_changed: as id 0 gfn c0003 level 1 old_spte 8200000000000975 new_spte 8000000000000000');
    expect(Object.keys(counts(msgs))).toEqual(['kvm_mmu_zap_all_fast', 'kvm_tdp_mmu_spte_changed']);
    slot(t.kvm, 1, GPA4K, 0, HVA4K);
    expect(t.take()[0]).toBe('kvm_mmu_zap_all_fast: kvm-mmu-valid-gen 1 used_pages 0');
    // The quirk off: only the slot's leaves, no fast zap.
    const q = traced({ quirks: { slotZapAll: false } });
    q.kvm.createVcpu(0).read(GPA4K + 0x3000, 8);
    q.take();
    slot(q.kvm, 1, GPA4K, 0, HVA4K);
    expect(q.take()).toEqual(['kvm_tdp_mmu_spte_changed: as id 0 gfn c0003 level 1 old_spte 8200000000000975 new_spte 8000000000000000']);
  });

  it('a notifier unmap: the zap of the leaf and kvm_unmap_hva_range (end exclusive)', () => {
    const t = traced();
    t.kvm.createVcpu(0).read(GPA4K + 0x3000, 8);
    t.take();
    t.kvm.host.madvise(BigInt(HVA4K + 0x3000), 4096n, 'DONTNEED');
    expect(t.take().sort()).toEqual([
      'kvm_tdp_mmu_spte_changed: as id 0 gfn c0003 level 1 old_spte 8200000000000975 new_spte 8000000000000000',
      'kvm_unmap_hva_range: mmu notifier unmap range: 0x007f0000003000 -- 0x007f0000004000',
    ]);
  });

  // kvm_mmu_notifier_invalidate_range_start() traces first, then unmaps.
  it('a notifier unmap traces kvm_unmap_hva_range before the zaps, as the kernel does', () => {
    const t = traced();
    t.kvm.createVcpu(0).read(GPA4K + 0x3000, 8);
    t.take();
    t.kvm.host.madvise(BigInt(HVA4K + 0x3000), 4096n, 'DONTNEED');
    expect(t.take()[0]).toMatch(/^kvm_unmap_hva_range: /);
  });
});

describe('x86/tdp: the same run as Chrome trace JSON', () => {
  it('parses, and has the kvm/kvmmmu events in emission order with their raw fields', () => {
    const ftrace = createFtraceTextSink({ registry, unknown: 'skip' });
    const chrome = createChromeTraceSink({ registry });
    const kvm = createVm({ backend: x86Backend(), trace: teeTraceSinks(ftrace, chrome) });
    kvm.host.mmap(BigInt(HVA4K), BigInt(4 * MiB));
    slot(kvm, 1, GPA4K, 2 * MiB, HVA4K);
    kvm.createVcpu(0).read(GPA4K + 0x3000, 8);
    kvm.host.madvise(BigInt(HVA4K + 0x3000), 4096n, 'DONTNEED');
    slot(kvm, 1, GPA4K, 0, HVA4K);
    const file = JSON.parse(chrome.json()) as ChromeTraceFile;
    const instants = file.traceEvents.filter((e): e is ChromeInstantEvent => e.ph === 'I');
    const known = instants.filter((e) => e.cat !== 'kvmsim');
    expect(known.map((e) => e.name)).toEqual(ftrace.lines.map((l) => l.split(': ')[1]));
    expect(new Set(known.map((e) => e.cat))).toEqual(new Set(['kvm', 'kvmmmu']));
    for (let i = 1; i < instants.length; i++) expect(instants[i]!.ts).toBeGreaterThan(instants[i - 1]!.ts);
    // ts agrees with the ftrace timestamps (same sequence clock, unknown events included).
    expect(ftrace.lines[0]).toContain(`0.${String(known[0]!.ts).padStart(6, '0')}: `);
    expect(known.find((e) => e.name === 'kvm_mmu_set_spte')!.args).toEqual({ gfn: 0xc0003, spte: '0x8200000000000975', sptep: 0x3018, level: 1, r: true, x: true, u: 1 });
    expect(known.find((e) => e.name === 'kvm_mmu_spte_requested')!.args).toEqual({ gfn: 0xc0003, pfn: 0, level: 1 });
    expect(known.find((e) => e.name === 'kvm_mmu_zap_all_fast')!.args).toEqual({ mmu_valid_gen: 0, mmu_used_pages: 0 });
    expect(known.find((e) => e.name === 'kvm_unmap_hva_range')!.args).toEqual({ start: HVA4K + 0x3000, end: HVA4K + 0x4000 });
    expect(known.find((e) => e.name === 'kvm_tdp_mmu_spte_changed')!.args).toEqual({
      as_id: 0,
      gfn: 0,
      level: 4,
      old_spte: '0x8000000000000000',
      new_spte: '0x8000000000001907',
    });
  });
});

describe('x86/tdp: no sink, no cost', () => {
  it('without kvm.trace nothing is emitted and TdpMmu.onSpteChanged stays undefined', () => {
    const kvm = createVm({ backend: x86Backend({ eagerSplit: false }) });
    const arch = kvm.arch as X86ArchVm;
    expect(kvm.trace).toBeUndefined();
    expect(arch.tdp.onSpteChanged).toBeUndefined();
    const emitted: string[] = [];
    const emit = kvm.emit.bind(kvm);
    kvm.emit = (name, args) => {
      emitted.push(name);
      emit(name, args);
    };
    kvm.host.mmap(BigInt(HVA2M), BigInt(4 * MiB), { thp: true });
    slot(kvm, 2, GPA2M, 4 * MiB, HVA2M);
    const v = kvm.createVcpu(0);
    v.write(GPA2M, 8, 1n);
    slot(kvm, 2, GPA2M, 4 * MiB, HVA2M, 1);
    v.write(GPA2M + 0x5000, 8, 1n);
    kvm.host.madvise(BigInt(HVA2M), 4096n, 'DONTNEED');
    slot(kvm, 2, GPA2M, 0, HVA2M);
    expect(arch.fastZaps).toBe(1);
    expect(emitted).toEqual([]);
    expect(arch.tdp.onSpteChanged).toBeUndefined();
  });

  it('a sink attached later gets the hook at the next kvmmmu emission; detached, the hook removes itself', () => {
    const kvm = createVm({ backend: x86Backend() });
    const arch = kvm.arch as X86ArchVm;
    kvm.host.mmap(BigInt(HVA4K), BigInt(4 * MiB));
    slot(kvm, 1, GPA4K, 2 * MiB, HVA4K);
    const names: string[] = [];
    kvm.trace = (e) => names.push(e.name);
    const v = kvm.createVcpu(0);
    v.read(GPA4K, 8);
    expect(arch.tdp.onSpteChanged).toBeDefined();
    expect(names).toEqual(['kvm_mmu_spte_requested', ...Array<string>(4).fill('kvm_tdp_mmu_spte_changed'), 'kvm_mmu_set_spte']);
    kvm.trace = undefined;
    names.length = 0;
    kvm.host.madvise(BigInt(HVA4K), 4096n, 'DONTNEED');
    expect(names).toEqual([]);
    expect(arch.tdp.onSpteChanged).toBeUndefined();
  });

  it('a sink given to createVm installs the hook at once', () => {
    const kvm = createVm({ backend: x86Backend(), trace: () => {} });
    expect((kvm.arch as X86ArchVm).tdp.onSpteChanged).toBeDefined();
  });
});
