/** `kvmsim replay --arch/--mmu`: x86 with the TDP MMU by default. */
import { describe, expect, it } from 'vitest';
import { cli, lines } from './cli-harness.js';

const OPS = [
  '{"op":"mmap","addr":"0x7f0000000000","length":"0x200000"}',
  '{"op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0xc0000000","memory_size":"0x200000","userspace_addr":"0x7f0000000000"}',
  '{"op":"host_write","addr":"0x7f0000000000","size":8,"value":"0x1234"}',
  '{"op":"vcpu_read","gpa":"0xc0000000","size":8}',
  '{"op":"madvise","addr":"0x7f0000000000","length":"0x1000","advice":"DONTNEED"}',
  '{"op":"vcpu_read","gpa":"0xc0000000","size":8}',
  '{"op":"vcpu_read","gpa":"0xd0000000","size":4}',
].join('\n');

describe('replay --arch / --mmu', () => {
  it('defaults to x86 (TDP MMU) and goes through the real fault path', async () => {
    const r = await cli(['replay', '-'], OPS);
    expect(r.code).toBe(0);
    const out = lines(r.out).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out[3]).toEqual({ ret: 0, exit: 'none', value: '0x1234' });
    expect(out[5]).toEqual({ ret: 0, exit: 'none', value: '0x0' });
    expect(out[6]).toEqual({ ret: 0, exit: 'mmio', phys_addr: '0xd0000000', len: 4, is_write: false });
  });

  it('--arch reference gives the same answers', async () => {
    const x86 = await cli(['replay', '-'], OPS);
    const ref = await cli(['replay', '-', '--arch', 'reference'], OPS);
    expect(ref.code).toBe(0);
    expect(ref.out).toBe(x86.out);
  });

  it('--mmu shadow (and --nested-tdp) give the same answers through the shadow MMU; bad values are rejected', async () => {
    const x86 = await cli(['replay', '-'], OPS);
    for (const extra of [[], ['--nested-tdp']]) {
      const s = await cli(['replay', '-', '--mmu', 'shadow', ...extra], OPS);
      expect(s.code).toBe(0);
      expect(s.out).toBe(x86.out);
    }
    const n = await cli(['replay', '-', '--arch', 'reference', '--nested-tdp'], OPS);
    expect(n.code).toBe(2);
    const a = await cli(['replay', '-', '--arch', 'arm64'], OPS);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/x86, reference/);
  });
});
