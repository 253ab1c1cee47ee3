/**
 * Guest-visible behaviour of the x86 backend through the shared fault path (issue: x86 TDP MMU):
 * the first access faults and maps, later accesses use the mapping, so a stale mapping after an
 * invalidation would show as a stale value.
 */
import { createVm, type Kvm, type VcpuAccessResult } from '@kvmsim/kvm-core';
import { describe, expect, it } from 'vitest';
import { x86Backend, type X86ArchVm, type X86Options } from '../src/index.js';

const MiB = 0x100000;
const HVA = 0x7f0000000000;
const GPA = 0xc0000000;

function vm(options: X86Options = {}): { kvm: Kvm; arch: X86ArchVm } {
  const kvm = createVm({ backend: x86Backend(options) });
  return { kvm, arch: kvm.arch as X86ArchVm };
}

function slot(kvm: Kvm, id: number, gpa: number, size: number, hva: number, flags = 0): void {
  kvm.setUserMemoryRegion({ slot: id, flags, guestPhysAddr: BigInt(gpa), memorySize: BigInt(size), userspaceAddr: BigInt(hva) });
}

/** The configurations every guest-visible scenario runs on. */
const CONFIGS: [string, X86Options][] = [
  ['x86/tdp', {}],
  ['x86/shadow', { mmu: 'shadow' }],
  ['x86/shadow + nestedTdp', { mmu: 'shadow', nestedTdp: true }],
];

/** MMIO SPTEs cached by L1's MMU. */
function mmioSptes(arch: X86ArchVm): number {
  return arch.tdpEnabled ? arch.tdp.stats().mmioSptes : arch.shadow!.stats().mmioSptes;
}

const value = (r: VcpuAccessResult): string => (r.exit === 'none' ? `0x${r.value.toString(16)}` : 'mmio');

describe.each(CONFIGS)('%s: guest-visible scenarios', (_name, base) => {
  const vmc = (o: X86Options = {}): { kvm: Kvm; arch: X86ArchVm } => vm({ ...base, ...o });

  it('host write → guest read; DONTNEED → 0; host writes again → the new value (no stale mapping)', () => {
    const { kvm } = vmc();
    kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
    slot(kvm, 1, GPA, 2 * MiB, HVA);
    const v = kvm.createVcpu(0);
    kvm.host.write(BigInt(HVA), 8, 0x1111n);
    expect(value(v.read(GPA, 8))).toBe('0x1111');
    const faults = v.faults;
    expect(value(v.read(GPA, 8))).toBe('0x1111');
    expect(v.faults).toBe(faults); // the second access used the mapping
    kvm.host.madvise(BigInt(HVA), 4096n, 'DONTNEED');
    expect(value(v.read(GPA, 8))).toBe('0x0');
    kvm.host.write(BigInt(HVA), 8, 0x2222n);
    expect(value(v.read(GPA, 8))).toBe('0x2222');
    v.write(GPA + 8, 8, 0x3333n);
    expect(kvm.host.read(BigInt(HVA + 8), 8)).toBe(0x3333n);
  });

  it('MOVE → the old gpa is MMIO, the new gpa shows the data; DELETE → MMIO', () => {
    const { kvm } = vmc();
    kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
    slot(kvm, 1, GPA, 2 * MiB, HVA);
    kvm.host.write(BigInt(HVA), 8, 0x1234n);
    const v = kvm.createVcpu(0);
    expect(value(v.read(GPA, 8))).toBe('0x1234');
    slot(kvm, 1, GPA + 16 * MiB, 2 * MiB, HVA);
    expect(value(v.read(GPA, 8))).toBe('mmio');
    expect(value(v.read(GPA + 16 * MiB, 8))).toBe('0x1234');
    slot(kvm, 1, GPA + 16 * MiB, 0, HVA);
    expect(value(v.read(GPA + 16 * MiB, 8))).toBe('mmio');
  });

  it('an unbacked gpa caches an MMIO SPTE; a slot created there is seen (the generation changed)', () => {
    const { kvm, arch } = vmc();
    kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
    kvm.host.write(BigInt(HVA), 8, 0x77n);
    const v = kvm.createVcpu(0);
    expect(value(v.read(GPA, 8))).toBe('mmio');
    expect(mmioSptes(arch)).toBe(1);
    const faults = v.faults;
    expect(value(v.read(GPA, 8))).toBe('mmio');
    expect(v.faults).toBe(faults); // the MMIO SPTE answered, no fault
    slot(kvm, 1, GPA, 2 * MiB, HVA);
    expect(value(v.read(GPA, 8))).toBe('0x77');
  });

  it('a write to a READONLY slot exits as MMIO with is_write and leaves the host page alone', () => {
    const { kvm } = vmc();
    kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
    slot(kvm, 1, GPA, 2 * MiB, HVA, 2);
    kvm.host.write(BigInt(HVA), 8, 0x5n);
    const v = kvm.createVcpu(0);
    expect(value(v.read(GPA, 8))).toBe('0x5');
    expect(v.write(GPA, 8, 0x9n)).toEqual({ exit: 'mmio', physAddr: GPA, len: 8, isWrite: true, data: 0x9n });
    expect(kvm.host.read(BigInt(HVA), 8)).toBe(0x5n);
  });

  it('dirty bits from guest writes: GET (get-and-clear, re-protect) and CLEAR (manual protect)', () => {
    for (const pml of [false, true]) {
      const { kvm } = vmc({ pml });
      kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
      slot(kvm, 1, GPA, 2 * MiB, HVA, 1);
      const v = kvm.createVcpu(0);
      v.read(GPA + 4096, 8); // a read never dirties
      v.write(GPA + 2 * 4096, 8, 1n);
      v.write(GPA + 3 * 4096, 8, 1n);
      expect(kvm.getDirtyLog(1)[0]).toBe(0b1100);
      expect(kvm.getDirtyLog(1)[0]).toBe(0);
      v.write(GPA + 2 * 4096, 8, 2n); // re-protected: the next write is logged again
      expect(kvm.getDirtyLog(1)[0]).toBe(0b0100);
      kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', 0, [1n]);
      v.write(GPA + 5 * 4096, 8, 1n);
      expect(kvm.getDirtyLog(1)[0]).toBe(0b100000);
      kvm.clearDirtyLog(1, 0n, 64, new Uint8Array(8).fill(0xff));
      expect(kvm.getDirtyLog(1)[0]).toBe(0);
      v.write(GPA + 5 * 4096, 8, 3n);
      expect(kvm.getDirtyLog(1)[0]).toBe(0b100000);
    }
  });

  it('a fault on a slot being deleted retries instead of exiting (kvm_mmu_faultin_pfn): single-threaded it cannot proceed', () => {
    const { kvm } = vmc();
    expect(kvm.arch.mmu?.retryOnInvalidSlot).toBe(true);
  });
});

