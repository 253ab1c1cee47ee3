/**
 * Built-in interleaving scenarios: each sets up a VM on the reference backend (so it needs no
 * architecture package), runs a few actors that race in a way the kernel's protocol must make
 * safe, and checks the outcome and the kernel invariants after every schedule.
 */
import type { ArchBackend } from '../arch-backend.js';
import { createVm, type CreateVmOptions, type Kvm } from '../kvm.js';
import type { CoreFaults } from '../fault-injection.js';
import type { Scenario, ScenarioInstance } from '../sched/explore.js';
import { waitPoint, type Steps } from '../sched/steps.js';
import { checkMemslotInvariants, checkMmuCoherence, checkNotifierQuiescent } from '../testing/invariants.js';
import { referenceBackend, type ReferenceBackendOptions } from '../testing/reference-backend.js';
import { isKvmError } from '../errors.js';
import { HostAddressSpace } from '../host/host-address-space.js';

const MiB = 0x100000;
const HVA = 0x7f0000000000;
const GPA = 0xc0000000;
const V1 = 0x1111n;
const V2 = 0x2222n;

export interface ScenarioOptions {
  faults?: CoreFaults;
  /** Options of the reference backend (ignored when `archBackend` is given). */
  backend?: ReferenceBackendOptions;
  /** Run the scenario on this backend instead of the reference one (it needs an `ArchVm.mmu`). */
  archBackend?: ArchBackend;
  memslots?: CreateVmOptions['memslots'];
}

function vm(o: ScenarioOptions): Kvm {
  // Poisoned frees make a stale mapping read 0xaa… instead of plausible old data.
  const host = new HostAddressSpace({ poison: 0xaa });
  const backend = o.archBackend ?? referenceBackend({ record: false, ...o.backend });
  return createVm({ backend, host, faults: o.faults ?? {}, ...(o.memslots ? { memslots: o.memslots } : {}) });
}

function kernelInvariants(kvm: Kvm): void {
  checkNotifierQuiescent(kvm);
  checkMemslotInvariants(kvm);
  checkMmuCoherence(kvm);
}

function state(kvm: Kvm): string {
  return `seq=${kvm.mmuInvalidateSeq} in_progress=${kvm.mmuInvalidateInProgress} mn_count=${kvm.mnActiveInvalidateCount} mappings=${kvm.arch.mmu?.mappings ?? 0}`;
}

/** Slot 1: 2 MiB at GPA, backed by HVA. */
const SLOT1 = { slot: 1, flags: 0, guestPhysAddr: BigInt(GPA), memorySize: BigInt(2 * MiB), userspaceAddr: BigInt(HVA) } as const;

/** The common start: 2 MiB of host memory holding V1 in its first page, optionally behind slot 1 at GPA. */
function vmWithMemory(o: ScenarioOptions, withSlot: boolean): Kvm {
  const kvm = vm(o);
  kvm.host.mmap(BigInt(HVA), BigInt(2 * MiB));
  if (withSlot) slot(kvm, 1, GPA, 2 * MiB, HVA);
  kvm.host.write(BigInt(HVA), 8, V1);
  return kvm;
}

/** The host drops the page (MADV_DONTNEED), then writes V2 to it. */
function* dropAndRewrite(kvm: Kvm): Steps {
  yield* kvm.host.madviseSteps(BigInt(HVA), 4096n, 'DONTNEED');
  yield* kvm.host.writeSteps(BigInt(HVA), 8, V2);
}

/** After the host rewrote the page, the guest must see V2: a stale mapping would show V1, 0 or poison. */
function expectGuestSeesV2(kvm: Kvm): void {
  const last = kvm.createVcpu(0).read(GPA, 8);
  if (last.exit !== 'none' || last.value !== V2) throw new Error(`after the host wrote 0x2222 the guest reads ${last.exit === 'none' ? `0x${last.value.toString(16)}` : 'mmio'}`);
}

function slot(kvm: Kvm, id: number, gpa: number, size: number, hva: number): void {
  kvm.setUserMemoryRegion({ slot: id, flags: 0, guestPhysAddr: BigInt(gpa), memorySize: BigInt(size), userspaceAddr: BigInt(hva) });
}

