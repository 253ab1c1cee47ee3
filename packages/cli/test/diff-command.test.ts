/**
 * `kvmsim diff` against a second model configuration and against stand-in oracles (node scripts
 * speaking the protocol from a prepared answer file): agreement, a disagreement reported with its
 * line, input and both answers and saved as a replay file, ENOSPC lines skipped, exit status 4
 * for an unavailable oracle, usage errors.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReplaySession, formatReplayOutput } from '@kvmsim/kvm-core/replay';
import { x86Backend } from '@kvmsim/x86';
import { generateSequence } from '../src/diff/generator.js';
import { cli } from './cli-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'kvmsim-diff-'));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!${process.execPath}\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** The model's (x86/tdp, scalable, as `kvmsim diff` runs it) answers to a sequence, one output line per op line. */
function modelAnswers(lines: readonly string[]): string[] {
  const session = new ReplaySession({ backend: x86Backend(), oracleScratchSlot: true });
  const out: string[] = [];
  lines.forEach((l, i) => {
    const step = session.line(l, i + 1);
    if (step !== null) out.push(formatReplayOutput(step.output));
  });
  return out;
}

/** A stand-in oracle that answers the n-th op line with the n-th line of `answers`. */
function answeringOracle(name: string, answers: readonly string[]): string {
  const file = join(dir, `${name}.answers`);
  writeFileSync(file, `${answers.join('\n')}\n`);
  return script(
    name,
    `const answers = require('node:fs').readFileSync(${JSON.stringify(file)}, 'utf8').split('\\n');
     let n = 0;
     require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
       const t = l.trim(); if (t === '' || t.startsWith('#')) return;
       process.stdout.write((answers[n++] || '{"ret":0}') + '\\n');
     });`,
  );
}

/** The index (0-based, among op lines) and the physical line number of the first op line matching `re` (and `accept`). */
function firstOpLine(lines: readonly string[], re: RegExp, accept: (opIndex: number) => boolean = () => true): { opIndex: number; lineNo: number } {
  let opIndex = -1;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === '' || l.trim().startsWith('#')) continue;
    opIndex++;
    if (re.test(l) && accept(opIndex)) return { opIndex, lineNo: i + 1 };
  }
  throw new Error(`no line matches ${String(re)}`);
}

