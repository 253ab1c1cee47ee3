/**
 * Interleavings (kvm-generic.md §4, §9): the built-in scenarios of @kvmsim/kvm-core/scenarios,
 * run on the backend under test through `explore` (systematic, preemption-bounded), plus one
 * scenario of this suite's own: lockless aging racing the zap of a whole root. Every schedule
 * ends with the §9 invariants.
 */
import { createVm, HostAddressSpace, isKvmError, type ArchBackend, type CoreFaults, type Kvm } from '@kvmsim/kvm-core';
import { agingVsZap, createVsFaultVsInvalidate, faultVsInvalidate, memslotVsFault, releaseVsFault, swapVsInvalidation, type ScenarioOptions } from '@kvmsim/kvm-core/scenarios';
import { explore, formatTrace, type Scenario, type Steps } from '@kvmsim/kvm-core/sched';
import { checkMemslotInvariants, checkMmuCoherence, checkNotifierQuiescent } from '@kvmsim/kvm-core/testing';
import { assert, defineCase, needsVcpu } from '../harness.js';
import type { CaseContext, CaseEnv, ConformanceCase } from '../types.js';

const HVA = 0x7f0000000000;
const GPA = 0xc0000000;
const MB = 0x100000;

/**
 * Lockless aging of slot 1 while the VMM deletes slot 2, which on an architecture that zaps
 * everything on DELETE (x86's fast zap) invalidates and frees the root the ager is walking.
 * @see arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_age_gfn_range() under RCU, kvm_tdp_mmu_zap_invalidated_roots() (6.18)
 */
export function agingVsFastZap(backend: ArchBackend, faults: CoreFaults, memslots: ScenarioOptions['memslots']): Scenario {
  return {
    name: 'aging-vs-fast-zap',
    description: 'lockless aging walks a root while a DELETE of another slot invalidates and frees every root',
    setup() {
      const kvm: Kvm = createVm({ backend, host: new HostAddressSpace({ poison: 0xaa }), faults, ...(memslots ? { memslots } : {}) });
      kvm.host.mmap(BigInt(HVA), BigInt(4 * MB));
      kvm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: BigInt(GPA), memorySize: BigInt(2 * MB), userspaceAddr: BigInt(HVA) });
      kvm.setUserMemoryRegion({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA + 16 * MB), memorySize: BigInt(2 * MB), userspaceAddr: BigInt(HVA + 2 * MB) });
      kvm.host.write(BigInt(HVA), 8, 0x1111n);
      const v = kvm.createVcpu(0);
      v.read(GPA, 8);
      v.read(GPA + 16 * MB, 8);
      const out: string[] = [];
      function* ager(): Steps {
        yield* kvm.mmuNotifier.clearYoung(HVA, HVA + 8 * 4096);
      }
      function* vmm(): Steps {
        try {
          yield* kvm.setUserMemoryRegionSteps({ slot: 2, flags: 0, guestPhysAddr: BigInt(GPA + 16 * MB), memorySize: 0n, userspaceAddr: BigInt(HVA + 2 * MB) });
          out.push('DELETE: 0');
        } catch (e) {
          if (!isKvmError(e)) throw e;
          out.push(`DELETE: ${e.errno}`);
        }
      }
      return {
        actors: [
          { name: 'aging', steps: ager() },
          { name: 'vmm', steps: vmm() },
        ],
        check() {
          checkNotifierQuiescent(kvm);
          checkMemslotInvariants(kvm);
          checkMmuCoherence(kvm);
          if (out[0] !== 'DELETE: 0') throw new Error(`DELETE failed: ${out[0]}`);
          const r = kvm.createVcpu(0).read(GPA, 8);
          if (r.exit !== 'none' || r.value !== 0x1111n) throw new Error(`after the race the guest reads ${r.exit === 'none' ? `0x${r.value.toString(16)}` : 'mmio'}`);
        },
        describeState: () => `mappings=${kvm.arch.mmu?.mappings ?? 0}`,
      };
    },
  };
}

type Make = (o: ScenarioOptions) => Scenario;

