/**
 * Model-based random test (kvm-generic.md §9): random sequences of valid and invalid memslot
 * and dirty-log operations run on the backend's VM and on a deliberately naive model of the ABI;
 * after every step the answers, the visible state, the generations and the §9 invariants agree.
 */
import { errnoOf, markPageDirtyInSlot, type Kvm } from '@kvmsim/kvm-core';
import { NaiveMemslotModel, checkMemslotInvariants as checkInvariants, slotsOf, type NaiveRegion } from '@kvmsim/kvm-core/testing';
import fc from 'fast-check';
import { assert, defineCase } from '../harness.js';
import type { ConformanceCase } from '../types.js';

/** Per-run tallies, so a run that stops exercising the model (everything EINVAL) is noticed. */
const tally = { ops: 0, ok: 0, by: {} as Record<string, number> };

type Op =
  | { k: 'set'; r: NaiveRegion }
  | { k: 'get'; slot: number }
  | { k: 'clear'; slot: number; first: bigint; num: number; bitmap: Uint8Array | null }
  | { k: 'cap'; arg: bigint; flags: number }
  | { k: 'dirty'; asId: number; gfn: number }
  | { k: 'lookup'; asId: number; gfn: number; hvaPfn: number };

/** Mostly valid values, with a small share of the invalid ones each rule exists for. */
const mostly = <T,>(valid: T[], invalid: T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 19, arbitrary: fc.constantFrom(...valid) }, { weight: 1, arbitrary: fc.constantFrom(...invalid) });
const pages = (p: number[]): bigint[] => p.map((x) => BigInt(x) * 4096n);
const slotIds = mostly([0, 1, 2, 3, 0, 1, 2, 3, 0x10000, 0x10001, 32763], [4, 0x20000, 32764, 0xffff]);
const gpa = mostly(pages([0, 1, 3, 16, 64, 100, 130, 256]), [0x1800n, 0xfffffffffffff000n, 0xffffffffff000n, BigInt(0xffffffff0) * 4096n]);
const size = fc.oneof(
  { weight: 4, arbitrary: mostly(pages([1, 3, 16, 64, 100, 200]), [0x1001n, 0x800n, 0x80000000000n]) },
  { weight: 1, arbitrary: fc.constant(0n) },
);
const uaddr = mostly(pages([0x7f0000000, 0x7f0000010, 0x7f0000040, 0x7fffffffd]), [0x7f0000000800n, 0xffff888000000000n, 0x7ffffffff000n]);
const flags = mostly([0, 1, 1, 1, 2, 3], [4, 8, 0x10000]);

export const memslotOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .record({ slot: slotIds, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr, canonical: fc.nat(3) })
      .map(({ canonical, ...r }): Op => {
        // Most updates reuse the id's own size and uaddr, so they are moves and flag changes
        // rather than the (EINVAL) resizes a fully random pick would mostly be.
        if (canonical > 0 && r.memorySize !== 0n) {
          const id = r.slot & 0xffff;
          r.memorySize = BigInt([3, 16, 64, 100][id % 4]!) * 4096n;
          r.userspaceAddr = BigInt(0x7f0000000 + (id % 4) * 0x100) * 4096n;
        }
        return { k: 'set', r };
      }),
  },
  { weight: 2, arbitrary: slotIds.map((slot): Op => ({ k: 'get', slot })) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        slot: slotIds,
        first: fc.constantFrom(0n, 0n, 0n, 64n, 1n, 128n),
        num: fc.constantFrom(0, 3, 16, 64, 100, 36, 10, 128),
        bitmap: fc.option(fc.uint8Array({ minLength: 0, maxLength: 32 }), { nil: null }),
      })
      .map((c): Op => ({ k: 'clear', ...c })),
  },
  { weight: 1, arbitrary: fc.record({ arg: fc.constantFrom(0n, 1n, 2n, 3n, 5n), flags: fc.constantFrom(0, 0, 0, 1) }).map((c): Op => ({ k: 'cap', ...c })) },
  { weight: 4, arbitrary: fc.record({ asId: fc.constantFrom(0, 1), gfn: fc.integer({ min: 0, max: 300 }) }).map((d): Op => ({ k: 'dirty', ...d })) },
  {
    weight: 2,
    arbitrary: fc.record({ asId: fc.constantFrom(0, 1), gfn: fc.integer({ min: 0, max: 300 }), hvaPfn: fc.integer({ min: 0x7f0000000 - 4, max: 0x7f0000050 }) }).map((d): Op => ({ k: 'lookup', ...d })),
  },
);

function visible(kvm: Kvm) {
  const out: unknown[] = [];
  for (let as = 0; as < kvm.nrMemslotAsIds; as++) {
    for (const s of slotsOf(kvm, as)) {
      const n = s.npages;
      const bits = s.dirtyBitmap ? Array.from({ length: n }, (_, i) => (s.dirtyBitmap![i >> 3]! >> (i & 7)) & 1) : null;
      out.push({ as, id: s.id, base: s.baseGfn, n, hva: s.hvaPfn, flags: s.flags, bits });
    }
  }
  return out;
}

function naiveVisible(m: NaiveMemslotModel) {
  return [...m.slots]
    .sort((a, b) => a.asId - b.asId || a.baseGfn - b.baseGfn)
    .map((s) => ({ as: s.asId, id: s.id, base: s.baseGfn, n: s.npages, hva: s.hvaPfn, flags: s.flags, bits: s.dirty ? s.dirty.map((d) => (d ? 1 : 0)) : null }));
}

