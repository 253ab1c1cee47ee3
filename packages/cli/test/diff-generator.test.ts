/**
 * The `kvmsim diff` generator: same seed → same text; and the sequences are meaningful when the
 * model answers them (most ops succeed, guest accesses mostly reach RAM, every op kind and a
 * share of invalid inputs appear).
 */
import { describe, expect, it } from 'vitest';
import { ReplaySession, parseReplayLine } from '@kvmsim/kvm-core/replay';
import { x86Backend } from '@kvmsim/x86';
import { generateSequence, generateSequenceText } from '../src/diff/generator.js';
import { HOST_BASE, HOST_POOL_PAGES, PAGE_SIZE } from '../src/diff/layout.js';
import { cli } from './cli-harness.js';

interface Answered {
  op: string;
  input: Record<string, unknown> | null;
  ret: number;
  errno?: string;
  exit?: string;
}

function answer(lines: readonly string[]): Answered[] {
  const session = new ReplaySession({ backend: x86Backend() });
  const out: Answered[] = [];
  lines.forEach((line, i) => {
    const step = session.line(line, i + 1);
    if (step === null) return;
    let input: Record<string, unknown> | null = null;
    try {
      input = JSON.parse(line) as Record<string, unknown>;
    } catch {
      input = null;
    }
    const op = typeof input?.['op'] === 'string' ? input['op'] : '(malformed)';
    out.push({ op, input, ret: step.output.ret, ...(step.output.errno === undefined ? {} : { errno: step.output.errno }), ...(step.output.exit === undefined ? {} : { exit: step.output.exit }) });
  });
  return out;
}

describe('diff generator', () => {
  it('is deterministic: one seed, one text; other seeds, other texts', () => {
    const a = generateSequenceText({ seed: 42, ops: 300 });
    expect(generateSequenceText({ seed: 42, ops: 300 })).toBe(a);
    expect(generateSequenceText({ seed: 43, ops: 300 })).not.toBe(a);
    // a shorter run is a prefix of a longer one (after the header, which names the op count)
    expect(generateSequence({ seed: 42, ops: 300 }).slice(1, 101)).toEqual(generateSequence({ seed: 42, ops: 100 }).slice(1));
  });

  it('emits exactly the requested number of well-formed op lines after one header comment', () => {
    for (const seed of [0, 1, 0xffff_ffff]) {
      const lines = generateSequence({ seed, ops: 250 });
      expect(lines).toHaveLength(251);
      expect(lines[0]).toMatch(/^# kvmsim diff generator v\d+, seed \d+, 250 ops$/);
      const kinds = lines.slice(1).map((l, i) => parseReplayLine(l, i + 2).kind);
      expect(kinds.filter((k) => k === 'skip')).toHaveLength(0);
      // malformed lines are a small deliberate share
      expect(kinds.filter((k) => k === 'error').length).toBeLessThan(10);
    }
  });

  it('`kvmsim diff --emit` prints the generator text, sequence i with seed S+i', async () => {
    const r = await cli(['diff', '--seed', '7', '--ops', '20', '--count', '2', '--emit']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(generateSequenceText({ seed: 7, ops: 20 }) + generateSequenceText({ seed: 8, ops: 20 }));
  });

  it('gives meaningful sequences: mostly valid ops, accesses mostly reaching RAM, every op kind, some invalid input', () => {
    const all: Answered[] = [];
    let manualProtectSequences = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const lines = generateSequence({ seed, ops: 400 });
      if (lines.slice(1, 4).some((l) => l.includes('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2') && l.includes('enable_cap'))) manualProtectSequences++;
      all.push(...answer(lines));
    }
    const ok = all.filter((a) => a.ret >= 0).length / all.length;
    expect(ok).toBeGreaterThan(0.6);
    expect(ok).toBeLessThan(0.92);
    const kinds = new Set(all.map((a) => a.op));
    for (const op of ['set_user_memory_region', 'mmap', 'munmap', 'madvise', 'host_write', 'host_read', 'vcpu_read', 'vcpu_write', 'get_dirty_log', 'clear_dirty_log', 'enable_cap', 'check_extension']) {
      expect(kinds, op).toContain(op);
    }
    const accesses = all.filter((a) => a.op === 'vcpu_read' || a.op === 'vcpu_write');
    expect(accesses.filter((a) => a.exit === 'none').length / accesses.length).toBeGreaterThan(0.5);
    expect(accesses.some((a) => a.exit === 'mmio')).toBe(true);
    expect(accesses.some((a) => a.errno === 'EFAULT')).toBe(true);
    const regions = all.filter((a) => a.op === 'set_user_memory_region');
    expect(regions.filter((a) => a.ret === 0).length / regions.length).toBeGreaterThan(0.6);
    for (const errno of ['EINVAL', 'EEXIST']) expect(regions.some((a) => a.errno === errno), errno).toBe(true);
    expect(all.filter((a) => a.op === 'get_dirty_log' && a.ret === 0).length).toBeGreaterThan(20);
    expect(all.filter((a) => a.op === 'clear_dirty_log' && a.ret === 0).length).toBeGreaterThan(10);
    expect(manualProtectSequences).toBeGreaterThan(0);
    expect(manualProtectSequences).toBeLessThan(8);
  });

  it('keeps guest addresses of valid slots below 4 GiB and host mappings inside the documented pool', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const lines = generateSequence({ seed, ops: 400 });
      const answers = answer(lines);
      for (const a of answers) {
        if (a.input === null || a.ret !== 0) continue;
        if (a.op === 'set_user_memory_region') {
          const end = BigInt(a.input['guest_phys_addr'] as string) + BigInt(a.input['memory_size'] as string);
          expect(end <= 1n << 32n).toBe(true);
        }
        if (a.op === 'mmap') {
          const addr = Number(BigInt(a.input['addr'] as string));
          expect(addr).toBeGreaterThanOrEqual(HOST_BASE);
          expect(addr + Number(BigInt(a.input['length'] as string))).toBeLessThanOrEqual(HOST_BASE + HOST_POOL_PAGES * PAGE_SIZE);
        }
      }
    }
  });
});
