export * from './steps.js';
export * from './primitives.js';
export * from './scheduler.js';
export * from './explore.js';
export { mulberry32 } from './prng.js';
