/**
 * The `kvmsim` program: commander setup, command registration, and {@link run}, which executes
 * one command line in-process against injectable streams and returns the exit status.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Command, CommanderError } from 'commander';
import { registerBenchCommand } from './commands/bench.js';
import { registerConformanceCommand } from './commands/conformance.js';
import { registerDiffCommand } from './commands/diff.js';
import { registerExploreCommand } from './commands/explore.js';
import { registerReplayCommand } from './commands/replay.js';
import { EXIT, UsageError, type CommandContext } from './context.js';
import type { CliIo, OutputSink } from './output.js';

function packageVersion(): string {
  try {
    // dist/*.js and src/*.ts both sit one level below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * Build the commander program. Commander never calls `process.exit`: errors surface as
 * `CommanderError`s (see {@link run}).
 */
export function createProgram(ctx: CommandContext): Command {
  const program = new Command('kvmsim');
  const { stdout, stderr } = ctx.io;
  program
    .description('kvmsim: an executable model of Linux KVM guest-memory management')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .configureOutput({
      writeOut: (s) => void stdout.write(s),
      writeErr: (s) => void stderr.write(s),
      getOutHasColors: () => false,
      getErrHasColors: () => false,
      getOutHelpWidth: () => stdout.columns ?? 100,
      getErrHelpWidth: () => stderr.columns ?? 100,
    })
    .exitOverride()
    // `bench --json` (list as JSON) must not swallow `bench memslots --json`: a command's options
    // are recognised only before its subcommand name. Inherited by every subcommand.
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Every command takes --help and --json (machine-readable output on stdout).
Exit status: 0 success; 1 a finding (replay expectations disagreed, explore found a violation, a
conformance case failed or a zoo bug went uncaught, diff found a disagreement); 2 usage or input
error; 3 internal error; 4 the kernel target is unavailable here (diff, conformance --target kernel).`,
    );
  // Subcommands created with .command() inherit the output configuration and exitOverride.
  registerReplayCommand(program, ctx);
  registerBenchCommand(program, ctx);
  registerExploreCommand(program, ctx);
  registerConformanceCommand(program, ctx);
  registerDiffCommand(program, ctx);
  return program;
}

/** Streams for {@link run}; any left out default to the process's own. */
export interface RunIo {
  /** The input of `kvmsim replay -`: a stream, or a string (fed as one chunk). */
  stdin?: NodeJS.ReadableStream | string;
  stdout?: OutputSink;
  stderr?: OutputSink;
}

/**
 * Run one `kvmsim` command line (without the leading `node bin.js`, e.g. `['replay', '--raw']`)
 * and return its exit status: 0 success, 1 disagreement, 2 usage or input error, 3 internal error.
 */
export async function run(argv: readonly string[], io: RunIo = {}): Promise<number> {
  const stdin = typeof io.stdin === 'string' ? Readable.from([io.stdin]) : (io.stdin ?? process.stdin);
  const cliIo: CliIo = { stdin, stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr };
  let exitCode: number = EXIT.OK;
  const ctx: CommandContext = {
    io: cliIo,
    setExitCode(code: number): void {
      exitCode = code;
    },
  };
  const program = createProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; every parse error (unknown option, bad value, missing
      // argument) is a usage error. Commander has already printed the message.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (e instanceof UsageError) {
      cliIo.stderr.write(`error: ${e.message}\n`);
      if (e.command !== undefined) cliIo.stderr.write(`(see 'kvmsim ${e.command} --help')\n`);
      return EXIT.USAGE;
    }
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    cliIo.stderr.write(`kvmsim: internal error (please report): ${message}\n`);
    return EXIT.INTERNAL;
  }
}
