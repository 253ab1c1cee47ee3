/**
 * The one error type of kvmsim: a kernel errno with a message that says which rule failed.
 *
 * Identity across package copies: never test with `instanceof` (two copies of kvm-core in one
 * node_modules tree would disagree); use {@link isKvmError}, which checks a `Symbol.for` brand.
 */

/** Errno values (x86-64 Linux, include/uapi/asm-generic/errno-base.h and errno.h). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  EOPNOTSUPP: 95,
} as const;

export type ErrnoName = keyof typeof ERRNO;

const KVM_ERROR_BRAND: symbol = Symbol.for('kvmsim:KvmError');

export class KvmError extends Error {
  /** Symbolic errno, e.g. `'EINVAL'`. Tests assert on this, never on the message. */
  readonly errno: ErrnoName;
  /** The value the ioctl would return: the negative errno, e.g. -22. */
  readonly ret: number;
  constructor(errno: ErrnoName, message: string, options?: { cause?: unknown }) {
    super(`${errno}: ${message}`, options);
    this.name = 'KvmError';
    this.errno = errno;
    this.ret = -ERRNO[errno];
    Object.defineProperty(this, KVM_ERROR_BRAND, { value: true });
  }
}

/** Cross-copy-safe check (see the module comment). */
export function isKvmError(value: unknown): value is KvmError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[KVM_ERROR_BRAND] === true;
}

/** Symbolic name for a negative (or positive) errno value, if it is one kvmsim knows. */
export function errnoName(ret: number): ErrnoName | undefined {
  const n = Math.abs(ret);
  for (const [name, value] of Object.entries(ERRNO)) if (value === n) return name as ErrnoName;
  return undefined;
}

/**
 * Run an ioctl-like call and return 0, or the errno name of the {@link KvmError} it threw
 * (anything else is rethrown). Handy in tests and scripts: `expect(errnoOf(() => …)).toBe('EINVAL')`.
 */
export function errnoOf(fn: () => unknown): 0 | ErrnoName {
  try {
    fn();
    return 0;
  } catch (e) {
    if (isKvmError(e)) return e.errno;
    throw e;
  }
}
