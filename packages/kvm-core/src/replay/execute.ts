/**
 * Runs replay protocol v1 (shared/specs/replay-protocol.md) against the model: one process, one
 * VM created on the first well-formed op, one host address space.
 */
import type { ArchBackend } from '../arch-backend.js';
import { isKvmError, type KvmError } from '../errors.js';
import { createVm, type Kvm } from '../kvm.js';
import type { MemslotStoreKind } from '../memslots/memslot-store.js';
import { runSync } from '../sched/steps.js';
import { PAGE_SIZE } from '../uapi.js';
import { referenceBackend } from '../testing/reference-backend.js';
import {
  bitmapToHex,
  errorOutput,
  formatReplayOutput,
  hex,
  kvmErrorOutput,
  outputsAgree,
  parseReplayLine,
  type ReplayOp,
  type ReplayOutput,
} from './protocol.js';

export interface ReplayOptions {
  /** Memslot store design. Default is `'scalable'`. */
  memslots?: MemslotStoreKind;
  /**
   * The architecture backend. Default: the reference backend with x86's limits, until an x86
   * backend with a vCPU exists (vcpu ops then answer EOPNOTSUPP).
   */
  backend?: ArchBackend;
  /**
   * Reproduce the kernel oracle's footprint around each guest access (replay-protocol.md: the
   * oracle puts its guest's code and page tables in a slot at the highest free id and at or above
   * 4 GiB, and removes it before answering): a scratch slot is created before the access and
   * deleted after it. Observable because the DELETE invalidates mappings (on x86 with the
   * SLOT_ZAP_ALL quirk, every SPTE), so the next access faults afresh — and a read fault that maps
   * a writable host page writable marks it dirty again. `kvmsim diff` turns this on for the
   * model. Default is `false`.
   */
  oracleScratchSlot?: boolean;
}

/** Size of the scratch slot of {@link ReplayOptions.oracleScratchSlot} (the oracle's temp slot). */
const SCRATCH_SLOT_BYTES = 0x1_0000;
/** Its host address: a user address outside the ranges replay sequences map (never accessed). */
const SCRATCH_SLOT_UADDR = 0x7f00_0000_0000n;

/** One executed input line. */
export interface ReplayStep {
  /** 1-based physical line number */
  readonly lineNo: number;
  readonly input: string;
  readonly output: ReplayOutput;
  /** The line's optional `"expect"` annotation (ignored by the protocol, read by kvmsim). */
  readonly expect?: ReplayOutput;
  /** The line was malformed (answered EINVAL by the parser, not executed). */
  readonly malformed: boolean;
  /** The line's optional `"case"` annotation. */
  readonly caseId?: string;
  /** Whether output agrees with `expect` (by the protocol's comparison rule); undefined without one. */
  readonly agrees?: boolean;
}

export class ReplaySession {
  private readonly options: ReplayOptions;
  private vm: Kvm | null = null;

  constructor(options: ReplayOptions = {}) {
    this.options = options;
  }

  /** The VM, once an op created it. */
  get kvm(): Kvm | null {
    return this.vm;
  }

  private ensureVm(): Kvm {
    if (this.vm === null) {
      this.vm = createVm({ backend: this.options.backend ?? referenceBackend({ record: false }), memslots: this.options.memslots ?? 'scalable' });
    }
    return this.vm;
  }

  /** Execute one well-formed op. */
  execute(op: ReplayOp): ReplayOutput {
    if (op.op === 'create_vm') {
      if (this.vm !== null) return errorOutput('EINVAL', 'create_vm: the VM already exists (create_vm must be the first op)');
      this.ensureVm();
      return { ret: 0 };
    }
    const kvm = this.ensureVm();
    try {
      return runOp(kvm, op, this.options.oracleScratchSlot === true);
    } catch (e) {
      if (isKvmError(e)) return kvmErrorOutput(e as KvmError);
      throw e;
    }
  }

  /** Parse and execute one input line; null for blank and comment lines. */
  line(text: string, lineNo: number): ReplayStep | null {
    const parsed = parseReplayLine(text, lineNo);
    if (parsed.kind === 'skip') return null;
    const output = parsed.kind === 'error' ? parsed.output : this.execute(parsed.op);
    const note = readAnnotations(text);
    const step: ReplayStep = { lineNo, input: text, output, malformed: parsed.kind === 'error', ...note };
    return note.expect === undefined ? step : { ...step, agrees: outputsAgree(output, note.expect) };
  }
}

/**
 * Create the scratch slot of {@link ReplayOptions.oracleScratchSlot}: the highest free slot id, at
 * the first 2 MiB-aligned guest-physical address at or above 4 GiB whose range no slot overlaps.
 * Returns its id, or null (ENOSPC in the oracle) when there is no free id.
 */
function createScratchSlot(kvm: Kvm): number | null {
  const slots = kvm.kvmMemslots(0);
  let id = kvm.userMemSlots - 1;
  while (id >= 0 && slots.idToMemslot(id) !== null) id--;
  if (id < 0) return null;
  const pages = SCRATCH_SLOT_BYTES / PAGE_SIZE;
  let gfn = 2 ** 20; // 4 GiB
  const step = 2 ** 9; // 2 MiB
  for (;;) {
    let free = true;
    for (let i = 0; i < pages && free; i++) free = kvm.gfnToMemslot(gfn + i) === null;
    if (free) break;
    gfn += step;
  }
  kvm.setUserMemoryRegion({ slot: id, flags: 0, guestPhysAddr: BigInt(gfn) * BigInt(PAGE_SIZE), memorySize: BigInt(SCRATCH_SLOT_BYTES), userspaceAddr: SCRATCH_SLOT_UADDR });
  return id;
}

