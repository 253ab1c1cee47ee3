/**
 * The kernel-oracle client against stand-in oracles (small node scripts): availability through
 * exit status 77, answers in order, comment lines passed through unanswered, death mid-session.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KernelOracleError, kernelOracleTarget, probeKernelOracle } from '../src/targets/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kvmsim-oracle-'));

function fakeOracle(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!${process.execPath}\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

// Answers each op line with its 1-based physical line number, like an oracle that counts lines.
const echo = fakeOracle(
  'echo-oracle',
  `const rl = require('node:readline').createInterface({ input: process.stdin });
   let n = 0;
   rl.on('line', (l) => { n++; const t = l.trim(); if (t === '' || t.startsWith('#')) return;
     const o = JSON.parse(t); if (o.op === 'die') process.exit(77);
     process.stdout.write(JSON.stringify({ ret: n, timing: process.argv.includes('--timing') }) + '\\n'); });`,
);
const unavailable = fakeOracle('no-kvm-oracle', `process.stderr.write('kvm-oracle: open /dev/kvm: No such file or directory\\n'); process.exit(77);`);

describe('kernel-oracle client', () => {
  it('reports an oracle that exits 77 as unavailable, with its stderr line as the reason', async () => {
    expect(probeKernelOracle({ binary: unavailable })).toEqual({ ok: false, reason: 'kvm-oracle: open /dev/kvm: No such file or directory' });
    expect(await kernelOracleTarget({ binary: unavailable })).toEqual({ unavailable: 'kvm-oracle: open /dev/kvm: No such file or directory' });
  });

  it('reports a missing binary as unavailable', () => {
    const p = probeKernelOracle({ binary: join(dir, 'nope') });
    expect(p.ok).toBe(false);
  });

  it('answers op lines in order, passes comment lines through without an answer, and honours --timing', async () => {
    const t = await kernelOracleTarget({ binary: echo, timing: true });
    if ('unavailable' in t) throw new Error(t.unavailable);
    expect(t.kind).toBe('kernel');
    const answers = await Promise.all([t.send('{"op":"a"}'), t.send('# comment'), t.send(''), t.send('{"op":"b"}')]);
    expect(answers).toEqual([{ ret: 1, timing: true }, null, null, { ret: 4, timing: true }]);
    await t.close();
  });

  it('rejects pending and later sends when the oracle dies, marking exit 77 as unavailable', async () => {
    const t = await kernelOracleTarget({ binary: echo });
    if ('unavailable' in t) throw new Error(t.unavailable);
    const err = await t.send('{"op":"die"}').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KernelOracleError);
    expect((err as KernelOracleError).unavailable).toBe(true);
    await expect(t.send('{"op":"a"}')).rejects.toThrow(/exited \(77\)/);
    await t.close();
  });
});
