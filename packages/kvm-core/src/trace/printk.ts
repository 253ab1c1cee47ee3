/**
 * A printf for the TP_printk formats of the KVM tracepoints: `%d %i %u %x %X %o %c %s %%`, the
 * flags `- + space # 0`, width and precision (digits or `*`) and the length modifiers
 * `hh h l ll z t j q`, over 64-bit values (JS numbers, bigints, or decimal/`0x` strings).
 *
 * Two flavours, because the same event reads differently depending on who formats it:
 * - `'kernel'` (default): lib/vsprintf.c number(), what /sys/kernel/tracing/trace prints (the
 *   kernel formats the ring-buffer entry with its own vsnprintf()).
 * - `'glibc'`: ISO C / glibc printf, what `trace-cmd report` and `perf script` print
 *   (libtraceevent hands each conversion of the print fmt to the C library's vsnprintf()).
 *
 * `%#016lx` of 0, the case the spec flagged (toolchain-and-style.md §B.9):
 * - kernel: `0x00000000000000`. number() treats SPECIAL with base 16 as "always prefix": it takes
 *   2 off the field width (`if (spec.base == 16) field_width -= 2;`, no `is_zero` test) and then
 *   writes "0x" (`if (spec.base == 16 || !is_zero)`), so zero gets the prefix like any other value
 *   and the result is 16 characters in all: `0x` + 14 digits. Read in lib/vsprintf.c number(),
 *   linux-source-6.12 (unchanged in 6.18).
 * - glibc: `0000000000000000`. C says `#` adds 0x only to a nonzero value, so the zero pads to
 *   16 digits with no prefix.
 * Nonzero values agree: `0x7f1234000000` → `0x007f1234000000` in both.
 *
 * Other kernel/C differences reproduced: the kernel prints `0` for `%.0d` of 0 (C: nothing), and
 * keeps the `0` flag when a precision is given (C drops it).
 *
 * @see lib/vsprintf.c number(), format_decode(), string() (6.12)
 */

/** A value a conversion may consume. Strings are parsed as integers for integer conversions. */
export type PrintkArg = number | bigint | string | boolean | null | undefined;

/** Whose printf to imitate: the kernel's vsnprintf() or ISO C/glibc. */
export type PrintfFlavor = 'kernel' | 'glibc';

export interface PrintkOptions {
  /** Default `'kernel'`. */
  readonly flavor?: PrintfFlavor;
}

const LEFT = 1;
const PLUS = 2;
const SPACE = 4;
const SPECIAL = 8;
const ZEROPAD = 16;

interface Spec {
  readonly flags: number;
  /** -1: not given; -2: `*` */
  readonly width: number;
  /** -1: not given; -2: `*` */
  readonly precision: number;
  /** Bits of the converted type: 8, 16, 32 or 64. */
  readonly bits: number;
  readonly conv: string;
}

type Piece = string | Spec;

const parsed = new Map<string, readonly Piece[]>();

/** Split a format into literal text and conversion specs (cached per format string). */
function parse(format: string): readonly Piece[] {
  const hit = parsed.get(format);
  if (hit !== undefined) return hit;
  const out: Piece[] = [];
  let lit = '';
  let i = 0;
  while (i < format.length) {
    const ch = format[i]!;
    if (ch !== '%') {
      lit += ch;
      i++;
      continue;
    }
    const start = i;
    i++;
    if (format[i] === '%') {
      lit += '%';
      i++;
      continue;
    }
    let flags = 0;
    for (;;) {
      const f = format[i];
      if (f === '-') flags |= LEFT;
      else if (f === '+') flags |= PLUS;
      else if (f === ' ') flags |= SPACE;
      else if (f === '#') flags |= SPECIAL;
      else if (f === '0') flags |= ZEROPAD;
      else break;
      i++;
    }
    let width = -1;
    if (format[i] === '*') {
      width = -2;
      i++;
    } else {
      const m = /^\d+/.exec(format.slice(i));
      if (m) {
        width = Number(m[0]);
        i += m[0].length;
      }
    }
    let precision = -1;
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        precision = -2;
        i++;
      } else {
        const m = /^\d+/.exec(format.slice(i));
        precision = m ? Number(m[0]) : 0;
        if (m) i += m[0].length;
      }
    }
    let bits = 32;
    const len = /^(hh|h|ll|l|z|t|j|q|L)/.exec(format.slice(i));
    if (len) {
      bits = len[0] === 'hh' ? 8 : len[0] === 'h' ? 16 : 64; // LP64: long is 64-bit
      i += len[0].length;
    }
    const conv = format[i];
    if (conv === undefined || !'diouxXcs'.includes(conv)) {
      throw new SyntaxError(`printk: unsupported conversion '${format.slice(start, i + 1)}' in ${JSON.stringify(format)}`);
    }
    i++;
    if (lit) out.push(lit);
    lit = '';
    out.push({ flags, width, precision, bits, conv });
  }
  if (lit) out.push(lit);
  parsed.set(format, out);
  return out;
}

/** An argument as a bigint (before truncation to the conversion's width). */
export function printkArgToBigInt(v: PrintkArg): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`printk: ${v} is not an integer`);
    return BigInt(Math.trunc(v));
  }
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (v === null) return 0n;
  if (v === undefined) throw new TypeError('printk: missing argument');
  const s = v.trim();
  const m = /^(-?)(0x[0-9a-f]+|0b[01]+|0o[0-7]+|\d+)$/i.exec(s);
  if (!m) throw new TypeError(`printk: ${JSON.stringify(v)} is not an integer`);
  const n = BigInt(m[2]!);
  return m[1] ? -n : n;
}