function scenarioCase(id: string, make: Make, title: string, see: string, gate?: (env: CaseEnv) => string | undefined): ConformanceCase {
  return defineCase({
    id: `interleavings/${id}`,
    group: 'interleavings',
    title,
    see,
    gate: (env) => needsVcpu(env) ?? gate?.(env),
    run(ctx) {
      runExplore(ctx, make({ archBackend: ctx.vm().backend, faults: ctx.faults.core ?? {}, memslots: ctx.store }));
    },
  });
}

/**
 * Explore within the configured bound (default 2, searched completely). Quick mode caps the
 * schedules instead of demanding a complete search; iterative deepening still finds the bugs with
 * the fewest preemptions first (the zoo raises the bound to 3, which the seq/count ordering bug needs).
 */
function runExplore(ctx: CaseContext, scenario: Scenario): void {
  const bound = ctx.options.exploreBound ?? 2;
  const r = explore(scenario, { preemptionBound: bound, maxSchedules: ctx.quick ? 1500 : 20_000 });
  if (r.failure) throw new Error(`${scenario.name}: ${formatTrace(r.failure)}`);
  if (!ctx.quick) assert.ok(r.complete, `${scenario.name}: ${r.schedules} schedules did not exhaust bound ${bound}`);
}

export const interleavingCases: readonly ConformanceCase[] = [
  scenarioCase('fault-vs-invalidate', faultVsInvalidate, 'a fault racing DONTNEED and a host rewrite never leaves a mapping of the old page', 'kvm-generic.md §4.4; virt/kvm/kvm_main.c mmu_invalidate_retry_gfn(), kvm_mmu_invalidate_end() (6.18)'),
  scenarioCase('delete-vs-fault', (o) => memslotVsFault('DELETE', o), 'a DELETE racing a fault: the fault maps the old page and it is zapped, or it sees no slot', 'kvm-generic.md §2.4; virt/kvm/kvm_main.c kvm_invalidate_memslot() (6.18)'),
  scenarioCase('move-vs-fault', (o) => memslotVsFault('MOVE', o), 'a MOVE racing a fault: no mapping survives at the old gpa; the new gpa shows the data', 'kvm-generic.md §2.4; virt/kvm/kvm_main.c kvm_invalidate_memslot() (6.18)'),
  scenarioCase('swap-vs-invalidation', swapVsInvalidation, 'a memslot swap waits for in-flight invalidations: begin/end stay balanced, no stale page is mapped', 'kvm-generic.md §4.5; virt/kvm/kvm_main.c kvm_swap_active_memslots(): mn_active_invalidate_count wait (6.18)'),
  scenarioCase('create-vs-fault-vs-invalidate', createVsFaultVsInvalidate, 'an invalidation racing a CREATE walks the active set and zaps the new slot\'s mapping', 'kvm-generic.md §4.3; virt/kvm/kvm_main.c kvm_handle_hva_range(): __kvm_memslots() (6.18)'),
  scenarioCase('aging-vs-zap', agingVsZap, 'aging racing DONTNEED never resurrects a zapped mapping', 'kvm-generic.md §4.8; lockless aging compare-and-exchange (6.18)'),
  scenarioCase('release-vs-fault', releaseVsFault, 'exit_mmap racing a fault: no mapping survives the release', 'kvm-generic.md §4.7; virt/kvm/kvm_main.c kvm_mmu_notifier_release() (6.18)'),
  scenarioCase(
    'aging-vs-fast-zap',
    (o) => agingVsFastZap(o.archBackend!, o.faults ?? {}, o.memslots),
    'lockless aging racing a DELETE that zaps every root never walks a freed root or resurrects a mapping',
    'kvm-arch-backends.md §11; arch/x86/kvm/mmu/tdp_mmu.c kvm_tdp_mmu_age_gfn_range() (RCU-protected roots), kvm_mmu_zap_all_fast() (6.18)',
    (env) => (!env.caps.locklessAging ? 'aging takes mmu_lock' : env.expectations.slotZapScope !== 'all' ? 'DELETE zaps only the slot (no root is freed)' : undefined),
  ),
];
