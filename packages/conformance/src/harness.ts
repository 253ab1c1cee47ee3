/**
 * What case modules share: region builders, a VM with host memory behind one slot, guest-read
 * formatting, and assertions from node:assert (so cases run without any test framework).
 */
import assert from 'node:assert/strict';
import { errnoOf, type Kvm, type UserspaceMemoryRegion, type VcpuAccessResult } from '@kvmsim/kvm-core';
import type { CaseEnv, ConformanceCase } from './types.js';

export { errnoOf };
export { assert };

export const MiB = 0x100000n;
export const UADDR = 0x7f0000000000n;
/** Guest-visible cases: host memory at HVA, slot 1 at GPA. */
export const HVA = 0x7f0000000000;
export const GPA = 0xc0000000;
export const PAGE = 4096;

export function region(slot: number, gpa: bigint, size: bigint, uaddr: bigint = UADDR, flags = 0): UserspaceMemoryRegion {
  return { slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr };
}

/** Identity helper that keeps case literals typed. */
export function defineCase(c: ConformanceCase): ConformanceCase {
  return c;
}

/** Gate: the backend has a vCPU model. */
export function needsVcpu(env: CaseEnv): string | undefined {
  return env.hasVcpu ? undefined : 'the backend has no vCPU model (ArchVm.mmu)';
}

/** Map `bytes` of host memory at HVA and create slot `id` over it at GPA. */
export function withSlot(kvm: Kvm, bytes: number = 2 * 0x100000, flags: number = 0, id: number = 1, gpa: number = GPA, hva: number = HVA): Kvm {
  kvm.host.mmap(BigInt(hva), BigInt(bytes));
  kvm.setUserMemoryRegion(region(id, BigInt(gpa), BigInt(bytes), BigInt(hva), flags));
  return kvm;
}

/** A guest access as the replay protocol prints it: `0x…` for data, `mmio` for an exit. */
export function seen(r: VcpuAccessResult | { readonly exit: 'guest-fault' }): string {
  if (r.exit === 'guest-fault') return 'guest-fault';
  return r.exit === 'none' ? `0x${r.value.toString(16)}` : r.isWrite ? 'mmio-write' : 'mmio';
}

/** The errno (or 0) of one call, asserted. */
export function expectErrno(fn: () => unknown, errno: 0 | string, what?: string): void {
  assert.equal(errnoOf(fn), errno, what);
}

/** Assert that `fn` throws an error whose message matches `re`. */
export function expectThrows(fn: () => unknown, re: RegExp, what?: string): void {
  assert.throws(fn, (e: unknown) => re.test(e instanceof Error ? e.message : String(e)), what);
}

/** Population count of a bitmap. */
export function popcount(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) for (let v = b; v; v &= v - 1) n++;
  return n;
}

/**
 * Write a 4-level radix table (9 index bits a level, 4 KiB pages) mapping `gva` → `gpa` into
 * guest memory through the host: PML4 at `tablesGpa`, then one page per level below it. `bits`
 * are the entry's present/writable bits in the architecture's format (x86: P | R/W = 0x3). For
 * {@link GuestPagingAdapter.map} implementations.
 */
export function writeFourLevelTables(kvm: Kvm, tablesGpa: number, gva: number, gpa: number, bits: bigint): void {
  const pn = Math.floor(gva / PAGE);
  const idx = [Math.floor(pn / 2 ** 27) % 512, Math.floor(pn / 2 ** 18) % 512, Math.floor(pn / 2 ** 9) % 512, pn % 512];
  for (let level = 0; level < 4; level++) {
    const table = tablesGpa + level * PAGE;
    const next = level < 3 ? tablesGpa + (level + 1) * PAGE : gpa - (gpa % PAGE);
    const at = table + idx[level]! * 8;
    const slot = kvm.gfnToMemslot(Math.floor(at / PAGE));
    if (slot === null) throw new Error(`writeFourLevelTables: no memslot at gpa 0x${at.toString(16)}`);
    kvm.host.write(BigInt(slot.hvaPfn * PAGE + (at - slot.baseGfn * PAGE)), 8, BigInt(next) | bits);
  }
}
