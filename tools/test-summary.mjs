#!/usr/bin/env node
// Runs the whole vitest suite (every package, one run) with vitest's own reporter on the
// terminal and its JSON reporter to a file, then prints the plain closing line CI log readers
// understand: "N passed, N failed[, N skipped]". Exits non-zero on any failure or on no tests.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(root, '.vitest-report.json');
rmSync(report, { force: true });

const vitest = join(root, 'node_modules', '.bin', 'vitest');
const run = spawnSync(vitest, ['run', '--reporter=default', '--reporter=json', `--outputFile=${report}`, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed = r.numFailedTests ?? 0;
  // a file that fails to load has no failed test but a failed suite
  if (failed === 0) failed = r.numFailedTestSuites ?? 0;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
} else {
  failed = 1; // vitest did not even produce a report
}
if (run.status !== 0 && failed === 0) failed = 1; // e.g. an unhandled error outside any test
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
