/**
 * Replay protocol v1 (shared/specs/replay-protocol.md): the line codec. Parses input lines into
 * {@link ReplayOp}s and formats {@link ReplayOutput}s; running ops is the executor's job.
 *
 * Parser versus executor. The parser rejects exactly what the protocol calls malformed: not JSON,
 * not an object, no `op`, unknown `op`, a missing required field, a field of the wrong type or
 * outside its type's range (u64, u32, `size` ∈ {1, 2, 4, 8}, the enumerated strings, bitmap hex
 * of whole bytes). A malformed line creates no VM. Everything the protocol states as an op's
 * semantics is left to the executor, which answers EINVAL itself *after* the VM exists:
 * - `vcpu_read`/`vcpu_write`: `gpa` not a multiple of `size`, or not below 2^32;
 * - `host_write`/`vcpu_write`: `value` wider than `size` bytes (see `accessSizeMax()`);
 * - `clear_dirty_log`: `bitmap` length versus `num_pages` (the bytes are kept as given);
 * - `mmap`/`munmap`/`madvise`: alignment and range rules (HostAddressSpace checks them).
 * The difference is observable: a well-formed first line creates the VM implicitly, so a later
 * `create_vm` is EINVAL.
 *
 * Defaults: `create_vm.arch` "x86"; `enable_cap.flags` and `set_user_memory_region.flags` 0;
 * `enable_cap.args` missing elements 0n (at most 4). Unknown extra fields are ignored; `null` is
 * not "missing" (it is a wrong type).
 */

import * as v from 'valibot';
import { ERRNO, type ErrnoName, KvmError } from '../errors.js';
import type { AccessSize } from '../host/page-frames.js';

// =================================================================================================
// Ops
// =================================================================================================

/** The caps `check_extension` may name. */
export type ReplayCapName =
  | 'KVM_CAP_NR_MEMSLOTS'
  | 'KVM_CAP_MULTI_ADDRESS_SPACE'
  | 'KVM_CAP_READONLY_MEM'
  | 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2'
  | 'KVM_CAP_USER_MEMORY2'
  | 'KVM_CAP_SYNC_MMU';

export const REPLAY_CHECK_EXTENSION_CAPS: readonly ReplayCapName[] = [
  'KVM_CAP_NR_MEMSLOTS',
  'KVM_CAP_MULTI_ADDRESS_SPACE',
  'KVM_CAP_READONLY_MEM',
  'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2',
  'KVM_CAP_USER_MEMORY2',
  'KVM_CAP_SYNC_MMU',
];

export interface CreateVmOp {
  op: 'create_vm';
  arch: 'x86';
}
export interface CheckExtensionOp {
  op: 'check_extension';
  cap: ReplayCapName;
}
export interface EnableCapOp {
  op: 'enable_cap';
  cap: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2';
  /** u32 */
  flags: number;
  /** Always 4 elements (missing ones 0n). */
  args: [bigint, bigint, bigint, bigint];
}
export interface MmapOp {
  op: 'mmap';
  addr: bigint;
  length: bigint;
}
export interface MunmapOp {
  op: 'munmap';
  addr: bigint;
  length: bigint;
}
export interface MadviseOp {
  op: 'madvise';
  addr: bigint;
  length: bigint;
  advice: 'DONTNEED';
}
export interface HostWriteOp {
  op: 'host_write';
  addr: bigint;
  size: AccessSize;
  /** Any u64; wider than `size` bytes is the executor's EINVAL. */
  value: bigint;
}
export interface HostReadOp {
  op: 'host_read';
  addr: bigint;
  size: AccessSize;
}
export interface SetUserMemoryRegionOp {
  op: 'set_user_memory_region';
  /** u32: `as_id << 16 | id` */
  slot: number;
  /** u32 */
  flags: number;
  guestPhysAddr: bigint;
  memorySize: bigint;
  userspaceAddr: bigint;
}
export interface VcpuReadOp {
  op: 'vcpu_read';
  gpa: bigint;
  size: AccessSize;
}
export interface VcpuWriteOp {
  op: 'vcpu_write';
  gpa: bigint;
  size: AccessSize;
  value: bigint;
}
export interface GetDirtyLogOp {
  op: 'get_dirty_log';
  /** u32 */
  slot: number;
}
export interface ClearDirtyLogOp {
  op: 'clear_dirty_log';
  /** u32 */
  slot: number;
  firstPage: bigint;
  /** u32 */
  numPages: number;
  /**
   * The bytes as given, or null when the field is absent (a NULL user pointer: legal with
   * num_pages 0, EFAULT otherwise). Their length versus `numPages` is the executor's business.
   */
  bitmap: Uint8Array | null;
}

