/**
 * The reference backend passes the suite: with x86's limits (one and two address spaces) and as
 * a generic architecture (no READONLY, no READ_PROTECT dirty log). The x86 profile runs the
 * model-based test 1000 times per store.
 */
import { createVm } from '@kvmsim/kvm-core';
import { referenceBackend } from '@kvmsim/kvm-core/testing';
import { runConformanceSuite } from '../src/index.js';

runConformanceSuite({
  name: 'reference/x86',
  createVm: (o) => createVm({ backend: referenceBackend(), ...o }),
  modelRuns: 1000,
  expectations: { maxGfn: 2 ** 40 - 1 },
});

runConformanceSuite({
  name: 'reference/x86-smm (two address spaces)',
  createVm: (o) => createVm({ backend: referenceBackend({ capabilities: { nrAddressSpaces: 2 } }), ...o }),
  modelRuns: 1000,
  expectations: { maxGfn: 2 ** 40 - 1 },
});

runConformanceSuite({
  name: 'reference/generic',
  createVm: (o) => createVm({ backend: referenceBackend({ profile: 'generic' }), ...o }),
});
