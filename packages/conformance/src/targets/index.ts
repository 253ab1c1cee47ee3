/** Replay targets: the model or the real kernel (tools/kvm-oracle), behind one interface. */
export { modelTarget, type ReplayTarget } from './replay-target.js';
export {
  KernelOracleError,
  ORACLE_UNAVAILABLE_STATUS,
  findOracleBuildScript,
  kernelOracleTarget,
  locateKernelOracle,
  probeKernelOracle,
  type KernelOracleOptions,
  type KernelOracleProbe,
} from './kernel-oracle.js';
