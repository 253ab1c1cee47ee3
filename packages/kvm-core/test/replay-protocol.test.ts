import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ReplayOp,
  type ReplayOutput,
  REPLAY_CHECK_EXTENSION_CAPS,
  REPLAY_OPS,
  bitmapToHex,
  errorOutput,
  formatReplayOutput,
  hex,
  hexToBitmap,
  kvmErrorOutput,
  outputsAgree,
  parseReplayLine,
} from '../src/replay/protocol.js';
import { KvmError, isKvmError } from '../src/errors.js';

function op(line: string | Record<string, unknown>, lineNo = 1): ReplayOp {
  const r = parseReplayLine(typeof line === 'string' ? line : JSON.stringify(line), lineNo);
  if (r.kind !== 'op') throw new Error(`expected an op, got ${JSON.stringify(r)}`);
  return r.op;
}

/** The error message of a malformed line; asserts the protocol's EINVAL shape. */
function err(line: string | Record<string, unknown>, lineNo = 1): string {
  const r = parseReplayLine(typeof line === 'string' ? line : JSON.stringify(line), lineNo);
  if (r.kind !== 'error') throw new Error(`expected an error, got ${r.kind}`);
  expect(r.output.ret).toBe(-22);
  expect(r.output.errno).toBe('EINVAL');
  expect(Object.keys(r.output)).toEqual(['ret', 'errno', 'error']);
  const msg = r.output.error ?? '';
  expect(msg.startsWith(`line ${lineNo}: `)).toBe(true);
  return msg;
}

describe('parseReplayLine: skipping', () => {
  it('skips blank and comment lines', () => {
    for (const l of ['', '   ', '\t', '\r', '# comment', '   # indented {"op":"mmap"}', '#']) {
      expect(parseReplayLine(l, 3)).toEqual({ kind: 'skip' });
    }
  });
});