describe('x86/tdp: huge pages', () => {
  it('2 MiB and 1 GiB leaves exactly when the slot and the host allow them; 4 KiB while logging', () => {
    const { kvm, arch } = vm();
    // THP host mapping, gpa ≡ hva mod 2M, slot covering whole 2M pages
    kvm.host.mmap(BigInt(HVA), BigInt(8 * MiB), { thp: true });
    slot(kvm, 1, GPA, 8 * MiB, HVA);
    kvm.createVcpu(0).write(GPA + 12345 * 8, 8, 1n);
    expect(arch.tdp.stats().leaves).toEqual([0, 1, 0]);
    // a slot whose gpa is not congruent with its hva mod 2M: 4K only
    const b = vm();
    b.kvm.host.mmap(BigInt(HVA), BigInt(8 * MiB), { thp: true });
    slot(b.kvm, 1, GPA + 4096, 4 * MiB, HVA);
    b.kvm.createVcpu(0).read(GPA + 4096, 8);
    expect(b.arch.tdp.stats().leaves).toEqual([1, 0, 0]);
    // a host mapping without THP: 4K
    const c = vm();
    c.kvm.host.mmap(BigInt(HVA), BigInt(8 * MiB));
    slot(c.kvm, 1, GPA, 8 * MiB, HVA);
    c.kvm.createVcpu(0).read(GPA, 8);
    expect(c.arch.tdp.stats().leaves).toEqual([1, 0, 0]);
  });

  it('enabling dirty logging splits huge pages eagerly and later faults map 4 KiB', () => {
    const { kvm, arch } = vm();
    kvm.host.mmap(BigInt(HVA), BigInt(4 * MiB), { thp: true });
    slot(kvm, 1, GPA, 4 * MiB, HVA);
    const v = kvm.createVcpu(0);
    v.write(GPA, 8, 1n);
    expect(arch.tdp.stats().leaves[1]).toBe(1);
    slot(kvm, 1, GPA, 4 * MiB, HVA, 1);
    expect(arch.tdp.stats().leaves[1]).toBe(0);
    expect(arch.tdp.stats().leaves[0]).toBe(512);
    v.write(GPA + 2 * MiB, 8, 1n);
    expect(arch.tdp.stats().leaves[1]).toBe(0);
  });
});

describe('x86: MMIO generations (the 2019 series)', () => {
  it('memslots updated before install: an MMIO SPTE created during the update never matches afterwards', () => {
    const { kvm } = vm();
    kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
    kvm.host.write(BigInt(HVA), 8, 0x42n);
    const v = kvm.createVcpu(0);
    expect(value(v.read(GPA, 8))).toBe('mmio'); // cached with the current generation
    slot(kvm, 1, GPA, 2 * MiB, HVA);
    expect(value(v.read(GPA, 8))).toBe('0x42');
  });

  it('a cached MMIO SPTE is not trusted while memslots are in flux (the switch breaks it)', () => {
    for (const [faults, seen] of [[{}, '0x42'], [{ mmioCachedWhileInFlux: true }, 'mmio']] as const) {
      const { kvm } = vm({ faults });
      kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
      kvm.host.write(BigInt(HVA), 8, 0x42n);
      const v = kvm.createVcpu(0);
      v.read(GPA, 8);
      slot(kvm, 1, GPA, 2 * MiB, HVA);
      expect(value(v.read(GPA, 8))).toBe(seen);
    }
  });

  it('a wrap of the MMIO generation zaps everything, detected in any address space', () => {
    for (const [faults, wraps] of [[{}, true], [{ mmioWrapOnlyAs0: true }, false]] as const) {
      const { kvm, arch } = vm({ smm: true, faults });
      kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
      // Push address space 1's generation to just below the 19-bit wrap: 2^19 + 1 ≡ 1 (mod 2).
      const set1 = kvm.memslots.active(1);
      set1.generation = 2 ** 19 - 1; // ≡ 1 (mod 2), as generations of as 1 are
      kvm.memslots.inactive(1).generation = set1.generation;
      const before = arch.mmioGenWraps;
      slot(kvm, 0x10001, GPA, 2 * MiB, HVA); // the swap computes 2^19 + 1: masked 1, minus the as bit → 0
      expect(arch.mmioGenWraps > before).toBe(wraps);
    }
  });
});
