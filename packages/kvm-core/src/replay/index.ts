/** @kvmsim/kvm-core/replay: replay protocol v1 — codec, executor, built-in scenario. */
export * from './protocol.js';
export * from './execute.js';
export { MEMSLOT_ERRNO_SCENARIO } from './scenarios.js';
