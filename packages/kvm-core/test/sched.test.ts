/** The concurrency engine itself: scheduler, primitives, explore. */
import { describe, expect, it } from 'vitest';
import { DeadlockError, Mutex, RwLock, Scheduler, Srcu, explore, formatTrace, point, runSync, type Scenario, type Steps } from '../src/sched/index.js';

const P = point('between read and write');

function counterScenario(locked: boolean): Scenario {
  return {
    name: locked ? 'locked counter' : 'racy counter',
    description: 'two actors increment a shared counter',
    setup() {
      const shared = { n: 0 };
      const m = new Mutex('m');
      function* inc(): Steps {
        if (locked) yield* m.lock();
        const v = shared.n;
        yield P;
        shared.n = v + 1;
        if (locked) m.unlock();
      }
      return {
        actors: [
          { name: 'a', steps: inc() },
          { name: 'b', steps: inc() },
        ],
        check: () => {
          if (shared.n !== 2) throw new Error(`lost update: n = ${shared.n}`);
        },
        describeState: () => `n=${shared.n}`,
      };
    },
  };
}

describe('explore', () => {
  it('finds the lost update with one preemption and returns a readable, replayable trace', () => {
    const r = explore(counterScenario(false), { preemptionBound: 2 });
    expect(r.failure?.message).toMatch(/lost update/);
    expect(r.failure?.preemptions).toBe(1);
    const text = formatTrace(r.failure!);
    expect(text).toMatch(/a +→ between read and write/);
    // replaying the choices reproduces the failure
    const inst = counterScenario(false).setup();
    const s = new Scheduler();
    for (const a of inst.actors) s.spawn(a.name, a.steps);
    s.run({ prefix: r.failure!.choices });
    expect(() => inst.check()).toThrow(/lost update/);
  });

  it('proves the locked counter correct within the bound (every schedule explored)', () => {
    const r = explore(counterScenario(true), { preemptionBound: 3 });
    expect(r.failure).toBeUndefined();
    expect(r.complete).toBe(true);
    expect(r.schedules).toBeGreaterThan(2);
  });

  it('random mode is deterministic for a seed', () => {
    const a = explore(counterScenario(false), { mode: 'random', seed: 7, maxSchedules: 50 });
    const b = explore(counterScenario(false), { mode: 'random', seed: 7, maxSchedules: 50 });
    expect(a.failure?.choices).toEqual(b.failure?.choices);
    expect(a.schedules).toBe(b.schedules);
  });

  it('reports an AB/BA deadlock with the stuck actors and what they wait for', () => {
    const scenario: Scenario = {
      name: 'abba',
      description: 'lock order inversion',
      setup() {
        const A = new Mutex('A');
        const B = new Mutex('B');
        function* ab(x: Mutex, y: Mutex): Steps {
          yield* x.lock();
          yield* y.lock();
          y.unlock();
          x.unlock();
        }
        return { actors: [{ name: 't1', steps: ab(A, B) }, { name: 't2', steps: ab(B, A) }], check() {} };
      },
    };
    const r = explore(scenario, { preemptionBound: 1 });
    expect(r.failure?.message).toMatch(/deadlock: t1 blocked at "lock B" waiting for B \(held by t2\); t2 blocked at "lock A" waiting for A \(held by t1\)/);
  });
});

describe('primitives', () => {
  it('runSync reports a wait that can never be satisfied', () => {
    const m = new Mutex('leaked');
    runSync(m.lock());
    expect(() => runSync(m.lock())).toThrow(/recursive lock/);
    const other = new Mutex('x');
    other.owner = { id: 9, name: 'ghost' };
    expect(() => runSync(other.lock())).toThrow(DeadlockError);
  });

  it('rwlock: readers share, a writer waits for them', () => {
    const l = new RwLock('rw');
    const order: string[] = [];
    const s = new Scheduler();
    s.spawn('r1', (function* () { yield* l.readLock(); order.push('r1 in'); yield point('reading'); order.push('r1 out'); l.readUnlock(); })());
    s.spawn('w', (function* () { yield* l.writeLock(); order.push('w in'); l.writeUnlock(); })());
    s.spawn('r2', (function* () { yield* l.readLock(); order.push('r2 in'); l.readUnlock(); })());
    // r1 takes the read lock; w cannot enter while r1 reads, r2 can
    const res = s.run({ prefix: [0, 0, 1, 2, 2] });
    expect(res.error).toBeUndefined();
    expect(order.indexOf('w in')).toBeGreaterThan(order.indexOf('r1 out'));
    expect(order.indexOf('r2 in')).toBeLessThan(order.indexOf('r1 out'));
  });

  it('srcu: synchronize waits for readers that started before it, not after', () => {
    const srcu = new Srcu('kvm->srcu');
    const log: string[] = [];
    const s = new Scheduler();
    s.spawn('old-reader', (function* () { const t = srcu.readLock(); log.push('old in'); yield point('read'); yield point('read more'); log.push('old out'); srcu.readUnlock(t); })());
    s.spawn('updater', (function* () { yield point('publish'); yield* srcu.synchronize(); log.push('grace period over'); })());
    s.spawn('new-reader', (function* () { yield point('later'); const t = srcu.readLock(); log.push('new in'); yield point('read'); yield point('read'); yield point('read'); log.push('new out'); srcu.readUnlock(t); })());
    // old reader enters, updater starts synchronize, new reader enters after it
    // old reader in; updater publishes and starts synchronize; new reader in; old reader out;
    // then the updater must get through while the new reader is still inside
    const res = s.run({ prefix: [0, 1, 1, 2, 2, 0, 0, 1] });
    expect(res.error).toBeUndefined();
    expect(log.indexOf('grace period over')).toBeGreaterThan(log.indexOf('old out'));
    expect(log.indexOf('grace period over')).toBeLessThan(log.indexOf('new out'));
  });

  it('srcu: sections close in any order; a stuck grace period names the readers it waits for', () => {
    const srcu = new Srcu('kvm->srcu');
    const a = srcu.readLock();
    const b = srcu.readLock();
    const c = srcu.readLock();
    srcu.readUnlock(b); // out of order: the oldest (a) still holds the grace period
    expect(srcu.readers).toBe(2);
    expect(() => srcu.readUnlock(b)).toThrow(/closed section/);
    srcu.readUnlock(a);
    srcu.readUnlock(c);
    expect(srcu.readers).toBe(0);
    const never = new Mutex('never');
    never.owner = { id: 9, name: 'ghost' };
    const s = new Scheduler();
    s.spawn('reader', (function* () { srcu.readLock(); yield* never.lock(); })());
    s.spawn('updater', (function* () { yield* srcu.synchronize(); })());
    const res = s.run({ prefix: [0, 1] });
    expect(res.error).toBeInstanceOf(DeadlockError);
    expect((res.error as Error).message).toMatch(/updater blocked at "synchronize_srcu kvm->srcu" waiting for readers of kvm->srcu older than the grace period \(reader\)/);
  });
});
