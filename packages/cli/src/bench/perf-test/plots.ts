/**
 * SVG plots of the perf-test rows with vega-lite, rendered headless by vega (no DOM, no canvas):
 * cost per op against slot count, both axes log scale, one line per model config and one for
 * the kernel.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Metric, PerfRow } from './run.js';

/** The vega-lite spec of one metric's plot. */
export function plotSpec(metric: Metric, unit: string, rows: readonly PerfRow[]): TopLevelSpec {
  const values = rows
    .filter((r) => r.metric === metric && r.nsPerOp !== null && r.nsPerOp > 0)
    .map((r) => ({ n: r.n, us: r.nsPerOp! / 1000, config: r.config }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${metric}`, subtitle: unit },
    width: 520,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'n', type: 'quantitative', title: 'slots (N)', scale: { type: 'log' }, axis: { values: [1, 10, 100, 509, 4096, 32764] } },
      y: { field: 'us', type: 'quantitative', title: 'µs per op (log)', scale: { type: 'log' } },
      color: { field: 'config', type: 'nominal', title: 'store/MMU or kernel' },
      strokeDash: { condition: { test: "datum.config === 'kernel'", value: [6, 3] }, value: [1, 0] },
    },
  };
}

/** Render one metric's plot to an SVG string (starts with `<svg`). */
export async function renderPlot(metric: Metric, unit: string, rows: readonly PerfRow[]): Promise<string> {
  const compiled = compile(plotSpec(metric, unit, rows)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
