/**
 * The bug zoo: historical and plausible KVM guest-memory bugs, each re-introduced by one named
 * fault-injection switch in the package where the bug would live. `runZoo()` turns each switch on
 * in turn, on every configuration that supports it, and records which case caught it — a zoo bug
 * that no case catches is a hole in the suite.
 */
import type { MemslotStoreKind } from '@kvmsim/kvm-core';
import { needsVcpu } from './harness.js';
import { caseContext, caseEnv, runCase, selectCases } from './runner.js';
import type { CaseEnv, ConformanceCase, ConformanceOptions, InjectedFaults } from './types.js';

export interface ZooSwitch {
  /** Where the switch lives: kvm-core's CoreFaults, its StoreFaults, or an architecture package's faults. */
  readonly scope: 'core' | 'store' | 'arch';
  readonly name: string;
  /** For arch-scoped switches: the architecture (capability `arch`) whose package has it. */
  readonly arch?: string;
}

export interface ZooBug {
  readonly id: string;
  /** What broke, in a line. */
  readonly title: string;
  readonly switch: ZooSwitch;
  /** The package where the bug (and its switch) lives. */
  readonly package: string;
  /** A short note: how it breaks and what shows it. */
  readonly note: string;
  /** The kernel commit, thread or code that fixed it (or guards against it, for plausible bugs). */
  readonly fix: string;
  readonly kind: 'historical' | 'plausible';
  /** Cases expected to catch it, tried first (the report says which actually did). */
  readonly catchers: readonly string[];
  /** Stores to run it on. Default is `['scalable']`. */
  readonly stores?: readonly MemslotStoreKind[];
  /** Why a configuration cannot show the bug (the switch is inert there), or undefined. */
  readonly needs?: (env: CaseEnv) => string | undefined;
}

const core = (name: string): ZooSwitch => ({ scope: 'core', name });
const x86 = (name: string): ZooSwitch => ({ scope: 'arch', name, arch: 'x86' });

