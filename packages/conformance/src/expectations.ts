/**
 * Where architectures legitimately differ, the suite's expectation comes from this one table
 * (kvm-arch-backends.md §13), keyed by the `arch` capability; an entry may derive its value from
 * the other capabilities (x86's aging speed follows its MMU). A configuration that differs from
 * its architecture's default (x86 with the SLOT_ZAP_ALL quirk off) overrides entries through
 * `ConformanceOptions.expectations`. Cases read the resolved values, never a backend name.
 */
import type { MmuLockFlavour, ResolvedCapabilities } from '@kvmsim/kvm-core';

export interface ArchExpectations {
  /**
   * The highest gfn a CREATE or MOVE may reach before kvm_arch_prepare_memory_region() refuses
   * with EINVAL (x86: kvm_mmu_max_gfn()).
   */
  maxGfn: number;
  /**
   * §13.1 kvm_arch_flush_shadow_memslot() scope on DELETE/MOVE: `'all'` (x86 fast zap with the
   * SLOT_ZAP_ALL quirk), `'slot'` (the slot's range), `'none'` (s390, powerpc PR: elsewhere).
   */
  slotZapScope: 'all' | 'slot' | 'none';
  /** §13.2 the flush protocol: kvm_unmap_gfn_range() returns "flush needed" to the core. */
  unmapRequestsFlush: boolean;
  /** KVM_HAVE_MMU_RWLOCK: the flavour of kvm->mmu_lock. */
  mmuLock: MmuLockFlavour;
  /** §13.3 huge-page sizes in bytes, smallest first (documentation for guest-visible cases). */
  hugePageSizes: readonly number[];
  /** Aging speed (kvm-generic.md §4.9): aging answers from a lockless walk, so fast-only aging works. */
  fastAging: boolean;
  /** §13.4 how dirty logging re-arms a harvested page. */
  dirtyLogMechanism: 'write-protect' | 'sync' | 'none';
  /**
   * Width of the generation an MMIO cache entry carries (x86 MMIO SPTE: 19 bits), or null where
   * the architecture caches no MMIO translations. A wrap must zap every cached entry.
   */
  mmioGenerationBits: number | null;
}

type Row = { [K in keyof ArchExpectations]?: ArchExpectations[K] | ((caps: ResolvedCapabilities) => ArchExpectations[K]) };

const MiB = 0x100000;
const GiB = 0x40000000;

/** Per-architecture rows (kvm-arch-backends.md §13.1–§13.4). */
export const ARCH_EXPECTATIONS: Readonly<Record<string, Row>> = Object.freeze({
  x86: {
    maxGfn: 2 ** 40 - 1,
    slotZapScope: 'all',
    unmapRequestsFlush: true,
    mmuLock: 'rwlock',
    hugePageSizes: [4096, 2 * MiB, GiB],
    // The TDP MMU ages from an RCU walk and faults under the read lock; the shadow MMU does neither.
    fastAging: (caps) => caps.faultLock === 'read',
    dirtyLogMechanism: 'write-protect',
    mmioGenerationBits: 19,
  },
  arm64: { slotZapScope: 'slot', unmapRequestsFlush: false, mmuLock: 'rwlock', hugePageSizes: [4096, 2 * MiB, GiB], fastAging: false, dirtyLogMechanism: 'write-protect', mmioGenerationBits: null },
  s390: { slotZapScope: 'none', unmapRequestsFlush: false, mmuLock: 'spinlock', hugePageSizes: [4096, MiB], fastAging: false, dirtyLogMechanism: 'sync', mmioGenerationBits: null },
  powerpc: { slotZapScope: 'slot', unmapRequestsFlush: false, mmuLock: 'spinlock', hugePageSizes: [4096, 2 * MiB, GiB], fastAging: false, dirtyLogMechanism: 'sync', mmioGenerationBits: null },
  mips: { slotZapScope: 'slot', unmapRequestsFlush: true, mmuLock: 'spinlock', hugePageSizes: [4096], fastAging: false, dirtyLogMechanism: 'write-protect', mmioGenerationBits: null },
  riscv: { slotZapScope: 'slot', unmapRequestsFlush: false, mmuLock: 'rwlock', hugePageSizes: [4096, 2 * MiB, GiB], fastAging: false, dirtyLogMechanism: 'write-protect', mmioGenerationBits: null },
  loongarch: { slotZapScope: 'slot', unmapRequestsFlush: true, mmuLock: 'spinlock', hugePageSizes: [4096, 32 * MiB], fastAging: false, dirtyLogMechanism: 'write-protect', mmioGenerationBits: null },
});

/** An architecture the table does not know: its expectations are what its capabilities claim. */
function fromCapabilities(caps: ResolvedCapabilities): ArchExpectations {
  return {
    maxGfn: Number.MAX_SAFE_INTEGER,
    slotZapScope: 'slot',
    unmapRequestsFlush: caps.unmapRequestsFlush,
    mmuLock: caps.mmuLock,
    hugePageSizes: [4096],
    fastAging: caps.fastAging,
    dirtyLogMechanism: caps.dirtyLogReadProtect ? 'write-protect' : 'none',
    mmioGenerationBits: null,
  };
}

/** The table row for `caps.arch`, resolved against the capabilities, then the configuration's overrides. */
export function resolveExpectations(caps: ResolvedCapabilities, overrides: Partial<ArchExpectations> = {}): ArchExpectations {
  const out = fromCapabilities(caps) as unknown as Record<string, unknown>;
  const row = ARCH_EXPECTATIONS[caps.arch] ?? {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'function' ? (v as (c: ResolvedCapabilities) => unknown)(caps) : v;
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) out[k] = v;
  return out as unknown as ArchExpectations;
}
