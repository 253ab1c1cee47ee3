/**
 * Hook order and generations per change kind (kvm-generic.md §2.2–§2.4, virt/kvm/kvm_main.c
 * kvm_set_memslot()): the exact sequence of arch hooks and core steps, as a trace.
 */
import { describe, expect, it } from 'vitest';
import type { KvmTraceEvent } from '../src/index.js';
import { MiB, STORES, mkVm, region, set } from './support/vm.js';

function traced(store: 'scalable' | 'legacy', opts: Parameters<typeof mkVm>[1] = {}) {
  const events: string[] = [];
  const sink = (e: KvmTraceEvent): void => {
    const a = e.args;
    const parts = [e.name.replace(/^kvm_arch_|^kvm_/, '')];
    if (a.change !== undefined) parts.push(String(a.change));
    if (a.old !== undefined) parts.push(`old=${a.old}`);
    if (a.new !== undefined) parts.push(`new=${a.new}`);
    if (a.gen !== undefined) parts.push(`gen=${a.gen}`);
    events.push(parts.join(' '));
  };
  const vm = mkVm(store, opts, { trace: sink });
  return { ...vm, events, reset: () => (events.length = 0) };
}

describe.each(STORES)('hook order (%s store)', (store) => {
  it('CREATE: prepare → swap (gen+1, memslots_updated first) → commit', () => {
    const { kvm, events } = traced(store);
    expect(set(kvm, region(3, 0n, 2n * MiB))).toBe(0);
    expect(events).toEqual([
      'prepare_memory_region CREATE old=null new=3',
      'memslots_updated gen=1',
      'swap_active_memslots gen=1',
      'commit_memory_region CREATE old=null new=3',
    ]);
    expect(kvm.kvmMemslots(0).generation).toBe(1);
  });

  it('CREATE with logging allocates the bitmap before prepare', () => {
    const { kvm, events } = traced(store);
    expect(set(kvm, region(3, 0n, 2n * MiB, 0x7f0000000000n, 1))).toBe(0);
    expect(events[0]).toBe('alloc_dirty_bitmap');
    expect(events[1]).toBe('prepare_memory_region CREATE old=null new=3');
  });

  it('FLAGS_ONLY: prepare → swap (gen+1) → commit (which write-protects and flushes when logging starts)', () => {
    const { kvm, events, reset } = traced(store);
    set(kvm, region(3, 0n, 2n * MiB));
    reset();
    expect(set(kvm, region(3, 0n, 2n * MiB, 0x7f0000000000n, 1))).toBe(0);
    expect(events).toEqual([
      'alloc_dirty_bitmap',
      'prepare_memory_region FLAGS_ONLY old=3 new=3',
      'memslots_updated gen=2',
      'swap_active_memslots gen=2',
      'commit_memory_region FLAGS_ONLY old=3 new=3',
      'flush_remote_tlbs',
    ]);
    reset();
    expect(set(kvm, region(3, 0n, 2n * MiB))).toBe(0); // logging off: no write-protect
    expect(events.at(-1)).toBe('commit_memory_region FLAGS_ONLY old=3 new=3');
  });

  it('MOVE: INVALID swap → flush_shadow_memslot → reclaimed → prepare → swap → commit (gen+2)', () => {
    const { kvm, events, reset } = traced(store);
    set(kvm, region(3, 0n, 2n * MiB));
    reset();
    expect(set(kvm, region(3, 4n * MiB, 2n * MiB))).toBe(0);
    expect(events).toEqual([
      'memslots_updated gen=2',
      'swap_active_memslots gen=2',
      'flush_shadow_memslot old=3',
      'guest_memory_reclaimed',
      'prepare_memory_region MOVE old=3 new=3',
      'memslots_updated gen=3',
      'swap_active_memslots gen=3',
      'commit_memory_region MOVE old=3 new=3',
    ]);
  });

  it('DELETE: INVALID swap → flush → reclaimed → prepare → swap → commit → free_memslot (gen+2)', () => {
    const { kvm, events, reset } = traced(store);
    set(kvm, region(3, 0n, 2n * MiB));
    reset();
    expect(set(kvm, region(3, 0n, 0n))).toBe(0);
    expect(events).toEqual([
      'memslots_updated gen=2',
      'swap_active_memslots gen=2',
      'flush_shadow_memslot old=3',
      'guest_memory_reclaimed',
      'prepare_memory_region DELETE old=3 new=null',
      'memslots_updated gen=3',
      'swap_active_memslots gen=3',
      'commit_memory_region DELETE old=3 new=null',
      'free_memslot old=3',
    ]);
    expect(kvm.kvmMemslots(0).size).toBe(0);
  });

  it('DELETE/MOVE whose prepare fails: swap back to the old slot (gen+2), nothing else changes', () => {
    const { kvm, events, reset } = traced(store, { failPrepare: (_o, _n, c) => (c === 'MOVE' ? 'ENOMEM' : undefined) });
    set(kvm, region(3, 0n, 2n * MiB));
    reset();
    expect(set(kvm, region(3, 4n * MiB, 2n * MiB))).toBe('ENOMEM');
    expect(events).toEqual([
      'memslots_updated gen=2',
      'swap_active_memslots gen=2',
      'flush_shadow_memslot old=3',
      'guest_memory_reclaimed',
      'prepare_memory_region MOVE old=3 new=3',
      'memslots_updated gen=3',
      'swap_active_memslots gen=3',
    ]);
    const slot = kvm.gfnToMemslot(0);
    expect(slot?.id).toBe(3);
    expect(slot!.flags).toBe(0); // the old slot itself, not the INVALID copy
    expect(kvm.memslots.inactive(0).idToMemslot(3)).toBe(slot);
  });

  it('CREATE/FLAGS_ONLY whose prepare fails: no swap, generation unchanged, bitmap freed', () => {
    const { kvm, events } = traced(store, { failPrepare: () => 'ENOMEM' });
    expect(set(kvm, region(3, 0n, 2n * MiB, 0x7f0000000000n, 1))).toBe('ENOMEM');
    expect(events).toEqual(['alloc_dirty_bitmap', 'prepare_memory_region CREATE old=null new=3']);
    expect(kvm.kvmMemslots(0).generation).toBe(0);
    expect(kvm.kvmMemslots(0).size).toBe(0);
  });

  it('no-op and validation errors call no hook and keep the generation', () => {
    const { kvm, events, reset } = traced(store);
    set(kvm, region(3, 0n, 2n * MiB));
    reset();
    expect(set(kvm, region(3, 0n, 2n * MiB))).toBe(0);
    expect(set(kvm, region(4, 0n, 2n * MiB))).toBe('EEXIST');
    expect(set(kvm, region(3, 0n, 4n * MiB))).toBe('EINVAL');
    expect(events).toEqual([]);
    expect(kvm.kvmMemslots(0).generation).toBe(1);
  });

  it('memslots_updated sees the final generation before it is stored', () => {
    const { kvm, arch } = traced(store);
    const seen: [number, number][] = [];
    const orig = arch.memslotsUpdated.bind(arch);
    arch.memslotsUpdated = (gen: number) => {
      seen.push([gen, kvm.kvmMemslots(0).generation]);
      orig(gen);
    };
    set(kvm, region(3, 0n, 2n * MiB));
    expect(seen).toEqual([[1, 2 ** 52 + 0]]); // the active set still shows old_gen | in-progress
  });

  it('with two address spaces the generation grows by 2 per swap and stays ≡ as_id', () => {
    const { kvm, events } = traced(store, { capabilities: { nrAddressSpaces: 2 } });
    set(kvm, region(0x10003, 0n, 2n * MiB));
    set(kvm, region(0x10003, 0n, 0n));
    expect(events.filter((e) => e.startsWith('memslots_updated'))).toEqual(['memslots_updated gen=3', 'memslots_updated gen=5', 'memslots_updated gen=7']);
  });

  it('dirty logging toggles nr_memslots_dirty_logging and frees the bitmap on disable', () => {
    const { kvm } = traced(store);
    set(kvm, region(3, 0n, 2n * MiB, 0x7f0000000000n, 1));
    expect(kvm.nrMemslotsDirtyLogging).toBe(1);
    const bm = kvm.gfnToMemslot(0)!.dirtyBitmap;
    expect(bm?.length).toBe(2 * 64); // 512 pages → 64 bytes, allocated twice
    set(kvm, region(3, 0n, 2n * MiB));
    expect(kvm.nrMemslotsDirtyLogging).toBe(0);
    expect(kvm.gfnToMemslot(0)!.dirtyBitmap).toBeNull();
  });

  it('VM destroy: flush_shadow_all, reclaimed, destroy_vm, then every slot freed once', () => {
    const { kvm, events, reset } = traced(store);
    set(kvm, region(1, 0n, 2n * MiB));
    set(kvm, region(2, 4n * MiB, 2n * MiB));
    reset();
    kvm.destroy();
    expect(events).toEqual(['flush_shadow_all', 'guest_memory_reclaimed', 'destroy_vm', 'free_memslot old=1', 'free_memslot old=2']);
  });
});
