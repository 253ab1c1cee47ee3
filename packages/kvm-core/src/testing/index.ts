/**
 * Test helpers of @kvmsim/kvm-core: the recording reference backend and the naive reference
 * model of the memslot ABI used by property tests.
 */
export * from './reference-backend.js';
export * from './naive-memslot-model.js';
export * from './invariants.js';
export * from './reference-mmu.js';
