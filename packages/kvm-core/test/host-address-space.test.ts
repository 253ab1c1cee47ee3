import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf } from '../src/errors.js';
import { type AccessSize, HostAddressSpace } from '../src/host/host-address-space.js';
import { PageFrames, ZERO_FRAME } from '../src/host/page-frames.js';
import { TASK_SIZE_MAX_4LEVEL } from '../src/uapi.js';

const PG = 0x1000n;
const BASE = 0x10_0000n; // above the default mmap_min_addr
const TASK = TASK_SIZE_MAX_4LEVEL;
const U64_MAX = (1n << 64n) - 1n;

function space(): HostAddressSpace {
  return new HostAddressSpace({ framesPerSlab: 4 });
}

const pfn = (a: bigint): number => Number(a >> 12n);

describe('HostAddressSpace: zero page and faults', () => {
  it('reads never-written memory as zero and maps the zero page', () => {
    const as = space();
    as.mmap(BASE, 4n * PG);
    expect(as.frameOf(pfn(BASE))).toBe(-1);
    for (const size of [1, 2, 4, 8] as const) expect(as.read(BASE + 0x123n, size)).toBe(0n);
    expect(as.frameOf(pfn(BASE))).toBe(ZERO_FRAME);
    expect(as.frames.inUse).toBe(0);
    // a page-crossing read of two never-written pages
    expect(as.read(BASE + 2n * PG - 3n, 8)).toBe(0n);
    expect(as.frameOf(pfn(BASE) + 1)).toBe(ZERO_FRAME);
    expect(as.frames.inUse).toBe(0);
  });

  it('faultIn: read maps frame 0, write allocates (copy-on-write from the zero page)', () => {
    const as = space();
    as.mmap(BASE, 2n * PG);
    const p = pfn(BASE);
    expect(as.faultIn(p, false)).toBe(0);
    expect(as.frameOf(p)).toBe(0);
    const f = as.faultIn(p, true);
    expect(f).toBeGreaterThan(0);
    expect(as.frameOf(p)).toBe(f);
    expect(as.faultIn(p, false)).toBe(f);
    expect(as.faultIn(p, true)).toBe(f);
    expect(as.readFrame(f, 0, 8)).toBe(0n);
    // write first on a never-touched page
    const g = as.faultIn(p + 1, true);
    expect(g).not.toBe(f);
    expect(g).toBeGreaterThan(0);
    // unmapped pages
    expect(as.faultIn(p + 2, false)).toBe(-1);
    expect(as.faultIn(p - 1, true)).toBe(-1);
    expect(as.frameOf(p + 2)).toBe(-1);
    expect(as.isMapped(p + 1)).toBe(true);
    expect(as.isMapped(p + 2)).toBe(false);
  });

  it('writeFrame/readFrame/frameBytes reach the frame contents seen by read()', () => {
    const as = space();
    as.mmap(BASE, PG);
    const f = as.faultIn(pfn(BASE), true);
    as.writeFrame(f, 8, 8, 0x1122334455667788n);
    expect(as.read(BASE + 8n, 8)).toBe(0x1122334455667788n);
    expect(as.frameBytes(f)[8]).toBe(0x88);
    expect(as.frameBytes(f).length).toBe(4096);
    expect(errnoOf(() => as.writeFrame(ZERO_FRAME, 0, 1, 1n))).toBe('EINVAL');
    expect(errnoOf(() => as.writeFrame(f, 4093, 4, 1n))).toBe('EINVAL');
  });
});

