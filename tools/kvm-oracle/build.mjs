#!/usr/bin/env node
/**
 * Builds tools/kvm-oracle/build/kvm-oracle with the system C compiler when the binary is missing
 * or older than any source, then prints the binary's absolute path on stdout. On failure: one
 * line on stderr and exit status 1. No dependencies.
 *
 *   node tools/kvm-oracle/build.mjs        # build if needed, print the path
 *   node tools/kvm-oracle/build.mjs --force
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, 'build');
const binary = join(outDir, 'kvm-oracle');
const FLAGS = ['-O2', '-Wall', '-Wextra', '-std=gnu11'];

function fail(message) {
  process.stderr.write(`kvm-oracle build: ${message}\n`);
  process.exit(1);
}

const sources = readdirSync(here).filter((f) => f.endsWith('.c'));
const inputs = readdirSync(here)
  .filter((f) => f.endsWith('.c') || f.endsWith('.h'))
  .map((f) => join(here, f));
inputs.push(fileURLToPath(import.meta.url)); // new flags here mean a rebuild
if (sources.length === 0) fail(`no C sources in ${here}`);

const force = process.argv.includes('--force');
const newestInput = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
const upToDate = !force && existsSync(binary) && statSync(binary).mtimeMs >= newestInput;

if (!upToDate) {
  let compiler;
  for (const cc of [process.env.CC, 'cc', 'gcc'].filter((c) => c !== undefined && c !== '')) {
    const probe = spawnSync(cc, ['--version'], { encoding: 'utf8' });
    if (probe.error === undefined && probe.status === 0) {
      compiler = cc;
      break;
    }
  }
  if (compiler === undefined) fail('no C compiler found (tried $CC, cc, gcc); install gcc or clang');
  mkdirSync(outDir, { recursive: true });
  const tmp = `${binary}.tmp-${process.pid}`;
  const r = spawnSync(compiler, [...FLAGS, '-o', tmp, ...sources.map((f) => join(here, f)), '-lm'], { encoding: 'utf8' });
  if (r.error !== undefined) fail(`${compiler} could not be run: ${r.error.message}`);
  if (r.status !== 0) {
    const first = (r.stderr || r.stdout || '').split('\n').find((l) => l.includes('error')) ?? `exit status ${String(r.status)}`;
    fail(`${compiler} failed: ${first.trim()}`);
  }
  // Atomic replace: a concurrent reader never sees a half-written binary.
  const mv = spawnSync('mv', ['-f', tmp, binary]);
  if (mv.status !== 0) fail(`cannot move ${tmp} to ${binary}`);
  if (r.stderr.trim() !== '') process.stderr.write(r.stderr);
}

process.stdout.write(`${binary}\n`);
