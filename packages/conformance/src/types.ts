import type { CoreFaults, HostAddressSpace, Kvm, KvmTraceSink, KvmVcpu, MemslotStoreKind, ResolvedCapabilities, StoreFaults, VcpuAccessResult } from '@kvmsim/kvm-core';
import type { ArchExpectations } from './expectations.js';

/** What the suite passes when it asks the backend under test for a VM. */
export interface ConformanceVmOptions {
  memslots?: MemslotStoreKind;
  trace?: KvmTraceSink;
  faults?: CoreFaults;
  storeFaults?: StoreFaults;
  /**
   * The backend's own fault-injection switches to turn on (only names the configuration lists
   * in {@link ConformanceOptions.archFaults}). The backend's test file maps them into its
   * factory, e.g. `x86Backend({ faults: o.archFaults })`.
   */
  archFaults?: Readonly<Record<string, boolean>>;
  /** The process address space behind the memslots (interleaving scenarios pass a poisoning one). */
  host?: HostAddressSpace;
}

/** A case expected to fail on this backend, with the reason; if it starts passing, the run fails. */
export interface KnownDivergence {
  /** The case id (`group/slug`) or its title, exactly as the suite names it. */
  test: string;
  reason: string;
  /** Kernel commit, thread or file that explains the divergence. */
  kernelRef?: string;
}

export interface ConformanceOptions {
  /** Backend configuration name, e.g. "x86/tdp". */
  name: string;
  /** Create a fresh VM of the backend under test, passing every option through to `createVm()`. */
  createVm: (options: ConformanceVmOptions) => Kvm;
  /**
   * The capabilities cases are gated on. Default: those of a VM from `createVm({})`. Give them
   * to check a backend against what it claims (they must then match the VM's).
   */
  capabilities?: ResolvedCapabilities;
  /** Memslot stores to run against. Default is both, `['scalable', 'legacy']`. */
  stores?: readonly MemslotStoreKind[];
  knownDivergences?: readonly KnownDivergence[];
  /** Runs of the model-based test per store. Default is `200` (`40` in quick mode). */
  modelRuns?: number;
  /** Preemption bound of the interleaving group. Default is `2` (the zoo uses `3`, with capped schedules). */
  exploreBound?: number;
  /**
   * Where this configuration's architecture legitimately differs from the table in
   * expectations.ts (e.g. x86 with the SLOT_ZAP_ALL quirk off zaps only the slot).
   */
  expectations?: Partial<ArchExpectations>;
  /** The backend's fault-injection switches this configuration can turn on (for the bug zoo). */
  archFaults?: readonly string[];
  /**
   * The backend's guest paging, for the cases about shadow pages that shadow guest page tables.
   * Leave it out when the vCPU model only does guest-physical accesses.
   */
  guestPaging?: GuestPagingAdapter;
}

/**
 * Guest paging as a configuration offers it: the guest's page tables live in guest memory, so
 * deleting the slot that holds them must drop every translation built from them.
 */
export interface GuestPagingAdapter {
  /**
   * Write page tables mapping the 4 KiB page `gva` to `gpa` into guest memory, all table pages in
   * [tablesGpa, tablesGpa + 4 pages) (memory that a slot backs), and point `vcpu`'s paging root there.
   */
  map(kvm: Kvm, vcpu: KvmVcpu, tablesGpa: number, gva: number, gpa: number): void;
  /** A guest-virtual 8-byte load: a vCPU access result, or `guest-fault` when the guest's own walk fails. */
  read(kvm: Kvm, vcpu: KvmVcpu, gva: number): VcpuAccessResult | { readonly exit: 'guest-fault' };
}

/** Fault switches a run turns on, by the package they live in. */
export interface InjectedFaults {
  core?: CoreFaults;
  store?: StoreFaults;
  arch?: Readonly<Record<string, boolean>>;
}

/** What a case's gate sees: capabilities and expectations, never a backend name. */
export interface CaseEnv {
  readonly caps: ResolvedCapabilities;
  readonly expectations: ArchExpectations;
  readonly store: MemslotStoreKind;
  /** The backend has a vCPU model (an `ArchVm.mmu`), so guest accesses work. */
  readonly hasVcpu: boolean;
  /** The vCPU model caches "no memslot here" (`ArchMmu.mapMmio`, x86's MMIO SPTEs). */
  readonly cachesMmio: boolean;
  /** The configuration offers guest paging ({@link GuestPagingAdapter}). */
  readonly hasGuestPaging: boolean;
}

/** The per-case context: the options plus a VM factory bound to one store and the run's faults. */
export interface CaseContext extends CaseEnv {
  readonly options: ConformanceOptions;
  /** Reduced effort (the bug zoo): fewer random runs, smaller interleaving bounds. */
  readonly quick: boolean;
  readonly faults: InjectedFaults;
  /** A fresh VM on this store with the run's fault switches on (plus `extra`). */
  vm(extra?: Omit<ConformanceVmOptions, 'memslots'>): Kvm;
}

/** The case groups, one module each under cases/. */
export const CASE_GROUP_IDS = [
  'memslot-abi',
  'hook-order',
  'lookups',
  'dirty-log',
  'notifier',
  'aging',
  'guest-visible',
  'interleavings',
  'model-based',
] as const;
export type CaseGroupId = (typeof CASE_GROUP_IDS)[number];

/**
 * One conformance case: data plus a function, independent of any test framework. `run` throws
 * (node:assert) on a failure; the vitest suite, the framework-free runner and the zoo all call it.
 */
export interface ConformanceCase {
  /** Stable id, `group/slug`; known divergences and the zoo name cases by it. */
  readonly id: string;
  readonly group: CaseGroupId;
  readonly title: string;
  /** The kernel rule the case checks: spec section and kernel function or commit. */
  readonly see: string;
  /** Why the case does not apply to this configuration, or `undefined` when it does. */
  readonly gate?: (env: CaseEnv) => string | undefined;
  run(ctx: CaseContext): void | Promise<void>;
}

export type CaseStatus = 'passed' | 'failed' | 'skipped' | 'known-divergence' | 'divergence-fixed';

export interface CaseResult {
  readonly id: string;
  readonly title: string;
  readonly group: CaseGroupId;
  readonly see: string;
  readonly config: string;
  readonly store: MemslotStoreKind;
  readonly status: CaseStatus;
  /** The failure (failed, known-divergence), the gate's reason (skipped), or the divergence's reason. */
  readonly error?: string;
  readonly ms: number;
}
