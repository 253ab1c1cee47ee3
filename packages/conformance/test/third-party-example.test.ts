/**
 * A minimal third-party backend, as docs/conformance.md walks through it: an architecture "toy"
 * with a flat secondary MMU (gfn → host frame), built only on kvm-core's public API. It runs the
 * whole suite in a few lines; cases its capabilities rule out (READONLY, the read-protecting
 * dirty log, fast aging) are skipped, never failed.
 */
import {
  ArchBackendBase,
  ArchVmBase,
  createVm,
  type ArchCapabilities,
  type ArchMmu,
  type Kvm,
  type KvmGfnRange,
  type MemorySlot,
} from '@kvmsim/kvm-core';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { runConformanceSuite } from '../src/index.js';

// --8<-- [start:backend]
/** The secondary MMU: one Map per address space, gfn → frame, plus a young bit. */
class ToyMmu implements ArchMmu {
  readonly tables: Map<number, { frame: number; writable: boolean; young: boolean }>[];
  constructor(nrAddressSpaces: number) {
    this.tables = Array.from({ length: nrAddressSpaces }, () => new Map());
  }
  get mappings(): number {
    return this.tables.reduce((n, t) => n + t.size, 0);
  }
  translate(asId: number, gfn: number, write: boolean): number {
    const e = this.tables[asId]!.get(gfn);
    if (e === undefined || (write && !e.writable)) return -1; // fault
    e.young = true;
    return e.frame;
  }
  map(slot: MemorySlot, gfn: number, frame: number, writable: boolean): void {
    this.tables[slot.asId]!.set(gfn, { frame, writable, young: true });
  }
  forEachMapping(visit: (asId: number, gfn: number, frame: number, writable: boolean) => void): void {
    this.tables.forEach((t, asId) => t.forEach((e, gfn) => visit(asId, gfn, e.frame, e.writable)));
  }
  /** Drop [start, end) of one address space; true if anything was mapped. */
  zap(asId: number, start: number, end: number): boolean {
    let any = false;
    for (const gfn of [...this.tables[asId]!.keys()]) if (gfn >= start && gfn < end) any = this.tables[asId]!.delete(gfn) || any;
    return any;
  }
}

/** The per-VM hooks: everything not overridden keeps the kernel's default (ArchVmBase). */
class ToyVm extends ArchVmBase {
  readonly mmu: ToyMmu;
  constructor(kvm: Kvm) {
    super(kvm);
    this.mmu = new ToyMmu(kvm.nrMemslotAsIds);
  }
  /** DELETE/MOVE: drop the slot's mappings (scope "slot", kvm-arch-backends.md §13.1). */
  override flushShadowMemslot(slot: MemorySlot): void {
    if (this.mmu.zap(slot.asId, slot.baseGfn, slot.baseGfn + slot.npages)) this.kvm.kvmFlushRemoteTlbs();
  }
  override flushShadowAll(): void {
    this.mmu.tables.forEach((_t, asId) => this.mmu.zap(asId, 0, Number.MAX_SAFE_INTEGER));
  }
  /** The notifier's invalidation: zap, and ask the core to flush (unmapRequestsFlush). */
  override unmapGfnRange(range: KvmGfnRange): boolean {
    return this.mmu.zap(range.slot.asId, range.start, range.end);
  }
  override ageGfn(range: KvmGfnRange): boolean {
    let young = false;
    for (const [gfn, e] of this.mmu.tables[range.slot.asId]!) {
      if (gfn >= range.start && gfn < range.end && e.young) {
        young = true;
        e.young = false;
      }
    }
    return young;
  }
  override testAgeGfn(range: KvmGfnRange): boolean {
    for (const [gfn, e] of this.mmu.tables[range.slot.asId]!) if (gfn >= range.start && gfn < range.end && e.young) return true;
    return false;
  }
}

/** The backend: a name, capabilities (all others take their documented defaults), a VM factory. */
class ToyBackend extends ArchBackendBase {
  readonly name = 'toy';
  readonly capabilities: ArchCapabilities = { arch: 'toy', usesHvaTree: true };
  createArchVm(kvm: Kvm): ToyVm {
    return new ToyVm(kvm);
  }
}
// --8<-- [end:backend]

// --8<-- [start:suite]
runConformanceSuite({
  name: 'toy (third-party example)',
  createVm: (o) => createVm({ backend: new ToyBackend(), ...o }),
  modelRuns: 50,
});
// --8<-- [end:suite]

it('docs/conformance.md quotes this backend verbatim', () => {
  const self = readFileSync(new URL(import.meta.url), 'utf8');
  const doc = readFileSync(new URL('../../../docs/conformance.md', import.meta.url), 'utf8');
  const region = (name: string): string => self.slice(self.indexOf(`// --8<-- [start:${name}]\n`) + `// --8<-- [start:${name}]\n`.length, self.indexOf(`// --8<-- [end:${name}]`));
  for (const name of ['backend', 'suite']) {
    expect(region(name).length).toBeGreaterThan(100);
    expect(doc).toContain(region(name));
  }
});
