import IntervalTree from '@flatten-js/interval-tree';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RbTree } from '../src/memslots/rb-tree.js';

/** In-order walk via first/next, as [key, value] pairs. */
function inOrder(t: RbTree): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let n = t.first(); n !== 0; n = t.next(n)) out.push([t.key(n), t.value(n)]);
  return out;
}

function reverseOrder(t: RbTree): number[] {
  const out: number[] = [];
  for (let n = t.lastNode(); n !== 0; n = t.prev(n)) out.push(t.key(n));
  return out;
}

function overlaps(t: RbTree, start: number, last: number): number[] {
  const out: number[] = [];
  for (let n = t.firstOverlap(start, last); n !== 0; n = t.nextOverlap(n, start, last)) out.push(n);
  return out;
}

describe('RbTree basics', () => {
  it('starts empty', () => {
    const t = new RbTree();
    expect(t.size).toBe(0);
    expect(t.first()).toBe(0);
    expect(t.lastNode()).toBe(0);
    expect(t.floor(100)).toBe(0);
    expect(t.ceilingAbove(0)).toBe(0);
    expect(t.firstOverlap(0, 100)).toBe(0);
    t.checkInvariants();
  });

  it('inserts, walks in order both ways, and answers floor / ceilingAbove', () => {
    const t = new RbTree();
    const keys = [50, 20, 80, 10, 30, 70, 90, 60, 40];
    for (const [i, k] of keys.entries()) {
      const h = t.insert(k, k + 4, i);
      expect(h).toBeGreaterThan(0);
      t.checkInvariants();
    }
    expect(t.size).toBe(9);
    expect(inOrder(t).map(([k]) => k)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(reverseOrder(t)).toEqual([90, 80, 70, 60, 50, 40, 30, 20, 10]);
    expect(t.floor(9)).toBe(0);
    expect(t.key(t.floor(10))).toBe(10);
    expect(t.key(t.floor(55))).toBe(50);
    expect(t.key(t.floor(1e15))).toBe(90);
    expect(t.value(t.floor(65))).toBe(keys.indexOf(60));
    expect(t.last(t.floor(65))).toBe(64);
    expect(t.key(t.ceilingAbove(0))).toBe(10);
    expect(t.key(t.ceilingAbove(50))).toBe(60);
    expect(t.key(t.ceilingAbove(49))).toBe(50);
    expect(t.ceilingAbove(90)).toBe(0);
  });

  it('removes the root repeatedly', () => {
    const t = new RbTree();
    for (let k = 1; k <= 31; k++) t.insert(k, k, k);
    const remaining = new Set(Array.from({ length: 31 }, (_, i) => i + 1));
    while (t.size > 0) {
      // The API does not expose the root, so climb to it from the first node.
      let n = t.first();
      for (let p = parentOf(t, n); p !== 0; p = parentOf(t, n)) n = p;
      remaining.delete(t.key(n));
      t.remove(n);
      t.checkInvariants();
      expect(inOrder(t).map(([k]) => k)).toEqual([...remaining].sort((a, b) => a - b));
    }
  });

  it('removes a node with two children (successor not the right child)', () => {
    const t = new RbTree();
    const h = new Map<number, number>();
    for (const k of [40, 20, 60, 10, 30, 50, 70, 55]) h.set(k, t.insert(k, k, k));
    t.checkInvariants();
    // 40 is the root with two children; its successor 50 sits below 60, with a right child 55.
    t.remove(h.get(40)!);
    t.checkInvariants();
    expect(inOrder(t).map(([k]) => k)).toEqual([10, 20, 30, 50, 55, 60, 70]);
    t.remove(h.get(20)!);
    t.checkInvariants();
    expect(inOrder(t).map(([k]) => k)).toEqual([10, 30, 50, 55, 60, 70]);
  });

  it('reuses freed handles and rejects stale ones', () => {
    const t = new RbTree(4);
    const a = t.insert(1, 1, 1);
    const b = t.insert(2, 2, 2);
    t.insert(3, 3, 3);
    t.remove(b);
    expect(() => t.remove(b)).toThrow(RangeError);
    expect(() => t.replaceValue(b, 9)).toThrow(RangeError);
    expect(() => t.remove(0)).toThrow(RangeError);
    expect(() => t.remove(99)).toThrow(RangeError);
    const c = t.insert(5, 5, 5);
    expect(c).toBe(b);
    t.remove(a);
    const d = t.insert(0, 0, 0);
    expect(d).toBe(a);
    t.checkInvariants();
    expect(inOrder(t)).toEqual([
      [0, 0],
      [3, 3],
      [5, 5],
    ]);
  });

  it('grows beyond its initial capacity without renumbering handles', () => {
    const t = new RbTree(2, true);
    expect(t.capacity).toBe(2);
    const handles: number[] = [];
    for (let i = 0; i < 100; i++) handles.push(t.insert(i * 10, i * 10 + 15, i));
    expect(t.capacity).toBeGreaterThanOrEqual(100);
    t.checkInvariants();
    for (let i = 0; i < 100; i++) {
      const h = handles[i]!;
      expect(t.key(h)).toBe(i * 10);
      expect(t.last(h)).toBe(i * 10 + 15);
      expect(t.value(h)).toBe(i);
    }
    expect(overlaps(t, 25, 25).map((n) => t.value(n))).toEqual([1, 2]);
  });

  it('keeps equal keys in insertion order (ties go right)', () => {
    const t = new RbTree();
    const hs: number[] = [];
    for (let v = 0; v < 20; v++) hs.push(t.insert(7, 7, v));
    t.insert(3, 3, 100);
    t.insert(9, 9, 101);
    t.checkInvariants();
    expect(inOrder(t).map(([, v]) => v)).toEqual([100, ...Array.from({ length: 20 }, (_, v) => v), 101]);
    // floor lands on the last inserted of the equal keys
    expect(t.value(t.floor(7))).toBe(19);
    for (const v of [3, 10, 0, 19]) t.remove(hs[v]!);
    t.checkInvariants();
    expect(inOrder(t).map(([, v]) => v)).toEqual([100, 1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 101]);
  });

  it('replaceValue swaps the value in place', () => {
    const t = new RbTree();
    const h = t.insert(42, 50, 1);
    t.insert(10, 10, 2);
    t.replaceValue(h, 77);
    expect(t.value(t.floor(45))).toBe(77);
    expect(t.key(h)).toBe(42);
    expect(t.last(h)).toBe(50);
    t.checkInvariants();
  });

  it('clear empties the tree and restarts handles', () => {
    const t = new RbTree(4, true);
    for (let i = 0; i < 10; i++) t.insert(i, i + 1, i);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.first()).toBe(0);
    t.checkInvariants();
    expect(t.insert(5, 6, 0)).toBe(1);
    t.checkInvariants();
  });

  it('handles keys up to 2^53', () => {
    const t = new RbTree(4, true);
    const big = 2 ** 53;
    t.insert(big - 2, big, 1);
    t.insert(2 ** 45, 2 ** 45 + 511, 2);
    t.insert(0, 0, 3);
    t.checkInvariants();
    expect(t.value(t.floor(big - 1))).toBe(1);
    expect(t.value(t.floor(big - 3))).toBe(2);
    expect(overlaps(t, big, big).map((n) => t.value(n))).toEqual([1]);
  });

  it('rejects NaN, negative and empty-interval inserts', () => {
    const t = new RbTree(4, true);
    expect(() => t.insert(Number.NaN, 1, 0)).toThrow(RangeError);
    expect(() => t.insert(-1, 1, 0)).toThrow(RangeError);
    expect(() => t.insert(5, 4, 0)).toThrow(RangeError);
    expect(t.size).toBe(0);
    t.checkInvariants();
    // The unaugmented tree treats `last` as payload only.
    new RbTree(4, false).insert(5, 4, 0);
  });

  it('checkInvariants detects corruption', () => {
    const t = new RbTree(8, true);
    for (let i = 0; i < 8; i++) t.insert(i, i, i);
    t.checkInvariants();
    // Reach into the pool to break the augmentation and then the ordering.
    const raw = t as unknown as { subtreeLast: Float64Array; keys: Float64Array; colours: Uint8Array };
    const saved = raw.subtreeLast[3]!;
    raw.subtreeLast[3] = 1000;
    expect(() => t.checkInvariants()).toThrow(/augment/);
    raw.subtreeLast[3] = saved;
    const first = t.first();
    raw.keys[first] = 1e9;
    expect(() => t.checkInvariants()).toThrow(/bst/);
  });
});

