/**
 * `kvmsim bench x86`: structure only. This is a benchmark, never a timed test: no assertion looks
 * at a timing beyond "finite and positive".
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BYTES_PER_PAGE_TARGET_PAGES,
  X86_BENCH_MMUS,
  X86_BENCH_QUICK_SIZES,
  X86_BENCH_ROW_IDS,
  evaluateX86Targets,
  type X86BenchResult,
  type X86BenchRow,
} from '../src/bench/x86-bench.js';
import { x86BenchOptionsFrom } from '../src/bench/x86-command.js';
import { cli, type CliResult } from './cli-harness.js';

describe('kvmsim bench x86 --quick --json (smoke, no timing assertions)', () => {
  let r: CliResult;
  let result: X86BenchResult;
  beforeAll(async () => {
    r = await cli(['bench', 'x86', '--quick', '--json']);
    result = JSON.parse(r.out) as X86BenchResult;
  }, 60_000);

  it('exits 0 with the JSON result alone on stdout', () => {
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(result.quick).toBe(true);
    expect(result.sizes).toEqual({ ...X86_BENCH_QUICK_SIZES });
  });

  it('has every row, in order, for the TDP MMU and then the shadow MMU, each finite and positive', () => {
    expect(result.rows.map((row) => `${row.mmu}:${row.id}`)).toEqual(X86_BENCH_MMUS.flatMap((mmu) => X86_BENCH_ROW_IDS.map((id) => `${mmu}:${id}`)));
    for (const row of result.rows) {
      expect(Number.isFinite(row.value), row.id).toBe(true);
      expect(row.value, row.id).toBeGreaterThan(0);
      expect(Number.isInteger(row.ops) && row.ops > 0, row.id).toBe(true);
      expect(row.what.length).toBeGreaterThan(0);
    }
    const byId = new Map(result.rows.filter((row) => row.mmu === 'shadow').map((row) => [row.id, row]));
    expect(byId.get('fault-2m')!.pages).toBe(512);
    expect(byId.get('zap-delete')!.pages).toBe(X86_BENCH_QUICK_SIZES.zapSlotPages);
    expect(byId.get('bytes-per-page-heap')!.pages).toBe(X86_BENCH_QUICK_SIZES.bytesPerPagePages);
    expect(new Set(result.rows.map((row) => row.bench))).toEqual(new Set(['fault-4k', 'fault-2m', 'zap-1g', 'bytes-per-page']));
  });

  it('has shadow-MMU rows for each benchmark (fault 4 KiB / 2 MiB, zap of the slot, bytes per page)', () => {
    const shadow = result.rows.filter((row) => row.mmu === 'shadow');
    expect(new Set(shadow.map((row) => row.bench))).toEqual(new Set(['fault-4k', 'fault-2m', 'zap-1g', 'bytes-per-page']));
    expect(result.targets[0]!.detail).not.toMatch(/shadow/); // quick sizes: the target is not measured
  });

  it('judges the bytes-per-page target "not measured" at quick sizes', () => {
    expect(result.targets).toHaveLength(1);
    expect(result.targets[0]!.met).toBe(false);
    expect(result.targets[0]!.detail).toMatch(/^not measured at 4 Mi pages/);
  });

  it('fills in the machine and run metadata', () => {
    for (const key of ['node', 'os', 'cpu', 'cores', 'totalMemoryMiB']) expect(result.machine).toHaveProperty(key);
    expect(Number.isNaN(Date.parse(result.startedAt))).toBe(false);
    expect(result.durationMs).toBeGreaterThan(0);
  });
});

describe('kvmsim bench x86: tables, --json FILE, options', () => {
  it('--quick --json FILE writes the result and prints the tables with a column per MMU', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kvmsim-bench-x86-'));
    try {
      const file = join(dir, 'x86.json');
      const r = await cli(['bench', 'x86', '--quick', `--json=${file}`]);
      expect(r.code).toBe(0);
      for (const text of ['fault-4k', 'fault-2m', 'zap-1g', 'bytes-per-page', 'TDP MMU', 'shadow MMU', 'zap-delete-slot', 'Targets', `Full result written to ${file}`]) {
        expect(r.out).toContain(text);
      }
      const result = JSON.parse(await readFile(file, 'utf8')) as X86BenchResult;
      expect(result.rows.filter((row) => row.mmu === 'tdp').map((row) => row.id)).toEqual([...X86_BENCH_ROW_IDS]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('invalid options exit 2 before measuring', async () => {
    for (const args of [['--min-time', '0'], ['--min-time', 'soon'], ['--bogus']]) {
      const r = await cli(['bench', 'x86', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
    }
    const j = await cli(['bench', 'x86', '--quick', `--json=${join(tmpdir(), 'kvmsim-no-such-dir', 'x', 'r.json')}`]);
    expect(j.code).toBe(2);
    expect(j.err).toContain('--json: cannot write');
  });

  it('is listed by `kvmsim bench`', async () => {
    const r = await cli(['bench', '--json']);
    expect(JSON.parse(r.out)).toContainEqual(expect.objectContaining({ name: 'x86', command: 'kvmsim bench x86' }));
  });

  it('maps command-line options', () => {
    expect(x86BenchOptionsFrom({})).toEqual({});
    expect(x86BenchOptionsFrom({ quick: true, minTime: 5 })).toEqual({ quick: true, minTimeMs: 5 });
  });

  it('the target needs the bytes-per-page rows at 4 Mi pages', () => {
    const heap = (value: number, pages: number): X86BenchRow => ({
      id: 'bytes-per-page-heap',
      bench: 'bytes-per-page',
      mmu: 'tdp',
      what: 'test',
      value,
      unit: 'bytes/page',
      pages,
      ops: 1,
    });
    expect(evaluateX86Targets([])[0]!.detail).toMatch(/^not measured/);
    expect(evaluateX86Targets([heap(8, BYTES_PER_PAGE_TARGET_PAGES)])[0]!.met).toBe(true);
    expect(evaluateX86Targets([heap(17, BYTES_PER_PAGE_TARGET_PAGES)])[0]!.met).toBe(false);
    expect(evaluateX86Targets([heap(8, 1024)])[0]!.met).toBe(false);
  });
});
