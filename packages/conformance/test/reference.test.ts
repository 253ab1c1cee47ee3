/**
 * The reference backend passes the suite: with x86's limits (one and two address spaces) and as
 * a generic architecture (no READONLY, no READ_PROTECT dirty log). The x86 profile runs the
 * model-based test 600 times per store. The reference MMU zaps only a
 * deleted slot's range, unlike x86's default fast zap, hence the one expectation override.
 */
import { createVm } from '@kvmsim/kvm-core';
import { referenceBackend } from '@kvmsim/kvm-core/testing';
import { runConformanceSuite } from '../src/index.js';

runConformanceSuite({
  name: 'reference/x86',
  createVm: (o) => createVm({ backend: referenceBackend({ record: false }), ...o }),
  modelRuns: 600,
  expectations: { slotZapScope: 'slot' },
});

runConformanceSuite({
  name: 'reference/x86-smm (two address spaces)',
  createVm: (o) => createVm({ backend: referenceBackend({ record: false, capabilities: { nrAddressSpaces: 2 } }), ...o }),
  modelRuns: 300,
  expectations: { slotZapScope: 'slot' },
});

runConformanceSuite({
  name: 'reference/generic',
  createVm: (o) => createVm({ backend: referenceBackend({ record: false, profile: 'generic' }), ...o }),
});