export const BUG_ZOO: readonly ZooBug[] = [
  {
    id: 'mmio-cached-while-in-flux',
    title: 'MMIO SPTE cached while memslots are in flux',
    switch: x86('mmioCachedWhileInFlux'),
    package: '@kvmsim/x86',
    kind: 'historical',
    note: 'A cached MMIO SPTE is trusted whatever its generation, so a slot created over a gpa the guest already touched stays invisible (the guest keeps exiting to MMIO).',
    fix: 'ddfd1730fd82 "KVM: x86/mmu: Do not cache MMIO accesses while memslots are in flux" (2019)',
    catchers: ['guest-visible/unbacked-then-create'],
  },
  {
    id: 'mmio-wrap-only-as0',
    title: 'MMIO generation wrap detected in only one address space',
    switch: x86('mmioWrapOnlyAs0'),
    package: '@kvmsim/x86',
    kind: 'historical',
    note: 'The wrap check ignores the address-space bit, so a wrap in SMM\'s address space keeps MMIO SPTEs from 2^19 updates ago alive and they match the new generation.',
    fix: '"KVM: x86/mmu: Detect MMIO generation wrap in any address space" (2019, the 27-patch MMIO-generation series with 152482580a1b)',
    catchers: ['guest-visible/mmio-generation-wrap'],
    needs: (env) => (env.caps.nrAddressSpaces > 1 ? undefined : 'one address space (SMM off): the bug needs a second one'),
  },
  {
    id: 'memslots-updated-after-install',
    title: 'kvm_arch_memslots_updated() called after the new generation is installed',
    switch: core('memslotsUpdatedAfterInstall'),
    package: '@kvmsim/kvm-core',
    kind: 'historical',
    note: 'The architecture learns of the new generation only after vCPUs can see it, so an MMIO SPTE from before a generation wrap can match between the install and the zap.',
    fix: '152482580a1b "KVM: Call kvm_arch_memslots_updated() before updating memslots" (2019)',
    catchers: ['hook-order/updated-before-install'],
  },
  {
    id: 'missing-retry-check',
    title: 'fault path maps without the invalidation retry check',
    switch: core('skipRetryCheck'),
    package: '@kvmsim/kvm-core',
    kind: 'historical',
    note: 'A fault that sampled mmu_invalidate_seq before a DONTNEED maps the old page after the invalidation zapped it: the guest keeps reading freed memory.',
    fix: 'mmu_notifier_seq and mmu_notifier_retry(), introduced with KVM\'s MMU notifier (2008, "KVM: Synchronize guest physical memory map to host virtual memory map"); today mmu_invalidate_retry_gfn()',
    catchers: ['interleavings/fault-vs-invalidate'],
    needs: needsVcpu,
  },
  {
    id: 'seq-after-count-drop',
    title: 'seq bumped only after the in-progress count drops',
    switch: core('inProgressDropsBeforeSeqBump'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'kvm_mmu_invalidate_end() lets the count drop become visible before the seq bump, so a fault can pass its retry check in between and map the page just zapped.',
    fix: 'the smp_wmb() in kvm_mmu_invalidate_end() ("The above sequence increase must be visible before the below count decrease"), virt/kvm/kvm_main.c',
    catchers: ['interleavings/fault-vs-invalidate'],
    needs: needsVcpu,
  },
  {
    id: 'swap-ignores-inflight-invalidations',
    title: 'memslot swap not waiting for in-flight invalidations',
    switch: core('swapIgnoresInflightInvalidations'),
    package: '@kvmsim/kvm-core',
    kind: 'historical',
    note: 'A slot published between invalidate_range_start (which found no slot) and _end (which does) unbalances the accounting and lets a stale page be mapped.',
    fix: '52ac8b358b0c "KVM: Block memslot updates across range_start() and range_end()" (2021)',
    catchers: ['interleavings/swap-vs-invalidation'],
    needs: needsVcpu,
  },
  {
    id: 'delete-without-invalid-step',
    title: 'DELETE/MOVE without the INVALID step',
    switch: core('deleteWithoutInvalidStep'),
    package: '@kvmsim/kvm-core',
    kind: 'historical',
    note: 'The old slot stays visible while the architecture flushes it, so a racing fault re-maps a slot being removed.',
    fix: 'KVM_MEMSLOT_INVALID, bc6678a33d9b "KVM: introduce kvm->srcu and convert kvm_set_memory_region to SRCU update" (2009); today kvm_invalidate_memslot()',
    catchers: ['hook-order/delete', 'interleavings/delete-vs-fault'],
  },
  {
    id: 'slot-zap-misses-shadowed-gptes',
    title: 'slot zap of only the leaves misses shadow pages that shadow gPTEs in the slot',
    switch: x86('slotZapMissesShadowedGptes'),
    package: '@kvmsim/x86',
    kind: 'historical',
    note: 'With SLOT_ZAP_ALL off, zapping only the slot\'s leaves leaves shadow pages whose guest page tables live in the deleted slot; their accounting refers to the freed slot (use-after-free in unaccount_shadowed()).',
    fix: 'kvm_mmu_zap_memslot_pages_and_flush() (for_each_gfn_valid_sp_with_gptes), aa8d1f48d353 "KVM: x86/mmu: Introduce a quirk to control memslot zap behavior" (6.12)',
    catchers: ['guest-visible/delete-page-table-slot'],
    needs: (env) =>
      needsVcpu(env) ?? (!env.hasGuestPaging ? 'no guest paging: nothing shadows guest page tables' : env.expectations.slotZapScope === 'slot' ? undefined : 'DELETE zaps everything (SLOT_ZAP_ALL quirk on)'),
  },
  {
    id: 'hva-end-not-rounded-up',
    title: 'hva end not rounded up: the last partial page is not handled',
    switch: core('hvaEndNotRoundedUp'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'kvm_handle_hva_range() converts the exclusive hva end without rounding, so a range ending inside a page skips it (aging a one-byte range finds nothing).',
    fix: 'hva_to_gfn_memslot(hva_end + PAGE_SIZE - 1, slot) in kvm_handle_hva_range() (virt/kvm/kvm_main.c; x86 rounded the same way before the walk moved to generic code)',
    catchers: ['aging/partial-page'],
    needs: needsVcpu,
  },
  {
    id: 'dirty-bitmap-not-reset',
    title: 'dirty bitmap not reset when logging is re-enabled',
    switch: core('dirtyBitmapNotResetOnReenable'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'Turning LOG_DIRTY_PAGES off and on reuses the old bitmap, so the first GET after re-enabling reports stale pages.',
    fix: 'kvm_prepare_memory_region(): a fresh kvm_alloc_dirty_bitmap() whenever logging turns on; the bitmap is freed in kvm_commit_memory_region() when it turns off',
    catchers: ['dirty-log/move-and-reenable'],
    needs: (env) => (env.caps.dirtyLogReadProtect ? undefined : 'no KVM_GENERIC_DIRTYLOG_READ_PROTECT'),
  },
  {
    id: 'clear-dirty-log-alignment',
    title: 'CLEAR_DIRTY_LOG alignment not checked',
    switch: core('clearDirtyLogSkipsAlignmentCheck'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'A first_page or num_pages that is not a multiple of 64 (short of the slot end) is accepted, so the 64-page mask arithmetic clears the wrong pages.',
    fix: 'kvm_clear_dirty_log_protect() alignment checks, from 2a31b9db1535 "kvm: introduce manual dirty log reprotect" (2018)',
    catchers: ['dirty-log/initially-set-and-clear-alignment', 'model-based/naive-model'],
    needs: (env) => (env.caps.dirtyLogReadProtect ? undefined : 'no KVM_CLEAR_DIRTY_LOG'),
  },
  {
    id: 'overlap-check-counts-own-slot',
    title: 'overlap check that forgets to ignore the slot\'s own id on MOVE',
    switch: core('overlapCheckCountsOwnSlot'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'A MOVE by less than the slot\'s size overlaps its own old range and fails with EEXIST, which the kernel allows.',
    fix: 'kvm_check_memslot_overlap(): "if (iter.slot->id == id) continue;" (virt/kvm/kvm_main.c, 5.17 memslot rework)',
    catchers: ['memslot-abi/modify', 'model-based/naive-model'],
  },
  {
    id: 'aging-freed-root',
    title: 'lockless aging of a root being freed',
    switch: x86('agingFreedRoot'),
    package: '@kvmsim/x86',
    kind: 'plausible',
    note: 'Lockless aging walks a TDP root that a concurrent fast zap has invalidated and freed, instead of skipping invalid roots under RCU: it touches freed page tables.',
    fix: 'RCU-protected root walks that skip invalid roots, lockless aging for the TDP MMU ("KVM: x86/mmu: Walk TDP MMU roots without holding mmu_lock when aging", lockless-aging series, 2025)',
    catchers: ['interleavings/aging-vs-fast-zap'],
    needs: (env) => needsVcpu(env) ?? (!env.caps.locklessAging ? 'aging takes mmu_lock' : env.expectations.slotZapScope !== 'all' ? 'DELETE does not zap every root' : undefined),
  },
  {
    id: 'legacy-id-to-index-on-move',
    title: 'legacy store\'s id_to_index not updated on MOVE',
    switch: { scope: 'store', name: 'legacyMoveSkipsIdToIndex' },
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'The sorted-array store shifts slots past a moved one without updating id_to_index, so id_to_memslot() returns the wrong slot afterwards.',
    fix: 'kvm_memslot_move_backward()/forward() update id_to_index for each shifted slot (virt/kvm/kvm_main.c, 5.10–5.16)',
    catchers: ['lookups/id-to-memslot-after-move', 'model-based/naive-model'],
    stores: ['legacy'],
  },
  {
    id: 'fast-only-aging-takes-lock',
    title: 'fast-only aging taking mmu_lock',
    switch: core('fastOnlyAgingTakesLock'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'The fast-only aging notifier contends for mmu_lock (or ages a slow MMU) instead of answering from a lockless walk or "not fast", which defeats its purpose for MGLRU.',
    fix: 'test_clear_young_fast_only() in "mm: multi-gen LRU: Have secondary MMUs participate in aging" v5+ (James Houghton, 2024)',
    catchers: ['aging/fast-only'],
    needs: needsVcpu,
  },
  {
    id: 'walk-inactive-hva-tree',
    title: 'invalidation walks the inactive memslot set',
    switch: core('walkInactiveHvaTree'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'An invalidation racing a CREATE walks the set being edited instead of the one vCPUs use, misses the new slot and leaves its mapping of the old page.',
    fix: 'kvm_handle_hva_range() walks __kvm_memslots(kvm, i), the active set (virt/kvm/kvm_main.c)',
    catchers: ['interleavings/create-vs-fault-vs-invalidate'],
    needs: needsVcpu,
  },
  {
    id: 'vcpu-slot-cache-ignores-generation',
    title: 'vCPU last-used-slot cache kept across a memslot update',
    switch: core('vcpuSlotCacheIgnoresGeneration'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'The vCPU\'s cached slot survives a MOVE or DELETE, so the next fault maps the old gpa through a freed slot instead of exiting to MMIO.',
    fix: 'kvm_vcpu_gfn_to_memslot(): reset last_used_slot when last_used_slot_gen differs (virt/kvm/kvm_main.c)',
    catchers: ['guest-visible/move-delete'],
    needs: needsVcpu,
  },
  {
    id: 'get-dirty-log-skips-reprotect',
    title: 'KVM_GET_DIRTY_LOG harvests without re-protecting',
    switch: core('getDirtyLogSkipsReprotect'),
    package: '@kvmsim/kvm-core',
    kind: 'plausible',
    note: 'Harvested pages stay writable in the secondary MMU, so guest writes after a GET are never logged and live migration loses them.',
    fix: 'kvm_get_dirty_log_protect(): kvm_arch_mmu_enable_log_dirty_pt_masked() for every harvested word (virt/kvm/kvm_main.c)',
    catchers: ['guest-visible/dirty-bits'],
    needs: (env) => needsVcpu(env) ?? (env.caps.dirtyLogReadProtect ? undefined : 'no KVM_GENERIC_DIRTYLOG_READ_PROTECT'),
  },
];

/** Preemption bound of the interleaving cases in zoo runs (their schedules are capped). */
export const ZOO_EXPLORE_BOUND = 3;

/** Whether a configuration can turn the bug's switch on at all. */
export function supportsSwitch(config: ConformanceOptions, env: CaseEnv, sw: ZooSwitch): boolean {
  if (sw.scope !== 'arch') return true;
  return env.caps.arch === sw.arch && (config.archFaults ?? []).includes(sw.name);
}

function injected(sw: ZooSwitch): InjectedFaults {
  const on = { [sw.name]: true };
  return sw.scope === 'core' ? { core: on } : sw.scope === 'store' ? { store: on } : { arch: on };
}

/** One bug on one configuration. */
export interface ZooRun {
  readonly config: string;
  readonly store: MemslotStoreKind;
  /** caught: some case failed with the switch on; missed: every case passed; n/a: the configuration cannot show the bug. */
  readonly status: 'caught' | 'missed' | 'n/a';
  readonly caughtBy?: string;
  readonly message?: string;
  /** Cases run. */
  readonly cases: number;
  readonly reason?: string;
}

export interface ZooResult {
  readonly bug: ZooBug;
  /** caught: caught on every configuration that can show it; uncaught: missed somewhere; unsupported: no configuration declares the switch. */
  readonly status: 'caught' | 'uncaught' | 'unsupported';
  readonly runs: readonly ZooRun[];
  /** The case ids that caught it, deduplicated. */
  readonly caughtBy: readonly string[];
}

export interface RunZooOptions {
  /** Only these bug ids. */
  bugs?: readonly string[];
  /** Called before each (bug, configuration) run. */
  onRun?: (bug: ZooBug, config: string) => void;
}

/** The cases to try for a bug: its expected catchers first, then every other case of the suite. */
function caseOrder(bug: ZooBug): ConformanceCase[] {
  const all = selectCases();
  const first = bug.catchers.map((id) => all.find((c) => c.id === id)).filter((c): c is ConformanceCase => c !== undefined);
  return [...first, ...all.filter((c) => !first.includes(c))];
}

/**
 * Turn each bug's switch on in turn, on every configuration that supports it, and run the suite in
 * quick mode until a case fails. Known divergences of a configuration are left out (they fail anyway).
 */
export async function runZoo(configs: readonly ConformanceOptions[], options: RunZooOptions = {}): Promise<ZooResult[]> {
  const results: ZooResult[] = [];
  for (const bug of BUG_ZOO) {
    if (options.bugs && !options.bugs.includes(bug.id)) continue;
    const runs: ZooRun[] = [];
    for (const config of configs) {
      for (const store of bug.stores ?? ['scalable']) {
        const env = caseEnv(config, store);
        if (!supportsSwitch(config, env, bug.switch)) continue;
        const reason = bug.needs?.(env);
        if (reason !== undefined) {
          runs.push({ config: config.name, store, status: 'n/a', cases: 0, reason });
          continue;
        }
        options.onRun?.(bug, config.name);
        // One preemption deeper than the suite's default: the seq/count ordering bug needs three.
        const ctx = caseContext({ ...config, exploreBound: config.exploreBound ?? ZOO_EXPLORE_BOUND }, env, injected(bug.switch), true);
        let n = 0;
        let caught: ZooRun | undefined;
        for (const c of caseOrder(bug)) {
          if (config.knownDivergences?.some((d) => d.test === c.id || d.test === c.title)) continue;
          const r = await runCase(c, ctx, config.name);
          if (r.status === 'skipped') continue;
          n++;
          if (r.status === 'failed') {
            caught = { config: config.name, store, status: 'caught', caughtBy: c.id, message: r.error!.split('\n')[0]!, cases: n };
            break;
          }
        }
        runs.push(caught ?? { config: config.name, store, status: 'missed', cases: n });
      }
    }
    const applicable = runs.filter((r) => r.status !== 'n/a');
    const status = applicable.length === 0 ? 'unsupported' : applicable.every((r) => r.status === 'caught') ? 'caught' : 'uncaught';
    results.push({ bug, status, runs, caughtBy: [...new Set(applicable.flatMap((r) => (r.caughtBy ? [r.caughtBy] : [])))] });
  }
  return results;
}
