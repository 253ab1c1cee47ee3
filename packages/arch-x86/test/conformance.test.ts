/**
 * The x86 backend runs the shared conformance suite: the TDP MMU (with and without SMM), the
 * shadow MMU, and the shadow MMU with nested TDP.
 */
import { runConformanceSuite, runReplayConformanceSuite } from '@kvmsim/conformance';
import { modelTarget } from '@kvmsim/conformance/targets';
import { writeFourLevelTables, type GuestPagingAdapter } from '@kvmsim/conformance/runner';
import { createVm } from '@kvmsim/kvm-core';
import { PT_PRESENT, PT_RW, x86Backend, type X86ArchVm } from '../src/index.js';

/** x86 guest paging: 4-level tables in guest memory, CR3, a guest-virtual load. */
const guestPaging: GuestPagingAdapter = {
  map(kvm, vcpu, tablesGpa, gva, gpa) {
    writeFourLevelTables(kvm, tablesGpa, gva, gpa, PT_PRESENT | PT_RW);
    (kvm.arch as X86ArchVm).setGuestCr3(vcpu, tablesGpa);
  },
  read(kvm, vcpu, gva) {
    const r = (kvm.arch as X86ArchVm).guestRead(vcpu, gva, 8);
    return r.exit === 'guest-fault' ? { exit: 'guest-fault' } : r;
  },
};

runConformanceSuite({
  name: 'x86/tdp',
  createVm: (o) => createVm({ backend: x86Backend(), ...o }),
  modelRuns: 300,
  expectations: { maxGfn: 2 ** 40 - 1 },
  guestPaging,
});

runConformanceSuite({
  name: 'x86/tdp with SMM (two address spaces), SLOT_ZAP_ALL off',
  createVm: (o) => createVm({ backend: x86Backend({ smm: true, quirks: { slotZapAll: false } }), ...o }),
  modelRuns: 200,
  expectations: { maxGfn: 2 ** 40 - 1, slotZapScope: 'slot' },
  guestPaging,
});

runConformanceSuite({
  name: 'x86/shadow',
  createVm: (o) => createVm({ backend: x86Backend({ mmu: 'shadow' }), ...o }),
  modelRuns: 200,
  expectations: { maxGfn: 2 ** 40 - 1 },
  guestPaging,
});

runConformanceSuite({
  name: 'x86/shadow + nestedTdp, SLOT_ZAP_ALL off',
  createVm: (o) => createVm({ backend: x86Backend({ mmu: 'shadow', nestedTdp: true, quirks: { slotZapAll: false } }), ...o }),
  modelRuns: 200,
  expectations: { maxGfn: 2 ** 40 - 1, slotZapScope: 'slot' },
  guestPaging,
});

// The ABI (Linux 6.18.44's annotated answers) and guest-visible groups as replay lines, against
// the model behind the same ReplayTarget interface a real kernel answers through.
runReplayConformanceSuite({
  name: 'model x86/tdp',
  createTarget: () => Promise.resolve(modelTarget({ backend: x86Backend() })),
});
