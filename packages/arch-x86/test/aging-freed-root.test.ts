/**
 * Lockless TDP MMU aging vs a fast zap (fault switch `agingFreedRoot`): aging walks the valid
 * roots under rcu_read_lock() and may be preempted between roots; a DELETE with SLOT_ZAP_ALL
 * invalidates, zaps and frees every root meanwhile. The kernel frees roots after an RCU grace
 * period and the walk skips roots invalidated since it began, so aging never touches a freed
 * root; without either, explore() finds the use-after-free.
 */
import { HostAddressSpace, createVm, isKvmError, type Kvm } from '@kvmsim/kvm-core';
import { explore, formatTrace, type Scenario, type Steps } from '@kvmsim/kvm-core/sched';
import { describe, expect, it } from 'vitest';
import { x86Backend, type X86Faults } from '../src/index.js';

const MiB = 0x100000;
const HVA = 0x7f0000000000;
const GPA = 0xc0000000;

function scenario(faults: X86Faults): Scenario {
  return {
    name: 'tdp-aging-vs-fast-zap',
    description: 'clear_young on slot 1 races a DELETE of slot 2 that fast-zaps every TDP root',
    setup() {
      const kvm: Kvm = createVm({ backend: x86Backend({ faults }), host: new HostAddressSpace({ poison: 0xaa }) });
      kvm.host.mmap(BigInt(HVA), BigInt(4 * MiB));
      kvm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: BigInt(GPA), memorySize: BigInt(2 * MiB), userspaceAddr: BigInt(HVA) });
      kvm.setUserMemoryRegion({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA + 16 * MiB), memorySize: BigInt(2 * MiB), userspaceAddr: BigInt(HVA + 2 * MiB) });
      kvm.host.write(BigInt(HVA), 8, 0x42n);
      const vcpu = kvm.createVcpu(0);
      vcpu.read(GPA, 8); // a young mapping in the valid root
      function* ager(): Steps {
        yield* kvm.mmuNotifier.clearYoung(HVA, HVA + 4096);
      }
      function* vmm(): Steps {
        try {
          yield* kvm.setUserMemoryRegionSteps({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA + 16 * MiB), memorySize: 0n, userspaceAddr: BigInt(HVA + 2 * MiB) });
        } catch (e) {
          if (!isKvmError(e)) throw e;
        }
      }
      return {
        actors: [
          { name: 'aging', steps: ager() },
          { name: 'vmm', steps: vmm() },
        ],
        check() {
          const r = vcpu.read(GPA, 8);
          if (r.exit !== 'none' || r.value !== 0x42n) throw new Error('after the DELETE of slot 2 the guest does not read slot 1');
        },
        describeState: () => `fast_zaps=${(kvm.arch as unknown as { fastZaps: number }).fastZaps}`,
      };
    },
  };
}

describe('x86/tdp: lockless aging vs a fast zap', () => {
  it('never walks a freed root (RCU-deferred free, invalid roots skipped)', () => {
    const r = explore(scenario({}), { preemptionBound: 2 });
    if (r.failure) throw new Error(formatTrace(r.failure));
    expect(r.complete).toBe(true);
  });

  it('agingFreedRoot re-introduces the use-after-free, and explore() finds it', () => {
    const r = explore(scenario({ agingFreedRoot: true }), { preemptionBound: 2 });
    expect(r.failure?.message).toMatch(/use-after-free/);
  });
});
