/**
 * The real-kernel target: tools/kvm-oracle, a C program that speaks replay protocol v1 on
 * /dev/kvm, run as a child process (one process = one VM). The oracle exits with status 77 and one
 * line on stderr where /dev/kvm is not usable; {@link probeKernelOracle} turns that into a reason.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseReplayLine, type ReplayOutput } from '@kvmsim/kvm-core/replay';
import type { ReplayTarget } from './replay-target.js';

/** The oracle's exit status for "no usable /dev/kvm here" (automake's "skipped"). */
export const ORACLE_UNAVAILABLE_STATUS = 77;

export interface KernelOracleOptions {
  /**
   * The oracle binary. Default: `$KVMSIM_ORACLE`, else built on demand from the nearest
   * `tools/kvm-oracle/build.mjs` above the working directory (or above this package).
   */
  binary?: string;
  /** Pass `--timing`: every answer carries `"ns"`, the kernel time of the op (for benchmarks). */
  timing?: boolean;
  /** Extra command-line arguments for the oracle. */
  args?: readonly string[];
}

export type KernelOracleProbe = { readonly ok: true; readonly binary: string; readonly release: string } | { readonly ok: false; readonly reason: string };

/** Walk up from `from` to the first directory holding tools/kvm-oracle/build.mjs. */
export function findOracleBuildScript(from: string = process.cwd()): string | undefined {
  const starts = [resolve(from), dirname(fileURLToPath(import.meta.url))];
  for (const start of starts) {
    for (let dir = start; ; dir = dirname(dir)) {
      const candidate = join(dir, 'tools', 'kvm-oracle', 'build.mjs');
      if (existsSync(candidate)) return candidate;
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** build.mjs results by script path, for the life of the process. */
const buildCache = new Map<string, { binary: string } | { reason: string }>();

/** Locate (building if needed) the oracle binary; a reason instead where that is impossible. */
export function locateKernelOracle(options: KernelOracleOptions = {}): { binary: string } | { reason: string } {
  const explicit = options.binary ?? process.env['KVMSIM_ORACLE'];
  if (explicit !== undefined && explicit !== '') {
    return existsSync(explicit) ? { binary: resolve(explicit) } : { reason: `kvm-oracle binary ${explicit} does not exist` };
  }
  const script = findOracleBuildScript();
  if (script === undefined) return { reason: 'tools/kvm-oracle/build.mjs not found above the working directory (set KVMSIM_ORACLE to a built kvm-oracle)' };
  // One build per process and script: a suite creates a target per case.
  const cached = buildCache.get(script);
  if (cached !== undefined) return cached;
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  let located: { binary: string } | { reason: string };
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit status ${String(r.status)}`).trim().split('\n')[0] ?? '';
    located = { reason: `building kvm-oracle failed: ${why}` };
  } else {
    const binary = r.stdout.trim().split('\n').pop() ?? '';
    located = existsSync(binary) ? { binary } : { reason: `kvm-oracle build printed no binary path (got ${JSON.stringify(binary)})` };
  }
  buildCache.set(script, located);
  return located;
}

const probeCache = new Map<string, KernelOracleProbe>();

/**
 * Can the real kernel be asked? Builds the oracle if needed and runs it once on a one-line
 * sequence; the answer is cached per binary for the life of the process.
 */
export function probeKernelOracle(options: KernelOracleOptions = {}): KernelOracleProbe {
  const located = locateKernelOracle(options);
  if ('reason' in located) return { ok: false, reason: located.reason };
  const cached = probeCache.get(located.binary);
  if (cached !== undefined) return cached;
  const r = spawnSync(located.binary, [], { input: '{"op":"check_extension","cap":"KVM_CAP_NR_MEMSLOTS"}\n', encoding: 'utf8', timeout: 30_000 });
  let probe: KernelOracleProbe;
  if (r.status === ORACLE_UNAVAILABLE_STATUS) {
    probe = { ok: false, reason: (r.stderr.trim().split('\n')[0] ?? '') || 'kvm-oracle: /dev/kvm is not usable' };
  } else if (r.status !== 0) {
    probe = { ok: false, reason: `kvm-oracle exited with ${String(r.status ?? r.signal)}: ${r.stderr.trim().split('\n')[0] ?? ''}` };
  } else {
    const release = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout?.trim() ?? 'unknown';
    probe = { ok: true, binary: located.binary, release };
  }
  probeCache.set(located.binary, probe);
  return probe;
}

/** Raised when the oracle process dies or answers out of protocol. */
export class KernelOracleError extends Error {
  override readonly name = 'KernelOracleError';
  /** The oracle exited with 77: the host cannot run what was asked (e.g. no guest execution). */
  readonly unavailable: boolean;
  constructor(message: string, unavailable = false) {
    super(message);
    this.unavailable = unavailable;
  }
}

/**
 * A {@link ReplayTarget} answered by the real kernel, or `{ unavailable }` with the reason where
 * /dev/kvm (or a compiler to build the oracle) is missing.
 */
export async function kernelOracleTarget(options: KernelOracleOptions = {}): Promise<ReplayTarget | { unavailable: string }> {
  const probe = probeKernelOracle(options);
  if (!probe.ok) return { unavailable: probe.reason };
  const args = [...(options.timing === true ? ['--timing'] : []), ...(options.args ?? [])];
  return Promise.resolve(new OracleProcessTarget(probe.binary, args, `kernel ${probe.release}`));
}

interface Pending {
  resolve(o: ReplayOutput): void;
  reject(e: Error): void;
}

class OracleProcessTarget implements ReplayTarget {
  readonly name: string;
  readonly kind = 'kernel' as const;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending: Pending[] = [];
  private stderr = '';
  private exited: KernelOracleError | null = null;
  private lineNo = 0;

  constructor(binary: string, args: readonly string[], name: string) {
    this.name = name;
    this.child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s: string) => {
      if (this.stderr.length < 4096) this.stderr += s;
    });
    // EPIPE after the oracle died is reported through the pending promises, not as a crash.
    this.child.stdin.on('error', () => undefined);
    const lines = createInterface({ input: this.child.stdout });
    lines.on('line', (line) => this.answer(line));
    this.child.on('close', (code, signal) => {
      const why = this.stderr.trim().split('\n')[0] ?? '';
      const unavailable = code === ORACLE_UNAVAILABLE_STATUS;
      this.exited = new KernelOracleError(`kvm-oracle exited (${code ?? signal ?? '?'})${why ? `: ${why}` : ''}`, unavailable);
      for (const p of this.pending.splice(0)) p.reject(this.exited);
    });
  }

  private answer(line: string): void {
    const p = this.pending.shift();
    if (p === undefined) return; // output without a question: ignored (the protocol forbids it)
    try {
      const o = JSON.parse(line) as unknown;
      if (o === null || typeof o !== 'object' || typeof (o as { ret?: unknown }).ret !== 'number') throw new Error('no integer "ret"');
      p.resolve(o as ReplayOutput);
    } catch (e) {
      p.reject(new KernelOracleError(`kvm-oracle answered out of protocol: ${JSON.stringify(line)} (${(e as Error).message})`));
    }
  }

  send(line: string): Promise<ReplayOutput | null> {
    this.lineNo++;
    if (line.includes('\n')) return Promise.reject(new KernelOracleError('send(): one line at a time'));
    if (parseReplayLine(line, this.lineNo).kind === 'skip') {
      // Keep the oracle's line numbers equal to ours: it counts comment and blank lines too.
      this.child.stdin.write(`${line}\n`);
      return Promise.resolve(null);
    }
    if (this.exited !== null) return Promise.reject(this.exited);
    return new Promise<ReplayOutput>((res, rej) => {
      this.pending.push({ resolve: res, reject: rej });
      this.child.stdin.write(`${line}\n`);
    });
  }

  close(): Promise<void> {
    if (this.exited !== null) return Promise.resolve();
    return new Promise<void>((res) => {
      this.child.once('close', () => res());
      this.child.stdin.end();
    });
  }
}
