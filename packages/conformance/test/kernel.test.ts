/**
 * The real-kernel conformance target: the ABI and guest-visible replay groups answered by Linux
 * through tools/kvm-oracle on /dev/kvm. Where the oracle cannot be built or /dev/kvm is not usable
 * here, the suite is skipped and the reason is printed (in the suite's name and on stderr).
 */
import { runReplayConformanceSuite } from '../src/index.js';
import { kernelOracleTarget, probeKernelOracle, type ReplayTarget } from '../src/targets/index.js';

const probe = probeKernelOracle();
const skip = probe.ok ? undefined : probe.reason;
if (skip !== undefined) process.stderr.write(`kernel.test.ts: real-kernel conformance skipped: ${skip}\n`);

runReplayConformanceSuite({
  name: probe.ok ? `kernel ${probe.release}` : 'kernel',
  createTarget: async (): Promise<ReplayTarget> => {
    const t = await kernelOracleTarget();
    if ('unavailable' in t) throw new Error(`kernel target unavailable: ${t.unavailable}`);
    return t;
  },
  ...(skip === undefined ? {} : { skip }),
});
