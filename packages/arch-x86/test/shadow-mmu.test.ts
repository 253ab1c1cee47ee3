/**
 * The shadow MMU: guest page tables in guest memory walked by the model (4 KiB and guest 2 MiB
 * pages), write protection of shadowed guest page tables, nested TDP (L1's EPT tables), the
 * SLOT_ZAP_ALL-off slot zap with the shadow pages that shadow gPTEs in the slot, the 2013 fast
 * invalidate, aging and the shadow-MMU tracepoints.
 */
import { createVm, runSync, type Kvm, type KvmTraceEvent } from '@kvmsim/kvm-core';
import { describe, expect, it } from 'vitest';
import { EPT_A, EPT_D, PT_ACCESSED, PT_DIRTY, x86Backend, type GuestAccessResult, type X86ArchVm, type X86Options } from '../src/index.js';

const MiB = 0x100000;
const HVA = 0x7f0000000000;
const GPA = 0x40000000;
const HVA2 = HVA + 4 * MiB;
const GPA2 = GPA + 64 * MiB;
const PML4 = GPA + 0x1000;
const PDPT = GPA + 0x2000;
const PD = GPA + 0x3000;
const PT = GPA + 0x4000;
const DATA = GPA + 0x10000;
const DATA_B = GPA + 0x11000;
/** PML4[1] → PDPT[1] → PD[i] → PT[j] */
const gva = (pd: number, pt: number, off = 0): number => 2 ** 39 + 2 ** 30 + pd * 2 ** 21 + pt * 4096 + off;
const P_RW = 3n;

function setup(options: X86Options = {}, trace?: (e: KvmTraceEvent) => void): { kvm: Kvm; arch: X86ArchVm } {
  const kvm = createVm({ backend: x86Backend({ mmu: 'shadow', ...options }), ...(trace ? { trace } : {}) });
  kvm.host.mmap(BigInt(HVA), BigInt(6 * MiB));
  kvm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: BigInt(GPA), memorySize: BigInt(4 * MiB), userspaceAddr: BigInt(HVA) });
  kvm.setUserMemoryRegion({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA2), memorySize: BigInt(2 * MiB), userspaceAddr: BigInt(HVA2) });
  // Guest tables: PML4[1] → PDPT, PDPT[1] → PD, PD[1] → PT, PT[1] → DATA.
  gw(kvm, PML4 + 8, BigInt(PDPT) | P_RW);
  gw(kvm, PDPT + 8, BigInt(PD) | P_RW);
  gw(kvm, PD + 8, BigInt(PT) | P_RW);
  gw(kvm, PT + 8, BigInt(DATA) | P_RW);
  gw(kvm, DATA + 8, 0x1111n);
  gw(kvm, DATA_B + 8, 0x2222n);
  return { kvm, arch: kvm.arch as X86ArchVm };
}

/** Host write of guest memory at a gpa (slot 1 or 2). */
function gw(kvm: Kvm, gpa: number, v: bigint): void {
  kvm.host.write(BigInt(gpa >= GPA2 ? HVA2 + (gpa - GPA2) : HVA + (gpa - GPA)), 8, v);
}
function gr(kvm: Kvm, gpa: number): bigint {
  return kvm.host.read(BigInt(HVA + (gpa - GPA)), 8);
}
const show = (r: GuestAccessResult): string => (r.exit === 'none' ? `0x${r.value.toString(16)}` : r.exit === 'guest-fault' ? `#PF(${r.reason})` : 'mmio');

