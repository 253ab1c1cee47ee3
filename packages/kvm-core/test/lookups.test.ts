/**
 * Lookups and caches (kvm-generic.md §3): the VM-wide last_used_slot, the per-vCPU cache and its
 * generation check, search_memslots(approx), __gfn_to_hva_many().
 */
import { describe, expect, it } from 'vitest';
import { KVM_HVA_ERR_BAD, KVM_HVA_ERR_RO_BAD, KVM_MEMSLOT_INVALID, KvmVcpuMemslotCache, gfnToHvaMany, kvmCopyMemslot, kvmVcpuGfnToMemslot } from '../src/index.js';
import { MiB, STORES, mkVm, region, set } from './support/vm.js';

describe.each(STORES)('lookups (%s store)', (store) => {
  function vm() {
    const { kvm } = mkVm(store);
    set(kvm, region(1, 0n, 2n * MiB)); // gfns [0, 0x200)
    set(kvm, region(2, 4n * MiB, 2n * MiB)); // gfns [0x400, 0x600)
    set(kvm, region(3, 8n * MiB, 2n * MiB, 0x7f0000400000n, 2)); // READONLY, [0x800, 0xa00)
    return kvm;
  }

  it('gfn_to_memslot finds the containing slot, remembers it, and misses holes', () => {
    const kvm = vm();
    const set0 = kvm.kvmMemslots(0);
    expect(set0.gfnToMemslot(0x450)?.id).toBe(2);
    expect(set0.lastUsedSlot?.id).toBe(2);
    expect(set0.gfnToMemslot(0x300)).toBeNull();
    expect(set0.gfnToMemslot(0x1ff)?.id).toBe(1);
    expect(set0.gfnToMemslot(0x200)).toBeNull();
  });

  it('search_memslots(approx) returns a slot bordering the hole; null only when empty', () => {
    const kvm = vm();
    const near = kvm.kvmMemslots(0).searchMemslots(0x300, true)!.id;
    expect([1, 2]).toContain(near);
    expect(kvm.kvmMemslots(0).searchMemslots(0x5000, true)?.id).toBe(3);
    const { kvm: empty } = mkVm(store);
    expect(empty.kvmMemslots(0).searchMemslots(0, true)).toBeNull();
  });

  it('the per-vCPU cache is reset when the generation changes and does not touch the VM cache', () => {
    const kvm = vm();
    const cache = new KvmVcpuMemslotCache();
    const set0 = kvm.kvmMemslots(0);
    expect(kvmVcpuGfnToMemslot(cache, set0, 0x10)?.id).toBe(1);
    expect(cache.lastUsedSlot?.id).toBe(1);
    const gen = cache.lastUsedSlotGen;
    set(kvm, region(2, 0x10000000n, 2n * MiB)); // MOVE: new generation
    const set1 = kvm.kvmMemslots(0);
    expect(kvmVcpuGfnToMemslot(cache, set1, 0x450)).toBeNull();
    expect(cache.lastUsedSlotGen).not.toBe(gen);
    expect(cache.lastUsedSlot).toBeNull(); // reset, and a miss does not refill it
  });

  it('__gfn_to_hva_many: INVALID and missing slots are bad, READONLY writes are RO-bad', () => {
    const kvm = vm();
    const ro = kvm.gfnToMemslot(0x800)!;
    expect(gfnToHvaMany(ro, 0x801, false)).toBe(0x7f0000400 + 1);
    expect(gfnToHvaMany(ro, 0x801, true)).toBe(KVM_HVA_ERR_RO_BAD);
    expect(gfnToHvaMany(null, 0x801, false)).toBe(KVM_HVA_ERR_BAD);
    const invalid = kvmCopyMemslot(ro);
    invalid.flags |= KVM_MEMSLOT_INVALID;
    expect(gfnToHvaMany(invalid, 0x801, false)).toBe(KVM_HVA_ERR_BAD);
  });
});

describe('scalable store: last_used_slot follows kvm_replace_memslot()', () => {
  it('is retargeted from the old slot to its replacement in the set being edited', () => {
    const { kvm } = mkVm('scalable');
    set(kvm, region(1, 0n, 2n * MiB));
    expect(kvm.gfnToMemslot(0x10)?.id).toBe(1);
    const before = kvm.kvmMemslots(0).lastUsedSlot;
    set(kvm, region(1, 0n, 2n * MiB, 0x7f0000000000n, 1)); // FLAGS_ONLY: a new slot object
    // The set that cached `old` was edited by the propagate step after the swap: it is now the
    // inactive one, and its cache points at the replacement. The newly active set keeps its own.
    const retargeted = kvm.memslots.inactive(0).lastUsedSlot;
    expect(retargeted).not.toBe(before);
    expect(retargeted).toBe(kvm.kvmMemslots(0).idToMemslot(1));
    expect(retargeted?.flags).toBe(1);
  });
});
