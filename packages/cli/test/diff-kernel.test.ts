/**
 * A short `kvmsim diff` against the real kernel (tools/kvm-oracle on /dev/kvm). Skipped, with the
 * reason printed, where the oracle cannot be built or /dev/kvm is not usable.
 */
import { describe, expect, it } from 'vitest';
import { probeKernelOracle } from '@kvmsim/conformance/targets';
import { cli } from './cli-harness.js';

const probe = probeKernelOracle();
const skipReason = probe.ok ? undefined : probe.reason;
if (skipReason !== undefined) process.stderr.write(`diff-kernel.test.ts: real-kernel diff skipped: ${skipReason}\n`);

describe('kvmsim diff against the real kernel', () => {
  it.skipIf(skipReason !== undefined)(
    `agrees with the kernel on short generated sequences (x86/tdp)${skipReason === undefined ? '' : ` — skipped: ${skipReason}`}`,
    async () => {
      const r = await cli(['diff', '--seed', '424242', '--ops', '150', '--count', '4', '--no-save', '--json']);
      const s = JSON.parse(r.out) as { right: string; sequences: number; compared: number; problems: unknown[]; unavailable: string | null };
      expect(s.unavailable).toBeNull();
      expect(s.right).toMatch(/^kernel /);
      expect(s.problems).toEqual([]);
      expect(s.sequences).toBe(4);
      expect(s.compared).toBe(600);
      expect(r.code).toBe(0);
    },
    120_000,
  );
});
