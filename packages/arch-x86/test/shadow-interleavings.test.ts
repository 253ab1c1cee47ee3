/**
 * Guest paging on the shadow MMU under explore(): a vCPU's guest-virtual read (guest walk, fetch of
 * indirect shadow pages) races a DELETE of the slot that holds one of the guest's page tables, with
 * SLOT_ZAP_ALL off. Whatever the order, no shadow page may outlive the slot (the fault re-reads
 * its gPTEs through the memslots under mmu_lock), the read sees the data or a guest #PF, and after
 * the DELETE the guest faults.
 */
import { createVm, isKvmError, runSync, type Kvm } from '@kvmsim/kvm-core';
import { explore, formatTrace, type Scenario, type Steps } from '@kvmsim/kvm-core/sched';
import { describe, expect, it } from 'vitest';
import { x86Backend, type X86ArchVm, type X86Options } from '../src/index.js';

const MiB = 0x100000;
const HVA = 0x7f0000000000;
const GPA = 0x40000000;
const HVA2 = HVA + 4 * MiB;
const GPA2 = GPA + 64 * MiB;
const GVA = 2 ** 39 + 2 ** 30 + 2 ** 21 + 4096;

function gw(kvm: Kvm, gpa: number, v: bigint): void {
  kvm.host.write(BigInt(gpa >= GPA2 ? HVA2 + (gpa - GPA2) : HVA + (gpa - GPA)), 8, v);
}

function scenario(options: X86Options): Scenario {
  return {
    name: 'guest-walk-vs-delete-of-page-table-slot',
    description: 'a guest-virtual read through a page table in slot 2 races the DELETE of slot 2',
    setup() {
      const kvm = createVm({ backend: x86Backend({ mmu: 'shadow', ...options }) });
      const arch = kvm.arch as X86ArchVm;
      kvm.host.mmap(BigInt(HVA), BigInt(6 * MiB));
      kvm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: BigInt(GPA), memorySize: BigInt(4 * MiB), userspaceAddr: BigInt(HVA) });
      kvm.setUserMemoryRegion({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA2), memorySize: BigInt(2 * MiB), userspaceAddr: BigInt(HVA2) });
      gw(kvm, GPA + 0x1000 + 8, BigInt(GPA + 0x2000) | 3n); // PML4[1] → PDPT
      gw(kvm, GPA + 0x2000 + 8, BigInt(GPA + 0x3000) | 3n); // PDPT[1] → PD
      gw(kvm, GPA + 0x3000 + 8, BigInt(GPA2) | 3n); // PD[1] → PT in slot 2
      gw(kvm, GPA2 + 8, BigInt(GPA + 0x10000) | 3n); // PT[1] → data
      gw(kvm, GPA + 0x10000, 0x4242n);
      const vcpu = kvm.createVcpu(0);
      arch.setGuestCr3(vcpu, GPA + 0x1000);
      const seen: string[] = [];
      function* reader(): Steps {
        const r = yield* arch.guestAccessSteps(vcpu, GVA, 8, false, 0n);
        seen.push(r.exit === 'none' ? `0x${r.value.toString(16)}` : r.exit);
      }
      function* vmm(): Steps {
        try {
          yield* kvm.setUserMemoryRegionSteps({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA2), memorySize: 0n, userspaceAddr: BigInt(HVA2) });
        } catch (e) {
          if (!isKvmError(e)) throw e;
        }
      }
      return {
        actors: [
          { name: 'vcpu0', steps: reader() },
          { name: 'vmm', steps: vmm() },
        ],
        check() {
          if (seen[0] !== '0x4242' && seen[0] !== 'guest-fault') throw new Error(`the racing read saw ${seen[0]}`);
          const after = arch.guestRead(vcpu, GVA, 8);
          if (after.exit !== 'guest-fault') throw new Error(`after the DELETE the guest still translates (${after.exit})`);
          runSync(arch.zapAllFast()); // no shadow page may still point at the freed slot
        },
        describeState: () => `shadow pages=${arch.shadow!.stats().pages} indirect=${arch.shadow!.indirectShadowPages}`,
      };
    },
  };
}

describe('x86/shadow: guest paging vs DELETE of the page-table slot', () => {
  it('SLOT_ZAP_ALL off: holds in every interleaving', () => {
    const r = explore(scenario({ quirks: { slotZapAll: false } }), { preemptionBound: 2 });
    if (r.failure) throw new Error(formatTrace(r.failure));
    expect(r.complete).toBe(true);
  });

  it('slotZapMissesShadowedGptes is caught', () => {
    const r = explore(scenario({ quirks: { slotZapAll: false }, faults: { slotZapMissesShadowedGptes: true } }), { preemptionBound: 1 });
    expect(r.failure?.message).toMatch(/still translates|use-after-free/);
  });
});
