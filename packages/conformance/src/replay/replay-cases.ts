/**
 * The ABI and guest-visible groups as replay protocol v1 line sequences (replay-protocol.md), so
 * they run against any {@link ReplayTarget}: the model or, through the differential oracle, a real
 * kernel. Each case starts from a fresh target, sends its setup lines (answers not checked), then
 * checks the answer to each checked line.
 */
import { MEMSLOT_ERRNO_SCENARIO, type ReplayOutput } from '@kvmsim/kvm-core/replay';

export interface ReplayCheck {
  readonly line: string;
  readonly expect: ReplayOutput;
}

export interface ReplayCase {
  /** `abi/<case id>` or `guest-visible/<slug>`. */
  readonly id: string;
  readonly group: 'abi' | 'guest-visible';
  readonly title: string;
  readonly see: string;
  /** Lines sent first, answers not checked. */
  readonly setup: readonly string[];
  readonly checks: readonly ReplayCheck[];
}

interface Annotated {
  line: string;
  caseId?: string;
  expect?: ReplayOutput;
}

function annotate(line: string): Annotated {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return { line };
  try {
    const o = JSON.parse(t) as { case?: unknown; expect?: unknown };
    return {
      line,
      ...(typeof o.case === 'string' ? { caseId: o.case } : {}),
      ...(typeof o.expect === 'object' && o.expect !== null ? { expect: o.expect as ReplayOutput } : {}),
    };
  } catch {
    return { line };
  }
}

/**
 * MEMSLOT_ERRNO_SCENARIO's annotated lines (Linux 6.18.44's answers, x86, one address space), one
 * case per `"case"` id: a fresh target replays every earlier line as setup, then the case's lines.
 * An annotated line without a case id (setup such as creating slot 10) is checked as part of the
 * case that follows it, so every one of the scenario's 109 answers is checked exactly once.
 */
export function memslotAbiReplayCases(text: string = MEMSLOT_ERRNO_SCENARIO): ReplayCase[] {
  const lines = text.split('\n').map(annotate).filter((l) => l.line.trim() !== '' && !l.line.trim().startsWith('#'));
  const out: ReplayCase[] = [];
  let groupStart = 0;
  lines.forEach((l, i) => {
    if (l.caseId === undefined || lines[i + 1]?.caseId === l.caseId) return;
    // lines[groupStart..i]: unannotated lines since the previous case, then this case's lines.
    const first = lines.findIndex((m) => m.caseId === l.caseId);
    const start = Math.min(groupStart, first);
    out.push({
      id: `abi/${l.caseId}`,
      group: 'abi',
      title: `kvm-generic.md §8 case ${l.caseId}`,
      see: `kvm-generic.md §8 ${l.caseId}; answer observed on Linux 6.18.44 x86_64`,
      setup: lines.slice(0, start).map((m) => m.line),
      checks: lines.slice(start, i + 1).filter((m) => m.expect !== undefined).map((m) => ({ line: m.line, expect: m.expect! })),
    });
    groupStart = i + 1;
  });
  return out;
}

const j = (o: Record<string, unknown>): string => JSON.stringify(o);
const HVA = '0x7f0000000000';
const GPA = '0xc0000000';
const VM = [j({ op: 'create_vm', arch: 'x86' }), j({ op: 'mmap', addr: HVA, length: '0x400000' })];
const slot1 = (flags = 0, gpa = GPA, size = '0x200000'): string => j({ op: 'set_user_memory_region', slot: 1, flags, guest_phys_addr: gpa, memory_size: size, userspace_addr: HVA });
const read = (gpa: string = GPA): string => j({ op: 'vcpu_read', gpa, size: 8 });
const write = (gpa: string, value: string): string => j({ op: 'vcpu_write', gpa, size: 8, value });
const hostWrite = (value: string): string => j({ op: 'host_write', addr: HVA, size: 8, value });
const data = (value: string): ReplayOutput => ({ ret: 0, exit: 'none', value });
const mmio = (gpa: string = GPA): ReplayOutput => ({ ret: 0, exit: 'mmio', phys_addr: gpa, len: 8, is_write: false });
const OK: ReplayOutput = { ret: 0 };
const WROTE: ReplayOutput = { ret: 0, exit: 'none' };
const c = (line: string, expect: ReplayOutput): ReplayCheck => ({ line, expect });
const bitmap = (hex: string): ReplayOutput => ({ ret: 0, bitmap: hex });

