/**
 * The four targets, judged from the rows of one run. A target whose inputs the run did not
 * measure (a slot count or config left out) is reported "not measured" with met = false.
 */
import type { BenchRow, TargetVerdict } from './memslots-bench.js';

/** N the targets are stated at. */
export const TARGET_LARGE_N = 32764;
export const TARGET_BASE_N = 509;

function find(rows: readonly BenchRow[], config: string, n: number, op: string): BenchRow | undefined {
  return rows.find((r) => r.config === config && r.n === n && r.op === op);
}

function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(1)} ns`;
}

function fmtRatio(r: number): string {
  return r >= 100 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

function notMeasured(target: string, what: string): TargetVerdict {
  return { target, met: false, detail: `not measured: ${what}` };
}

/** (1) scalable per-op cost at N=32764 within 2× of N=509, for every op. */
function flatScaling(rows: readonly BenchRow[]): TargetVerdict {
  const target = `scalable: every op at N=${TARGET_LARGE_N} within 2× of N=${TARGET_BASE_N}`;
  const ops = [...new Set(rows.filter((r) => r.config === 'scalable').map((r) => r.op))];
  const parts: string[] = [];
  let worst = 0;
  let worstOp = '';
  for (const op of ops) {
    const big = find(rows, 'scalable', TARGET_LARGE_N, op);
    const base = find(rows, 'scalable', TARGET_BASE_N, op);
    if (big === undefined || base === undefined) continue;
    const ratio = big.nsPerOp / base.nsPerOp;
    let part = `${op} ${fmtNs(big.nsPerOp)}/${fmtNs(base.nsPerOp)} = ${fmtRatio(ratio)}`;
    if (op === 'lookup-uncached') {
      // Context: how much the bare binary search itself slows down between the two N.
      const fBig = find(rows, 'bsearch-floor', TARGET_LARGE_N, op);
      const fBase = find(rows, 'bsearch-floor', TARGET_BASE_N, op);
      if (fBig && fBase) part += ` (bsearch-floor itself ${fmtRatio(fBig.nsPerOp / fBase.nsPerOp)})`;
    }
    parts.push(part);
    if (ratio > worst) {
      worst = ratio;
      worstOp = op;
    }
  }
  if (parts.length === 0) return notMeasured(target, `needs scalable rows at N=${TARGET_BASE_N} and N=${TARGET_LARGE_N}`);
  return { target, met: worst <= 2, detail: `worst ${worstOp} ${fmtRatio(worst)}; ${parts.join('; ')}` };
}

/** (2) scalable at least 50× faster than legacy for create+delete at N=32764. */
function createDeleteVsLegacy(rows: readonly BenchRow[]): TargetVerdict {
  const target = `create+delete at N=${TARGET_LARGE_N}: scalable ≥ 50× faster than legacy`;
  const sc = find(rows, 'scalable', TARGET_LARGE_N, 'create');
  const sd = find(rows, 'scalable', TARGET_LARGE_N, 'delete');
  const lc = find(rows, 'legacy', TARGET_LARGE_N, 'create');
  const ld = find(rows, 'legacy', TARGET_LARGE_N, 'delete');
  if (!sc || !sd || !lc || !ld) return notMeasured(target, `needs scalable and legacy create/delete at N=${TARGET_LARGE_N}`);
  const s = sc.nsPerOp + sd.nsPerOp;
  const l = lc.nsPerOp + ld.nsPerOp;
  const ratio = l / s;
  return {
    target,
    met: ratio >= 50,
    detail:
      `legacy ${fmtNs(l)} / scalable ${fmtNs(s)} = ${fmtRatio(ratio)} ` +
      `(create ${fmtRatio(lc.nsPerOp / sc.nsPerOp)}, delete ${fmtRatio(ld.nsPerOp / sd.nsPerOp)})`,
  };
}

/** (3) scalable uncached gfn lookup within 2× of the bare binary search, at every N; worst reported. */
function lookupVsBsearch(rows: readonly BenchRow[]): TargetVerdict {
  const target = 'lookup-uncached (scalable) within 2× of the bare binary search at every N';
  const ns = [...new Set(rows.filter((r) => r.config === 'bsearch-floor').map((r) => r.n))].sort((a, b) => a - b);
  const parts: string[] = [];
  let worst = 0;
  let worstN = 0;
  for (const n of ns) {
    const s = find(rows, 'scalable', n, 'lookup-uncached');
    const b = find(rows, 'bsearch-floor', n, 'lookup-uncached');
    if (!s || !b) continue;
    const ratio = s.nsPerOp / b.nsPerOp;
    parts.push(`N=${n} ${fmtNs(s.nsPerOp)}/${fmtNs(b.nsPerOp)} = ${fmtRatio(ratio)}`);
    if (ratio > worst) {
      worst = ratio;
      worstN = n;
    }
  }
  if (parts.length === 0) return notMeasured(target, 'needs scalable lookup-uncached and bsearch-floor at the same N');
  return { target, met: worst <= 2, detail: `worst N=${worstN} ${fmtRatio(worst)}; ${parts.join('; ')}` };
}

/** (4) hva-range lookup with the interval tree ≥ 500× faster than the scan, at N=32764. */
function hvaTreeSpeedup(rows: readonly BenchRow[]): TargetVerdict {
  const target = `hva-range at N=${TARGET_LARGE_N}: the hva tree ≥ 500× faster than the scan (scalable vs scalable-no-hva-tree)`;
  const tree = find(rows, 'scalable', TARGET_LARGE_N, 'hva-range');
  const scan = find(rows, 'scalable-no-hva-tree', TARGET_LARGE_N, 'hva-range');
  if (!tree || !scan) return notMeasured(target, `needs scalable and scalable-no-hva-tree hva-range at N=${TARGET_LARGE_N}`);
  const ratio = scan.nsPerOp / tree.nsPerOp;
  return { target, met: ratio >= 500, detail: `scan ${fmtNs(scan.nsPerOp)} / tree ${fmtNs(tree.nsPerOp)} = ${fmtRatio(ratio)}` };
}

/** The four verdicts, in the order. */
export function evaluateTargets(rows: readonly BenchRow[]): TargetVerdict[] {
  return [flatScaling(rows), createDeleteVsLegacy(rows), lookupVsBsearch(rows), hvaTreeSpeedup(rows)];
}
