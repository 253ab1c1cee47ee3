/**
 * @kvmsim/conformance: one suite every kvmsim backend runs (and, through replay targets, a real
 * kernel). In a backend's test file:
 *
 * ```ts
 * import { runConformanceSuite } from '@kvmsim/conformance';
 * runConformanceSuite({ name: 'my-arch', createVm: (o) => createVm({ backend: myBackend(), ...o }) });
 * ```
 *
 * Without vitest (the CLI), use `@kvmsim/conformance/runner`.
 */
export { runConformanceSuite } from './suite.js';
export { runReplayConformanceSuite } from './replay/vitest-suite.js';
export * from './standalone.js';
export { errnoOf } from '@kvmsim/kvm-core';