export type ReplayOp =
  | CreateVmOp
  | CheckExtensionOp
  | EnableCapOp
  | MmapOp
  | MunmapOp
  | MadviseOp
  | HostWriteOp
  | HostReadOp
  | SetUserMemoryRegionOp
  | VcpuReadOp
  | VcpuWriteOp
  | GetDirtyLogOp
  | ClearDirtyLogOp;

export type ReplayOpName = ReplayOp['op'];

export const REPLAY_OPS: readonly ReplayOpName[] = [
  'create_vm',
  'check_extension',
  'enable_cap',
  'mmap',
  'munmap',
  'madvise',
  'host_write',
  'host_read',
  'set_user_memory_region',
  'vcpu_read',
  'vcpu_write',
  'get_dirty_log',
  'clear_dirty_log',
];

// =================================================================================================
// Outputs
// =================================================================================================

export interface ReplayOutput {
  ret: number;
  errno?: string;
  exit?: 'none' | 'mmio';
  value?: string;
  phys_addr?: string;
  len?: number;
  is_write?: boolean;
  data?: string;
  bitmap?: string;
  error?: string;
}

export type ReplayParseResult = { kind: 'skip' } | { kind: 'op'; op: ReplayOp } | { kind: 'error'; output: ReplayOutput };

/** Key order of {@link formatReplayOutput}: `ret`, `errno`, these, any others, `error` last. */
const OUTPUT_KEY_ORDER = ['ret', 'errno', 'exit', 'value', 'phys_addr', 'len', 'is_write', 'data', 'bitmap'] as const;

/** One JSON line (no newline) with keys in a stable order; `undefined` fields are left out. */
export function formatReplayOutput(o: ReplayOutput): string {
  const src = o as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of OUTPUT_KEY_ORDER) if (src[k] !== undefined) out[k] = src[k];
  for (const k of Object.keys(src)) {
    if (k !== 'error' && !(k in out) && src[k] !== undefined) out[k] = src[k];
  }
  if (src['error'] !== undefined) out['error'] = src['error'];
  return JSON.stringify(out);
}

/** The output for a failed op: `{ret: -errno, errno, error}`. */
export function errorOutput(errno: ErrnoName, message: string): ReplayOutput {
  return { ret: -ERRNO[errno], errno, error: message };
}

/** The output for a thrown {@link KvmError}. */
export function kvmErrorOutput(err: KvmError): ReplayOutput {
  return { ret: err.ret, errno: err.errno, error: err.message };
}

/** Protocol comparison: equal JSON objects after removing `error` (and `undefined` fields). */
export function outputsAgree(a: ReplayOutput, b: ReplayOutput): boolean {
  return jsonEqual(withoutError(a), withoutError(b));
}

function withoutError(o: ReplayOutput): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) if (k !== 'error' && val !== undefined) out[k] = val;
  return out;
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(rb, k) && jsonEqual(ra[k], rb[k]));
}

// =================================================================================================
// Hex helpers
// =================================================================================================

/** Lowercase `0x` hex without leading zeros (`"0x0"` for zero). Negative values are a bug. */
export function hex(v: bigint | number): string {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new KvmError('EINVAL', `hex: ${v} is not a safe integer`);
  if (v < 0) throw new KvmError('EINVAL', `hex: ${v} is negative`);
  return `0x${v.toString(16)}`;
}

const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Bitmap bytes in memory order as lowercase hex, two digits a byte. */
export function bitmapToHex(bytes: Uint8Array): string {
  const parts: string[] = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) parts[i] = BYTE_HEX[bytes[i]!]!;
  return parts.join('');
}

