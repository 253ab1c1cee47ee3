#!/usr/bin/env node
/**
 * Runs one replay file through the kernel oracle and through the model (`kvmsim replay`, the
 * built CLI in packages/cli/dist) and compares the answers line by line by the protocol's rule
 * (equal JSON objects after dropping "error"; ENOSPC answers of the oracle are skipped).
 * Exit status: 0 all agree, 1 disagreements (each printed), 2 usage or I/O problem, 77 the oracle
 * reports /dev/kvm unusable here.
 *
 *   node tools/kvm-oracle/compare-model.mjs FILE [--oracle PATH] [--oracle-arg ARG]... [-- MODEL ARGS]
 * MODEL ARGS are passed to `kvmsim replay` (for example `--arch x86 --mmu tdp`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

function usage(message) {
  process.stderr.write(
    `compare-model: ${message}\nusage: node tools/kvm-oracle/compare-model.mjs FILE [--oracle PATH] [--oracle-arg ARG]... [-- MODEL ARGS]\n`,
  );
  process.exit(2);
}

const argv = process.argv.slice(2);
let file;
let oracle;
const oracleArgs = [];
let modelArgs = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--') {
    modelArgs = argv.slice(i + 1);
    break;
  }
  if (a === '--oracle') oracle = argv[++i] ?? usage('--oracle needs a path');
  else if (a === '--oracle-arg') oracleArgs.push(argv[++i] ?? usage('--oracle-arg needs a value'));
  else if (a === '--help' || a === '-h') usage('help');
  else if (file === undefined) file = a;
  else usage(`unexpected argument ${a}`);
}
if (file === undefined) usage('no FILE');
const text = readFileSync(file, 'utf8');

if (oracle === undefined) {
  const b = spawnSync(process.execPath, [join(here, 'build.mjs')], { encoding: 'utf8' });
  if (b.status !== 0) {
    process.stderr.write(b.stderr);
    process.exit(2);
  }
  oracle = b.stdout.trim().split('\n').pop();
}
const kernel = spawnSync(oracle, oracleArgs, { input: text, encoding: 'utf8', maxBuffer: 1 << 28 });
if (kernel.status === 77) {
  process.stderr.write(`compare-model: skipped: ${kernel.stderr.trim().split('\n')[0] ?? ''}\n`);
  process.exit(77);
}
if (kernel.status !== 0) usage(`kvm-oracle exited with ${String(kernel.status ?? kernel.signal)}: ${kernel.stderr.trim()}`);

const cli = join(repo, 'packages', 'cli', 'dist', 'bin.js');
if (!existsSync(cli)) usage(`${cli} is missing: build it with \`cd packages/cli && npx tsup\``);
const model = spawnSync(process.execPath, [cli, 'replay', ...modelArgs, '-'], { input: text, encoding: 'utf8', maxBuffer: 1 << 28 });
if (model.status !== 0 && model.status !== 1) usage(`kvmsim replay exited with ${String(model.status)}: ${model.stderr.trim()}`);

function same(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
}
function withoutError(o) {
  const { error: _dropped, ...rest } = o;
  return rest;
}

const inputs = text.split('\n').map((l) => l.replace(/\r$/, ''));
const k = kernel.stdout.split('\n').filter((l) => l !== '');
const m = model.stdout.split('\n').filter((l) => l !== '');
let n = 0;
let compared = 0;
let skipped = 0;
let failed = 0;
for (let i = 0; i < inputs.length; i++) {
  const t = inputs[i].trimStart();
  if (t === '' || t.startsWith('#')) continue;
  const kr = k[n];
  const mr = m[n];
  n++;
  if (kr === undefined || mr === undefined) usage(`line ${i + 1}: missing answer (kernel ${k.length}, model ${m.length} answers)`);
  const ko = JSON.parse(kr);
  const mo = JSON.parse(mr);
  if (ko.errno === 'ENOSPC') {
    skipped++;
    continue;
  }
  compared++;
  if (!same(withoutError(ko), withoutError(mo))) {
    failed++;
    process.stdout.write(`line ${i + 1}: disagreement\n  input:  ${inputs[i]}\n  kernel: ${kr}\n  model:  ${mr}\n`);
  }
}
process.stdout.write(`compare-model: ${compared - failed}/${compared} answers agree${skipped ? `, ${skipped} ENOSPC skipped` : ''}\n`);
process.exit(failed === 0 ? 0 : 1);
