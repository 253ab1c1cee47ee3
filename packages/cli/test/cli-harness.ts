import { Readable } from 'node:stream';
import { run } from '../src/program.js';
import { stringSink } from '../src/output.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Run `kvmsim <argv>` in-process; stdin is a string (default empty) or a stream. */
export async function cli(argv: string[], stdin: string | Readable = ''): Promise<CliResult> {
  const stdout = stringSink();
  const stderr = stringSink();
  const code = await run(argv, { stdin, stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

/** Non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}