const HEX_BYTES_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Inverse of {@link bitmapToHex} (either case). EINVAL unless the string is whole hex bytes. */
export function hexToBitmap(s: string): Uint8Array {
  if (!HEX_BYTES_RE.test(s)) throw new KvmError('EINVAL', 'bitmap must be a hex string with two hex digits per byte');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// =================================================================================================
// Field schemas (valibot). Each leaf accepts `unknown` and reports its own rule as the issue
// message; the object issue path gives the field name.
// =================================================================================================

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 2n ** 32n - 1n;
const DEC_RE = /^-?[0-9]+$/;
const HEX_RE = /^0[xX][0-9a-fA-F]+$/;
const INTEGER_RULE = 'must be a JSON safe integer or a decimal/0x-hex string';

type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

function describe(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
  if (Array.isArray(x)) return 'an array';
  if (x === null) return 'null';
  if (typeof x === 'object') return 'an object';
  return String(x);
}

function toInteger(x: unknown): Checked<bigint> {
  if (typeof x === 'number') {
    if (Number.isSafeInteger(x)) return { ok: true, value: BigInt(x) };
    if (Number.isInteger(x)) {
      return { ok: false, error: `${INTEGER_RULE} (got ${x}, not a safe integer: write integers above 2^53−1 as strings)` };
    }
    return { ok: false, error: `${INTEGER_RULE} (got ${x}, not an integer)` };
  }
  if (typeof x === 'string' && (DEC_RE.test(x) || HEX_RE.test(x))) return { ok: true, value: BigInt(x) };
  return { ok: false, error: `${INTEGER_RULE} (got ${describe(x)})` };
}

function inRange(x: unknown, max: bigint, rule: string): Checked<bigint> {
  const n = toInteger(x);
  if (!n.ok) return n;
  if (n.value < 0n || n.value > max) return { ok: false, error: `${rule} (got ${n.value})` };
  return n;
}

function leaf<T>(check: (x: unknown) => Checked<T>) {
  return v.pipe(
    v.unknown(),
    v.rawTransform<unknown, T>(({ dataset, addIssue, NEVER }) => {
      const r = check(dataset.value);
      if (r.ok) return r.value;
      addIssue({ message: r.error });
      return NEVER;
    }),
  );
}

const u64 = leaf((x) => inRange(x, U64_MAX, 'must be a u64: 0 … 2^64−1'));

const u32 = leaf((x): Checked<number> => {
  const n = inRange(x, U32_MAX, 'must be a u32: 0 … 2^32−1');
  return n.ok ? { ok: true, value: Number(n.value) } : n;
});

const accessSize = leaf((x): Checked<AccessSize> => {
  const n = toInteger(x);
  if (!n.ok) return n;
  const s = n.value;
  if (s === 1n || s === 2n || s === 4n || s === 8n) return { ok: true, value: Number(s) as AccessSize };
  return { ok: false, error: `must be 1, 2, 4 or 8 (got ${s})` };
});

function oneOf<const T extends string>(values: readonly T[]) {
  const rule =
    values.length === 1 ? `must be the string "${values[0]}"` : `must be one of ${values.map((s) => `"${s}"`).join(', ')}`;
  return leaf((x): Checked<T> =>
    typeof x === 'string' && (values as readonly string[]).includes(x)
      ? { ok: true, value: x as T }
      : { ok: false, error: `${rule} (got ${describe(x)})` },
  );
}

const bitmapBytes = leaf((x): Checked<Uint8Array> =>
  typeof x === 'string' && HEX_BYTES_RE.test(x)
    ? { ok: true, value: hexToBitmap(x) }
    : { ok: false, error: `must be a hex string with two hex digits per byte, byte 0 first (got ${describe(x)})` },
);

const ARGS_RULE = 'must be an array of at most 4 u64 values';
const enableCapArgs = v.optional(
  v.pipe(
    v.array(u64, ARGS_RULE),
    v.maxLength(4, (issue) => `${ARGS_RULE} (got ${issue.received} elements)`),
    v.transform((a): [bigint, bigint, bigint, bigint] => [a[0] ?? 0n, a[1] ?? 0n, a[2] ?? 0n, a[3] ?? 0n]),
  ),
  [],
);

const SCHEMAS: { [K in ReplayOpName]: v.GenericSchema<unknown, Extract<ReplayOp, { op: K }>> } = {
  create_vm: v.pipe(
    v.object({ arch: v.optional(oneOf(['x86'] as const), 'x86') }),
    v.transform((o): CreateVmOp => ({ op: 'create_vm', arch: o.arch })),
  ),
  check_extension: v.pipe(
    v.object({ cap: oneOf(REPLAY_CHECK_EXTENSION_CAPS) }),
    v.transform((o): CheckExtensionOp => ({ op: 'check_extension', cap: o.cap })),
  ),
  enable_cap: v.pipe(
    v.object({
      cap: oneOf(['KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2'] as const),
      flags: v.optional(u32, 0),
      args: enableCapArgs,
    }),
    v.transform((o): EnableCapOp => ({ op: 'enable_cap', cap: o.cap, flags: o.flags, args: o.args })),
  ),
  mmap: v.pipe(
    v.object({ addr: u64, length: u64 }),
    v.transform((o): MmapOp => ({ op: 'mmap', addr: o.addr, length: o.length })),
  ),
  munmap: v.pipe(
    v.object({ addr: u64, length: u64 }),
    v.transform((o): MunmapOp => ({ op: 'munmap', addr: o.addr, length: o.length })),
  ),
  madvise: v.pipe(
    v.object({ addr: u64, length: u64, advice: oneOf(['DONTNEED'] as const) }),
    v.transform((o): MadviseOp => ({ op: 'madvise', addr: o.addr, length: o.length, advice: o.advice })),
  ),
  host_write: v.pipe(
    v.object({ addr: u64, size: accessSize, value: u64 }),
    v.transform((o): HostWriteOp => ({ op: 'host_write', addr: o.addr, size: o.size, value: o.value })),
  ),
  host_read: v.pipe(
    v.object({ addr: u64, size: accessSize }),
    v.transform((o): HostReadOp => ({ op: 'host_read', addr: o.addr, size: o.size })),
  ),
  set_user_memory_region: v.pipe(
    v.object({
      slot: u32,
      flags: v.optional(u32, 0),
      guest_phys_addr: u64,
      memory_size: u64,
      userspace_addr: u64,
    }),
    v.transform(
      (o): SetUserMemoryRegionOp => ({
        op: 'set_user_memory_region',
        slot: o.slot,
        flags: o.flags,
        guestPhysAddr: o.guest_phys_addr,
        memorySize: o.memory_size,
        userspaceAddr: o.userspace_addr,
      }),
    ),
  ),
  vcpu_read: v.pipe(
    v.object({ gpa: u64, size: accessSize }),
    v.transform((o): VcpuReadOp => ({ op: 'vcpu_read', gpa: o.gpa, size: o.size })),
  ),
  vcpu_write: v.pipe(
    v.object({ gpa: u64, size: accessSize, value: u64 }),
    v.transform((o): VcpuWriteOp => ({ op: 'vcpu_write', gpa: o.gpa, size: o.size, value: o.value })),
  ),
  get_dirty_log: v.pipe(
    v.object({ slot: u32 }),
    v.transform((o): GetDirtyLogOp => ({ op: 'get_dirty_log', slot: o.slot })),
  ),
  clear_dirty_log: v.pipe(
    v.object({ slot: u32, first_page: u64, num_pages: u32, bitmap: v.optional(bitmapBytes) }),
    v.transform(
      (o): ClearDirtyLogOp => ({
        op: 'clear_dirty_log',
        slot: o.slot,
        firstPage: o.first_page,
        numPages: o.num_pages,
        bitmap: o.bitmap ?? null,
      }),
    ),
  ),
};

// =================================================================================================
// Line parser
// =================================================================================================

function malformed(lineNo: number, message: string): ReplayParseResult {
  return { kind: 'error', output: errorOutput('EINVAL', `line ${lineNo}: ${message}`) };
}

/** `args[2]`-style field name from a valibot issue path. */
function fieldName(issue: v.BaseIssue<unknown>): string {
  let name = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    name += typeof key === 'number' ? `[${key}]` : name === '' ? String(key) : `.${String(key)}`;
  }
  return name === '' ? '?' : name;
}

