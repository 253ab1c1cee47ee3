/**
 * The two sides of `kvmsim diff`: the model under test (`--arch/--mmu/--memslots`) and what it is
 * compared against (`--against kernel`, the default, or another model configuration).
 */
import { kernelOracleTarget, modelTarget, type ReplayTarget } from '@kvmsim/conformance/targets';
import { replayBackend, MEMSLOT_DESIGNS, REPLAY_ARCHES, REPLAY_MMUS, type MemslotDesign } from '../commands/replay.js';
import { UsageError } from '../context.js';

/** A model configuration. */
export interface ModelConfig {
  arch: (typeof REPLAY_ARCHES)[number];
  mmu: (typeof REPLAY_MMUS)[number];
  memslots: MemslotDesign;
}

export type AgainstConfig = { kind: 'kernel'; binary?: string } | { kind: 'model'; model: ModelConfig };

/** `x86/tdp scalable`. */
export function describeModel(c: ModelConfig): string {
  return c.arch === 'x86' ? `x86/${c.mmu} ${c.memslots}` : `${c.arch} ${c.memslots}`;
}

/** Build (and validate) a model config; a usage error names the flag. */
export function modelConfig(arch: string, mmu: string, memslots: string): ModelConfig {
  if (!(REPLAY_ARCHES as readonly string[]).includes(arch)) throw new UsageError(`--arch: '${arch}' is not a backend (allowed: ${REPLAY_ARCHES.join(', ')})`, 'diff');
  if (!(REPLAY_MMUS as readonly string[]).includes(mmu)) throw new UsageError(`--mmu: '${mmu}' is not an MMU (allowed: ${REPLAY_MMUS.join(', ')})`, 'diff');
  if (!(MEMSLOT_DESIGNS as readonly string[]).includes(memslots)) {
    throw new UsageError(`--memslots: '${memslots}' is not a memslot store design (allowed: ${MEMSLOT_DESIGNS.join(', ')})`, 'diff');
  }
  const c = { arch, mmu, memslots } as ModelConfig;
  // Fail early (before any sequence runs) when the backend cannot be built, e.g. an MMU not modelled.
  try {
    replayBackend(c.arch, c.mmu);
  } catch (e) {
    throw new UsageError((e as Error).message, 'diff');
  }
  return c;
}

/**
 * Parse `--against`: `kernel`, or `model[:WORD,…]` where each WORD (tdp, shadow, scalable, legacy,
 * x86, reference) replaces that setting of the model under test.
 */
export function parseAgainst(spec: string, base: ModelConfig): AgainstConfig {
  if (spec === 'kernel') return { kind: 'kernel' };
  const m = /^model(?::(.*))?$/.exec(spec);
  if (m === null) throw new UsageError(`--against: '${spec}' is neither 'kernel' nor 'model[:tdp|shadow|scalable|legacy|x86|reference,…]'`, 'diff');
  let { arch, mmu, memslots } = base as { arch: string; mmu: string; memslots: string };
  for (const word of (m[1] ?? '').split(',').filter((w) => w !== '')) {
    if ((REPLAY_MMUS as readonly string[]).includes(word)) mmu = word;
    else if ((MEMSLOT_DESIGNS as readonly string[]).includes(word)) memslots = word;
    else if ((REPLAY_ARCHES as readonly string[]).includes(word)) arch = word;
    else throw new UsageError(`--against: '${word}' is not a model setting (allowed: ${[...REPLAY_MMUS, ...MEMSLOT_DESIGNS, ...REPLAY_ARCHES].join(', ')})`, 'diff');
  }
  return { kind: 'model', model: modelConfig(arch, mmu, memslots) };
}

/**
 * A fresh model target (one VM) for a config. The model reproduces the kernel oracle's scratch
 * slot around each guest access (`oracleScratchSlot`), so that both sides see the same memslot
 * updates; two model sides do the same, so model-vs-model runs compare like with like.
 */
export function createModelTarget(c: ModelConfig): ReplayTarget {
  return modelTarget({ backend: replayBackend(c.arch, c.mmu), memslots: c.memslots, oracleScratchSlot: true, name: `model ${describeModel(c)}` });
}

/** A fresh right-hand target (one VM, or one oracle process). */
export async function createAgainstTarget(a: AgainstConfig): Promise<ReplayTarget | { unavailable: string }> {
  if (a.kind === 'model') return createModelTarget(a.model);
  return kernelOracleTarget(a.binary === undefined ? {} : { binary: a.binary });
}