describe('x86/shadow: guest page tables', () => {
  it('capabilities of a shadow VM: faults under the write lock, lockless but not fast aging', () => {
    const caps = x86Backend({ mmu: 'shadow' }).capabilities;
    expect([caps.faultLock, caps.locklessAging, caps.fastAging]).toEqual(['write', true, false]);
    expect(x86Backend().capabilities.faultLock).toBe('read');
  });

  it('walks 4-level guest tables for a 4 KiB page, sets A (and D on a write), shadows each table', () => {
    const { kvm, arch } = setup();
    const v = kvm.createVcpu(0);
    arch.setGuestCr3(v, PML4);
    expect(show(arch.guestRead(v, gva(1, 1, 8), 8))).toBe('0x1111');
    expect(gr(kvm, PT + 8) & PT_ACCESSED).toBe(PT_ACCESSED);
    expect(gr(kvm, PML4 + 8) & PT_ACCESSED).toBe(PT_ACCESSED);
    expect(gr(kvm, PT + 8) & PT_DIRTY).toBe(0n);
    const s = arch.shadow!.stats();
    expect(s.indirectPages).toBe(4); // PML4, PDPT, PD, PT
    expect(s.leaves).toEqual([1, 0, 0]);
    const faults = v.faults;
    expect(show(arch.guestRead(v, gva(1, 1, 16), 8))).toBe('0x0');
    expect(v.faults).toBe(faults); // the shadow translation answered
    expect(show(arch.guestWrite(v, gva(1, 1, 24), 8, 0x33n))).toBe('0x0');
    expect(gr(kvm, DATA + 24)).toBe(0x33n);
    expect(gr(kvm, PT + 8) & PT_DIRTY).toBe(PT_DIRTY);
    expect(show(arch.guestRead(v, gva(1, 9), 8))).toBe('#PF(not-present)');
  });

  it('a guest 2 MiB PDE maps 2 MiB of guest memory', () => {
    const { kvm, arch } = setup();
    gw(kvm, PD + 2 * 8, BigInt(GPA + 2 * MiB) | 0x80n | P_RW);
    gw(kvm, GPA + 2 * MiB + 0x5008, 0x5555n);
    const v = kvm.createVcpu(0);
    arch.setGuestCr3(v, PML4);
    expect(show(arch.guestRead(v, gva(2, 5, 8), 8))).toBe('0x5555');
    // PML4, PDPT, PD are shadowed; below the guest's huge page a direct page (no gPT to shadow).
    expect(arch.shadow!.stats().indirectPages).toBe(3);
  });

  it('a guest write to its own page table is emulated and zaps the shadowed gPTE: the new translation is seen', () => {
    const { kvm, arch } = setup();
    gw(kvm, PT + 2 * 8, BigInt(PT) | P_RW); // PT[2] maps the page table itself
    const v = kvm.createVcpu(0);
    arch.setGuestCr3(v, PML4);
    expect(show(arch.guestRead(v, gva(1, 1, 8), 8))).toBe('0x1111');
    expect(show(arch.guestRead(v, gva(1, 2, 8), 8))).toBe(`0x${((BigInt(DATA) | P_RW | PT_ACCESSED)).toString(16)}`);
    // The store through the self-map: write-protected (its gfn is a shadowed page table) → emulated.
    expect(show(arch.guestWrite(v, gva(1, 2, 8), 8, BigInt(DATA_B) | P_RW))).toBe('0x0');
    expect(gr(kvm, PT + 8)).toBe(BigInt(DATA_B) | P_RW);
    expect(show(arch.guestRead(v, gva(1, 1, 8), 8))).toBe('0x2222');
    // The same through the vCPU's non-paging gpa path: the page table is unprotected (zapped).
    v.write(PT + 8, 8, BigInt(DATA) | P_RW);
    expect(show(arch.guestRead(v, gva(1, 1, 8), 8))).toBe('0x1111');
  });

  it('nested TDP: an L2 access walks L1\'s EPT tables in guest memory (A/D set) through guest_mode shadow pages', () => {
    const { kvm, arch } = setup({ nestedTdp: true });
    const E4 = GPA + 0x20000;
    const RWX = 7n;
    gw(kvm, E4, BigInt(E4 + 0x1000) | RWX);
    gw(kvm, E4 + 0x1000, BigInt(E4 + 0x2000) | RWX);
    gw(kvm, E4 + 0x2000, BigInt(E4 + 0x3000) | RWX);
    gw(kvm, E4 + 0x3000 + 8, BigInt(DATA) | RWX); // L2 gpa 0x1000 → DATA
    const v = kvm.createVcpu(0);
    arch.setNestedEptp(v, E4);
    expect(show(arch.l2Read(v, 0x1000 + 8, 8))).toBe('0x1111');
    expect(show(arch.l2Write(v, 0x1000 + 16, 8, 0x77n))).toBe('0x0');
    expect(gr(kvm, DATA + 16)).toBe(0x77n);
    expect(gr(kvm, E4 + 0x3000 + 8) & (EPT_A | EPT_D)).toBe(EPT_A | EPT_D);
    expect(show(arch.l2Read(v, 0x2000, 8))).toBe('#PF(not-present)'); // an EPT violation for L1
    expect(arch.shadow!.stats().indirectPages).toBe(4);
    // L1's own accesses run on the shadow MMU's direct pages, next to L2's.
    expect(v.read(DATA + 8, 8)).toEqual({ exit: 'none', value: 0x1111n });
  });
});