/**
 * Parses one input line. `lineNo` is the physical line number (1-based, comments and blank
 * lines included), used in error messages. Blank lines and `#` comments are skipped; malformed
 * lines give the protocol's EINVAL output naming the line, the field and the rule broken.
 */
export function parseReplayLine(text: string, lineNo: number): ReplayParseResult {
  const trimmed = text.trimStart();
  if (trimmed === '' || trimmed.startsWith('#')) return { kind: 'skip' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e: unknown) {
    const why = e instanceof Error ? e.message : String(e);
    return malformed(lineNo, `not valid JSON (${why.length > 120 ? `${why.slice(0, 120)}…` : why})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return malformed(lineNo, `must be a JSON object (got ${describe(json)})`);
  }
  const obj = json as Record<string, unknown>;
  if (!Object.hasOwn(obj, 'op')) return malformed(lineNo, "field 'op': is required");
  const name = obj['op'];
  if (typeof name !== 'string' || !Object.hasOwn(SCHEMAS, name)) {
    return malformed(lineNo, `field 'op': must be one of ${REPLAY_OPS.join(', ')} (got ${describe(name)})`);
  }
  const schema = SCHEMAS[name as ReplayOpName];
  const result = v.safeParse(schema, obj, { abortEarly: true });
  if (result.success) return { kind: 'op', op: result.output };
  const issue = result.issues[0];
  const last = issue.path?.[issue.path.length - 1] as { origin?: string } | undefined;
  const rule = last?.origin === 'key' ? 'is required' : issue.message;
  return malformed(lineNo, `field '${fieldName(issue)}': ${rule}`);
}
