/**
 * Guest reads and the dirty log, as Linux 6.18.44 answered them through tools/kvm-oracle
 * (docs/kernel-differences.md §1, §2): a read fault maps a written host page writable and marks it
 * dirty; with `oracleScratchSlot` (which `kvmsim diff` uses) each access is followed by a slot
 * DELETE, which on x86 with the SLOT_ZAP_ALL quirk zaps every SPTE, so after KVM_GET_DIRTY_LOG the
 * next read faults again and marks the page again.
 */
import { describe, expect, it } from 'vitest';
import { replayText } from '@kvmsim/kvm-core/replay';
import { x86Backend } from '@kvmsim/x86';

const SEQUENCE = [
  '{"op":"mmap","addr":"0x1000000000","length":"0x100000"}',
  '{"op":"host_write","addr":"0x1000000000","size":8,"value":"0x1234"}',
  '{"op":"set_user_memory_region","slot":0,"flags":1,"guest_phys_addr":"0x100000","memory_size":"0x10000","userspace_addr":"0x1000000000"}',
  '{"op":"vcpu_read","gpa":"0x100000","size":8}', // page 0: written by the host
  '{"op":"vcpu_read","gpa":"0x101000","size":8}', // page 1: never written (the zero page)
  '{"op":"get_dirty_log","slot":0}',
  '{"op":"vcpu_read","gpa":"0x100000","size":8}',
  '{"op":"get_dirty_log","slot":0}',
  '{"op":"set_user_memory_region","slot":32763,"flags":0,"guest_phys_addr":"0x200000","memory_size":"0x1000","userspace_addr":"0x1000000000"}',
  '{"op":"vcpu_read","gpa":"0x200000","size":8}',
  '{"op":"set_user_memory_region","slot":32762,"flags":0,"guest_phys_addr":"0x300000","memory_size":"0x1000","userspace_addr":"0x1000000000"}',
].join('\n');

function bitmaps(scratch: boolean): string[] {
  return [...replayText(SEQUENCE, { backend: x86Backend(), oracleScratchSlot: scratch })]
    .map((s) => s.output.bitmap)
    .filter((b): b is string => b !== undefined);
}

describe('guest reads and the dirty log', () => {
  it('a read fault on a written host page marks it dirty; one on a never-written page does not', () => {
    expect(bitmaps(false)[0]).toBe('0100000000000000');
  });

  it('without the scratch slot a read through the write-protected mapping marks nothing again', () => {
    expect(bitmaps(false)[1]).toBe('0000000000000000');
  });

  it('with the scratch slot (the oracle’s footprint) every access faults afresh, so the read marks the page again', () => {
    expect(bitmaps(true)).toEqual(['0100000000000000', '0100000000000000']);
  });

  it('the scratch slot is gone after each access and takes the highest free id', () => {
    const out = [...replayText(SEQUENCE, { backend: x86Backend(), oracleScratchSlot: true })].map((s) => s.output);
    expect(out[8]).toEqual({ ret: 0 }); // id 32763 was free again
    expect(out[9]).toMatchObject({ ret: 0, exit: 'none' }); // the scratch slot took 32762 meanwhile
    expect(out[10]).toEqual({ ret: 0 }); // and gave it back
  });
});