describe('x86/shadow: huge pages', () => {
  it('a THP-backed slot maps 2 MiB leaves, on the gpa path and under a guest 2 MiB PDE, each page at its own frame', () => {
    const kvm = createVm({ backend: x86Backend({ mmu: 'shadow' }) });
    const arch = kvm.arch as X86ArchVm;
    kvm.host.mmap(BigInt(HVA), BigInt(8 * MiB), { thp: true });
    kvm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: BigInt(GPA), memorySize: BigInt(8 * MiB), userspaceAddr: BigInt(HVA) });
    for (let p = 0; p < 8; p++) kvm.host.write(BigInt(HVA + 2 * MiB + p * 4096), 8, BigInt(0x100 + p));
    const v = kvm.createVcpu(0);
    expect(v.read(GPA + 2 * MiB + 5 * 4096, 8)).toEqual({ exit: 'none', value: 0x105n });
    expect(arch.shadow!.stats().leaves).toEqual([0, 1, 0]);
    expect(v.read(GPA + 2 * MiB + 7 * 4096, 8)).toEqual({ exit: 'none', value: 0x107n });
    // Guest tables in the first 2 MiB (4K host pages there would be split by the write protection).
    gw(kvm, PML4 + 8, BigInt(PDPT) | P_RW);
    gw(kvm, PDPT + 8, BigInt(PD) | P_RW);
    gw(kvm, PD + 2 * 8, BigInt(GPA + 2 * MiB) | 0x80n | P_RW);
    arch.setGuestCr3(v, PML4);
    expect(show(arch.guestRead(v, gva(2, 3), 8))).toBe('0x103');
    expect(show(arch.guestRead(v, gva(2, 6), 8))).toBe('0x106');
    expect(arch.shadow!.stats().leaves[1]).toBe(2); // the direct one and the guest's
  });
});

describe('x86/tdp + nestedTdp: rmaps next to the TDP MMU', () => {
  it('L2 maps through guest_mode shadow pages; aging reaches them once indirect shadow pages exist', () => {
    const { kvm, arch } = setup({ mmu: 'tdp', nestedTdp: true });
    expect(x86Backend({ mmu: 'tdp', nestedTdp: true }).capabilities).toMatchObject({ faultLock: 'read', fastAging: false });
    const E4 = GPA + 0x20000;
    gw(kvm, E4, BigInt(E4 + 0x1000) | 7n);
    gw(kvm, E4 + 0x1000, BigInt(E4 + 0x2000) | 7n);
    gw(kvm, E4 + 0x2000, BigInt(E4 + 0x3000) | 7n);
    gw(kvm, E4 + 0x3000 + 8, BigInt(DATA_B) | 7n);
    const v = kvm.createVcpu(0);
    arch.setNestedEptp(v, E4);
    expect(show(arch.l2Read(v, 0x1000 + 8, 8))).toBe('0x2222');
    expect(arch.tdp.stats().leaves).toEqual([0, 0, 0]); // L1 never touched it: only L2's SPTE maps DATA_B
    expect(arch.shadow!.indirectShadowPages).toBe(4);
    const hva = HVA + (DATA_B - GPA);
    expect(runSync(kvm.mmuNotifier.testYoung(hva))).toBe(true);
    runSync(kvm.mmuNotifier.clearYoung(hva, hva + 4096));
    expect(runSync(kvm.mmuNotifier.testYoung(hva))).toBe(false);
    // The host drops the page: the notifier zaps L2's SPTE through the rmaps.
    kvm.host.madvise(BigInt(hva), 4096n, 'DONTNEED');
    expect(arch.shadow!.stats().leaves).toEqual([0, 0, 0]);
    expect(show(arch.l2Read(v, 0x1000 + 8, 8))).toBe('0x0');
  });
});