/** Guest-visible semantics (kvm-generic.md §7) as line sequences; x86 answers (READONLY, manual protect). */
export const GUEST_VISIBLE_REPLAY_CASES: readonly ReplayCase[] = [
  {
    id: 'guest-visible/host-write-read',
    group: 'guest-visible',
    title: 'host write → guest read',
    see: 'kvm-generic.md §7.1',
    setup: [...VM, slot1()],
    checks: [c(hostWrite('0x1111'), OK), c(read(), data('0x1111')), c(read(), data('0x1111'))],
  },
  {
    id: 'guest-visible/dontneed-rewrite',
    group: 'guest-visible',
    title: 'DONTNEED → the guest reads 0; a host rewrite → the new value',
    see: 'kvm-generic.md §7.1; virt/kvm/kvm_main.c kvm_mmu_notifier_invalidate_range_start()',
    setup: [...VM, slot1(), hostWrite('0x1111'), read()],
    checks: [
      c(j({ op: 'madvise', addr: HVA, length: '0x1000', advice: 'DONTNEED' }), OK),
      c(read(), data('0x0')),
      c(hostWrite('0x2222'), OK),
      c(read(), data('0x2222')),
    ],
  },
  {
    id: 'guest-visible/move',
    group: 'guest-visible',
    title: 'MOVE → the old gpa is MMIO, the new gpa shows the data',
    see: 'kvm-generic.md §2.4; kvm_invalidate_memslot(), kvm_arch_flush_shadow_memslot()',
    setup: [...VM, slot1(), hostWrite('0x1234'), read()],
    checks: [c(slot1(0, '0xd0000000'), OK), c(read(), mmio()), c(read('0xd0000000'), data('0x1234'))],
  },
  {
    id: 'guest-visible/delete',
    group: 'guest-visible',
    title: 'DELETE → MMIO',
    see: 'kvm-generic.md §2.4',
    setup: [...VM, slot1(), hostWrite('0x1234'), read()],
    checks: [c(slot1(0, GPA, '0'), OK), c(read(), mmio())],
  },
  {
    id: 'guest-visible/unbacked-then-create',
    group: 'guest-visible',
    title: 'an unbacked read exits to MMIO; after creating a slot there the guest reads the data',
    see: 'kvm-generic.md §7.3; ddfd1730fd82 "KVM: x86/mmu: Do not cache MMIO accesses while memslots are in flux"',
    setup: [...VM, hostWrite('0x77')],
    checks: [c(read(), mmio()), c(read(), mmio()), c(slot1(), OK), c(read(), data('0x77'))],
  },
  {
    id: 'guest-visible/readonly-write',
    group: 'guest-visible',
    title: 'a READONLY slot: reads see the data, a write exits to MMIO with is_write and leaves memory alone',
    see: 'kvm-generic.md §7.2; __gfn_to_hva_many() KVM_HVA_ERR_RO_BAD',
    setup: [...VM, slot1(2), hostWrite('0x5')],
    checks: [
      c(read(), data('0x5')),
      c(write(GPA, '0x9'), { ret: 0, exit: 'mmio', phys_addr: GPA, len: 8, is_write: true, data: '0x9' }),
      c(j({ op: 'host_read', addr: HVA, size: 8 }), { ret: 0, value: '0x5' }),
    ],
  },
  {
    id: 'guest-visible/dirty-get-clear',
    group: 'guest-visible',
    title: 'guest writes set dirty bits; GET harvests and re-arms; CLEAR re-arms under manual protect',
    see: 'kvm-generic.md §5.2–5.3; kvm_get_dirty_log_protect(), kvm_clear_dirty_log_protect()',
    setup: [...VM, slot1(1, GPA, '0x40000')],
    checks: [
      c(read('0xc0001000'), data('0x0')),
      c(write('0xc0002000', '0x1'), WROTE),
      c(write('0xc0003000', '0x1'), WROTE),
      c(j({ op: 'get_dirty_log', slot: 1 }), bitmap('0c00000000000000')),
      c(j({ op: 'get_dirty_log', slot: 1 }), bitmap('0000000000000000')),
      c(write('0xc0002000', '0x2'), WROTE),
      c(j({ op: 'get_dirty_log', slot: 1 }), bitmap('0400000000000000')),
      c(j({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', args: [1] }), OK),
      c(write('0xc0005000', '0x1'), WROTE),
      c(j({ op: 'get_dirty_log', slot: 1 }), bitmap('2000000000000000')),
      c(j({ op: 'clear_dirty_log', slot: 1, first_page: 0, num_pages: 64, bitmap: 'ffffffffffffffff' }), OK),
      c(j({ op: 'get_dirty_log', slot: 1 }), bitmap('0000000000000000')),
      c(write('0xc0005000', '0x3'), WROTE),
      c(j({ op: 'get_dirty_log', slot: 1 }), bitmap('2000000000000000')),
    ],
  },
];
