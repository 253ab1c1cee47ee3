/**
 * Why kvm_arch_memslots_updated() runs before the new generation is installed (2019, "KVM: Call
 * kvm_arch_memslots_updated() before updating memslots"): when the 19-bit MMIO generation wraps,
 * an MMIO SPTE created 2^19 updates ago carries the same masked generation as the new set. If the
 * new generation became visible before the wrap's zap, a vCPU could hit that ancient SPTE and exit
 * to MMIO for a gpa that an installed memslot now covers.
 */
import { createVm, isKvmError, KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS, type CoreFaults, type Kvm } from '@kvmsim/kvm-core';
import { explore, formatTrace, type Scenario, type Steps } from '@kvmsim/kvm-core/sched';
import { describe, expect, it } from 'vitest';
import { x86Backend } from '../src/index.js';

const HVA = 0x7f0000000000;
const GPA = 0xc0000000;

function scenario(faults: CoreFaults): Scenario {
  return {
    name: 'mmio-generation-wrap-vs-create',
    description: 'a slot is created over a gpa with an ancient MMIO SPTE while the generation wraps; a vCPU reads the gpa',
    setup() {
      const kvm: Kvm = createVm({ backend: x86Backend(), faults });
      kvm.host.mmap(BigInt(HVA), 0x200000n);
      kvm.host.write(BigInt(HVA), 8, 0x42n);
      const vcpu = kvm.createVcpu(0);
      vcpu.read(GPA, 8); // MMIO SPTE with generation 0
      // 2^19 − 1 updates later (one address space): the next swap wraps the masked generation to 0.
      kvm.memslots.active(0).generation = 2 ** 19 - 1;
      kvm.memslots.inactive(0).generation = 2 ** 19 - 1;
      const violations: string[] = [];
      function* reader(): Steps {
        const r = yield* vcpu.accessSteps(GPA, 8, false, 0n);
        // Checked in the same step as the access completes: is the gpa covered by an installed slot?
        const set = kvm.memslots.active(0);
        const covered = set.generation < KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS && set.searchMemslots(GPA / 4096, false) !== null;
        if (r.exit === 'mmio' && covered) violations.push('MMIO exit for a gpa an installed memslot covers (an ancient MMIO SPTE matched)');
      }
      function* vmm(): Steps {
        try {
          yield* kvm.setUserMemoryRegionSteps({ slot: 1, flags: 0, guestPhysAddr: BigInt(GPA), memorySize: 0x200000n, userspaceAddr: BigInt(HVA) });
        } catch (e) {
          if (!isKvmError(e)) throw e;
        }
      }
      return {
        actors: [
          { name: 'vmm', steps: vmm() },
          { name: 'vcpu0', steps: reader() },
        ],
        check() {
          if (violations.length) throw new Error(violations[0]);
          const last = vcpu.read(GPA, 8);
          if (last.exit !== 'none' || last.value !== 0x42n) throw new Error('after the CREATE the guest does not see the slot');
        },
        describeState: () => `gen=${kvm.memslots.active(0).generation} mmio_sptes=${(kvm.arch as unknown as { tdp: { stats(): { mmioSptes: number } } }).tdp.stats().mmioSptes}`,
      };
    },
  };
}

describe('x86: MMIO generation wrap vs memslot install', () => {
  it('holds when the arch hook runs before the generation is installed (6.18)', () => {
    const r = explore(scenario({}), { preemptionBound: 2 });
    if (r.failure) throw new Error(formatTrace(r.failure));
    expect(r.complete).toBe(true);
  });

  it('the core switch memslotsUpdatedAfterInstall re-introduces the bug', () => {
    const r = explore(scenario({ memslotsUpdatedAfterInstall: true }), { preemptionBound: 2 });
    expect(r.failure?.message).toMatch(/ancient MMIO SPTE/);
  });
});
