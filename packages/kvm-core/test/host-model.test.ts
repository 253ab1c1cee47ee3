/**
 * The host address space with THP, mprotect, MADV_FREE, reclaim, split and collapse against a
 * byte-map model (fast-check): same errnos and data, exact frame accounting, huge pages aligned
 * and contiguous, and notifier calls always balanced and properly nested.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ErrnoName, errnoOf } from '../src/errors.js';
import { HostAddressSpace, PROT_NONE, PROT_READ, PROT_WRITE } from '../src/host/host-address-space.js';
import type { MmuNotifierOps, MmuNotifierRange } from '../src/host/mmu-notifier.js';
import type { Steps } from '../src/sched/index.js';

const PG = 0x1000n;
const BASE = 0x4000_0000n;
const N = 1100; // pages in the window: two 2 MiB blocks and a bit
const NR = 512;

/** Checks that starts and ends nest like brackets, with the same range. */
class Checker implements MmuNotifierOps {
  readonly open: MmuNotifierRange[] = [];
  calls = 0;
  *invalidateRangeStart(r: MmuNotifierRange): Steps<number> {
    if (r.start % 4096 !== 0 || r.end % 4096 !== 0 || r.end <= r.start || !r.blockable) throw new Error(`bad range ${JSON.stringify(r)}`);
    this.open.push(r);
    this.calls++;
    return 0;
  }
  *invalidateRangeEnd(r: MmuNotifierRange): Steps {
    const top = this.open.pop();
    if (top !== r) throw new Error(`end ${JSON.stringify(r)} does not close ${JSON.stringify(top)}`);
  }
  *clearFlushYoung(): Steps<boolean> {
    return false;
  }
  *clearYoung(): Steps<boolean> {
    return false;
  }
  *testYoung(): Steps<boolean> {
    return false;
  }
  *release(): Steps {}
}

type Cmd =
  | { k: 'mmap'; page: number; pages: number; thp: boolean }
  | { k: 'munmap' | 'dontneed' | 'free' | 'reclaim'; page: number; pages: number }
  | { k: 'mprotect'; page: number; pages: number; prot: number }
  | { k: 'hugepage'; page: number; pages: number; on: boolean }
  | { k: 'split' | 'collapse'; page: number }
  | { k: 'write'; off: number; value: bigint }
  | { k: 'read'; off: number };

const page = fc.oneof(fc.constantFrom(0, NR, 3, NR - 2), fc.integer({ min: 0, max: N - 1 }));
const pages = fc.oneof(fc.constantFrom(NR, 2 * NR, 1, 2), fc.integer({ min: 1, max: N }));
const off = fc.oneof(
  fc.integer({ min: 0, max: N * 4096 - 8 }),
  fc.integer({ min: 0, max: 20 }).map((i) => i * 4096 + 8),
  fc.integer({ min: 0, max: 20 }).map((i) => (NR + i) * 4096),
);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('mmap' as const), page, pages, thp: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('munmap' as const, 'dontneed' as const, 'free' as const), page, pages }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('reclaim' as const), page, pages }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('mprotect' as const), page, pages, prot: fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('hugepage' as const), page, pages, on: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constantFrom('split' as const, 'collapse' as const), page: fc.constantFrom(0, 7, NR, NR + 9) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('write' as const), off, value: fc.bigInt({ min: 1n, max: 0xffffffffffffffffn }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('read' as const), off }) },
);

interface Coverage {
  huge: number;
  collapsed: number;
  discarded: number;
  swapped: number;
}

