#!/usr/bin/env node
/**
 * Runs the oracle over an annotated replay file (lines may carry `"expect": {...}`) and compares
 * each answer with its annotation after dropping `"error"` (the protocol's comparison rule).
 * Exit status: 0 all agree, 1 a disagreement (each printed), 2 usage or I/O problem,
 * 77 the oracle reports /dev/kvm unusable here (skipped).
 *
 *   node tools/kvm-oracle/check-abi.mjs [FILE] [--oracle PATH]
 * Without FILE, the model's built-in scenario (MEMSLOT_ERRNO_SCENARIO of @kvmsim/kvm-core/replay)
 * is used, found through packages/cli (or packages/kvm-core) of this repository.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');

function usage(message) {
  process.stderr.write(`check-abi: ${message}\nusage: node tools/kvm-oracle/check-abi.mjs [FILE] [--oracle PATH]\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
let file;
let oracle;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--oracle') oracle = argv[++i] ?? usage('--oracle needs a path');
  else if (argv[i] === '--help' || argv[i] === '-h') usage('help');
  else if (file === undefined) file = argv[i];
  else usage(`unexpected argument ${argv[i]}`);
}

async function builtinScenario() {
  for (const pkg of ['cli', 'kvm-core']) {
    try {
      const require = createRequire(join(repo, 'packages', pkg, 'package.json'));
      const m = await import(pathToFileURL(require.resolve('@kvmsim/kvm-core/replay')).href);
      if (typeof m.MEMSLOT_ERRNO_SCENARIO === 'string') return m.MEMSLOT_ERRNO_SCENARIO;
    } catch {
      // try the next place
    }
  }
  usage('cannot load @kvmsim/kvm-core/replay (build packages/kvm-core with `npx tsup`, or pass FILE)');
  return '';
}

const text = file === undefined ? await builtinScenario() : readFileSync(file, 'utf8');

if (oracle === undefined) {
  const b = spawnSync(process.execPath, [join(here, 'build.mjs')], { encoding: 'utf8' });
  if (b.status !== 0) {
    process.stderr.write(b.stderr);
    process.exit(2);
  }
  oracle = b.stdout.trim().split('\n').pop();
}

const run = spawnSync(oracle, [], { input: text, encoding: 'utf8', maxBuffer: 1 << 28 });
if (run.status === 77) {
  process.stderr.write(`check-abi: skipped: ${run.stderr.trim().split('\n')[0] ?? ''}\n`);
  process.exit(77);
}
if (run.status !== 0) {
  process.stderr.write(`check-abi: kvm-oracle exited with ${String(run.status ?? run.signal)}: ${run.stderr}\n`);
  process.exit(2);
}

/** Equal JSON values, object key order ignored. */
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
const outputs = run.stdout.split('\n').filter((l) => l !== '');
let next = 0;
let checked = 0;
let failed = 0;
for (let i = 0; i < inputs.length; i++) {
  const line = inputs[i];
  const t = line.trimStart();
  if (t === '' || t.startsWith('#')) continue;
  const raw = outputs[next++];
  if (raw === undefined) {
    process.stderr.write(`check-abi: line ${i + 1}: no answer from the oracle\n`);
    process.exit(1);
  }
  let expect;
  try {
    expect = JSON.parse(line).expect;
  } catch {
    expect = undefined;
  }
  if (expect === null || typeof expect !== 'object') continue;
  checked++;
  const got = JSON.parse(raw);
  if (!same(withoutError(got), withoutError(expect))) {
    failed++;
    process.stdout.write(`line ${i + 1}: disagreement\n  input:  ${line}\n  kernel: ${raw}\n  expect: ${JSON.stringify(expect)}\n`);
  }
}
if (next !== outputs.length) {
  process.stderr.write(`check-abi: the oracle printed ${outputs.length} answers for ${next} ops\n`);
  process.exit(1);
}
process.stdout.write(`check-abi: ${checked - failed}/${checked} annotated answers agree (${next} ops)\n`);
process.exit(failed === 0 ? 0 : 1);
