import type { CoreFaults, Kvm, KvmTraceSink, MemslotStoreKind, StoreFaults } from '@kvmsim/kvm-core';

/** What the suite passes when it asks the backend under test for a VM. */
export interface ConformanceVmOptions {
  memslots?: MemslotStoreKind;
  trace?: KvmTraceSink;
  faults?: CoreFaults;
  storeFaults?: StoreFaults;
}

/** A case expected to fail on this backend, with the reason; if it starts passing, the run fails. */
export interface KnownDivergence {
  /** The case title, exactly as the suite names it. */
  test: string;
  reason: string;
  /** Kernel commit, thread or file that explains the divergence. */
  kernelRef?: string;
}

export interface ConformanceOptions {
  /** Backend configuration name, e.g. "x86/tdp". */
  name: string;
  /** Create a fresh VM of the backend under test. */
  createVm: (options: ConformanceVmOptions) => Kvm;
  /** Memslot stores to run against. Default is both, `['scalable', 'legacy']`. */
  stores?: readonly MemslotStoreKind[];
  knownDivergences?: readonly KnownDivergence[];
  /** Runs of the model-based test per store. Default is `200`. */
  modelRuns?: number;
  /** Architecture rules the naive model cannot derive from capabilities. */
  expectations?: ConformanceExpectations;
}

/** The per-case context: the options plus a VM factory bound to one store. */
export interface CaseContext {
  readonly options: ConformanceOptions;
  readonly store: MemslotStoreKind;
  vm(extra?: Omit<ConformanceVmOptions, 'memslots'>): Kvm;
}

export interface ConformanceExpectations {
  /**
   * The highest gfn a CREATE or MOVE may reach before kvm_arch_prepare_memory_region() refuses
   * with EINVAL (x86: kvm_mmu_max_gfn()). Default: no limit.
   */
  maxGfn?: number;
}
