/**
 * A lean actor driver for the perf-test workloads: the host (VMM) thread and the vCPU thread run
 * as preemptible actors over the model, interleaved deterministically, with the time each actor
 * spends stepping accounted separately.
 *
 * Why not `Scheduler.run()` of @kvmsim/kvm-core/sched: it records every step (choice, runnable
 * set, trace entry) for replay, which is what exploration needs and what a benchmark must not
 * measure — a workload takes millions of steps. The semantics are the same as its 'continue'
 * policy with seeded preemptions: an actor runs until it blocks on a wait condition, finishes, or
 * is preempted (with probability 1/PREEMPT_ODDS at each step, from a seeded generator).
 */
import { DeadlockError, SCHED, setCurrentActor, type Actor, type Steps, type YieldPoint } from '@kvmsim/kvm-core/sched';
import { mulberry32, type Prng } from '../prng.js';
import { nowNs } from '../timing.js';

/** One preemption every this many steps on average. */
const PREEMPT_ODDS = 64;

interface Running extends Actor {
  readonly gen: Steps<unknown>;
  pending: YieldPoint | null;
  done: boolean;
  /** Time spent stepping this actor, ns. */
  ns: number;
}

export interface ActorRun {
  /** Time each actor spent stepping, ns, in spawn order. */
  readonly ns: number[];
  /** Wall time of the whole run, ns. */
  readonly totalNs: number;
}

function runnable(a: Running): boolean {
  if (a.done) return false;
  const w = a.pending?.wait ?? null;
  return w === null || w.ready();
}

/**
 * Run every actor to completion. Actors are numbered from 1 in `actors` order; the first one
 * runs first. Errors thrown by an actor propagate after the others are unwound.
 */
export function runActors(actors: readonly { name: string; steps: Steps<unknown> }[], seed: number): ActorRun {
  const rng: Prng = mulberry32(seed);
  const list: Running[] = actors.map((a, i) => ({ id: i + 1, name: a.name, gen: a.steps, pending: null, done: false, ns: 0 }));
  const wasPreemptive = SCHED.preemptive;
  SCHED.preemptive = true;
  const start = nowNs();
  let cur = 0;
  try {
    for (;;) {
      let a = list[cur]!;
      if (!runnable(a)) {
        // The current actor blocked or finished: the next runnable one, in order.
        let next = -1;
        for (let k = 1; k <= list.length; k++) {
          const j = (cur + k) % list.length;
          if (runnable(list[j]!)) {
            next = j;
            break;
          }
        }
        if (next < 0) {
          const stuck = list.filter((x) => !x.done);
          if (stuck.length === 0) break;
          throw new DeadlockError(stuck.map((x) => ({ actor: x.name, at: x.pending?.label ?? 'start', waitingFor: x.pending?.wait?.describe() ?? '?' })));
        }
        cur = next;
        a = list[cur]!;
      }
      // A slice: step `a` until it blocks, finishes or is preempted; timed as a whole.
      setCurrentActor(a);
      const t0 = nowNs();
      try {
        for (;;) {
          const r = a.gen.next();
          if (r.done) {
            a.done = true;
            a.pending = null;
            break;
          }
          a.pending = r.value;
          const w = r.value.wait;
          if (w !== null && !w.ready()) break;
          if (rng() * PREEMPT_ODDS < 1) {
            cur = (cur + 1) % list.length;
            break;
          }
        }
      } finally {
        a.ns += Number(nowNs() - t0);
        setCurrentActor(null);
      }
    }
  } catch (error) {
    for (const x of list) {
      if (x.done) continue;
      setCurrentActor(x);
      try {
        x.gen.return(undefined);
      } catch {
        // the run already failed
      } finally {
        setCurrentActor(null);
      }
    }
    throw error;
  } finally {
    SCHED.preemptive = wasPreemptive;
  }
  return { ns: list.map((x) => x.ns), totalNs: Number(nowNs() - start) };
}

/** A host↔guest flag handshake (the selftest's sync area), as wait points of the model. */
export class SyncArea {
  /** guest_perform_sync() sets it; host_perform_sync() clears it. */
  private syncFlag = false;
  /** make_guest_exit() */
  exit = false;
  private readonly guestWait: YieldPoint;
  private readonly hostWait: YieldPoint;

  constructor() {
    this.guestWait = {
      label: 'guest: wait for the host sync',
      wait: { ready: () => !this.syncFlag || this.exit, describe: () => 'the host to take the sync' },
    };
    this.hostWait = {
      label: 'host: wait for the guest sync',
      wait: { ready: () => this.syncFlag, describe: () => 'the guest to reach its sync point' },
    };
  }

  /** guest_perform_sync(): announce, wait until the host took it; false once the host said exit. */
  *guestSync(): Steps<boolean> {
    if (this.exit) return false;
    this.syncFlag = true;
    yield this.guestWait;
    return !this.exit;
  }

  /** host_perform_sync(): wait for the guest's announcement and take it. */
  *hostSync(): Steps {
    yield this.hostWait;
    this.syncFlag = false;
  }
}
