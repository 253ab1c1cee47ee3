/**
 * The `readFaultMapsWritable` capability: a guest read of a present, writable host page in a
 * dirty-logged slot marks the page dirty where the architecture maps read faults writable (x86,
 * hva_to_pfn() + make_spte()), and never where it does not (arm64-style).
 */
import { describe, expect, it } from 'vitest';
import { KVM_MEM_LOG_DIRTY_PAGES } from '../src/index.js';
import { MiB, mkVm, region, set } from './support/vm.js';

const HVA = 0x7f0000000000;

function readAfterHostWrite(readFaultMapsWritable: boolean, hostWrite: boolean): number {
  const { kvm } = mkVm('scalable', { capabilities: { readFaultMapsWritable } });
  kvm.host.mmap(BigInt(HVA), 2n * MiB);
  if (hostWrite) kvm.host.write(BigInt(HVA), 8, 1n); // a present, writable page (not the zero page)
  expect(set(kvm, region(1, 0x100000n, 2n * MiB, BigInt(HVA), KVM_MEM_LOG_DIRTY_PAGES))).toBe(0);
  kvm.createVcpu(0).read(0x100000, 8);
  return kvm.getDirtyLog(1)[0]!;
}

describe('readFaultMapsWritable', () => {
  it('on: a read of a written host page maps it writable and marks it dirty', () => {
    expect(readAfterHostWrite(true, true)).toBe(1);
  });
  it('on: a read of a never-written page maps the zero page read-only: not dirty', () => {
    expect(readAfterHostWrite(true, false)).toBe(0);
  });
  it('off: a read never marks the page dirty', () => {
    expect(readAfterHostWrite(false, true)).toBe(0);
  });
});