describe('RbTree interval queries', () => {
  it('finds overlaps in increasing start order with inclusive bounds', () => {
    const t = new RbTree(8, true);
    const iv: Array<[number, number]> = [
      [0, 9],
      [5, 5],
      [10, 19],
      [15, 40],
      [20, 29],
      [20, 21],
      [35, 35],
      [50, 100],
    ];
    for (const [i, [s, l]] of iv.entries()) t.insert(s, l, i);
    t.checkInvariants();
    const q = (s: number, l: number): number[] => overlaps(t, s, l).map((n) => t.value(n));
    expect(q(9, 10)).toEqual([0, 2]);
    expect(q(5, 5)).toEqual([0, 1]);
    expect(q(30, 34)).toEqual([3]);
    expect(q(21, 21)).toEqual([3, 4, 5]);
    expect(q(41, 49)).toEqual([]);
    expect(q(100, 1000)).toEqual([7]);
    expect(q(101, 1000)).toEqual([]);
    expect(q(0, 1000)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('keeps subtree-last right after removing the interval that defined it', () => {
    const t = new RbTree(8, true);
    const long = t.insert(10, 1000, 0);
    const hs = [long];
    for (let i = 1; i < 16; i++) hs.push(t.insert(i * 20, i * 20 + 5, i));
    expect(overlaps(t, 900, 900).map((n) => t.value(n))).toEqual([0]);
    t.remove(long);
    t.checkInvariants();
    expect(overlaps(t, 900, 900)).toEqual([]);
    expect(overlaps(t, 45, 61).map((n) => t.value(n))).toEqual([2, 3]);
  });
});

function parentOf(t: RbTree, n: number): number {
  return (t as unknown as { parents: Int32Array }).parents[n]!;
}

// ---- property tests ------------------------------------------------------------------------

type Op = { kind: 'insert'; key: number; len: number } | { kind: 'remove'; pick: number } | { kind: 'probe'; key: number };

const KEY_SPACE = 400;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('insert' as const), key: fc.nat(KEY_SPACE), len: fc.nat(60) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('probe' as const), key: fc.nat(KEY_SPACE) }) },
);