describe('HostAddressSpace: read/write', () => {
  it('round-trips every size, aligned and unaligned, little-endian', () => {
    const as = space();
    as.mmap(BASE, 2n * PG);
    const values: Record<AccessSize, bigint> = { 1: 0xabn, 2: 0xbeefn, 4: 0xdeadbeefn, 8: 0xfedcba9876543210n };
    for (const size of [1, 2, 4, 8] as const) {
      for (const off of [0n, 1n, 3n, 0x7ffn]) {
        as.write(BASE + off, size, values[size]);
        expect(as.read(BASE + off, size)).toBe(values[size]);
      }
    }
    as.write(BASE, 8, 0x0807060504030201n);
    for (let i = 0n; i < 8n; i++) expect(as.read(BASE + i, 1)).toBe(i + 1n);
    expect(as.read(BASE + 2n, 4)).toBe(0x06050403n);
  });

  it('round-trips page-crossing accesses of every size', () => {
    const as = space();
    as.mmap(BASE, 2n * PG);
    for (const size of [2, 4, 8] as const) {
      for (let back = 1n; back < BigInt(size); back++) {
        const addr = BASE + PG - back;
        const value = (0x0123456789abcdefn + back) & ((1n << BigInt(8 * size)) - 1n);
        as.write(addr, size, value);
        expect(as.read(addr, size)).toBe(value);
        // each byte landed on the right page
        for (let i = 0n; i < BigInt(size); i++) {
          expect(as.read(addr + i, 1)).toBe((value >> (8n * i)) & 0xffn);
        }
      }
    }
    expect(as.frameOf(pfn(BASE))).toBeGreaterThan(0);
    expect(as.frameOf(pfn(BASE) + 1)).toBeGreaterThan(0);
  });

  it('EFAULT when any byte is unmapped, and nothing is written', () => {
    const as = space();
    as.mmap(BASE, PG);
    expect(errnoOf(() => as.write(BASE + PG - 4n, 8, 0x1111111111111111n))).toBe('EFAULT');
    expect(as.read(BASE + PG - 4n, 4)).toBe(0n);
    expect(as.frameOf(pfn(BASE))).toBe(ZERO_FRAME); // the read above, not the failed write
    expect(errnoOf(() => as.read(BASE + PG - 1n, 2))).toBe('EFAULT');
    expect(errnoOf(() => as.read(BASE - 1n, 1))).toBe('EFAULT');
    expect(errnoOf(() => as.read(0n, 8))).toBe('EFAULT');
    expect(errnoOf(() => as.read(TASK - 4n, 8))).toBe('EFAULT');
    expect(errnoOf(() => as.read(U64_MAX, 1))).toBe('EFAULT');
    expect(errnoOf(() => as.write(U64_MAX - 3n, 8, 0n))).toBe('EFAULT');
    expect(as.frames.inUse).toBe(0);
  });

  it('a page-crossing write into an unmapped second page writes nothing', () => {
    const as = space();
    as.mmap(BASE, PG);
    as.write(BASE + PG - 2n, 2, 0xaaaan);
    expect(errnoOf(() => as.write(BASE + PG - 2n, 4, 0xbbbbbbbbn))).toBe('EFAULT');
    expect(as.read(BASE + PG - 2n, 2)).toBe(0xaaaan);
  });

  it('EINVAL for a value wider than size (checked before EFAULT) or a bad size', () => {
    const as = space();
    as.mmap(BASE, PG);
    expect(errnoOf(() => as.write(BASE, 1, 0x100n))).toBe('EINVAL');
    expect(errnoOf(() => as.write(BASE, 2, 0x10000n))).toBe('EINVAL');
    expect(errnoOf(() => as.write(BASE, 4, 0x100000000n))).toBe('EINVAL');
    expect(errnoOf(() => as.write(BASE, 8, 1n << 64n))).toBe('EINVAL');
    expect(errnoOf(() => as.write(BASE, 8, -1n))).toBe('EINVAL');
    expect(errnoOf(() => as.write(0n, 1, 0x100n))).toBe('EINVAL');
    expect(errnoOf(() => as.write(BASE, 3 as AccessSize, 0n))).toBe('EINVAL');
    expect(errnoOf(() => as.read(BASE, 16 as AccessSize))).toBe('EINVAL');
    as.write(BASE, 8, U64_MAX);
    expect(as.read(BASE, 8)).toBe(U64_MAX);
  });
});

