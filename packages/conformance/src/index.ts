/**
 * @kvmsim/conformance: one suite every kvmsim backend runs (and, later, a real kernel).
 *
 * ```ts
 * import { runConformanceSuite } from '@kvmsim/conformance';
 * runConformanceSuite({ name: 'my-arch', createVm: (o) => createVm({ backend: myBackend(), ...o }) });
 * ```
 */
export { runConformanceSuite, CASE_GROUPS } from './suite.js';
export type { CaseContext, ConformanceOptions, ConformanceVmOptions, KnownDivergence } from './types.js';
export { errnoOf } from '@kvmsim/kvm-core';
