import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEMSLOT_ERRNO_SCENARIO } from '@kvmsim/kvm-core/replay';
import { cli, lines } from './cli-harness.js';

const scenarioLines = MEMSLOT_ERRNO_SCENARIO.split('\n');
const scenarioOps = scenarioLines.filter((l) => l.trim() !== '' && !l.trim().startsWith('#')).length;
const scenarioExpectations = scenarioLines.filter((l) => l.includes('"expect"')).length;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kvmsim-cli-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tmpFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('kvmsim replay: built-in scenario', () => {
  it('prints a human table of model vs kernel answers, all agreeing, and exits 0', async () => {
    const r = await cli(['replay']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('V9');
    expect(r.out).toContain('M19');
    expect(r.out).toContain('D38a');
    expect(r.out).toContain('✓');
    expect(r.out).not.toContain('✗');
    // not a protocol stream: the table replaces the raw output lines
    expect(r.out).not.toContain('{"ret":-22,"errno":"EINVAL"}\n');
    expect(r.err).toContain(`${scenarioExpectations}/${scenarioExpectations} agree with the annotated kernel answers`);
    expect(r.err).toMatch(/ops\s+111/);
    expect(r.err).toMatch(/malformed\s+2/);
  });

  it('--memslots legacy agrees too', async () => {
    const r = await cli(['replay', '--memslots', 'legacy']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('memslots legacy');
    expect(r.err).toContain(`${scenarioExpectations}/${scenarioExpectations} agree`);
  });

  it('--raw prints exactly one protocol line per op', async () => {
    const r = await cli(['replay', '--raw']);
    expect(r.code).toBe(0);
    const out = lines(r.out);
    expect(out).toHaveLength(scenarioOps);
    for (const line of out) {
      const o = JSON.parse(line) as { ret: unknown };
      expect(typeof o.ret).toBe('number');
    }
    expect(out[0]).toBe('{"ret":0}');
    expect(out[1]).toBe('{"ret":32764}');
    expect(r.out.endsWith('\n')).toBe(true);
  });

  it('--json: protocol lines on stdout, the summary as JSON on stderr', async () => {
    const r = await cli(['replay', '--json']);
    expect(r.code).toBe(0);
    expect(lines(r.out)).toHaveLength(scenarioOps);
    const summary = JSON.parse(r.err) as Record<string, unknown>;
    expect(summary).toMatchObject({
      kind: 'kvmsim-replay-summary',
      source: 'builtin',
      memslots: 'scalable',
      ops: scenarioOps,
      malformed: 2,
      expectations: scenarioExpectations,
      agreed: scenarioExpectations,
      allAgree: true,
      disagreements: [],
      exitCode: 0,
    });
  });
});

describe('kvmsim replay: files and stdin', () => {
  it('replays a file: one output line per op, comments and blank lines skipped', async () => {
    const path = await tmpFile(
      'ops.jsonl',
      [
        '# a comment',
        '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}',
        '',
        '{"op":"mmap","addr":"0x7f0000000000","length":"0x200000"}',
        '{"op":"set_user_memory_region","slot":0,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000"}',
        '{"op":"set_user_memory_region","slot":1,"flags":0,"guest_phys_addr":"0","memory_size":"0x200000","userspace_addr":"0x7f0000000000"}',
        '{"op":"get_dirty_log","slot":0}',
      ].join('\n'), // no final newline: the last line still counts
    );
    const r = await cli(['replay', path]);
    expect(r.code).toBe(0);
    const out = lines(r.out).map((l) => JSON.parse(l) as { ret: number; errno?: string });
    expect(out).toHaveLength(5);
    expect(out[0]).toEqual({ ret: 32764 });
    expect(out[1]).toEqual({ ret: 0 });
    expect(out[2]).toEqual({ ret: 0 });
    expect(out[3]).toMatchObject({ ret: -17, errno: 'EEXIST' });
    expect(out[4]).toMatchObject({ ret: -2, errno: 'ENOENT' });
    expect(r.err).toMatch(/ops\s+5/);
    expect(r.err).toContain('EEXIST 1');
    expect(r.err).toContain('no lines carry an "expect" annotation');
  });

  it("reads stdin with '-'", async () => {
    const r = await cli(['replay', '-'], '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}\n');
    expect(r.code).toBe(0);
    expect(r.out).toBe('{"ret":32764}\n');
  });

  it('streams stdin chunks that split lines, with CRLF line ends', async () => {
    const stream = Readable.from([
      '{"op":"check_extension","cap":"KVM_CAP_',
      'NR_MEMSLOTS"}\r\n{"op":"check_ext',
      'ension","cap":"KVM_CAP_READONLY_MEM"}\r\n',
      Buffer.from('# ünïcödé comment\n'),
      '{"op":"check_extension","cap":"KVM_CAP_SYNC_MMU"}',
    ]);
    const r = await cli(['replay', '-'], stream);
    expect(r.code).toBe(0);
    expect(r.out).toBe('{"ret":32764}\n{"ret":1}\n{"ret":1}\n');
  });

  it('answers malformed lines EINVAL naming line and field, and continues', async () => {
    const input = [
      '# comments and blank lines count as physical lines',
      '',
      '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}',
      '{"op":"set_user_memory_region","slot":"zero"}',
      'not json at all',
      '{"op":"no_such_op"}',
      '{"op":"check_extension","cap":"KVM_CAP_SYNC_MMU"}',
    ].join('\n');
    const r = await cli(['replay', '-'], `${input}\n`);
    expect(r.code).toBe(0); // malformed lines are not a process error
    const out = lines(r.out).map((l) => JSON.parse(l) as { ret: number; errno?: string; error?: string });
    expect(out).toHaveLength(5);
    expect(out[0]).toEqual({ ret: 32764 });
    expect(out[1]).toMatchObject({ ret: -22, errno: 'EINVAL' });
    expect(out[1]!.error).toContain('line 4');
    expect(out[1]!.error).toContain('slot');
    expect(out[2]).toMatchObject({ ret: -22, errno: 'EINVAL' });
    expect(out[2]!.error).toContain('line 5');
    expect(out[3]!.error).toContain('line 6');
    expect(out[4]).toEqual({ ret: 1 });
    expect(r.err).toMatch(/malformed\s+3/);
  });

  it('reports a disagreeing expectation and exits 1', async () => {
    const path = await tmpFile(
      'expect.jsonl',
      [
        '{"case":"OK1","op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS","expect":{"ret":32764}}',
        '{"case":"BAD1","op":"check_extension","cap":"KVM_CAP_READONLY_MEM","expect":{"ret":0}}',
        '{"op":"check_extension","cap":"KVM_CAP_SYNC_MMU"}',
      ].join('\n') + '\n',
    );
    const r = await cli(['replay', path]);
    expect(r.code).toBe(1);
    expect(lines(r.out)).toEqual(['{"ret":32764}', '{"ret":1}', '{"ret":1}']);
    expect(r.err).toContain('1/2 agree with the annotated kernel answers');
    expect(r.err).toContain('line 2 [case BAD1]');
    expect(r.err).toContain('KVM_CAP_READONLY_MEM');
    expect(r.err).toMatch(/model:\s+\{"ret":1\}/);
    expect(r.err).toMatch(/expected:\s+\{"ret":0\}/);

    const j = await cli(['replay', path, '--json']);
    expect(j.code).toBe(1);
    const summary = JSON.parse(j.err) as { allAgree: boolean; exitCode: number; disagreements: unknown[] };
    expect(summary.allAgree).toBe(false);
    expect(summary.exitCode).toBe(1);
    expect(summary.disagreements).toEqual([
      {
        line: 2,
        case: 'BAD1',
        input: '{"case":"BAD1","op":"check_extension","cap":"KVM_CAP_READONLY_MEM","expect":{"ret":0}}',
        output: { ret: 1 },
        expect: { ret: 0 },
      },
    ]);
  });

  it('--json-summary FILE writes the JSON summary and keeps the human one on stderr', async () => {
    const ops = await tmpFile('s.jsonl', '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS","expect":{"ret":32764}}\n');
    const summaryPath = join(dir, 'summary.json');
    const r = await cli(['replay', ops, '--json-summary', summaryPath]);
    expect(r.code).toBe(0);
    expect(r.out).toBe('{"ret":32764}\n');
    expect(r.err).toContain('1/1 agree');
    const summary = JSON.parse(await readFile(summaryPath, 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ source: ops, ops: 1, agreed: 1, allAgree: true });
    // a previous summary may be overwritten
    const again = await cli(['replay', ops, `--json-summary=${summaryPath}`]);
    expect(again.code).toBe(0);
  });

  it('--json-summary (no file) puts the JSON summary on stderr', async () => {
    const r = await cli(['replay', '-', '--json-summary'], '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}\n');
    expect(r.code).toBe(0);
    expect(r.out).toBe('{"ret":32764}\n');
    expect(JSON.parse(r.err)).toMatchObject({ source: 'stdin', ops: 1, expectations: 0, allAgree: true });
  });

  it('--json-summary refuses to overwrite a file that is not a summary', async () => {
    const ops = await tmpFile('keep.jsonl', '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}\n');
    // the classic slip: the ops file taken as the optional summary file
    const r = await cli(['replay', '--json-summary', ops]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('refusing to overwrite');
    expect(await readFile(ops, 'utf8')).toBe('{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}\n');
    const dash = await cli(['replay', '--json-summary', '-'], '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}\n');
    expect(dash.code).toBe(2);
    expect(dash.err).toContain("'-' is not a file");
    const same = await cli(['replay', ops, `--json-summary=${ops}`]);
    expect(same.code).toBe(2);
    expect(same.err).toContain('over the ops file');
  });
});

describe('kvmsim replay: usage errors', () => {
  it('--memslots bogus exits 2 naming the allowed values', async () => {
    const r = await cli(['replay', '--memslots', 'bogus']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('--memslots');
    expect(r.err).toContain('bogus');
    expect(r.err).toContain('scalable, legacy');
  });

  it('a missing file exits 2 naming the file', async () => {
    const missing = join(dir, 'does-not-exist.jsonl');
    const r = await cli(['replay', missing]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain(missing);
    expect(r.err).toContain('no such file or directory');
  });

  it('a directory exits 2', async () => {
    const r = await cli(['replay', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('is a directory');
  });

  it('unknown options and extra arguments exit 2', async () => {
    expect((await cli(['replay', '--nope'])).code).toBe(2);
    expect((await cli(['replay', 'a', 'b'])).code).toBe(2);
    expect((await cli(['no-such-command'])).code).toBe(2);
  });
});

describe('help', () => {
  it('kvmsim --help lists the commands', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('replay');
    expect(r.out).toContain('bench');
  });

  it('kvmsim replay --help documents every flag and the exit status', async () => {
    const r = await cli(['replay', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--memslots', '--raw', '--json', '--json-summary', 'scalable', 'legacy', 'Exit status']) {
      expect(r.out).toContain(flag);
    }
  });

  it('kvmsim bench --help and bench memslots --help document their flags', async () => {
    const bench = await cli(['bench', '--help']);
    expect(bench.code).toBe(0);
    expect(bench.out).toContain('memslots');
    const r = await cli(['bench', 'memslots', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--slots', '--configs', '--min-time', '--seed', '--json', '--quick']) {
      expect(r.out).toContain(flag);
    }
  });
});

describe('kvmsim replay: output files are checked before the run', () => {
  it('--json-summary into a missing directory exits 2 without replaying', async () => {
    const r = await cli(['replay', '-', `--json-summary=${join(dir, 'no-such-dir', 's.json')}`], '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}\n');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain('does not exist');
  });
});