describe('HostAddressSpace: mmap', () => {
  it('maps fixed ranges, keeps them sorted, and refuses overlaps with EEXIST', () => {
    const as = space();
    as.mmap(BASE + 4n * PG, PG);
    as.mmap(BASE, 2n * PG);
    as.mmap(BASE + 2n * PG, 2n * PG); // adjacent: allowed, not merged
    expect(as.vmas()).toEqual([
      { start: pfn(BASE), end: pfn(BASE) + 2 },
      { start: pfn(BASE) + 2, end: pfn(BASE) + 4 },
      { start: pfn(BASE) + 4, end: pfn(BASE) + 5 },
    ]);
    expect(errnoOf(() => as.mmap(BASE, PG))).toBe('EEXIST');
    expect(errnoOf(() => as.mmap(BASE - PG, 2n * PG))).toBe('EEXIST');
    expect(errnoOf(() => as.mmap(BASE + 4n * PG, 8n * PG))).toBe('EEXIST');
    expect(errnoOf(() => as.mmap(BASE - 8n * PG, 100n * PG))).toBe('EEXIST');
    expect(as.vmas().length).toBe(3);
    as.mmap(BASE + 5n * PG, PG);
    as.mmap(BASE - PG, PG);
    expect(as.vmas().length).toBe(5);
  });

  it('EINVAL for length 0, unaligned length (protocol rule), unaligned address', () => {
    const as = space();
    expect(errnoOf(() => as.mmap(BASE, 0n))).toBe('EINVAL');
    expect(errnoOf(() => as.mmap(BASE, 1n))).toBe('EINVAL');
    expect(errnoOf(() => as.mmap(BASE, PG + 1n))).toBe('EINVAL');
    expect(errnoOf(() => as.mmap(BASE, U64_MAX))).toBe('EINVAL');
    expect(errnoOf(() => as.mmap(BASE + 1n, PG))).toBe('EINVAL');
    expect(errnoOf(() => as.mmap(BASE + 0x800n, PG))).toBe('EINVAL');
    expect(as.vmas()).toEqual([]);
  });

  it('ENOMEM beyond TASK_SIZE or wrapping, checked before address alignment', () => {
    const as = space();
    as.mmap(TASK - PG, PG); // the last user page is fine
    expect(errnoOf(() => as.mmap(TASK, PG))).toBe('ENOMEM');
    expect(errnoOf(() => as.mmap(TASK - PG, 2n * PG))).toBe('ENOMEM');
    expect(errnoOf(() => as.mmap(U64_MAX - PG + 1n, PG))).toBe('ENOMEM');
    expect(errnoOf(() => as.mmap(0n, TASK + PG))).toBe('ENOMEM');
    expect(errnoOf(() => as.mmap(BASE, 1n << 63n))).toBe('ENOMEM');
    expect(errnoOf(() => as.mmap(U64_MAX, PG))).toBe('ENOMEM'); // unaligned, but beyond: ENOMEM
    expect(errnoOf(() => as.mmap(TASK - PG + 1n, PG))).toBe('ENOMEM');
    expect(errnoOf(() => as.mmap(TASK - 2n * PG + 1n, PG))).toBe('EINVAL');
  });

  it('EPERM below mmap_min_addr when configured (an unprivileged process); privileged by default', () => {
    const unpriv = (): HostAddressSpace => new HostAddressSpace({ mmapMinAddr: 0x10000n });
    expect(errnoOf(() => unpriv().mmap(0n, PG))).toBe('EPERM');
    expect(errnoOf(() => unpriv().mmap(0xf000n, PG))).toBe('EPERM');
    expect(errnoOf(() => unpriv().mmap(0x10000n, PG))).toBe(0);
    expect(errnoOf(() => space().mmap(0x1000n, PG))).toBe(0);
    const priv = new HostAddressSpace({ mmapMinAddr: 0n });
    priv.mmap(0n, PG);
    priv.write(0n, 8, 42n);
    expect(priv.read(0n, 8)).toBe(42n);
  });

  it('can map the whole user address space without allocating anything', () => {
    const as = new HostAddressSpace({ mmapMinAddr: 0n });
    as.mmap(0n, TASK);
    as.write(TASK - 8n, 8, 7n);
    expect(as.read(TASK - 8n, 8)).toBe(7n);
    as.madvise(0n, TASK, 'DONTNEED');
    expect(as.read(TASK - 8n, 8)).toBe(0n);
    as.munmap(0n, TASK);
    expect(as.vmas()).toEqual([]);
    expect(as.populatedPages).toBe(0);
  });
});