function deleteScratchSlot(kvm: Kvm, id: number): void {
  kvm.setUserMemoryRegion({ slot: id, flags: 0, guestPhysAddr: 0n, memorySize: 0n, userspaceAddr: 0n });
}

function runOp(kvm: Kvm, op: Exclude<ReplayOp, { op: 'create_vm' }>, scratchSlot: boolean): ReplayOutput {
  switch (op.op) {
    case 'check_extension':
      return { ret: kvm.checkExtension(op.cap) };
    case 'enable_cap':
      kvm.enableCap(op.cap, op.flags, op.args);
      return { ret: 0 };
    case 'mmap':
      kvm.host.mmap(op.addr, op.length);
      return { ret: 0 };
    case 'munmap':
      kvm.host.munmap(op.addr, op.length);
      return { ret: 0 };
    case 'madvise':
      kvm.host.madvise(op.addr, op.length, op.advice);
      return { ret: 0 };
    case 'host_write':
      kvm.host.write(op.addr, op.size, op.value);
      return { ret: 0 };
    case 'host_read':
      return { ret: 0, value: hex(kvm.host.read(op.addr, op.size)) };
    case 'set_user_memory_region':
      kvm.setUserMemoryRegion({
        slot: op.slot,
        flags: op.flags,
        guestPhysAddr: op.guestPhysAddr,
        memorySize: op.memorySize,
        userspaceAddr: op.userspaceAddr,
      });
      return { ret: 0 };
    case 'get_dirty_log':
      return { ret: 0, bitmap: bitmapToHex(kvm.getDirtyLog(op.slot)) };
    case 'clear_dirty_log':
      kvm.clearDirtyLog(op.slot, op.firstPage, op.numPages, op.bitmap);
      return { ret: 0 };
    case 'vcpu_read':
    case 'vcpu_write': {
      if (kvm.arch.mmu === undefined) return errorOutput('EOPNOTSUPP', `${op.op}: backend ${kvm.backend.name} has no vCPU model yet`);
      const size = op.size;
      if (op.gpa >= 1n << 32n || op.gpa % BigInt(size) !== 0n) {
        return errorOutput('EINVAL', `${op.op}: gpa ${hex(op.gpa)} must be below 2^32 and a multiple of size ${size}`);
      }
      const write = op.op === 'vcpu_write';
      const value = write ? op.value : 0n;
      if (write && value >> BigInt(8 * size) !== 0n) return errorOutput('EINVAL', `vcpu_write: value ${hex(value)} is wider than ${size} bytes`);
      const scratch = scratchSlot ? createScratchSlot(kvm) : null;
      if (scratchSlot && scratch === null) return errorOutput('ENOSPC', `${op.op}: no free slot id for the scratch slot`);
      let r;
      try {
        r = runSync(kvm.createVcpu(0).accessSteps(Number(op.gpa), size, write, value));
      } finally {
        if (scratch !== null) deleteScratchSlot(kvm, scratch);
      }
      if (r.exit === 'none') return write ? { ret: 0, exit: 'none' } : { ret: 0, exit: 'none', value: hex(r.value) };
      return write
        ? { ret: 0, exit: 'mmio', phys_addr: hex(r.physAddr), len: r.len, is_write: true, data: hex(r.data) }
        : { ret: 0, exit: 'mmio', phys_addr: hex(r.physAddr), len: r.len, is_write: false };
    }
  }
}

function readAnnotations(text: string): { expect?: ReplayOutput; caseId?: string } {
  try {
    const o = JSON.parse(text) as { expect?: unknown; case?: unknown };
    const out: { expect?: ReplayOutput; caseId?: string } = {};
    if (o.expect !== null && typeof o.expect === 'object' && typeof (o.expect as { ret?: unknown }).ret === 'number') {
      out.expect = o.expect as ReplayOutput;
    }
    if (typeof o.case === 'string') out.caseId = o.case;
    return out;
  } catch {
    return {};
  }
}

/** Replay a whole text, line by line. */
export function* replayText(text: string, options: ReplayOptions = {}): Generator<ReplayStep> {
  const session = new ReplaySession(options);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    const step = session.line(raw, i + 1);
    if (step !== null) yield step;
  }
}

/** A short summary of a replay: ops, errors by errno, expectations met. */
export interface ReplaySummary {
  ops: number;
  ok: number;
  errors: Record<string, number>;
  malformed: number;
  expectations: number;
  agreed: number;
  /** Steps whose output disagreed with their `expect` annotation. */
  disagreements: ReplayStep[];
}

/** An empty summary, to fill step by step with {@link addToReplaySummary}. */
export function emptyReplaySummary(): ReplaySummary {
  return { ops: 0, ok: 0, errors: {}, malformed: 0, expectations: 0, agreed: 0, disagreements: [] };
}

/** Count one executed step into a summary (for streams). */
export function addToReplaySummary(s: ReplaySummary, step: ReplayStep): void {
  s.ops++;
  if (step.malformed) s.malformed++;
  if (step.output.ret >= 0) s.ok++;
  else {
    const e = step.output.errno ?? String(step.output.ret);
    s.errors[e] = (s.errors[e] ?? 0) + 1;
  }
  if (step.agrees !== undefined) {
    s.expectations++;
    if (step.agrees) s.agreed++;
    else s.disagreements.push(step);
  }
}

export function summarizeReplay(steps: Iterable<ReplayStep>): ReplaySummary {
  const s = emptyReplaySummary();
  for (const step of steps) addToReplaySummary(s, step);
  return s;
}

export { formatReplayOutput };
