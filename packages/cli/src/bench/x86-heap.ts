/**
 * Heap accounting for `kvmsim bench x86`: a forced full GC and the process's heap in use, so a
 * memory delta counts live objects only (not garbage waiting for the collector).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = () => void;

let cachedGc: Gc | null | undefined;

/**
 * The V8 collector: `globalThis.gc` when node runs with --expose-gc; otherwise the flag is set at
 * run time and `gc` is taken from a fresh context (V8 installs it in contexts created after the
 * flag). Null if neither works.
 */
function gcFunction(): Gc | null {
  if (cachedGc !== undefined) return cachedGc;
  const own = (globalThis as { gc?: Gc }).gc;
  if (typeof own === 'function') return (cachedGc = own);
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    cachedGc = typeof gc === 'function' ? (gc as Gc) : null;
  } catch {
    cachedGc = null;
  }
  return cachedGc;
}

/** Run a full garbage collection (twice: the first may only queue weak callbacks). False if unavailable. */
export function collectGarbage(): boolean {
  const gc = gcFunction();
  if (gc === null) return false;
  gc();
  gc();
  return true;
}

/** Bytes the process holds in JS objects and array buffers: heapUsed + arrayBuffers. */
export function heapInUse(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
