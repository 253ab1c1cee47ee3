/**
 * Preemptible code: every operation that can interleave with another actor is a generator that
 * yields a {@link YieldPoint} where another CPU could run — before taking a lock, between reading
 * shared state and acting on it. A point carries an optional {@link WaitCondition}: the actor
 * cannot continue until it holds.
 *
 * The same generator runs alone through {@link runSync} (the cheap path: no scheduler, just
 * stepping) or as an actor under the deterministic {@link Scheduler}.
 */

/** What a blocked actor waits for. */
export interface WaitCondition {
  ready(): boolean;
  /** e.g. "mutex slots_lock held by vmm" */
  describe(): string;
}

/** A preemption point. Create them once per call site (they are shared, immutable). */
export interface YieldPoint {
  readonly label: string;
  readonly wait: WaitCondition | null;
}

/** A preemptible computation returning T. */
export type Steps<T = void> = Generator<YieldPoint, T, void>;

/**
 * Whether a scheduler is running actors. Outside one (the single-threaded path, {@link runSync})
 * nothing can preempt, so code yields only when it must wait — and a suspended generator chain
 * is the main cost of preemptible code, so skipping pointless yields keeps one operation cheap.
 * Write `if (SCHED.preemptive) yield P;` for a plain point.
 */
export const SCHED: { preemptive: boolean } = { preemptive: false };

/** A plain preemption point: another actor may run here. */
export function point(label: string): YieldPoint {
  return { label, wait: null };
}

/** A point where the actor waits until `wait` is ready. */
export function waitPoint(label: string, wait: WaitCondition): YieldPoint {
  return { label, wait };
}

/** Thrown when actors can no longer make progress. */
export class DeadlockError extends Error {
  /** The stuck actors and where they wait. */
  readonly stuck: readonly { actor: string; at: string; waitingFor: string }[];
  constructor(stuck: readonly { actor: string; at: string; waitingFor: string }[]) {
    super(`deadlock: ${stuck.map((s) => `${s.actor} blocked at "${s.at}" waiting for ${s.waitingFor}`).join('; ')}`);
    this.name = 'DeadlockError';
    this.stuck = stuck;
  }
}

/**
 * Run a computation to completion on the calling thread, with no other actor. A wait that is
 * not ready can never become ready here, so it is a deadlock (a lock leaked, an invalidation
 * left open).
 */
export function runSync<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    const w = r.value.wait;
    if (w !== null && !w.ready()) {
      steps.return(undefined as never);
      throw new DeadlockError([{ actor: currentActor().name, at: r.value.label, waitingFor: w.describe() }]);
    }
  }
}

/** An actor: a named thread of the model (a vCPU, the VMM's ioctl thread, host reclaim…). */
export interface Actor {
  readonly id: number;
  readonly name: string;
}

const MAIN: Actor = Object.freeze({ id: 0, name: 'main' });
let current: Actor = MAIN;

/** The actor running now (the scheduler sets it; `main` outside any scheduler). */
export function currentActor(): Actor {
  return current;
}

/** @internal the scheduler's hook */
export function setCurrentActor(a: Actor | null): void {
  current = a ?? MAIN;
}
