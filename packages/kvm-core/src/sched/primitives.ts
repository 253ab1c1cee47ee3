/**
 * Synchronisation primitives with kernel semantics, as preemptible steps. Acquiring is one
 * yield point whose wait condition is "the lock is available", so the scheduler may run another
 * actor first, and only resumes the acquirer when it can take the lock.
 *
 * Simplifications (stated once): no fairness or writer preference in rwlocks; spinlocks and
 * mutexes differ only in name (the model has no sleeping vs spinning cost).
 */
import { SCHED, currentActor, waitPoint, type Actor, type Steps, type WaitCondition, type YieldPoint } from './steps.js';

function who(a: Actor | null): string {
  return a === null ? 'nobody' : a.name;
}

/** struct mutex / spinlock_t: one owner. */
export class Mutex {
  readonly name: string;
  owner: Actor | null = null;
  private readonly lockPoint: YieldPoint;

  constructor(name: string) {
    this.name = name;
    const free: WaitCondition = { ready: () => this.owner === null, describe: () => `${this.name} (held by ${who(this.owner)})` };
    this.lockPoint = waitPoint(`lock ${name}`, free);
  }

  *lock(): Steps {
    if (this.owner === currentActor()) throw new Error(`${this.name}: recursive lock by ${currentActor().name}`);
    if (SCHED.preemptive || this.owner !== null) yield this.lockPoint;
    this.owner = currentActor();
  }

  /**
   * Take the lock without yielding when nothing can preempt and it is free (the single-threaded
   * path); false means "use `yield* lock()`". Saves a generator per uncontended acquire.
   */
  tryLockFast(): boolean {
    if (SCHED.preemptive || this.owner !== null) return false;
    this.owner = currentActor();
    return true;
  }

  unlock(): void {
    if (this.owner !== currentActor()) throw new Error(`${this.name}: unlock by ${currentActor().name}, held by ${who(this.owner)}`);
    this.owner = null;
  }

  isHeld(): boolean {
    return this.owner !== null;
  }
}

/** rwlock_t: many readers or one writer. */
export class RwLock {
  readonly name: string;
  writer: Actor | null = null;
  readers = 0;
  private readonly writePoint: YieldPoint;
  private readonly readPoint: YieldPoint;

  constructor(name: string) {
    this.name = name;
    this.writePoint = waitPoint(`write_lock ${name}`, {
      ready: () => this.writer === null && this.readers === 0,
      describe: () => `${this.name} for write (writer ${who(this.writer)}, ${this.readers} readers)`,
    });
    this.readPoint = waitPoint(`read_lock ${name}`, {
      ready: () => this.writer === null,
      describe: () => `${this.name} for read (writer ${who(this.writer)})`,
    });
  }

  *writeLock(): Steps {
    if (SCHED.preemptive || this.writer !== null || this.readers !== 0) yield this.writePoint;
    this.writer = currentActor();
  }

  writeUnlock(): void {
    if (this.writer !== currentActor()) throw new Error(`${this.name}: write_unlock by ${currentActor().name}, held by ${who(this.writer)}`);
    this.writer = null;
  }

  /** {@link Mutex.tryLockFast} for the write side. */
  tryWriteLockFast(): boolean {
    if (SCHED.preemptive || this.writer !== null || this.readers !== 0) return false;
    this.writer = currentActor();
    return true;
  }

  *readLock(): Steps {
    if (SCHED.preemptive || this.writer !== null) yield this.readPoint;
    this.readers++;
  }

  readUnlock(): void {
    if (this.readers <= 0) throw new Error(`${this.name}: read_unlock without readers`);
    this.readers--;
  }
}

/**
 * kvm->mmu_lock: an rwlock or a spinlock per the architecture (KVM_HAVE_MMU_RWLOCK). The core's
 * KVM_MMU_LOCK() is {@link write}; `read` exists only for rwlock architectures' fault paths.
 * @see virt/kvm/kvm_mm.h KVM_MMU_LOCK() (6.18)
 */
export class MmuLock {
  readonly flavour: 'rwlock' | 'spinlock';
  private readonly rw: RwLock;

  constructor(flavour: 'rwlock' | 'spinlock') {
    this.flavour = flavour;
    this.rw = new RwLock('mmu_lock');
  }

  /** KVM_MMU_LOCK(): write_lock() or spin_lock(). */
  write(): Steps {
    return this.rw.writeLock();
  }

  writeUnlock(): void {
    this.rw.writeUnlock();
  }

  /** Take the write side without yielding if that is possible (see {@link Mutex.tryLockFast}). */
  tryWriteFast(): boolean {
    return this.rw.tryWriteLockFast();
  }

  /** read_lock(): only an rwlock has a read side. */
  read(): Steps {
    if (this.flavour !== 'rwlock') throw new Error('mmu_lock is a spinlock on this architecture: no read side');
    return this.rw.readLock();
  }

  readUnlock(): void {
    this.rw.readUnlock();
  }

  /** Held in either mode (lockdep_assert_held()). */
  isHeld(): boolean {
    return this.rw.writer !== null || this.rw.readers > 0;
  }

  isWriteHeld(): boolean {
    return this.rw.writer !== null;
  }
}

/**
 * Sleepable RCU: read-side sections are tokens; synchronize waits only for readers that began
 * before it started.
 * @see kernel/rcu/srcutree.c (semantics only)
 */
export class Srcu {
  readonly name: string;
  private next = 1;
  // The open read-side sections in token order (oldest first): tokens[0..count) and their actors.
  // Not a Map: V8 reallocates a Map's table on every empty ↔ one-entry transition, which made
  // srcu_read_unlock() the costliest step of a vCPU fault.
  private readonly tokens: number[] = [];
  private readonly actors: (Actor | undefined)[] = [];
  private count = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** srcu_read_lock(): returns the token to pass to {@link readUnlock}. */
  readLock(): number {
    const t = this.next++;
    this.tokens[this.count] = t;
    this.actors[this.count] = currentActor();
    this.count++;
    return t;
  }

  readUnlock(token: number): void {
    let i = this.count - 1; // sections mostly close newest first
    while (i >= 0 && this.tokens[i] !== token) i--;
    if (i < 0) throw new Error(`${this.name}: srcu_read_unlock of a closed section`);
    for (let j = i + 1; j < this.count; j++) {
      this.tokens[j - 1] = this.tokens[j]!;
      this.actors[j - 1] = this.actors[j];
    }
    this.count--;
    this.actors[this.count] = undefined;
  }

  /** Open read-side sections (for invariants and reports). */
  get readers(): number {
    return this.count;
  }

  /** synchronize_srcu(): wait for every reader that started before this call. */
  *synchronize(): Steps {
    const horizon = this.next;
    if (!SCHED.preemptive && this.oldest() >= horizon) return; // no reader to wait for
    yield waitPoint(`synchronize_srcu ${this.name}`, {
      ready: () => this.oldest() >= horizon,
      describe: () => `readers of ${this.name} older than the grace period (${this.actors
        .slice(0, this.count)
        .filter((_, i) => this.tokens[i]! < horizon)
        .map((a) => a?.name ?? '?')
        .join(', ')})`,
    });
  }

  /** Whether {@link synchronize} may have to wait (or a scheduler could preempt it). */
  mustWait(): boolean {
    return SCHED.preemptive || this.oldest() < this.next;
  }

  /** The oldest open section's token, or Infinity. */
  private oldest(): number {
    return this.count > 0 ? this.tokens[0]! : Infinity;
  }
}