describe('HostAddressSpace: munmap', () => {
  it('splits a mapping and frees the frames of the hole', () => {
    const as = space();
    as.mmap(BASE, 8n * PG);
    for (let i = 0n; i < 8n; i++) as.write(BASE + i * PG, 8, i + 1n);
    expect(as.frames.inUse).toBe(8);
    as.munmap(BASE + 2n * PG, 3n * PG);
    expect(as.vmas()).toEqual([
      { start: pfn(BASE), end: pfn(BASE) + 2 },
      { start: pfn(BASE) + 5, end: pfn(BASE) + 8 },
    ]);
    expect(as.frames.inUse).toBe(5);
    expect(as.read(BASE + PG, 8)).toBe(2n);
    expect(as.read(BASE + 5n * PG, 8)).toBe(6n);
    expect(errnoOf(() => as.read(BASE + 2n * PG, 1))).toBe('EFAULT');
    expect(as.frameOf(pfn(BASE) + 3)).toBe(-1);
    // remapping the hole gives zero-filled memory
    as.mmap(BASE + 3n * PG, PG);
    expect(as.read(BASE + 3n * PG, 8)).toBe(0n);
  });

  it('rounds the length up, unmaps holes and several mappings at once', () => {
    const as = space();
    as.mmap(BASE, PG);
    as.mmap(BASE + 2n * PG, 2n * PG);
    as.write(BASE + 3n * PG, 1, 1n);
    as.munmap(BASE + 3n * PG, 1n); // one byte → one page
    expect(as.vmas()).toEqual([
      { start: pfn(BASE), end: pfn(BASE) + 1 },
      { start: pfn(BASE) + 2, end: pfn(BASE) + 3 },
    ]);
    expect(as.frames.inUse).toBe(0);
    as.munmap(BASE + 10n * PG, PG); // a hole: fine
    as.munmap(BASE - PG, 4n * PG + 1n);
    expect(as.vmas()).toEqual([]);
  });

  it('EINVAL for an unaligned address, length 0, addr > TASK_SIZE, length > TASK_SIZE - addr', () => {
    const as = space();
    as.mmap(BASE, PG);
    expect(errnoOf(() => as.munmap(BASE + 1n, PG))).toBe('EINVAL');
    expect(errnoOf(() => as.munmap(BASE, 0n))).toBe('EINVAL');
    expect(errnoOf(() => as.munmap(TASK + PG, PG))).toBe('EINVAL');
    expect(errnoOf(() => as.munmap(TASK, 1n))).toBe('EINVAL');
    expect(errnoOf(() => as.munmap(TASK - PG, PG + 1n))).toBe('EINVAL');
    expect(errnoOf(() => as.munmap(BASE, U64_MAX))).toBe('EINVAL');
    expect(errnoOf(() => as.munmap(U64_MAX - 0xfffn, PG))).toBe('EINVAL');
    // edges that are valid
    expect(errnoOf(() => as.munmap(TASK, 0n))).toBe('EINVAL'); // addr == TASK_SIZE passes, length 0 does not
    expect(errnoOf(() => as.munmap(TASK - PG, PG))).toBe(0);
    expect(errnoOf(() => as.munmap(TASK - PG, PG - 1n))).toBe(0);
    expect(errnoOf(() => as.munmap(0n, TASK))).toBe(0);
    expect(as.vmas()).toEqual([]);
  });
});