interface ModelEntry {
  key: number;
  last: number;
  value: number;
  handle: number;
}

/** Naive floor over a sorted model: greatest key <= k, last among equals. */
function modelFloor(model: readonly ModelEntry[], k: number): ModelEntry | undefined {
  let best: ModelEntry | undefined;
  for (const e of model) if (e.key <= k) best = e;
  return best;
}

function checkAgainstModel(t: RbTree, model: readonly ModelEntry[], probe: number): void {
  t.checkInvariants();
  expect(t.size).toBe(model.length);
  expect(inOrder(t)).toEqual(model.map((e) => [e.key, e.value]));
  for (const k of [probe, probe - 1, probe + 1, -1, KEY_SPACE + 1]) {
    const want = modelFloor(model, k);
    const got = t.floor(k);
    expect(got).toBe(want?.handle ?? 0);
    const above = model.find((e) => e.key > k);
    expect(t.ceilingAbove(k)).toBe(above?.handle ?? 0);
  }
}

describe('RbTree properties', () => {
  it('matches a sorted-array model under random insert/remove (unique keys, gfn_tree style)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200, size: 'max' }), fc.nat(KEY_SPACE), (ops, probe) => {
        const t = new RbTree(4, false);
        const model: ModelEntry[] = [];
        let nextValue = 0;
        for (const op of ops) {
          if (op.kind === 'insert') {
            if (model.some((e) => e.key === op.key)) continue; // gfn_tree never holds duplicates
            const value = nextValue++;
            const handle = t.insert(op.key, op.key + op.len, value);
            const at = model.findIndex((e) => e.key > op.key);
            const entry = { key: op.key, last: op.key + op.len, value, handle };
            if (at < 0) model.push(entry);
            else model.splice(at, 0, entry);
          } else if (op.kind === 'remove') {
            if (model.length === 0) continue;
            const [gone] = model.splice(op.pick % model.length, 1);
            t.remove(gone!.handle);
          }
          checkAgainstModel(t, model, op.kind === 'probe' ? op.key : probe);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('matches the model with duplicate keys, both flavours', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200, size: 'max' }), fc.boolean(), fc.nat(KEY_SPACE), (ops, augmented, probe) => {
        const t = new RbTree(1, augmented);
        const model: ModelEntry[] = [];
        let nextValue = 0;
        for (const op of ops) {
          if (op.kind === 'insert') {
            const key = op.key % 40; // force many ties
            const value = nextValue++;
            const handle = t.insert(key, key + op.len, value);
            const at = model.findIndex((e) => e.key > key); // stable: after existing equals
            const entry = { key, last: key + op.len, value, handle };
            if (at < 0) model.push(entry);
            else model.splice(at, 0, entry);
          } else if (op.kind === 'remove') {
            if (model.length === 0) continue;
            const [gone] = model.splice(op.pick % model.length, 1);
            t.remove(gone!.handle);
          }
          checkAgainstModel(t, model, (op.kind === 'probe' ? op.key : probe) % 40);
          expect(reverseOrder(t)).toEqual(model.map((e) => e.key).reverse());
        }
      }),
      { numRuns: 300 },
    );
  });

  it('overlap queries agree with @flatten-js/interval-tree and a naive filter', () => {
    const queryArb = fc.tuple(fc.nat(KEY_SPACE + 80), fc.nat(80)).map(([s, len]) => [s, s + len] as const);
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200, size: 'max' }), fc.array(queryArb, { minLength: 1, maxLength: 4 }), (ops, queries) => {
        const t = new RbTree(2, true);
        const ref = new IntervalTree<number>();
        const model: ModelEntry[] = [];
        let nextValue = 0;
        const checkQueries = (extra: readonly (readonly [number, number])[]): void => {
          for (const [lo, hi] of [...queries, ...extra]) {
            const nodes = overlaps(t, lo, hi);
            const starts = nodes.map((n) => t.key(n));
            for (let i = 1; i < starts.length; i++) expect(starts[i]!).toBeGreaterThanOrEqual(starts[i - 1]!);
            const got = nodes.map((n) => t.value(n)).sort((a, b) => a - b);
            expect(new Set(got).size).toBe(got.length);
            const naive = model
              .filter((e) => e.key <= hi && lo <= e.last)
              .map((e) => e.value)
              .sort((a, b) => a - b);
            const theirs = ref.search([lo, hi]).sort((a, b) => a - b);
            expect(got).toEqual(naive);
            expect(got).toEqual(theirs);
          }
        };
        for (const op of ops) {
          if (op.kind === 'insert') {
            const value = nextValue++;
            const last = op.key + op.len;
            const handle = t.insert(op.key, last, value);
            ref.insert([op.key, last], value);
            model.push({ key: op.key, last, value, handle });
          } else if (op.kind === 'remove') {
            if (model.length === 0) continue;
            const [gone] = model.splice(op.pick % model.length, 1);
            t.remove(gone!.handle);
            ref.remove([gone!.key, gone!.last], gone!.value);
          }
          t.checkInvariants();
          expect(ref.size).toBe(model.length);
          checkQueries(op.kind === 'probe' ? [[op.key, op.key]] : []);
        }
      }),
      { numRuns: 300 },
    );
  });
});