describe('kvmsim diff', () => {
  it('finds no disagreement between the TDP and the shadow MMU of the model', async () => {
    const r = await cli(['diff', '--seed', '21', '--ops', '300', '--count', '2', '--against', 'model:shadow', '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as { right: string; agreeingSequences: number; compared: number };
    expect(s.right).toBe('model x86/shadow scalable');
    expect(s.agreeingSequences).toBe(2);
    expect(s.compared).toBe(600);
  });

  it('finds no disagreement between two model configurations that must agree (scalable vs legacy memslots)', async () => {
    const r = await cli(['diff', '--seed', '11', '--ops', '300', '--count', '3', '--against', 'model:legacy', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as { kind: string; left: string; right: string; sequences: number; agreeingSequences: number; compared: number; problems: unknown[] };
    expect(s.kind).toBe('kvmsim-diff-summary');
    expect(s.left).toBe('model x86/tdp scalable');
    expect(s.right).toBe('model x86/tdp legacy');
    expect(s.sequences).toBe(3);
    expect(s.agreeingSequences).toBe(3);
    expect(s.compared).toBe(900);
    expect(s.problems).toEqual([]);
  });

  it('agrees with an oracle that gives the model’s own answers, and skips the lines it answers ENOSPC', async () => {
    const lines = generateSequence({ seed: 5, ops: 150 });
    const answers = modelAnswers(lines);
    const access = firstOpLine(lines, /"op":"vcpu_read"/);
    answers[access.opIndex] = '{"ret":-28,"errno":"ENOSPC"}';
    const oracle = answeringOracle('same-oracle', answers);
    const r = await cli(['diff', '--seed', '5', '--ops', '150', '--oracle', oracle, '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as { right: string; compared: number; skippedEnospc: number; agreeingSequences: number };
    expect(s.right).toMatch(/^kernel /);
    expect(s.compared).toBe(150);
    expect(s.skippedEnospc).toBe(1);
    expect(s.agreeingSequences).toBe(1);
  });

  it('reports the first disagreeing line with the input and both answers, saves the sequence up to it, and the saved file replays the disagreement', async () => {
    const lines = generateSequence({ seed: 9, ops: 120 });
    const answers = modelAnswers(lines);
    // the first get_dirty_log the model answers with a bitmap; the stand-in says ENOENT there
    const target = firstOpLine(lines, /"op":"get_dirty_log"/, (opIndex) => answers[opIndex]!.startsWith('{"ret":0,'));
    const modelAnswer = answers[target.opIndex]!;
    answers[target.opIndex] = '{"ret":-2,"errno":"ENOENT"}';
    const oracle = answeringOracle('lying-oracle', answers);
    const save = join(dir, 'saved');
    const r = await cli(['diff', '--seed', '9', '--ops', '120', '--oracle', oracle, '--save', save]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`disagreement in seed 9, line ${target.lineNo}:`);
    expect(r.out).toContain(lines[target.lineNo - 1]!);
    expect(r.out).toContain(modelAnswer);
    expect(r.out).toContain('{"ret":-2,"errno":"ENOENT"}');
    const files = readdirSync(save);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^seed-9-model-x86-tdp-scalable-vs-kernel-.*\.jsonl$/);
    const saved = readFileSync(join(save, files[0]!), 'utf8').split('\n').filter((l) => l !== '');
    const header = saved.filter((l) => l.startsWith('#') && l.includes('kvmsim diff'));
    expect(header.length).toBeGreaterThan(0);
    expect(saved.join('\n')).toContain('seed 9');
    expect(saved.join('\n')).toContain(modelAnswer);
    // the saved file ends at the disagreeing line; its header names that line's number in the file
    expect(saved[saved.length - 1]).toBe(lines[target.lineNo - 1]);
    const m = /first disagreeing line: (\d+)/.exec(saved.join('\n'));
    expect(m).not.toBeNull();
    expect(saved[Number(m![1]) - 1]).toBe(lines[target.lineNo - 1]);
    // replaying the saved file against the same stand-in finds the same disagreement, at its line there
    const again = await cli(['diff', join(save, files[0]!), '--oracle', oracle, '--no-save', '--json']);
    expect(again.code).toBe(1);
    const s = JSON.parse(again.out) as { problems: { line: number; left: unknown; right: unknown; saved: unknown }[] };
    expect(s.problems).toHaveLength(1);
    expect(s.problems[0]).toMatchObject({ line: Number(m![1]), right: { ret: -2, errno: 'ENOENT' }, saved: null });
  });

  it('stops at the first disagreeing sequence unless --keep-going', async () => {
    const echo = script('zero-oracle', `require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => { const t = l.trim(); if (t && !t.startsWith('#')) process.stdout.write('{"ret":1234}\\n'); });`);
    const stop = await cli(['diff', '--seed', '1', '--ops', '20', '--count', '3', '--oracle', echo, '--no-save', '--json']);
    expect(stop.code).toBe(1);
    expect((JSON.parse(stop.out) as { sequences: number }).sequences).toBe(1);
    const all = await cli(['diff', '--seed', '1', '--ops', '20', '--count', '3', '--oracle', echo, '--no-save', '--keep-going', '--json']);
    expect(all.code).toBe(1);
    const s = JSON.parse(all.out) as { sequences: number; problems: { sequence: string }[] };
    expect(s.sequences).toBe(3);
    expect(s.problems.map((p) => p.sequence)).toEqual(['seed 1', 'seed 2', 'seed 3']);
  });

  it('exits 4 with one line saying why when the kernel target is unavailable', async () => {
    const none = script('no-kvm', `process.stderr.write('kvm-oracle: open /dev/kvm: No such file or directory\\n'); process.exit(77);`);
    const r = await cli(['diff', '--seed', '1', '--ops', '10', '--oracle', none]);
    expect(r.code).toBe(4);
    expect(r.err).toBe('kvmsim diff: the kernel target is unavailable: kvm-oracle: open /dev/kvm: No such file or directory\n');
    const j = await cli(['diff', '--seed', '1', '--ops', '10', '--oracle', join(dir, 'missing-binary'), '--json']);
    expect(j.code).toBe(4);
    expect((JSON.parse(j.out) as { unavailable: string }).unavailable).toMatch(/does not exist/);
  });

  it('reports an oracle that dies mid-sequence as a failure (exit 3) naming the line', async () => {
    const dies = script('dying-oracle', `let n = 0; require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => { const t = l.trim(); if (!t || t.startsWith('#')) return; if (++n === 3) process.exit(1); process.stdout.write('{"ret":0}\\n'); });`);
    // the first two ops answer {"ret":0} in the model too
    const lines = ['{"op":"mmap","addr":"0x1000000000","length":"0x1000"}', '{"op":"munmap","addr":"0x1000000000","length":"0x1000"}', '{"op":"host_read","addr":"0x1000000000","size":8}'];
    const file = join(dir, 'three.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await cli(['diff', file, '--oracle', dies, '--save', join(dir, 'died')]);
    expect(r.code).toBe(3);
    expect(r.out).toContain(`failure in ${file}, line 3:`);
    expect(r.out).toMatch(/kvm-oracle exited \(1\)/);
    expect(existsSync(join(dir, 'died'))).toBe(true);
  });

  it('rejects bad usage with status 2', async () => {
    expect((await cli(['diff'])).code).toBe(2);
    expect((await cli(['diff', 'x.jsonl', '--seed', '1'])).code).toBe(2);
    expect((await cli(['diff', '--seed', '-1'])).code).toBe(2);
    expect((await cli(['diff', '--seed', '1', '--ops', '0'])).code).toBe(2);
    expect((await cli(['diff', '--seed', '1', '--against', 'model:bogus'])).code).toBe(2);
    const missing = await cli(['diff', join(dir, 'nope.jsonl'), '--against', 'model']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/cannot read replay file .*nope\.jsonl.*no such file/);
  });
});