/** Run an actor body, turning a KvmError into a recorded outcome (an ioctl's return value). */
function* ioctl(out: string[], name: string, steps: Steps): Steps {
  try {
    yield* steps;
    out.push(`${name}: 0`);
  } catch (e) {
    if (!isKvmError(e)) throw e;
    out.push(`${name}: ${e.errno}`);
  }
}

/** A vCPU read, recording what it saw. */
function* guestRead(kvm: Kvm, gpa: number, seen: string[]): Steps {
  const r = yield* kvm.createVcpu(0).accessSteps(gpa, 8, false, 0n);
  seen.push(r.exit === 'none' ? `0x${r.value.toString(16)}` : 'mmio');
}

export function faultVsInvalidate(o: ScenarioOptions = {}): Scenario {
  return {
    name: 'fault-vs-invalidate',
    description: 'a vCPU faults a page in while the host drops it (MADV_DONTNEED) and writes a new value: no mapping of the old page may survive the end of the invalidation',
    setup(): ScenarioInstance {
      const kvm = vmWithMemory(o, true);
      const seen: string[] = [];
      return {
        actors: [
          { name: 'vcpu0', steps: guestRead(kvm, GPA, seen) },
          { name: 'host', steps: dropAndRewrite(kvm) },
        ],
        check() {
          kernelInvariants(kvm);
          expectGuestSeesV2(kvm);
          if (!['0x1111', '0x0', '0x2222'].includes(seen[0]!)) throw new Error(`the racing read saw ${seen[0]}`);
        },
        describeState: () => state(kvm),
      };
    },
  };
}

export function memslotVsFault(change: 'DELETE' | 'MOVE', o: ScenarioOptions = {}): Scenario {
  return {
    name: change === 'DELETE' ? 'delete-vs-fault' : 'move-vs-fault',
    description: `the VMM ${change === 'DELETE' ? 'deletes' : 'moves'} a memslot while a vCPU faults on it: the vCPU maps the old slot's page and it is zapped, or it sees no slot (MMIO); never a mapping into a removed slot`,
    setup(): ScenarioInstance {
      const kvm = vmWithMemory(o, true);
      const seen: string[] = [];
      const out: string[] = [];
      const region = { slot: 1, flags: 0, guestPhysAddr: BigInt(change === 'DELETE' ? GPA : GPA + 16 * MiB), memorySize: change === 'DELETE' ? 0n : BigInt(2 * MiB), userspaceAddr: BigInt(HVA) };
      return {
        actors: [
          { name: 'vcpu0', steps: guestRead(kvm, GPA, seen) },
          { name: 'vmm', steps: ioctl(out, change, kvm.setUserMemoryRegionSteps(region)) },
        ],
        check() {
          kernelInvariants(kvm);
          if (out[0] !== `${change}: 0`) throw new Error(`${change} failed: ${out[0]}`);
          if (!['0x1111', 'mmio'].includes(seen[0]!)) throw new Error(`the racing read saw ${seen[0]}`);
          const after = kvm.createVcpu(0).read(GPA, 8);
          if (after.exit !== 'mmio') throw new Error(`after the ${change} the old gpa is still RAM`);
          if (change === 'MOVE') {
            const moved = kvm.createVcpu(0).read(GPA + 16 * MiB, 8);
            if (moved.exit !== 'none' || moved.value !== V1) throw new Error('the moved slot does not show the data');
          }
        },
        describeState: () => state(kvm),
      };
    },
  };
}