describe('x86/shadow: memslot zaps', () => {
  /** PD[3] → a page table in slot 2 → DATA (slot 1). */
  function withPtInSlot2(options: X86Options, trace?: (e: KvmTraceEvent) => void): { kvm: Kvm; arch: X86ArchVm; read: () => string } {
    const { kvm, arch } = setup(options, trace);
    gw(kvm, PD + 3 * 8, BigInt(GPA2) | P_RW);
    gw(kvm, GPA2 + 8, BigInt(DATA) | P_RW);
    const v = kvm.createVcpu(0);
    arch.setGuestCr3(v, PML4);
    return { kvm, arch, read: () => show(arch.guestRead(v, gva(3, 1, 8), 8)) };
  }
  const deleteSlot2 = (kvm: Kvm): void => kvm.setUserMemoryRegion({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA2), memorySize: 0n, userspaceAddr: BigInt(HVA2) });

  it('SLOT_ZAP_ALL off: DELETE zaps the shadow pages of gPTEs in the slot; other shadow pages stay', () => {
    const { kvm, arch, read } = withPtInSlot2({ quirks: { slotZapAll: false } });
    expect(read()).toBe('0x1111');
    expect(arch.shadow!.stats().indirectPages).toBe(4);
    deleteSlot2(kvm);
    expect(arch.shadow!.stats().indirectPages).toBe(3); // PML4, PDPT, PD survive
    expect(read()).toBe('#PF(no-memslot)');
  });

  it('slotZapMissesShadowedGptes: the guest keeps translating through a page table of the deleted slot', () => {
    const { kvm, arch, read } = withPtInSlot2({ quirks: { slotZapAll: false }, faults: { slotZapMissesShadowedGptes: true } });
    expect(read()).toBe('0x1111');
    deleteSlot2(kvm);
    expect(arch.shadow!.stats().indirectPages).toBe(4);
    expect(read()).toBe('0x1111'); // stale: the correct answer is #PF(no-memslot)
    // Zapping the stale page later reads the freed slot's metadata (the kernel's use-after-free).
    expect(() => runSync(arch.zapAllFast())).toThrow(/use-after-free/);
  });

  it('SLOT_ZAP_ALL on (6.18): DELETE makes every shadow page obsolete and zaps it; mmu_valid_gen toggles 0/1', () => {
    const events: KvmTraceEvent[] = [];
    const { kvm, arch, read } = withPtInSlot2({}, (e) => events.push(e));
    expect(read()).toBe('0x1111');
    const pages = arch.shadow!.stats().pages;
    expect(events.some((e) => e.name === 'kvm_mmu_set_spte')).toBe(true);
    deleteSlot2(kvm);
    expect(arch.shadow!.stats().pages).toBe(0);
    const zap = events.find((e) => e.name === 'kvm_mmu_zap_all_fast');
    expect(zap?.args).toMatchObject({ mmu_valid_gen: 0, mmu_used_pages: pages });
    expect(read()).toBe('#PF(no-memslot)');
    const gens: number[] = [arch.shadow!.mmuValidGen];
    for (let i = 0; i < 2; i++) {
      kvm.setUserMemoryRegion({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA2), memorySize: BigInt(2 * MiB), userspaceAddr: BigInt(HVA2) });
      deleteSlot2(kvm);
      gens.push(arch.shadow!.mmuValidGen);
    }
    expect(gens).toEqual([1, 0, 1]);
  });

  it('the 2013 fast invalidate: mmu_valid_gen counts up, every page is zapped in one mmu_lock section', () => {
    const { kvm, arch, read } = withPtInSlot2({ zapStrategy: 'fast-invalidate-2013', quirks: { slotZapAll: false } });
    expect(read()).toBe('0x1111');
    const v = kvm.createVcpu(0);
    expect(v.read(DATA + 8, 8)).toEqual({ exit: 'none', value: 0x1111n });
    deleteSlot2(kvm); // the quirk did not exist: everything goes
    expect(arch.shadow!.stats().pages).toBe(0);
    expect(read()).toBe('#PF(no-memslot)');
    const gens: number[] = [arch.shadow!.mmuValidGen];
    for (let i = 0; i < 2; i++) {
      kvm.setUserMemoryRegion({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA2), memorySize: BigInt(2 * MiB), userspaceAddr: BigInt(HVA2) });
      deleteSlot2(kvm);
      gens.push(arch.shadow!.mmuValidGen);
    }
    expect(gens).toEqual([1, 2, 3]);
    expect(v.read(DATA + 8, 8)).toEqual({ exit: 'none', value: 0x1111n });
    expect(() => x86Backend({ zapStrategy: 'fast-invalidate-2013' })).toThrow(RangeError);
  });

  it('aging through rmaps: clear_young clears A, the next access sets it again', () => {
    const { kvm, arch } = setup();
    const v = kvm.createVcpu(0);
    v.read(DATA, 8);
    expect(runSync(kvm.mmuNotifier.testYoung(HVA + 0x10000))).toBe(true);
    runSync(kvm.mmuNotifier.clearYoung(HVA + 0x10000, HVA + 0x11000));
    expect(runSync(kvm.mmuNotifier.testYoung(HVA + 0x10000))).toBe(false);
    v.read(DATA, 8);
    expect(runSync(kvm.mmuNotifier.testYoung(HVA + 0x10000))).toBe(true);
    expect(arch.shadow!.stats().leaves[0]).toBe(1);
  });
});
