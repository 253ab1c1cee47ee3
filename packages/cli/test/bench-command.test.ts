import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchOptionsFrom, parseSlotList } from '../src/commands/bench.js';
import { cli } from './cli-harness.js';

describe('kvmsim bench', () => {
  it('lists the available benchmarks', async () => {
    const r = await cli(['bench']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('memslots');
    const j = await cli(['bench', '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.out)).toEqual([
      expect.objectContaining({ name: 'memslots', command: 'kvmsim bench memslots' }),
      expect.objectContaining({ name: 'x86', command: 'kvmsim bench x86' }),
      expect.objectContaining({ name: 'perf-test', command: 'kvmsim bench perf-test' }),
    ]);
  });

  it('an unknown benchmark exits 2', async () => {
    const r = await cli(['bench', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown benchmark 'nosuch'");
    expect(r.err).toContain('memslots');
  });
});

describe('kvmsim bench memslots: argument validation', () => {
  const cases: [string[], string[]][] = [
    [['--slots', '0'], ['--slots', 'out of range', '32764']],
    [['--slots', '40000'], ['--slots', 'out of range']],
    [['--slots', '1,abc'], ['--slots', "'abc' is not a positive integer"]],
    [['--slots', '1.5'], ['--slots', 'not a positive integer']],
    [['--slots', '1,,10'], ['--slots', 'empty item']],
    [['--configs', 'scalable,bogus'], ['--configs', "unknown config 'bogus'", 'scalable', 'legacy']],
    [['--min-time', '0'], ['--min-time', 'positive number']],
    [['--min-time', 'soon'], ['--min-time']],
    [['--seed', 'x'], ['--seed', 'non-negative integer']],
    [['--bogus'], ['--bogus']],
  ];
  for (const [args, messages] of cases) {
    it(`${args.join(' ')} exits 2`, async () => {
      const r = await cli(['bench', 'memslots', ...args]);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      for (const m of messages) expect(r.err).toContain(m);
    });
  }

  it('--json FILE into a missing directory exits 2 before measuring', async () => {
    const r = await cli(['bench', 'memslots', '--quick', `--json=${join(tmpdir(), 'kvmsim-no-such-dir', 'x', 'r.json')}`]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain("--json: cannot write");
    expect(r.err).toContain('does not exist');
  });

  it('parses slot lists and --quick defaults', () => {
    expect(parseSlotList('1, 10,100,10')).toEqual([1, 10, 100]);
    expect(benchOptionsFrom({ quick: true })).toEqual({ slotCounts: [1, 10, 100, 509], minTimeMs: 20 });
    expect(benchOptionsFrom({ quick: true, slots: [1, 10], minTime: 1, seed: 7 })).toEqual({
      slotCounts: [1, 10],
      minTimeMs: 1,
      seed: 7,
    });
    expect(benchOptionsFrom({})).toEqual({});
  });
});

describe('kvmsim bench memslots: smoke (no timing assertions)', () => {
  it('--quick --slots 1,10 --min-time 1 --json prints the result as JSON', async () => {
    const r = await cli(['bench', 'memslots', '--quick', '--slots', '1,10', '--min-time', '1', '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out) as { rows: { config: string; n: number; op: string; nsPerOp: number }[]; targets: unknown[] };
    expect(result.rows.length).toBeGreaterThan(0);
    expect(new Set(result.rows.map((row) => row.n))).toEqual(new Set([1, 10]));
    for (const row of result.rows) expect(typeof row.nsPerOp).toBe('number');
    expect(Array.isArray(result.targets)).toBe(true);
  }, 60_000);

  it('--json FILE writes the result and prints tables', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kvmsim-bench-test-'));
    try {
      const file = join(dir, 'bench.json');
      const r = await cli(['bench', 'memslots', '--configs', 'bsearch-floor', '--slots', '1,10', '--min-time', '1', `--json=${file}`]);
      expect(r.code).toBe(0);
      expect(r.out).toContain('lookup-uncached');
      expect(r.out).toContain('bsearch-floor');
      expect(r.out).toContain('N=10');
      expect(r.out).toContain('Targets');
      const result = JSON.parse(await readFile(file, 'utf8')) as { rows: unknown[] };
      expect(result.rows).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
