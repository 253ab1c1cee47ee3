/**
 * The VMs of `kvmsim bench x86`: an x86 VM (the TDP MMU or the shadow MMU, otherwise default
 * options) with one memslot backed by one anonymous host mapping, and a vCPU. Sizes are in 4 KiB
 * pages.
 */
import { createVm, type Kvm, type KvmVcpu, type MemorySlot, type UserspaceMemoryRegion } from '@kvmsim/kvm-core';
import { x86Backend, type X86ArchVm, type X86Options } from '@kvmsim/x86';

/** The MMUs the benchmarks run on. */
export type X86BenchMmu = 'tdp' | 'shadow';

export const PAGE_BYTES = 4096;
/** 4 KiB pages per 2 MiB page. */
export const PAGES_PER_2M = 512;
export const MiB: number = 2 ** 20;
export const GiB: number = 2 ** 30;

/** Guest physical address of every benchmark slot: 4 GiB, aligned for 1 GiB leaves. */
export const SLOT_GPA: number = 4 * GiB;
/** Host virtual address of every benchmark mapping, 1 GiB aligned. */
export const SLOT_HVA = 0x7f0000000000;
/** The slot's first gfn. */
export const SLOT_GFN: number = SLOT_GPA / PAGE_BYTES;

export interface X86BenchVm {
  kvm: Kvm;
  arch: X86ArchVm;
  vcpu: KvmVcpu;
  /** The slot's KVM_SET_USER_MEMORY_REGION argument (memorySize 0n of it deletes the slot). */
  region: UserspaceMemoryRegion;
  pages: number;
}

/**
 * A VM with slot 0 of `pages` 4 KiB pages at SLOT_GPA, backed by an untouched private anonymous
 * mapping at SLOT_HVA; `thp` gives the mapping VM_HUGEPAGE (every 2 MiB block of it is THP
 * eligible, so a first touch allocates a huge page).
 */
export function x86BenchVm(pages: number, thp: boolean, mmu: X86BenchMmu = 'tdp', options: X86Options = {}): X86BenchVm {
  const kvm = createVm({ backend: x86Backend({ ...options, mmu }) });
  const bytes = BigInt(pages) * BigInt(PAGE_BYTES);
  kvm.host.mmap(BigInt(SLOT_HVA), bytes, { thp });
  const region: UserspaceMemoryRegion = {
    slot: 0,
    flags: 0,
    guestPhysAddr: BigInt(SLOT_GPA),
    memorySize: bytes,
    userspaceAddr: BigInt(SLOT_HVA),
  };
  kvm.setUserMemoryRegion(region);
  return { kvm, arch: kvm.arch as X86ArchVm, vcpu: kvm.createVcpu(0), region, pages };
}

/** Host address of page `i` of the slot. */
export function hvaOfPage(i: number): bigint {
  return BigInt(SLOT_HVA + i * PAGE_BYTES);
}

/** A slot size for reports: `64 MiB`, `1 GiB`, `16 GiB`. */
export function sizeLabel(pages: number): string {
  const bytes = pages * PAGE_BYTES;
  return bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`;
}

/** Host page-frame number (hva >> 12) of page `i` of the slot. */
export function hvaPfnOfPage(i: number): number {
  return SLOT_HVA / PAGE_BYTES + i;
}

/** madvise(MADV_DONTNEED) of pages [first, first + count) of the slot's mapping. */
export function dontneedPages(vm: X86BenchVm, first: number, count: number): void {
  vm.kvm.host.madvise(hvaOfPage(first), BigInt(count) * BigInt(PAGE_BYTES), 'DONTNEED');
}

/**
 * Guest loads of 8 bytes at page `first + i * stride`, i < count (the whole fault path of each
 * page not mapped yet); returns how many completed without an exit (a checksum, and a check).
 */
export function guestReads(vcpu: KvmVcpu, first: number, count: number, stride: number): number {
  let ok = 0;
  for (let i = 0; i < count; i++) {
    const r = vcpu.read(SLOT_GPA + (first + i * stride) * PAGE_BYTES, 8);
    if (r.exit === 'none') ok++;
  }
  return ok;
}

/** Present leaves at 4 KiB, 2 MiB and 1 GiB of the VM's MMU (TDP: over all roots; shadow: valid pages). */
export function leafCounts(vm: X86BenchVm): readonly [number, number, number] {
  return vm.arch.tdpEnabled ? vm.arch.tdp.stats().leaves : vm.arch.shadow!.stats().leaves;
}

/** The benchmark slot (slot 0 of address space 0). */
export function benchSlot(vm: X86BenchVm): MemorySlot {
  const slot = vm.kvm.memslots.active(0).idToMemslot(0);
  if (slot === null) throw new Error('x86 bench: the benchmark slot is gone');
  return slot;
}
