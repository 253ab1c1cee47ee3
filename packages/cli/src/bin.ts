#!/usr/bin/env node
/** The `kvmsim` executable: run the command line against the process's streams. */
import { run } from './program.js';

// `kvmsim replay big.jsonl | head` closes stdout early: stop quietly instead of crashing on EPIPE.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await run(process.argv.slice(2));
