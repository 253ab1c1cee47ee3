/**
 * What every `kvmsim bench NAME` command does around its measurements: check the `--json FILE`
 * target first, show a progress bar while measuring, turn option errors found before any
 * measurement into usage errors, then write the JSON file and either the JSON (stdout) or the
 * human tables.
 */
import { writeFile } from 'node:fs/promises';
import { UsageError, type CommandContext } from '../context.js';
import { renderTable, whyNotWritable, writeJson, writeLine, type OutputSink } from '../output.js';
import { startProgress, type Progress } from '../progress.js';

export type BenchProgress = (done: number, total: number, label: string) => void;

export async function runBenchCommand<R>(
  ctx: CommandContext,
  command: string,
  json: string | boolean | undefined,
  measure: (onProgress: BenchProgress) => R | Promise<R>,
  writeTables: (stdout: OutputSink, result: R) => void,
): Promise<number> {
  const { io } = ctx;
  const jsonToStdout = json === true;
  const jsonFile = typeof json === 'string' ? json : undefined;
  if (jsonFile !== undefined) {
    const why = await whyNotWritable(jsonFile);
    if (why !== undefined) throw new UsageError(`--json: cannot write '${jsonFile}': ${why}`, command);
  }

  let progress: Progress | undefined;
  let measuring = false;
  let result: R;
  try {
    result = await measure((done, total, label) => {
      measuring = true;
      progress ??= startProgress(io.stderr, { total, enabled: !jsonToStdout, label });
      progress.update(done, label);
    });
  } catch (e) {
    // Benchmarks validate their options (RangeError) before measuring anything; later errors are bugs.
    if (e instanceof RangeError && !measuring) throw new UsageError(e.message, command);
    throw e;
  } finally {
    progress?.stop();
  }

  if (jsonFile !== undefined) {
    try {
      await writeFile(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
    } catch (e) {
      throw new UsageError(`--json: cannot write '${jsonFile}': ${(e as Error).message}`);
    }
  }
  if (jsonToStdout) writeJson(io.stdout, result);
  else {
    writeTables(io.stdout, result);
    if (jsonFile !== undefined) writeLine(io.stdout, `Full result written to ${jsonFile}`);
  }
  return 0;
}

/** The target verdicts every benchmark ends its report with. */
export function writeTargets(stdout: OutputSink, targets: readonly { target: string; met: boolean; detail: string }[], maxWidth: number): void {
  if (targets.length === 0) return;
  writeLine(stdout);
  writeLine(stdout, 'Targets');
  writeLine(
    stdout,
    renderTable({
      head: ['target', 'verdict', 'detail'],
      rows: targets.map((t) => [t.target, t.met ? 'met' : 'NOT met', t.detail]),
      maxWidth,
    }),
  );
}
