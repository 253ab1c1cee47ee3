/**
 * The built-in replay: every memslot and dirty-log case of kvm-generic.md §8 that protocol v1
 * can express must give the answer Linux 6.18.44 gave, on both stores.
 */
import { describe, expect, it } from 'vitest';
import { MEMSLOT_ERRNO_SCENARIO, replayText, summarizeReplay, formatReplayOutput } from '../src/replay/index.js';
import { STORES } from './support/vm.js';

describe.each(STORES)('built-in errno replay (%s store)', (store) => {
  const steps = [...replayText(MEMSLOT_ERRNO_SCENARIO, { memslots: store })];

  it('answers every annotated case as Linux 6.18.44 did', () => {
    const bad = steps.filter((s) => s.agrees === false).map((s) => `${s.caseId ?? `line ${s.lineNo}`}: got ${formatReplayOutput(s.output)}, kernel ${JSON.stringify(s.expect)}`);
    expect(bad).toEqual([]);
    const summary = summarizeReplay(steps);
    expect(summary.expectations).toBeGreaterThanOrEqual(100);
    expect(summary.agreed).toBe(summary.expectations);
  });

  it('answers the malformed trailing lines with EINVAL naming the line and field, and keeps going', () => {
    const tail = steps.slice(-2);
    expect(tail.every((s) => s.malformed && s.output.errno === 'EINVAL')).toBe(true);
    expect(tail[0]!.output.error).toMatch(new RegExp(`^line ${tail[0]!.lineNo}: field 'slot'`));
    expect(tail[1]!.output.error).toMatch(/no_such_op/);
  });
});

describe('replay framing', () => {
  it('creates the VM implicitly; a later create_vm is EINVAL; comments and blanks give no output', () => {
    const text = ['# comment', '', '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}', '{"op":"create_vm"}'].join('\n');
    const steps = [...replayText(text)];
    expect(steps.map((s) => s.lineNo)).toEqual([3, 4]);
    expect(steps[0]!.output).toEqual({ ret: 32764 });
    expect(steps[1]!.output.errno).toBe('EINVAL');
  });

  it('a malformed first line creates nothing, so create_vm after it succeeds', () => {
    const steps = [...replayText('{"op":"mmap"}\n{"op":"create_vm"}')];
    expect(steps[0]!.malformed).toBe(true);
    expect(steps[1]!.output).toEqual({ ret: 0 });
  });

  it('vcpu ops go through the fault path: RAM, MMIO, READONLY writes, EFAULT, dirty bits', () => {
    const text = [
      '{"op":"vcpu_read","gpa":"0xc0000000","size":4}',
      '{"op":"mmap","addr":"0x7f0000000000","length":"0x200000"}',
      '{"op":"set_user_memory_region","slot":1,"flags":1,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000"}',
      '{"op":"host_write","addr":"0x7f0000001000","size":8,"value":"0x1122334455667788"}',
      '{"op":"vcpu_read","gpa":"0xc0001000","size":8}',
      '{"op":"vcpu_write","gpa":"0xc0002004","size":4,"value":"0xabcd"}',
      '{"op":"host_read","addr":"0x7f0000002004","size":4}',
      '{"op":"get_dirty_log","slot":1}',
      '{"op":"set_user_memory_region","slot":2,"flags":2,"guest_phys_addr":"0xd0000000","memory_size":"0x1000","userspace_addr":"0x7f0000100000"}',
      '{"op":"vcpu_write","gpa":"0xd0000000","size":2,"value":"0x7"}',
      '{"op":"set_user_memory_region","slot":3,"flags":0,"guest_phys_addr":"0xe0000000","memory_size":"0x1000","userspace_addr":"0x100000000"}',
      '{"op":"vcpu_read","gpa":"0xe0000000","size":1}',
      '{"op":"vcpu_read","gpa":"0xc0000001","size":4}',
      '{"op":"madvise","addr":"0x7f0000001000","length":"0x1000","advice":"DONTNEED"}',
      '{"op":"vcpu_read","gpa":"0xc0001000","size":8}',
    ].join('\n');
    const out = [...replayText(text)].map((s) => s.output);
    expect(out[0]).toEqual({ ret: 0, exit: 'mmio', phys_addr: '0xc0000000', len: 4, is_write: false });
    expect(out[4]).toEqual({ ret: 0, exit: 'none', value: '0x1122334455667788' });
    expect(out[5]).toEqual({ ret: 0, exit: 'none' });
    expect(out[6]).toEqual({ ret: 0, value: '0xabcd' });
    // page 2 written by the guest; page 1 too: its host page was written, so the read fault mapped
    // it writable and marked it dirty (hva_to_pfn() + make_spte(); observed on 6.18.44, kernel-differences.md)
    expect(out[7]!.bitmap!.slice(0, 2)).toBe('06');
    expect(out[9]).toEqual({ ret: 0, exit: 'mmio', phys_addr: '0xd0000000', len: 2, is_write: true, data: '0x7' });
    expect(out[11]).toMatchObject({ ret: -14, errno: 'EFAULT' });
    expect(out[12]!.errno).toBe('EINVAL'); // misaligned guest access
    expect(out[14]).toEqual({ ret: 0, exit: 'none', value: '0x0' }); // DONTNEED zapped the stale mapping
  });

  it('host ops act on the host model', () => {
    const text = [
      '{"op":"mmap","addr":"0x7f0000000000","length":"0x2000"}',
      '{"op":"host_write","addr":"0x7f0000000ffc","size":8,"value":"0x1122334455667788"}',
      '{"op":"host_read","addr":"0x7f0000001000","size":4}',
      '{"op":"madvise","addr":"0x7f0000000000","length":"0x2000","advice":"DONTNEED"}',
      '{"op":"host_read","addr":"0x7f0000001000","size":4}',
      '{"op":"host_read","addr":"0x7f0000002000","size":1}',
    ].join('\n');
    const out = [...replayText(text)].map((s) => s.output);
    expect(out[2]).toEqual({ ret: 0, value: '0x11223344' });
    expect(out[4]).toEqual({ ret: 0, value: '0x0' });
    expect(out[5]!.errno).toBe('EFAULT');
  });
});