export function step(kvm: Kvm, m: NaiveMemslotModel, o: Op): void {
  const before = visible(kvm);
  const gens = Array.from({ length: kvm.nrMemslotAsIds }, (_, a) => kvm.kvmMemslots(a).generation);
  let got: unknown;
  let want: unknown;
  switch (o.k) {
    case 'set':
      got = errnoOf(() => kvm.setUserMemoryRegion(o.r));
      want = m.setUserMemoryRegion(o.r, false);
      break;
    case 'get': {
      let bytes: Uint8Array | undefined;
      got = errnoOf(() => (bytes = kvm.getDirtyLog(o.slot)));
      if (got === 0) got = Array.from(bytes!);
      const w = m.getDirtyLog(o.slot);
      want = typeof w === 'string' ? w : Array.from(w);
      break;
    }
    case 'clear':
      got = errnoOf(() => kvm.clearDirtyLog(o.slot, o.first, o.num, o.bitmap));
      want = m.clearDirtyLog(o.slot, o.first, o.num, o.bitmap);
      break;
    case 'cap':
      got = errnoOf(() => kvm.enableCap('KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2', o.flags, [o.arg]));
      want = m.enableManualProtect(o.flags, o.arg);
      break;
    case 'dirty':
      if (o.asId < kvm.nrMemslotAsIds) {
        markPageDirtyInSlot(kvm.kvmMemslots(o.asId).gfnToMemslot(o.gfn), o.gfn);
        m.markDirty(o.asId, o.gfn);
      }
      return;
    case 'lookup': {
      if (o.asId >= kvm.nrMemslotAsIds) return;
      const set = kvm.kvmMemslots(o.asId);
      const hit = set.searchMemslots(o.gfn, false)?.id ?? null;
      const naive = m.slots.find((s) => s.asId === o.asId && o.gfn >= s.baseGfn && o.gfn < s.baseGfn + s.npages)?.id ?? null;
      assert.equal(hit, naive, `search_memslots(${o.gfn})`);
      assert.equal(set.gfnToMemslot(o.gfn)?.id ?? null, naive, `gfn_to_memslot(${o.gfn})`);
      const hva: number[] = [];
      for (let c = set.hvaRangeFirst(o.hvaPfn, o.hvaPfn + 2); c !== 0; c = set.hvaRangeNext(c, o.hvaPfn, o.hvaPfn + 2)) hva.push(set.hvaCursorSlot(c).id);
      const naiveHva = m.slots.filter((s) => s.asId === o.asId && s.hvaPfn <= o.hvaPfn + 2 && s.hvaPfn + s.npages - 1 >= o.hvaPfn).map((s) => s.id);
      assert.deepEqual(hva.sort(), naiveHva.sort(), `hva range of pfn 0x${o.hvaPfn.toString(16)}`);
      return;
    }
  }
  tally.ops++;
  { const key = `${o.k}:${Array.isArray(got) ? 'bytes' : String(got)}`; tally.by[key] = (tally.by[key] ?? 0) + 1; }
  if (got === 0 || Array.isArray(got)) tally.ok++;
  const what = JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
  assert.deepEqual(got, want, what);
  // 10. a failed op leaves the visible state unchanged (generations may move: DELETE/MOVE prepare failures)
  if (typeof got === 'string') assert.deepEqual(visible(kvm), before, `${what} failed but changed the visible state`);
  assert.deepEqual(visible(kvm), naiveVisible(m), `${what}: the visible state differs from the naive model`);
  assert.deepEqual(Array.from({ length: kvm.nrMemslotAsIds }, (_, a) => kvm.kvmMemslots(a).generation), [...m.generations], `${what}: generations`);
  void gens;
  checkInvariants(kvm);
}


export const modelBasedCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'model-based/naive-model',
    group: 'model-based',
    title: 'random memslot/dirty-log sequences agree with the naive model and keep the §9 invariants after every step',
    see: 'kvm-generic.md §1, §5, §9; NaiveMemslotModel (kvm-core/testing) restates kvm_set_memory_region() and the dirty-log ioctls',
    run(ctx) {
      const runs = ctx.options.modelRuns ?? (ctx.quick ? 40 : 200);
      tally.ops = tally.ok = 0;
      tally.by = {};
      fc.assert(
        fc.property(fc.array(memslotOp, { minLength: 10, maxLength: 60, size: 'max' }), (ops) => {
          const kvm = ctx.vm();
          const m = new NaiveMemslotModel({
            userMemSlots: kvm.userMemSlots,
            nrAddressSpaces: kvm.nrMemslotAsIds,
            readonlyMem: kvm.caps.readonlyMem,
            maxGfn: ctx.expectations.maxGfn,
            taskSizeMax: kvm.taskSizeMax,
            manualCaps: kvm.caps.dirtyLogReadProtect ? kvm.caps.dirtyLogManualCaps : 0,
            readProtect: kvm.caps.dirtyLogReadProtect,
          });
          for (const o of ops) step(kvm, m, o);
        }),
        { numRuns: runs, seed: 0x6b766d + ctx.store.length },
      );
      // The generators must keep the model busy: several successful memslot changes per sequence.
      assert.ok((tally.by['set:0'] ?? 0) / runs > 3, `only ${tally.by['set:0'] ?? 0} successful changes in ${runs} runs`);
    },
  }),
];