describe('HostAddressSpace: madvise(DONTNEED)', () => {
  it('drops pages: later reads are zero, frames freed, mapping kept', () => {
    const as = space();
    as.mmap(BASE, 4n * PG);
    for (let i = 0n; i < 4n; i++) as.write(BASE + i * PG + 8n, 4, 0x1000n + i);
    as.madvise(BASE + PG, 2n * PG, 'DONTNEED');
    expect(as.frames.inUse).toBe(2);
    expect(as.frameOf(pfn(BASE) + 1)).toBe(-1);
    expect(as.read(BASE + PG + 8n, 4)).toBe(0n);
    expect(as.read(BASE + 2n * PG + 8n, 4)).toBe(0n);
    expect(as.read(BASE + 8n, 4)).toBe(0x1000n);
    expect(as.read(BASE + 3n * PG + 8n, 4)).toBe(0x1003n);
    expect(as.vmas().length).toBe(1);
  });

  it('rounds the length up; length 0 is 0 even where nothing is mapped', () => {
    const as = space();
    as.mmap(BASE, 2n * PG);
    as.write(BASE + PG, 1, 9n);
    as.madvise(BASE + PG, 1n, 'DONTNEED');
    expect(as.read(BASE + PG, 1)).toBe(0n);
    expect(errnoOf(() => as.madvise(0n, 0n, 'DONTNEED'))).toBe(0);
    expect(errnoOf(() => as.madvise(U64_MAX - 0xfffn, 0n, 'DONTNEED'))).toBe(0);
  });

  it('ENOMEM when part of the range is unmapped, but the mapped parts are still dropped', () => {
    const as = space();
    as.mmap(BASE, PG);
    as.mmap(BASE + 2n * PG, PG);
    as.write(BASE, 8, 1n);
    as.write(BASE + 2n * PG, 8, 2n);
    expect(errnoOf(() => as.madvise(BASE, 3n * PG, 'DONTNEED'))).toBe('ENOMEM');
    expect(as.read(BASE, 8)).toBe(0n);
    expect(as.read(BASE + 2n * PG, 8)).toBe(0n);
    // hole at the start, and a range running past the last mapping
    as.write(BASE, 8, 3n);
    expect(errnoOf(() => as.madvise(BASE - PG, 2n * PG, 'DONTNEED'))).toBe('ENOMEM');
    expect(as.read(BASE, 8)).toBe(0n);
    as.write(BASE + 2n * PG, 8, 4n);
    expect(errnoOf(() => as.madvise(BASE + 2n * PG, 1n << 60n, 'DONTNEED'))).toBe('ENOMEM');
    expect(as.read(BASE + 2n * PG, 8)).toBe(0n);
    expect(errnoOf(() => as.madvise(TASK, PG, 'DONTNEED'))).toBe('ENOMEM');
    expect(errnoOf(() => as.madvise(0n, PG, 'DONTNEED'))).toBe('ENOMEM');
    expect(as.frames.inUse).toBe(0);
  });

  it('EINVAL for an unaligned address, a length that rounds up to wrap, or addr + len wrapping', () => {
    const as = space();
    as.mmap(BASE, PG);
    as.write(BASE, 1, 5n);
    expect(errnoOf(() => as.madvise(BASE + 1n, PG, 'DONTNEED'))).toBe('EINVAL');
    expect(errnoOf(() => as.madvise(BASE + 1n, 0n, 'DONTNEED'))).toBe('EINVAL');
    expect(errnoOf(() => as.madvise(BASE, U64_MAX, 'DONTNEED'))).toBe('EINVAL');
    expect(errnoOf(() => as.madvise(BASE, U64_MAX - 0xffen, 'DONTNEED'))).toBe('EINVAL');
    expect(errnoOf(() => as.madvise(PG, U64_MAX - 0x1ffen, 'DONTNEED'))).toBe('EINVAL'); // PG + 2^64 − PG wraps to 0
    expect(errnoOf(() => as.madvise(U64_MAX - 0xfffn, PG, 'DONTNEED'))).toBe('EINVAL');
    expect(errnoOf(() => as.madvise(U64_MAX - 0x1fffn, PG, 'DONTNEED'))).toBe('ENOMEM'); // ends exactly at 2^64 − 4096
    expect(errnoOf(() => as.madvise(BASE, PG, 'COLD' as 'DONTNEED'))).toBe('EINVAL'); // MADV_COLD is not modelled
    expect(as.read(BASE, 1)).toBe(5n); // nothing was dropped by the failures
  });
});

describe('PageFrames', () => {
  it('reuses freed frames, zero-filled, and grows slabs as needed', () => {
    const as = space(); // 4 frames per slab
    as.mmap(BASE, 16n * PG);
    for (let i = 0n; i < 10n; i++) as.write(BASE + i * PG, 8, 0xffn + i);
    expect(as.frames.inUse).toBe(10);
    expect(as.frames.capacity).toBe(12);
    const freed = as.frameOf(pfn(BASE) + 3);
    as.munmap(BASE + 3n * PG, PG);
    expect(as.frames.inUse).toBe(9);
    as.write(BASE + 12n * PG, 1, 1n);
    expect(as.frameOf(pfn(BASE) + 12)).toBe(freed);
    expect(as.read(BASE + 12n * PG, 8)).toBe(1n); // the old contents 0x102 are gone
    expect(as.frames.capacity).toBe(12);
  });

  it('madvise-freed frames are reused too; double free and zero-page writes are refused', () => {
    const frames = new PageFrames(2);
    const a = frames.allocate();
    const b = frames.allocate();
    expect([a, b]).toEqual([1, 2]);
    frames.write(b, 4088, 8, 0x55n);
    frames.free(b);
    expect(frames.isAllocated(b)).toBe(false);
    expect(errnoOf(() => frames.free(b))).toBe('EINVAL');
    expect(errnoOf(() => frames.free(ZERO_FRAME))).toBe('EINVAL');
    expect(errnoOf(() => frames.read(b, 0, 1))).toBe('EINVAL');
    expect(frames.allocate()).toBe(b);
    expect(frames.read(b, 4088, 8)).toBe(0n);
    expect(errnoOf(() => frames.write(ZERO_FRAME, 0, 1, 1n))).toBe('EINVAL');
    expect(frames.read(ZERO_FRAME, 4088, 8)).toBe(0n);
    expect(frames.inUse).toBe(2);
  });
});

