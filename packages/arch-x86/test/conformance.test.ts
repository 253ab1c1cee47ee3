/** The x86 backend runs the shared conformance suite: TDP MMU, with and without SMM. */
import { runConformanceSuite } from '@kvmsim/conformance';
import { createVm } from '@kvmsim/kvm-core';
import { x86Backend } from '../src/index.js';

runConformanceSuite({
  name: 'x86/tdp',
  createVm: (o) => createVm({ backend: x86Backend(), ...o }),
  modelRuns: 300,
  expectations: { maxGfn: 2 ** 40 - 1 },
});

runConformanceSuite({
  name: 'x86/tdp with SMM (two address spaces), SLOT_ZAP_ALL off',
  createVm: (o) => createVm({ backend: x86Backend({ smm: true, quirks: { slotZapAll: false } }), ...o }),
  modelRuns: 200,
  expectations: { maxGfn: 2 ** 40 - 1 },
});