/** Runs the model comparison; returns how often the interesting states were reached. */
function runModel(params: fc.Parameters<[Cmd[]]>): Coverage {
  const stats: Coverage = { huge: 0, collapsed: 0, discarded: 0, swapped: 0 };
  fc.assert(
    fc.property(fc.array(cmd, { minLength: 10, maxLength: 60 }), (cmds) => {
      const as = new HostAddressSpace({ framesPerSlab: 128, poison: 0xa5 });
      const chk = new Checker();
      as.registerMmuNotifier(chk);
      const prot: (number | null)[] = new Array<number | null>(N).fill(null); // null = unmapped
      const mem = new Map<number, number>(); // byte offset → byte
      const lazy = new Set<number>(); // pages MADV_FREE'd and not written since
      const written = new Set<number>(); // pages holding a frame in the model's view (written since last drop)
      const drop = (p: number): void => {
        for (let i = p * 4096; i < (p + 1) * 4096; i++) mem.delete(i);
        lazy.delete(p);
        written.delete(p);
      };
      const base = Number(BASE >> 12n);
      for (const c of cmds) {
        switch (c.k) {
          case 'mmap': {
            const e = Math.min(c.page + c.pages, N);
            const overlap = prot.slice(c.page, e).some((x) => x !== null);
            expect(errnoOf(() => as.mmap(BASE + BigInt(c.page) * PG, BigInt(e - c.page) * PG, { thp: c.thp }))).toBe(overlap ? 'EEXIST' : 0);
            if (!overlap) for (let p = c.page; p < e; p++) prot[p] = PROT_READ | PROT_WRITE;
            break;
          }
          case 'munmap':
          case 'dontneed':
          case 'free':
          case 'hugepage': {
            const e = Math.min(c.page + c.pages, N);
            const hole = prot.slice(c.page, e).some((x) => x === null);
            const addr = BASE + BigInt(c.page) * PG;
            const len = BigInt(e - c.page) * PG;
            // MADV_FREE drops swap entries (their data is gone); which pages are swapped out
            // depends on earlier reclaim decisions, so ask the subject.
            const swapped = new Set<number>();
            if (c.k === 'free') for (let p = c.page; p < e; p++) if (as.pageInfo(base + p).swapped) swapped.add(p);
            const advice = c.k === 'dontneed' ? 'DONTNEED' : c.k === 'free' ? 'FREE' : c.k === 'hugepage' && c.on ? 'HUGEPAGE' : 'NOHUGEPAGE';
            const got = errnoOf(() => (c.k === 'munmap' ? as.munmap(addr, len) : as.madvise(addr, len, advice)));
            expect(got).toBe(c.k !== 'munmap' && hole ? 'ENOMEM' : 0);
            for (let p = c.page; p < e; p++) {
              if (c.k === 'munmap') {
                drop(p);
                prot[p] = null;
              } else if (c.k === 'dontneed') drop(p);
              else if (c.k === 'free' && swapped.has(p)) drop(p);
              else if (c.k === 'free' && prot[p] !== null && written.has(p)) lazy.add(p);
            }
            break;
          }
          case 'reclaim': {
            const e = Math.min(c.page + c.pages, N);
            const r = as.reclaim(BASE + BigInt(c.page) * PG, BigInt(e - c.page) * PG);
            stats.discarded += r.discarded;
            stats.swapped += r.swappedOut;
            // Reclaim may discard clean lazyfree pages (which ones depends on young bits):
            // ask the model's subject which it dropped; every other page must keep its data.
            for (let p = 0; p < N; p++) {
              if (!lazy.has(p)) continue;
              const info = as.pageInfo(base + p);
              if (info.frame < 0 && !info.swapped) drop(p);
            }
            break;
          }
          case 'mprotect': {
            const e = Math.min(c.page + c.pages, N);
            let want: 0 | ErrnoName = 0;
            if (prot[c.page] === null) want = 'ENOMEM';
            else {
              for (let p = c.page; p < e; p++) {
                if (prot[p] === null) {
                  want = 'ENOMEM';
                  break;
                }
                prot[p] = c.prot;
              }
            }
            expect(errnoOf(() => as.mprotect(BASE + BigInt(c.page) * PG, BigInt(e - c.page) * PG, c.prot))).toBe(want);
            break;
          }
          case 'split':
            as.splitHugePage(base + c.page);
            break;
          case 'collapse':
            if (as.collapseHugePage(base + c.page)) stats.collapsed++;
            break;
          case 'write':
          case 'read': {
            const first = Math.floor(c.off / 4096);
            const last = Math.floor((c.off + 7) / 4096);
            const addr = BASE + BigInt(c.off);
            if (c.k === 'write') {
              const ok = [first, last].every((p) => prot[p] !== null && prot[p]! & PROT_WRITE);
              expect(errnoOf(() => as.write(addr, 8, c.value))).toBe(ok ? 0 : 'EFAULT');
              if (ok) {
                for (let i = 0; i < 8; i++) mem.set(c.off + i, Number((c.value >> BigInt(8 * i)) & 0xffn));
                for (const p of [first, last]) {
                  lazy.delete(p);
                  written.add(p);
                }
              }
            } else {
              const ok = [first, last].every((p) => prot[p] !== null && prot[p] !== PROT_NONE);
              if (ok) {
                let want = 0n;
                for (let i = 0; i < 8; i++) want |= BigInt(mem.get(c.off + i) ?? 0) << BigInt(8 * i);
                expect(as.read(addr, 8)).toBe(want);
              } else {
                expect(errnoOf(() => as.read(addr, 8))).toBe('EFAULT');
              }
            }
            break;
          }
        }
        // Notifier calls balanced after every operation.
        expect(chk.open).toEqual([]);
        // Frames: exactly the distinct non-zero frames mapped in the window are allocated.
        const frames = new Set<number>();
        const fail = (why: string, p: number): never => {
          throw new Error(`${why} at page ${p} after ${JSON.stringify(c, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))}`);
        };
        for (let p = 0; p < N; p++) {
          const f = as.frameOf(base + p);
          if (prot[p] === null && f !== -1) fail('an unmapped page is present', p);
          if (f > 0) {
            if (!as.frames.isAllocated(f)) fail('a mapped frame is free', p);
            frames.add(f);
          }
          if (p % NR === 0 && as.hostMappingLevel(base + p) === 2) {
            if (f % NR !== 0 || as.frameOf(base + p + NR - 1) !== f + NR - 1) fail('a huge page is not aligned and contiguous', p);
            for (let i = 0; i < NR; i++) if (prot[p + i] === null) fail('a huge page sticks out of its mapping', p + i);
            stats.huge++;
          }
        }
        expect(as.frames.inUse).toBe(frames.size);
      }
    }),
    params,
  );
  return stats;
}

describe('HostAddressSpace with THP, mprotect, FREE, reclaim against a byte-map model (fast-check)', () => {
  it('agrees on errnos and data; frames, huge pages and notifier nesting stay consistent', () => {
    runModel({ numRuns: 80 });
  });

  it('with a fixed seed, the runs reach huge pages, collapse, swap-out and lazyfree discard', () => {
    const c = runModel({ numRuns: 80, seed: 4 });
    expect(c.huge).toBeGreaterThan(0);
    expect(c.collapsed).toBeGreaterThan(0);
    expect(c.swapped).toBeGreaterThan(0);
    expect(c.discarded).toBeGreaterThan(0);
  });
});
