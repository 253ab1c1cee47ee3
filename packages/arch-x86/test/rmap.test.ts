/** The rmap heads and pte_list_desc chains against a plain set model (seeded random operations). */
import { mulberry32 } from '@kvmsim/kvm-core/sched';
import { describe, expect, it } from 'vitest';
import { PTE_LIST_EXT, RmapDescPool, SlotRmaps } from '../src/index.js';

describe('rmaps', () => {
  it('add/remove keep every head equal to the set of SPTEs added and not removed', () => {
    const rand = mulberry32(42);
    const pool = new RmapDescPool(2);
    const heads = new Int32Array(8);
    const model: Set<number>[] = Array.from({ length: 8 }, () => new Set<number>());
    let next = 1;
    for (let step = 0; step < 4000; step++) {
      const i = Math.floor(rand() * 8);
      const m = model[i]!;
      if (m.size > 0 && rand() < 0.45) {
        const all = [...m];
        const o = all[Math.floor(rand() * all.length)]!;
        pool.remove(heads, i, o);
        m.delete(o);
      } else {
        pool.add(heads, i, next);
        m.add(next++);
      }
      const got = pool.collect(heads, i);
      expect([...got.subarray(0, pool.collected)].sort((a, b) => a - b)).toEqual([...m].sort((a, b) => a - b));
      expect(pool.size(heads, i)).toBe(m.size);
      // One SPTE lives in the head itself; only more than one needs descriptors.
      if (m.size <= 1) expect(heads[i]! >= 0).toBe(true);
    }
    for (let i = 0; i < 8; i++) for (const o of model[i]!) pool.remove(heads, i, o);
    expect(pool.inUse).toBe(0);
    expect([...heads]).toEqual(new Array(8).fill(0));
  });

  it('removing an SPTE that is not there is a KVM BUG', () => {
    const pool = new RmapDescPool();
    const heads = new Int32Array(1);
    expect(() => pool.remove(heads, 0, 5)).toThrow(/KVM BUG/);
    for (let k = 0; k < PTE_LIST_EXT + 2; k++) pool.add(heads, 0, k);
    expect(() => pool.remove(heads, 0, 99)).toThrow(/KVM BUG/);
  });

  it('a slot has one head per page at 4K and one per huge page touched at 2M and 1G', () => {
    const r = new SlotRmaps(511, 514); // gfns 511..1024: 3 huge 2M pages touched, 1 1G page
    expect(r.heads.map((h) => h.length)).toEqual([514, 3, 1]);
    expect(r.index(512, 2)).toBe(1);
    expect(r.bytes()).toBe((514 + 3 + 1) * 4);
  });
});