function intArg(v: PrintkArg): number {
  return Number(BigInt.asIntN(32, printkArgToBigInt(v)));
}

/** lib/vsprintf.c number(), for one converted value. */
function kernelNumber(value: bigint, signed: boolean, base: number, upper: boolean, flagsIn: number, width: number, precisionIn: number): string {
  let flags = flagsIn;
  let num = value;
  let fw = width;
  let precision = precisionIn;
  const needPfx = (flags & SPECIAL) !== 0 && base !== 10;
  const isZero = num === 0n;
  if (flags & LEFT) flags &= ~ZEROPAD;
  let sign = '';
  if (signed) {
    if (num < 0n) {
      sign = '-';
      num = -num;
      fw--;
    } else if (flags & PLUS) {
      sign = '+';
      fw--;
    } else if (flags & SPACE) {
      sign = ' ';
      fw--;
    }
  }
  if (needPfx) {
    if (base === 16) fw -= 2;
    else if (!isZero) fw--;
  }
  let digits = num.toString(base);
  if (upper) digits = digits.toUpperCase();
  // "printing 100 using %2d gives "100", not "00"": and %.0d of 0 still prints "0".
  if (digits.length > precision) precision = digits.length;
  fw -= precision;
  let out = '';
  if (!(flags & (ZEROPAD | LEFT)) && fw > 0) {
    out += ' '.repeat(fw);
    fw = 0;
  }
  out += sign;
  if (needPfx) {
    if (base === 16 || !isZero) out += '0';
    if (base === 16) out += upper ? 'X' : 'x';
  }
  if (!(flags & LEFT) && fw > 0) {
    out += (flags & ZEROPAD ? '0' : ' ').repeat(fw);
    fw = 0;
  }
  out += '0'.repeat(precision - digits.length) + digits;
  if (fw > 0) out += ' '.repeat(fw);
  return out;
}

/** ISO C / glibc integer conversion. */
function glibcNumber(value: bigint, signed: boolean, base: number, upper: boolean, flags: number, width: number, precision: number): string {
  let num = value;
  let sign = '';
  if (signed) {
    if (num < 0n) {
      sign = '-';
      num = -num;
    } else if (flags & PLUS) sign = '+';
    else if (flags & SPACE) sign = ' ';
  }
  let digits = precision === 0 && num === 0n ? '' : num.toString(base);
  if (upper) digits = digits.toUpperCase();
  if (digits.length < precision) digits = '0'.repeat(precision - digits.length) + digits;
  if (base === 8 && flags & SPECIAL && !digits.startsWith('0')) digits = '0' + digits;
  const prefix = base === 16 && flags & SPECIAL && num !== 0n ? (upper ? '0X' : '0x') : '';
  const body = sign.length + prefix.length + digits.length;
  const pad = width > body ? width - body : 0;
  if (flags & LEFT) return sign + prefix + digits + ' '.repeat(pad);
  if (flags & ZEROPAD && precision < 0) return sign + prefix + '0'.repeat(pad) + digits;
  return ' '.repeat(pad) + sign + prefix + digits;
}

function padString(s: string, flags: number, width: number, precision: number): string {
  const t = precision >= 0 ? s.slice(0, precision) : s;
  if (width <= t.length) return t;
  return flags & LEFT ? t + ' '.repeat(width - t.length) : ' '.repeat(width - t.length) + t;
}

/**
 * Format like the kernel's (or glibc's) printf. Integer conversions truncate the value to the
 * conversion's type (`%x` 32 bits, `%lx`/`%llx` 64 bits, `%hhx` 8 bits) and read it as signed
 * for `%d`/`%i`, unsigned otherwise; `%s` prints `(null)` for null. Throws on an unsupported
 * conversion or a missing argument.
 */
export function formatPrintk(format: string, args: readonly PrintkArg[], options: PrintkOptions = {}): string {
  const kernel = (options.flavor ?? 'kernel') === 'kernel';
  let out = '';
  let a = 0;
  for (const p of parse(format)) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    let flags = p.flags;
    let width = p.width;
    let precision = p.precision;
    if (width === -2) {
      width = intArg(args[a++]);
      if (width < 0) {
        flags |= LEFT;
        width = -width;
      }
    }
    if (precision === -2) {
      precision = intArg(args[a++]);
      if (precision < 0) precision = -1;
    }
    if (a >= args.length) throw new TypeError(`printk: missing argument ${a + 1} for ${JSON.stringify(format)}`);
    const v = args[a++];
    switch (p.conv) {
      case 's':
        out += padString(v === null ? '(null)' : String(v), flags, width, precision);
        break;
      case 'c': {
        const c = typeof v === 'string' ? v.slice(0, 1) : String.fromCharCode(Number(BigInt.asUintN(8, printkArgToBigInt(v))));
        out += padString(c, flags, width, -1);
        break;
      }
      default: {
        const signed = p.conv === 'd' || p.conv === 'i';
        const raw = printkArgToBigInt(v);
        const n = signed ? BigInt.asIntN(p.bits, raw) : BigInt.asUintN(p.bits, raw);
        const base = p.conv === 'o' ? 8 : p.conv === 'x' || p.conv === 'X' ? 16 : 10;
        const upper = p.conv === 'X';
        out += kernel ? kernelNumber(n, signed, base, upper, flags, width, precision) : glibcNumber(n, signed, base, upper, flags, width, precision);
      }
    }
  }
  return out;
}