describe('HostAddressSpace against a byte-map model (fast-check)', () => {
  type Cmd =
    | { k: 'mmap'; page: number; pages: number }
    | { k: 'munmap'; page: number; pages: number }
    | { k: 'madvise'; page: number; pages: number }
    | { k: 'write'; off: number; size: AccessSize; value: bigint }
    | { k: 'read'; off: number; size: AccessSize };
  const N = 12; // pages in the window
  const size = fc.constantFrom<AccessSize>(1, 2, 4, 8);
  const page = fc.integer({ min: 0, max: N - 1 });
  const pages = fc.integer({ min: 1, max: 4 });
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    fc.record({ k: fc.constant('mmap' as const), page, pages }),
    fc.record({ k: fc.constant('munmap' as const), page, pages }),
    fc.record({ k: fc.constant('madvise' as const), page, pages }),
    fc.record({ k: fc.constant('write' as const), off: fc.integer({ min: 0, max: N * 4096 - 8 }), size, value: fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }) }),
    fc.record({ k: fc.constant('read' as const), off: fc.integer({ min: 0, max: N * 4096 - 8 }), size }),
  );

  it('agrees on errnos, data, frame accounting', () => {
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 60 }), (cmds) => {
        const as = space();
        const mapped = new Array<boolean>(N).fill(false);
        const mem = new Map<number, number>(); // byte offset → byte
        const dropPage = (p: number): void => {
          for (let i = p * 4096; i < (p + 1) * 4096; i++) mem.delete(i);
        };
        for (const c of cmds) {
          switch (c.k) {
            case 'mmap': {
              const end = Math.min(c.page + c.pages, N);
              const overlap = mapped.slice(c.page, end).some(Boolean);
              expect(errnoOf(() => as.mmap(BASE + BigInt(c.page) * PG, BigInt(end - c.page) * PG))).toBe(overlap ? 'EEXIST' : 0);
              if (!overlap) for (let p = c.page; p < end; p++) mapped[p] = true;
              break;
            }
            case 'munmap':
            case 'madvise': {
              const end = Math.min(c.page + c.pages, N);
              const hole = mapped.slice(c.page, end).some((m) => !m);
              const e = errnoOf(() =>
                c.k === 'munmap'
                  ? as.munmap(BASE + BigInt(c.page) * PG, BigInt(end - c.page) * PG)
                  : as.madvise(BASE + BigInt(c.page) * PG, BigInt(end - c.page) * PG, 'DONTNEED'),
              );
              expect(e).toBe(c.k === 'madvise' && hole ? 'ENOMEM' : 0);
              for (let p = c.page; p < end; p++) {
                dropPage(p);
                if (c.k === 'munmap') mapped[p] = false;
              }
              break;
            }
            case 'write':
            case 'read': {
              const first = Math.floor(c.off / 4096);
              const last = Math.floor((c.off + c.size - 1) / 4096);
              const ok = mapped[first] === true && mapped[last] === true;
              const addr = BASE + BigInt(c.off);
              if (c.k === 'write') {
                const value = c.value & ((1n << BigInt(8 * c.size)) - 1n);
                expect(errnoOf(() => as.write(addr, c.size, value))).toBe(ok ? 0 : 'EFAULT');
                if (ok) for (let i = 0; i < c.size; i++) mem.set(c.off + i, Number((value >> BigInt(8 * i)) & 0xffn));
              } else if (ok) {
                let want = 0n;
                for (let i = 0; i < c.size; i++) want |= BigInt(mem.get(c.off + i) ?? 0) << BigInt(8 * i);
                expect(as.read(addr, c.size)).toBe(want);
              } else {
                expect(errnoOf(() => as.read(addr, c.size))).toBe('EFAULT');
              }
              break;
            }
          }
          // frame accounting: exactly the populated non-zero-page PTEs hold frames
          let frames = 0;
          for (let p = 0; p < N; p++) {
            const f = as.frameOf(pfn(BASE) + p);
            if (!mapped[p]) expect(f).toBe(-1);
            if (f > 0) frames++;
          }
          expect(as.frames.inUse).toBe(frames);
        }
      }),
      { numRuns: 300 },
    );
  });
});
