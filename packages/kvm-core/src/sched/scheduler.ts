/**
 * The deterministic scheduler: runs actors (generators) one step at a time, choosing who runs
 * next from an explicit choice list, then a policy (keep running the current actor, or pick at
 * random from a seeded PRNG). Every run records its choices, so any interleaving replays exactly.
 */
import { DeadlockError, SCHED, setCurrentActor, type Actor, type Steps, type YieldPoint } from './steps.js';
import { mulberry32 } from './prng.js';

export interface TraceStep {
  /** 0-based step number */
  readonly step: number;
  readonly actor: string;
  /** the point the actor yielded at (where it stopped), or "done" */
  readonly at: string;
  /** scenario-provided values after the step, e.g. "seq=2 in_progress=0" */
  readonly state?: string;
}

interface ActorState extends Actor {
  gen: Steps<unknown>;
  /** the point it is stopped at (null before its first step) */
  pending: YieldPoint | null;
  done: boolean;
}

export type SchedulePolicy = 'continue' | 'random';

export interface RunOptions {
  /** Choices to follow first: actor indices, one per step. */
  prefix?: readonly number[];
  /** After the prefix: keep running the current actor when it can ('continue'), or pick randomly. Default 'continue'. */
  policy?: SchedulePolicy;
  seed?: number;
  /** Abort a run that takes more steps than this (livelock). Default 100000. */
  maxSteps?: number;
  /** Called after every step to describe the state for the trace. */
  describeState?: () => string;
}

export interface RunResult {
  /** the actor chosen at each step */
  readonly choices: number[];
  /** the runnable actors at each step (for exploration) */
  readonly runnable: number[][];
  /** number of preemptions: switches away from an actor that could have continued */
  readonly preemptions: number;
  readonly trace: TraceStep[];
  /** set when the run ended in a deadlock, a livelock or an exception thrown by an actor */
  readonly error?: unknown;
}

export class Scheduler {
  private readonly actors: ActorState[] = [];

  /** Add an actor. Actors are numbered in the order they are spawned. */
  spawn(name: string, steps: Steps<unknown>): Actor {
    const a: ActorState = { id: this.actors.length + 1, name, gen: steps, pending: null, done: false };
    this.actors.push(a);
    return a;
  }

  private runnableIndices(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.actors.length; i++) {
      const a = this.actors[i]!;
      if (a.done) continue;
      const w = a.pending?.wait ?? null;
      if (w === null || w.ready()) out.push(i);
    }
    return out;
  }

  /** Run every actor to completion under the options' choices. */
  run(options: RunOptions = {}): RunResult {
    const prefix = options.prefix ?? [];
    const policy = options.policy ?? 'continue';
    const rand = mulberry32(options.seed ?? 1);
    const maxSteps = options.maxSteps ?? 100_000;
    const choices: number[] = [];
    const runnableLog: number[][] = [];
    const trace: TraceStep[] = [];
    let preemptions = 0;
    let last = -1;
    const wasPreemptive = SCHED.preemptive;
    SCHED.preemptive = true;
    try {
      for (let step = 0; ; step++) {
        const runnable = this.runnableIndices();
        if (runnable.length === 0) {
          const stuck = this.actors.filter((a) => !a.done);
          if (stuck.length === 0) break;
          throw new DeadlockError(stuck.map((a) => ({ actor: a.name, at: a.pending?.label ?? 'start', waitingFor: a.pending?.wait?.describe() ?? '?' })));
        }
        if (step >= maxSteps) throw new Error(`livelock: no completion after ${maxSteps} steps`);
        let pick: number;
        if (step < prefix.length) {
          pick = prefix[step]!;
          if (!runnable.includes(pick)) throw new Error(`replay: choice ${pick} at step ${step} is not runnable (runnable: ${runnable.join(',')})`);
        } else if (policy === 'random') {
          pick = runnable[Math.floor(rand() * runnable.length)]!;
        } else {
          pick = runnable.includes(last) ? last : runnable[0]!;
        }
        if (last !== -1 && pick !== last && runnable.includes(last)) preemptions++;
        choices.push(pick);
        runnableLog.push(runnable);
        last = pick;
        const a = this.actors[pick]!;
        setCurrentActor(a);
        let r: IteratorResult<YieldPoint, unknown>;
        try {
          r = a.gen.next();
        } finally {
          setCurrentActor(null);
        }
        if (r.done) {
          a.done = true;
          a.pending = null;
        } else a.pending = r.value;
        const state = options.describeState?.();
        trace.push(state === undefined ? { step, actor: a.name, at: r.done ? 'done' : r.value.label } : { step, actor: a.name, at: r.done ? 'done' : r.value.label, state });
      }
      return { choices, runnable: runnableLog, preemptions, trace };
    } catch (error) {
      // Unwind the others as themselves (their finally blocks release what they hold); a failure
      // while unwinding must not hide the error that ended the run.
      for (const a of this.actors) {
        if (a.done) continue;
        setCurrentActor(a);
        try {
          a.gen.return(undefined);
        } catch {
          // ignored: the run already failed
        } finally {
          setCurrentActor(null);
        }
      }
      return { choices, runnable: runnableLog, preemptions, trace, error };
    } finally {
      SCHED.preemptive = wasPreemptive;
    }
  }
}
