/**
 * `kvmsim conformance`: the suite runs framework-free on the built-in configurations, and the bug
 * zoo — this is how CI runs it — must catch every bug it lists.
 */
import { describe, expect, it } from 'vitest';
import { cli } from './cli-harness.js';

interface ZooJson {
  kind: string;
  bugs: { id: string; status: string; caughtBy: string[]; switch: { scope: string; name: string }; package: string; runs: { config: string; status: string }[] }[];
  caught: number;
  uncaught: number;
  exitCode: number;
}

describe('kvmsim conformance --zoo', () => {
  it('catches every bug of the zoo, each on every configuration that can show it', async () => {
    const r = await cli(['conformance', '--zoo', '--json']);
    const j = JSON.parse(r.out) as ZooJson;
    expect(j.kind).toBe('kvmsim-conformance-zoo');
    expect(j.bugs.length).toBeGreaterThanOrEqual(15);
    const notCaught = j.bugs.filter((b) => b.status !== 'caught').map((b) => `${b.id}: ${b.status} ${JSON.stringify(b.runs)}`);
    expect(notCaught).toEqual([]);
    for (const b of j.bugs) {
      expect(b.caughtBy.length, b.id).toBeGreaterThan(0);
      expect(b.runs.some((run) => run.status === 'caught'), b.id).toBe(true);
    }
    // Switches live where the bug would: the core, its stores, and the x86 package.
    expect(new Set(j.bugs.map((b) => b.switch.scope))).toEqual(new Set(['core', 'store', 'arch']));
    expect(r.code).toBe(0);
  });

  it('--bug narrows the zoo; the human report names the catching case', async () => {
    const r = await cli(['conformance', '--zoo', '--bug', 'missing-retry-check', '--arch', 'reference/x86']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/fault path maps without the invalidation retry check/);
    expect(r.out).toMatch(/interleavings\/fault-vs-invalidate/);
    expect(r.out).toMatch(/1 caught, 0 uncaught/);
  });
});

describe('kvmsim conformance', () => {
  it('runs selected groups on a configuration and reports every case', async () => {
    const r = await cli(['conformance', '--arch', 'reference/generic', '--group', 'memslot-abi,dirty-log', '--store', 'scalable', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { kind: string; results: { id: string; status: string; config: string }[]; summary: Record<string, number> };
    expect(j.kind).toBe('kvmsim-conformance-result');
    expect(new Set(j.results.map((x) => x.id.split('/')[0]))).toEqual(new Set(['memslot-abi', 'dirty-log']));
    // The generic profile has no READONLY and no read-protecting dirty log: those cases are gated out.
    expect(j.results.find((x) => x.id === 'memslot-abi/readonly')?.status).toBe('skipped');
    expect(j.results.find((x) => x.id === 'dirty-log/no-read-protect')?.status).toBe('passed');
    expect(j.summary['failed']).toBe(0);
  });

  it('prints a results table', async () => {
    const r = await cli(['conformance', '--arch', 'x86/tdp', '--group', 'guest-visible', '--store', 'legacy']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/x86\/tdp\s+│ legacy\s+│\s+\d+ │\s+0 │/);
    expect(r.out).toMatch(/0 failed/);
  });

  it('ARCHES narrows the matrix by architecture', async () => {
    const before = process.env['ARCHES'];
    process.env['ARCHES'] = 'reference';
    try {
      const r = await cli(['conformance', '--list', '--json']);
      const j = JSON.parse(r.out) as { configs: { name: string }[] };
      expect(j.configs.map((c) => c.name).every((n) => n.startsWith('reference/'))).toBe(false); // --list shows all
      const run = await cli(['conformance', '--group', 'hook-order', '--store', 'scalable', '--json']);
      const res = JSON.parse(run.out) as { configs: string[] };
      expect(res.configs).toEqual(['reference/x86', 'reference/generic']);
    } finally {
      if (before === undefined) delete process.env['ARCHES'];
      else process.env['ARCHES'] = before;
    }
  });

  it('usage errors exit 2 and name the valid values', async () => {
    for (const argv of [
      ['conformance', '--arch', 'arm64'],
      ['conformance', '--group', 'nope'],
      ['conformance', '--store', 'btree'],
      ['conformance', '--zoo', '--bug', 'nope'],
      ['conformance', '--bug', 'missing-retry-check'],
    ]) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toMatch(/error: /);
    }
  });

  it('--list names the configurations, groups and bugs', async () => {
    const r = await cli(['conformance', '--list']);
    expect(r.code).toBe(0);
    for (const s of ['x86/shadow+nested', 'interleavings', 'aging-freed-root', 'arch:slotZapMissesShadowedGptes']) expect(r.out).toContain(s);
  });

  it('--replay runs the ABI and guest-visible replay groups against the model', async () => {
    const r = await cli(['conformance', '--replay', '--json']);
    const j = JSON.parse(r.out) as { kind: string; target: string; results: { id: string; status: string }[]; failed: number };
    expect(j.kind).toBe('kvmsim-conformance-replay');
    expect(j.target).toBe('model x86/tdp');
    expect(j.results.filter((x) => x.id.startsWith('abi/')).length).toBe(99);
    expect(j.results.filter((x) => x.id.startsWith('guest-visible/')).length).toBe(7);
    expect(j.failed).toBe(0);
    expect(r.code).toBe(0);
    const bad = await cli(['conformance', '--replay', '--target', 'qemu']);
    expect(bad.code).toBe(2);
  });
});