describe('parseReplayLine: every op with defaults', () => {
  it('create_vm', () => {
    expect(op({ op: 'create_vm' })).toEqual({ op: 'create_vm', arch: 'x86' });
    expect(op({ op: 'create_vm', arch: 'x86' })).toEqual({ op: 'create_vm', arch: 'x86' });
  });

  it('check_extension, every cap', () => {
    for (const cap of REPLAY_CHECK_EXTENSION_CAPS) {
      expect(op({ op: 'check_extension', cap })).toEqual({ op: 'check_extension', cap });
    }
  });

  it('enable_cap: flags 0 and args padded to 4', () => {
    expect(op({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2' })).toEqual({
      op: 'enable_cap',
      cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2',
      flags: 0,
      args: [0n, 0n, 0n, 0n],
    });
    expect(op({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', flags: 1, args: [3] })).toEqual({
      op: 'enable_cap',
      cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2',
      flags: 1,
      args: [3n, 0n, 0n, 0n],
    });
    expect(
      op({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', args: ['0xffffffffffffffff', 1, 2, '3'] }),
    ).toMatchObject({ args: [2n ** 64n - 1n, 1n, 2n, 3n] });
    expect(op({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', args: [] })).toMatchObject({
      args: [0n, 0n, 0n, 0n],
    });
  });

  it('mmap, munmap, madvise', () => {
    expect(op({ op: 'mmap', addr: '0x7f0000000000', length: 4096 })).toEqual({
      op: 'mmap',
      addr: 0x7f0000000000n,
      length: 4096n,
    });
    expect(op({ op: 'munmap', addr: 0, length: '8192' })).toEqual({ op: 'munmap', addr: 0n, length: 8192n });
    expect(op({ op: 'madvise', addr: '0X1000', length: 1, advice: 'DONTNEED' })).toEqual({
      op: 'madvise',
      addr: 0x1000n,
      length: 1n,
      advice: 'DONTNEED',
    });
  });

  it('host_write, host_read', () => {
    expect(op({ op: 'host_write', addr: 4096, size: 8, value: '0xdeadbeefcafebabe' })).toEqual({
      op: 'host_write',
      addr: 4096n,
      size: 8,
      value: 0xdeadbeefcafebaben,
    });
    expect(op({ op: 'host_read', addr: '4097', size: '2' })).toEqual({ op: 'host_read', addr: 4097n, size: 2 });
  });

  it('set_user_memory_region: camelCase fields, flags default 0', () => {
    expect(
      op({
        op: 'set_user_memory_region',
        slot: 0x10001,
        guest_phys_addr: '0x100000',
        memory_size: 65536,
        userspace_addr: '0x7f0000000000',
      }),
    ).toEqual({
      op: 'set_user_memory_region',
      slot: 0x10001,
      flags: 0,
      guestPhysAddr: 0x100000n,
      memorySize: 65536n,
      userspaceAddr: 0x7f0000000000n,
    });
    expect(
      op({ op: 'set_user_memory_region', slot: 0, flags: 3, guest_phys_addr: 0, memory_size: 0, userspace_addr: 0 }),
    ).toMatchObject({ flags: 3 });
  });

  it('vcpu_read, vcpu_write (alignment and width are the executor’s business)', () => {
    expect(op({ op: 'vcpu_read', gpa: '0x1000', size: 4 })).toEqual({ op: 'vcpu_read', gpa: 0x1000n, size: 4 });
    expect(op({ op: 'vcpu_write', gpa: 3, size: 8, value: '0x1fffffffffffffff' })).toEqual({
      op: 'vcpu_write',
      gpa: 3n,
      size: 8,
      value: 0x1fffffffffffffffn,
    });
    expect(op({ op: 'vcpu_write', gpa: 0, size: 1, value: 0x1234 })).toMatchObject({ size: 1, value: 0x1234n });
  });

  it('get_dirty_log, clear_dirty_log (bitmap bytes kept as given)', () => {
    expect(op({ op: 'get_dirty_log', slot: 7 })).toEqual({ op: 'get_dirty_log', slot: 7 });
    const c = op({ op: 'clear_dirty_log', slot: 1, first_page: '64', num_pages: 64, bitmap: '01ff00A0' });
    expect(c).toEqual({
      op: 'clear_dirty_log',
      slot: 1,
      firstPage: 64n,
      numPages: 64,
      bitmap: new Uint8Array([0x01, 0xff, 0x00, 0xa0]),
    });
    expect(op({ op: 'clear_dirty_log', slot: 1, first_page: 0, num_pages: 0, bitmap: '' })).toMatchObject({
      bitmap: new Uint8Array(0),
    });
  });

  it('covers every op of the protocol table', () => {
    expect([...REPLAY_OPS].sort()).toEqual(
      [
        'create_vm',
        'check_extension',
        'enable_cap',
        'mmap',
        'munmap',
        'madvise',
        'host_write',
        'host_read',
        'set_user_memory_region',
        'vcpu_read',
        'vcpu_write',
        'get_dirty_log',
        'clear_dirty_log',
      ].sort(),
    );
  });

  it('ignores unknown extra fields; a duplicate key: the last one wins', () => {
    expect(op({ op: 'get_dirty_log', slot: 2, comment: 'x', extra: [1, { a: null }] })).toEqual({
      op: 'get_dirty_log',
      slot: 2,
    });
    expect(op('{"op":"mmap","addr":1,"addr":"0x2000","length":4096}')).toMatchObject({ addr: 0x2000n });
    expect(op('{"op":"mmap","op":"munmap","addr":0,"length":1}')).toMatchObject({ op: 'munmap' });
    expect(err('{"op":"get_dirty_log","slot":1,"slot":-1}', 4)).toContain("field 'slot'");
  });

  it('accepts surrounding whitespace and CR', () => {
    expect(op('  {"op":"create_vm"}  \r')).toEqual({ op: 'create_vm', arch: 'x86' });
  });
});

describe('parseReplayLine: integers', () => {
  const mmapAddr = (addr: unknown): ReturnType<typeof parseReplayLine> =>
    parseReplayLine(JSON.stringify({ op: 'mmap', addr, length: 4096 }), 1);
  const addrOf = (addr: unknown): bigint => {
    const r = mmapAddr(addr);
    if (r.kind !== 'op' || r.op.op !== 'mmap') throw new Error(JSON.stringify(r));
    return r.op.addr;
  };

  it('u64 edge values', () => {
    expect(addrOf(0)).toBe(0n);
    expect(addrOf('0')).toBe(0n);
    expect(addrOf('0x0')).toBe(0n);
    expect(addrOf(Number.MAX_SAFE_INTEGER)).toBe(2n ** 53n - 1n);
    expect(addrOf('9007199254740992')).toBe(2n ** 53n);
    expect(addrOf('0xffffffffffffffff')).toBe(2n ** 64n - 1n);
    expect(addrOf('0XFFFFFFFFFFFFFFFF')).toBe(2n ** 64n - 1n);
    expect(addrOf('18446744073709551615')).toBe(2n ** 64n - 1n);
    expect(addrOf('000123')).toBe(123n);
    expect(addrOf('0x000000000000000000000001')).toBe(1n);
    expect(parseReplayLine('{"op":"mmap","addr":1e3,"length":4096}', 1)).toMatchObject({ op: { addr: 1000n } });
    expect(parseReplayLine('{"op":"mmap","addr":4096.0,"length":4096}', 1)).toMatchObject({ op: { addr: 4096n } });
    expect(parseReplayLine('{"op":"mmap","addr":-0,"length":4096}', 1)).toMatchObject({ op: { addr: 0n } });
  });

  it('rejects 2^53 as a JSON number (not a safe integer) and out-of-range values', () => {
    const m = err('{"op":"mmap","addr":9007199254740992,"length":4096}', 9);
    expect(m).toContain("line 9: field 'addr': must be a JSON safe integer or a decimal/0x-hex string");
    expect(m).toContain('not a safe integer');
    expect(err('{"op":"mmap","addr":9007199254740993,"length":4096}')).toContain('not a safe integer');
    expect(err({ op: 'mmap', addr: '0x10000000000000000', length: 4096 }, 2)).toBe(
      "line 2: field 'addr': must be a u64: 0 … 2^64−1 (got 18446744073709551616)",
    );
    expect(err({ op: 'mmap', addr: '18446744073709551616', length: 4096 })).toContain('must be a u64');
    expect(err({ op: 'mmap', addr: -1, length: 4096 })).toContain("field 'addr': must be a u64: 0 … 2^64−1 (got -1)");
    expect(err({ op: 'mmap', addr: '-1', length: 4096 })).toContain('must be a u64');
    expect(err({ op: 'get_dirty_log', slot: 2 ** 32 })).toContain("field 'slot': must be a u32: 0 … 2^32−1");
    expect(op({ op: 'get_dirty_log', slot: 2 ** 32 - 1 })).toEqual({ op: 'get_dirty_log', slot: 4294967295 });
    expect(err({ op: 'clear_dirty_log', slot: 0, first_page: 0, num_pages: '0x100000000', bitmap: '' })).toContain(
      "field 'num_pages': must be a u32",
    );
    expect(
      err({ op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', flags: -1 }),
    ).toContain("field 'flags': must be a u32");
  });

  it('rejects non-integers and wrong types with the integer rule', () => {
    const rule = 'must be a JSON safe integer or a decimal/0x-hex string';
    for (const bad of [1.5, true, null, [], {}, '', ' 1', '1 ', '+1', '0x', '0b101', '1e3', '12a', '0x1g', '1_000', '١']) {
      expect(err({ op: 'mmap', addr: bad, length: 4096 }, 5)).toContain(`line 5: field 'addr': ${rule}`);
    }
    expect(err('{"op":"mmap","addr":1.5,"length":4096}')).toContain('got 1.5, not an integer');
    expect(err('{"op":"mmap","addr":1e300,"length":4096}')).toContain('not a safe integer');
  });

  it('agrees with BigInt for arbitrary u64 values written in decimal and hex', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (n) => {
        expect(addrOf(n.toString())).toBe(n);
        expect(addrOf(`0x${n.toString(16)}`)).toBe(n);
        if (n <= BigInt(Number.MAX_SAFE_INTEGER)) expect(addrOf(Number(n))).toBe(n);
      }),
    );
  });
});

describe('parseReplayLine: malformed lines', () => {
  it('not JSON', () => {
    for (const l of ['{', 'mmap 0 4096', '{"op":"mmap",}', "{'op':'mmap'}", '\uFEFF{"op":"create_vm"}']) {
      expect(err(l, 12)).toMatch(/^line 12: not valid JSON/);
    }
  });

  it('not an object', () => {
    for (const l of ['[]', '[{"op":"create_vm"}]', '42', '"create_vm"', 'null', 'true']) {
      expect(err(l, 2)).toMatch(/^line 2: must be a JSON object/);
    }
  });

  it('no op, non-string op, unknown op', () => {
    expect(err({ addr: 0 }, 7)).toBe("line 7: field 'op': is required");
    expect(err({ op: 5 })).toContain("field 'op': must be one of create_vm, check_extension");
    expect(err({ op: null })).toContain("field 'op'");
    expect(err({ op: 'mmap2' }, 3)).toMatch(/^line 3: field 'op': must be one of .*\(got "mmap2"\)$/);
    expect(err({ op: 'toString' })).toContain("field 'op'");
    expect(err({ op: '__proto__' })).toContain("field 'op'");
    expect(err({ op: 'MMAP', addr: 0, length: 1 })).toContain("field 'op'");
  });

  it('missing required field (each op)', () => {
    expect(err({ op: 'mmap', length: 4096 }, 4)).toBe("line 4: field 'addr': is required");
    expect(err({ op: 'mmap', addr: 0 })).toContain("field 'length': is required");
    expect(err({ op: 'munmap', addr: 0 })).toContain("field 'length': is required");
    expect(err({ op: 'madvise', addr: 0, length: 0 })).toContain("field 'advice': is required");
    expect(err({ op: 'host_write', addr: 0, size: 1 })).toContain("field 'value': is required");
    expect(err({ op: 'host_read', addr: 0 })).toContain("field 'size': is required");
    expect(err({ op: 'check_extension' })).toContain("field 'cap': is required");
    expect(err({ op: 'enable_cap' })).toContain("field 'cap': is required");
    expect(err({ op: 'vcpu_read', size: 1 })).toContain("field 'gpa': is required");
    expect(err({ op: 'vcpu_write', gpa: 0, size: 1 })).toContain("field 'value': is required");
    expect(err({ op: 'get_dirty_log' })).toContain("field 'slot': is required");
    // an absent bitmap is a NULL user pointer, which the executor answers (EFAULT unless num_pages is 0)
    expect(parseReplayLine(JSON.stringify({ op: 'clear_dirty_log', slot: 0, first_page: 0, num_pages: 64 }), 1).kind).toBe('op');
    expect(
      err({ op: 'set_user_memory_region', slot: 0, guest_phys_addr: 0, memory_size: 4096 }),
    ).toContain("field 'userspace_addr': is required");
  });

  it('wrong string values', () => {
    expect(err({ op: 'create_vm', arch: 'arm64' })).toContain(`field 'arch': must be the string "x86" (got "arm64")`);
    expect(err({ op: 'create_vm', arch: null })).toContain("field 'arch'");
    expect(err({ op: 'check_extension', cap: 'KVM_CAP_FOO' })).toMatch(
      /field 'cap': must be one of "KVM_CAP_NR_MEMSLOTS", .* \(got "KVM_CAP_FOO"\)/,
    );
    expect(err({ op: 'check_extension', cap: 10 })).toContain("field 'cap'");
    expect(err({ op: 'enable_cap', cap: 'KVM_CAP_NR_MEMSLOTS' })).toContain(
      `field 'cap': must be the string "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2"`,
    );
    expect(err({ op: 'madvise', addr: 0, length: 0, advice: 'FREE' })).toContain(
      `field 'advice': must be the string "DONTNEED"`,
    );
  });

  it('size must be 1, 2, 4 or 8', () => {
    for (const size of [0, 3, 16, '0x10', -1, 2 ** 40]) {
      expect(err({ op: 'host_read', addr: 0, size }, 6)).toMatch(/^line 6: field 'size': must be 1, 2, 4 or 8/);
    }
    expect(err({ op: 'vcpu_write', gpa: 0, size: 1.5, value: 0 })).toContain(
      "field 'size': must be a JSON safe integer or a decimal/0x-hex string",
    );
    expect(op({ op: 'vcpu_read', gpa: 0, size: '0x8' })).toMatchObject({ size: 8 });
  });

  it('args: array of at most 4 u64', () => {
    const base = { op: 'enable_cap', cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2' };
    expect(err({ ...base, args: [1, 2, 3, 4, 5] })).toContain("field 'args': must be an array of at most 4 u64 values (got 5");
    expect(err({ ...base, args: 1 })).toContain("field 'args': must be an array of at most 4 u64 values");
    expect(err({ ...base, args: [0, 1, -1] })).toContain("field 'args[2]': must be a u64");
    expect(err({ ...base, args: [0, 'x'] })).toContain("field 'args[1]': must be a JSON safe integer");
  });

  it('bad bitmap hex', () => {
    const base = { op: 'clear_dirty_log', slot: 0, first_page: 0, num_pages: 8 };
    for (const bitmap of ['0', '0g', '0x01', 'ff ', 1, null, ['ff']]) {
      expect(err({ ...base, bitmap }, 8)).toMatch(/^line 8: field 'bitmap': must be a hex string with two hex digits per byte/);
    }
  });

  it('reports the first bad field in schema order', () => {
    expect(err({ op: 'host_write', addr: -1, size: 3, value: 'x' })).toContain("field 'addr'");
    expect(err({ op: 'host_write', addr: 0, size: 3, value: 'x' })).toContain("field 'size'");
  });
});

describe('outputs', () => {
  it('hex()', () => {
    expect(hex(0)).toBe('0x0');
    expect(hex(0n)).toBe('0x0');
    expect(hex(255)).toBe('0xff');
    expect(hex(0xdeadbeefn)).toBe('0xdeadbeef');
    expect(hex(2n ** 64n - 1n)).toBe('0xffffffffffffffff');
    expect(hex(Number.MAX_SAFE_INTEGER)).toBe('0x1fffffffffffff');
    for (const bad of [-1, -1n, 1.5, Number.NaN]) {
      try {
        hex(bad);
        expect.unreachable();
      } catch (e: unknown) {
        expect(isKvmError(e) && e.errno).toBe('EINVAL');
      }
    }
  });

  it('bitmap hex round trips (byte 0 first, lowercase)', () => {
    expect(bitmapToHex(new Uint8Array([1, 0, 0xab, 0x10]))).toBe('0100ab10');
    expect(bitmapToHex(new Uint8Array(0))).toBe('');
    expect(hexToBitmap('0100AB10')).toEqual(new Uint8Array([1, 0, 0xab, 0x10]));
    for (const bad of ['0', 'zz', '0x00']) expect(() => hexToBitmap(bad)).toThrow(KvmError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const h = bitmapToHex(bytes);
        expect(h).toMatch(/^(?:[0-9a-f]{2})*$/);
        expect(hexToBitmap(h)).toEqual(bytes);
        expect(hexToBitmap(h.toUpperCase())).toEqual(bytes);
      }),
    );
  });

  it('formatReplayOutput: ret first, errno next, error last, stable order', () => {
    expect(formatReplayOutput({ ret: 0 })).toBe('{"ret":0}');
    expect(formatReplayOutput({ error: 'x', errno: 'EFAULT', ret: -14 })).toBe(
      '{"ret":-14,"errno":"EFAULT","error":"x"}',
    );
    expect(formatReplayOutput({ value: '0x5', exit: 'none', ret: 0 })).toBe('{"ret":0,"exit":"none","value":"0x5"}');
    expect(
      formatReplayOutput({ data: '0x1', is_write: true, len: 4, phys_addr: '0x1000', exit: 'mmio', ret: 0 }),
    ).toBe('{"ret":0,"exit":"mmio","phys_addr":"0x1000","len":4,"is_write":true,"data":"0x1"}');
    expect(formatReplayOutput({ bitmap: '00', ret: 0, errno: undefined })).toBe('{"ret":0,"bitmap":"00"}');
    expect(formatReplayOutput({ ret: 0, error: 'e', extra: 1 } as ReplayOutput)).toBe('{"ret":0,"extra":1,"error":"e"}');
    expect(JSON.parse(formatReplayOutput(errorOutput('ENOSPC', 'no room')))).toEqual({
      ret: -28,
      errno: 'ENOSPC',
      error: 'no room',
    });
    expect(kvmErrorOutput(new KvmError('EEXIST', 'overlap'))).toEqual({
      ret: -17,
      errno: 'EEXIST',
      error: 'EEXIST: overlap',
    });
    expect(formatReplayOutput(errorOutput('EINVAL', 'line 1: "quoted"\n'))).toBe(
      '{"ret":-22,"errno":"EINVAL","error":"line 1: \\"quoted\\"\\n"}',
    );
  });

  it('outputsAgree ignores error and undefined fields only', () => {
    expect(outputsAgree({ ret: -22, errno: 'EINVAL', error: 'a' }, { ret: -22, errno: 'EINVAL', error: 'b' })).toBe(true);
    expect(outputsAgree({ ret: -22, errno: 'EINVAL' }, { ret: -22, errno: 'EINVAL', error: 'b' })).toBe(true);
    expect(outputsAgree({ ret: 0, value: undefined }, { ret: 0 })).toBe(true);
    expect(outputsAgree({ ret: 0 }, { ret: 0, value: '0x0' })).toBe(false);
    expect(outputsAgree({ ret: 0, value: '0x1' }, { ret: 0, value: '0x01' })).toBe(false);
    expect(outputsAgree({ ret: -14, errno: 'EFAULT' }, { ret: -14, errno: 'EIO' })).toBe(false);
    expect(outputsAgree({ ret: 0, exit: 'mmio', is_write: false }, { ret: 0, exit: 'mmio', is_write: true })).toBe(false);
    const parsed = JSON.parse('{"errno":"ENOENT","ret":-2,"error":"oracle says"}') as ReplayOutput;
    expect(outputsAgree(parsed, { ret: -2, errno: 'ENOENT' })).toBe(true);
  });

  it('a parse error output formats as the protocol line', () => {
    const r = parseReplayLine('{"op":"mmap"}', 10);
    expect(r.kind).toBe('error');
    if (r.kind === 'error') {
      expect(formatReplayOutput(r.output)).toBe(
        '{"ret":-22,"errno":"EINVAL","error":"line 10: field \'addr\': is required"}',
      );
    }
  });
});