export function swapVsInvalidation(o: ScenarioOptions = {}): Scenario {
  return {
    name: 'swap-vs-invalidation',
    description: 'the VMM creates a memslot over an hva range the host is invalidating, and a vCPU faults into it: the swap must wait for the invalidation to end, so begin/end stay balanced and no stale page is mapped',
    setup(): ScenarioInstance {
      const kvm = vmWithMemory(o, false);
      const out: string[] = [];
      const seen: string[] = [];
      function* vmm(): Steps {
        yield* ioctl(out, 'CREATE', kvm.setUserMemoryRegionSteps(SLOT1));
        yield* guestRead(kvm, GPA, seen);
      }
      return {
        actors: [
          { name: 'host', steps: dropAndRewrite(kvm) },
          { name: 'vmm+vcpu', steps: vmm() },
        ],
        check() {
          kernelInvariants(kvm);
          expectGuestSeesV2(kvm);
        },
        describeState: () => state(kvm),
      };
    },
  };
}

export function createVsFaultVsInvalidate(o: ScenarioOptions = {}): Scenario {
  return {
    name: 'create-vs-fault-vs-invalidate',
    description: 'the VMM creates a memslot, a vCPU faults into it as soon as it is published, and the host drops the page: the invalidation must find the new slot (it walks the active set) and zap the mapping',
    setup(): ScenarioInstance {
      const kvm = vmWithMemory(o, false);
      const out: string[] = [];
      const seen: string[] = [];
      return {
        actors: [
          { name: 'vmm', steps: ioctl(out, 'CREATE', kvm.setUserMemoryRegionSteps(SLOT1)) },
          { name: 'vcpu0', steps: guestRead(kvm, GPA, seen) },
          { name: 'host', steps: dropAndRewrite(kvm) },
        ],
        check() {
          kernelInvariants(kvm);
          expectGuestSeesV2(kvm);
        },
        describeState: () => state(kvm),
      };
    },
  };
}

export function agingVsZap(o: ScenarioOptions = {}): Scenario {
  return {
    name: 'aging-vs-zap',
    description: 'host aging clears young bits (locklessly where the MMU allows) while the host drops the page: aging must never resurrect a zapped mapping',
    setup(): ScenarioInstance {
      const kvm = vmWithMemory(o, true);
      kvm.createVcpu(0).read(GPA, 8); // mapped and young
      function* ager(): Steps {
        yield* kvm.mmuNotifier.clearYoung(HVA, HVA + 4096);
      }
      return {
        actors: [
          { name: 'aging', steps: ager() },
          { name: 'host', steps: dropAndRewrite(kvm) },
        ],
        check() {
          kernelInvariants(kvm);
        },
        describeState: () => state(kvm),
      };
    },
  };
}

export function releaseVsFault(o: ScenarioOptions = {}): Scenario {
  return {
    name: 'release-vs-fault',
    description: 'the process exits (exit_mmap → .release) while a vCPU faults: no mapping survives the release',
    setup(): ScenarioInstance {
      const kvm = vmWithMemory(o, true);
      const out: string[] = [];
      function* exit(): Steps {
        // do_exit() of the last thread: mm_users drops to 0 only when no vCPU is in KVM_RUN.
        yield waitPoint('exit_mmap: wait for mm_users == 0', { ready: () => kvm.vcpusRunning === 0, describe: () => `${kvm.vcpusRunning} vCPU(s) in KVM_RUN` });
        yield* kvm.host.exitMmapSteps();
      }
      function* vcpu(): Steps {
        try {
          yield* kvm.createVcpu(0).accessSteps(GPA, 8, false, 0n);
          out.push('read');
        } catch (e) {
          if (!isKvmError(e)) throw e;
          out.push(e.errno);
        }
      }
      return {
        actors: [
          { name: 'vcpu0', steps: vcpu() },
          { name: 'exit', steps: exit() },
        ],
        check() {
          checkNotifierQuiescent(kvm);
          const m = kvm.arch.mmu?.mappings ?? 0;
          if (m !== 0) throw new Error(`${m} mapping(s) survived the mm's release`);
        },
        describeState: () => state(kvm),
      };
    },
  };
}

/** Every built-in scenario, by name. */
export function builtInScenarios(o: ScenarioOptions = {}): Scenario[] {
  return [faultVsInvalidate(o), memslotVsFault('DELETE', o), memslotVsFault('MOVE', o), swapVsInvalidation(o), createVsFaultVsInvalidate(o), agingVsZap(o), releaseVsFault(o)];
}
