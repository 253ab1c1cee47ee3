/**
 * Lookups and caches (kvm-generic.md §3): gfn → slot through the search, the VM-wide and the
 * vCPU's last-used-slot caches, id → slot, and hva-range walks, checked after the changes that
 * move slots around in the store.
 */
import { KvmVcpuMemslotCache, kvmVcpuGfnToMemslot, type MemslotSet } from '@kvmsim/kvm-core';
import { checkMemslotInvariants } from '@kvmsim/kvm-core/testing';
import { assert, defineCase, MiB, region, UADDR } from '../harness.js';
import type { ConformanceCase } from '../types.js';

const PAGES_2M = 512;

function idsInHva(set: MemslotSet, startPfn: number, lastPfn: number): number[] {
  const out: number[] = [];
  for (let c = set.hvaRangeFirst(startPfn, lastPfn); c !== 0; c = set.hvaRangeNext(c, startPfn, lastPfn)) out.push(set.hvaCursorSlot(c).id);
  return out.sort((a, b) => a - b);
}

function idsInGfn(set: MemslotSet, start: number, end: number): number[] {
  const out: number[] = [];
  for (let c = set.gfnRangeFirst(start, end); c !== 0; c = set.gfnRangeNext(c, end)) out.push(set.gfnCursorSlot(c).id);
  return out;
}

export const lookupCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'lookups/gfn-to-memslot',
    group: 'lookups',
    title: 'gfn → slot at every boundary, through the last-used-slot cache, before and after MOVE and DELETE',
    see: 'kvm-generic.md §3.1; virt/kvm/kvm_main.c ____gfn_to_memslot(), search_memslots() (6.18)',
    run(ctx) {
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      kvm.setUserMemoryRegion(region(2, 4n * MiB, 2n * MiB, UADDR + 2n * MiB));
      kvm.setUserMemoryRegion(region(3, 8n * MiB, 2n * MiB, UADDR + 4n * MiB));
      const id = (gfn: number): number | null => kvm.gfnToMemslot(gfn)?.id ?? null;
      const probe = (): (number | null)[] => [0, 511, 512, 1023, 1024, 1535, 1536, 2047, 2048, 2559, 2560].map(id);
      assert.deepEqual(probe(), [1, 1, null, null, 2, 2, null, null, 3, 3, null]);
      assert.equal(id(1024), 2); // the cache now holds slot 2
      kvm.setUserMemoryRegion(region(2, 16n * MiB, 2n * MiB, UADDR + 2n * MiB)); // MOVE
      assert.equal(id(1024), null, 'the last-used-slot cache still answers for a moved slot');
      assert.equal(id(4096), 2);
      kvm.setUserMemoryRegion(region(2, 0n, 0n)); // DELETE
      assert.equal(id(4096), null, 'a deleted slot is still found');
      assert.deepEqual(idsInGfn(kvm.kvmMemslots(0), 0, 8192), [1, 3]);
      checkMemslotInvariants(kvm);
    },
  }),
  defineCase({
    id: 'lookups/id-to-memslot-after-move',
    group: 'lookups',
    title: 'id → slot stays right when a MOVE reorders the slots (legacy: id_to_index follows the array)',
    see: 'kvm-generic.md §3.2; virt/kvm/kvm_main.c id_to_memslot(); 5.16 legacy kvm_memslot_move_backward()/forward() update id_to_index',
    run(ctx) {
      const kvm = ctx.vm();
      for (let i = 1; i <= 4; i++) kvm.setUserMemoryRegion(region(i, BigInt(i) * 4n * MiB, 2n * MiB, UADDR + BigInt(i) * 2n * MiB));
      kvm.setUserMemoryRegion(region(1, 64n * MiB, 2n * MiB, UADDR + 2n * MiB)); // past every other slot
      kvm.setUserMemoryRegion(region(4, 0n, 2n * MiB, UADDR + 8n * MiB)); // before every other slot
      const set = kvm.kvmMemslots(0);
      for (const [slot, base] of [[1, 64], [2, 8], [3, 12], [4, 0]] as const) {
        assert.equal(set.idToMemslot(slot)?.baseGfn, (base * 0x100000) / 4096, `id_to_memslot(${slot})`);
      }
      checkMemslotInvariants(kvm);
      kvm.setUserMemoryRegion(region(3, 0n, 0n));
      assert.equal(kvm.kvmMemslots(0).idToMemslot(3), null);
      assert.equal(kvm.kvmMemslots(0).idToMemslot(1)?.id, 1);
      checkMemslotInvariants(kvm);
    },
  }),
  defineCase({
    id: 'lookups/vcpu-cache',
    group: 'lookups',
    title: 'the vCPU\'s last-used slot is dropped when the set\'s generation changes',
    see: 'kvm-generic.md §3.1; virt/kvm/kvm_main.c kvm_vcpu_gfn_to_memslot(): last_used_slot_gen (6.18)',
    run(ctx) {
      const kvm = ctx.vm();
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      const cache = new KvmVcpuMemslotCache();
      assert.equal(kvmVcpuGfnToMemslot(cache, kvm.kvmMemslots(0), 5)?.id, 1);
      kvm.setUserMemoryRegion(region(1, 8n * MiB, 2n * MiB));
      assert.equal(kvmVcpuGfnToMemslot(cache, kvm.kvmMemslots(0), 5), null);
      assert.equal(kvmVcpuGfnToMemslot(cache, kvm.kvmMemslots(0), 2048 + 5)?.id, 1);
    },
  }),
  defineCase({
    id: 'lookups/hva-range',
    group: 'lookups',
    title: 'hva-range walks find every slot whose hva pages intersect, aliases included, and forget deleted slots',
    see: 'kvm-generic.md §3.3; virt/kvm/kvm_main.c kvm_for_each_memslot_in_hva_range() (6.18)',
    run(ctx) {
      const kvm = ctx.vm();
      const hvaPfn = Number(UADDR / 4096n);
      kvm.setUserMemoryRegion(region(1, 0n, 2n * MiB));
      kvm.setUserMemoryRegion(region(2, 4n * MiB, 2n * MiB)); // an alias of slot 1's memory
      kvm.setUserMemoryRegion(region(3, 8n * MiB, 2n * MiB, UADDR + 2n * MiB)); // adjacent hva
      const set = (): MemslotSet => kvm.kvmMemslots(0);
      assert.deepEqual(idsInHva(set(), hvaPfn, hvaPfn), [1, 2]);
      assert.deepEqual(idsInHva(set(), hvaPfn + PAGES_2M - 1, hvaPfn + PAGES_2M), [1, 2, 3]);
      assert.deepEqual(idsInHva(set(), hvaPfn + PAGES_2M, hvaPfn + 2 * PAGES_2M - 1), [3]);
      assert.deepEqual(idsInHva(set(), hvaPfn - 10, hvaPfn - 1), []);
      kvm.setUserMemoryRegion(region(2, 0n, 0n));
      assert.deepEqual(idsInHva(set(), hvaPfn, hvaPfn), [1]);
      kvm.setUserMemoryRegion(region(1, 32n * MiB, 2n * MiB)); // MOVE: the hva stays
      assert.deepEqual(idsInHva(set(), hvaPfn, hvaPfn), [1]);
    },
  }),
];
