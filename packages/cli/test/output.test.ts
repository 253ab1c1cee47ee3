import { describe, expect, it } from 'vitest';
import { describeAnswer, describeOp } from '../src/commands/replay.js';
import { formatNs, renderTable, wrapText } from '../src/output.js';

describe('output helpers', () => {
  it('formats nanoseconds with units and three significant digits', () => {
    expect(formatNs(0.5)).toBe('0.50 ns');
    expect(formatNs(12.34)).toBe('12.3 ns');
    expect(formatNs(842)).toBe('842 ns');
    expect(formatNs(1234)).toBe('1.23 µs');
    expect(formatNs(45_600_000)).toBe('45.6 ms');
    expect(formatNs(2.5e9)).toBe('2.50 s');
  });

  it('wraps text at spaces and inside over-long words', () => {
    expect(wrapText('aa bb cc', 5)).toBe('aa bb\ncc');
    expect(wrapText('0 bitmap=0123456789', 8)).toBe('0\nbitmap=0\n12345678\n9');
  });

  it('fits a table into maxWidth', () => {
    const t = renderTable({ head: ['a', 'b'], rows: [['x'.repeat(50), 'short']], maxWidth: 40 });
    for (const line of t.split('\n')) expect([...line].length).toBeLessThanOrEqual(40);
  });

  it('describes ops and answers compactly', () => {
    expect(
      describeOp('{"case":"V9","op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0","memory_size":"0x1000","userspace_addr":"0x7f0000000000","expect":{"ret":0}}'),
    ).toBe('set_region slot=1 flags=0 gpa=0 size=0x1000 uaddr=0x7f0000000000');
    expect(describeOp('{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}')).toBe('check_ext KVM_CAP_NR_MEMSLOTS');
    expect(describeAnswer({ ret: -22, errno: 'EINVAL', error: 'x' })).toBe('EINVAL');
    expect(describeAnswer({ ret: 0, bitmap: '00' })).toBe('0 bitmap=00');
  });
});
