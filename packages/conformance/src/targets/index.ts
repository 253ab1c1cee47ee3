/** Replay targets: the model or the real kernel (tools/kvm-oracle), behind one interface. */
export { modelTarget, type ReplayTarget } from './replay-target.js';
