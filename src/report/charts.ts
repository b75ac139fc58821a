/**
 * The report's charts as Vega-Lite specs built from a results document.
 * Data are inlined (`data.values`), so each spec renders on its own.
 */
import type { StudyResults } from '../experiment/results';
import { analyseStudy, type StudyAnalysis } from '../experiment/stats';
import type { VegaLiteSpec } from './vega';

/** A chart with its place in the report. */
export interface ChartSpec {
  id: string;
  section: 'data' | 'time' | 'speedup' | 'compile' | 'fill' | 'learning';
  title: string;
  spec: VegaLiteSpec;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const POLICY_COLOR = { field: 'policy', type: 'nominal', title: 'policy' };

function pairs(rows: readonly { data: string; model: string }[]): [string, string][] {
  const seen = new Map<string, [string, string]>();
  for (const r of rows) seen.set(`${r.data}\u0000${r.model}`, [r.data, r.model]);
  return [...seen.values()];
}

const slug = (s: string): string => s.replace(/[^a-zA-Z0-9]+/g, '-');

/** Every chart of the report, in report order. */
export function reportCharts(results: StudyResults, analysis: StudyAnalysis = analyseStudy(results.rows)): ChartSpec[] {
  const charts: ChartSpec[] = [];
  for (const d of results.data) {
    const values = [
      ...d.nodes_histogram.counts.map((c, i) => ({ quantity: 'nodes per graph', start: d.nodes_histogram.edges[i], end: d.nodes_histogram.edges[i + 1], count: c })),
      ...d.edges_histogram.counts.map((c, i) => ({ quantity: 'edges per graph', start: d.edges_histogram.edges[i], end: d.edges_histogram.edges[i + 1], count: c })),
    ];
    charts.push({
      id: `sizes-${slug(d.data)}`,
      section: 'data',
      title: `Graph sizes: ${d.data} (train split, ${d.train_graphs} graphs)`,
      spec: {
        $schema: SCHEMA,
        data: { values },
        facet: { column: { field: 'quantity', type: 'nominal', title: null } },
        spec: {
          width: 260,
          height: 160,
          mark: { type: 'rect', tooltip: true },
          encoding: {
            x: { field: 'start', type: 'quantitative', title: 'size' },
            x2: { field: 'end' },
            y: { field: 'count', type: 'quantitative', title: 'graphs' },
          },
        },
        resolve: { scale: { x: 'independent', y: 'independent' } },
      },
    });
  }
  for (const [data, model] of pairs(results.rows)) {
    const rows = results.rows.filter((r) => r.data === data && r.model === model);
    const sums = analysis.summaries.filter((s) => s.data === data && s.model === model);
    const key = `${slug(data)}-${model}`;
    charts.push({
      id: `time-${key}`,
      section: 'time',
      title: `Mean step time per policy and batch size: ${data}, ${model} (points: repetitions)`,
      spec: {
        $schema: SCHEMA,
        width: 420,
        height: 240,
        data: { values: rows.map((r) => ({ policy: r.policy, batch: r.batch, rep: r.rep, ms: r.combined_ms_mean, median: r.combined_ms_median })) },
        layer: [
          { mark: { type: 'line', point: false }, encoding: { x: { field: 'batch', type: 'ordinal', title: 'batch size B' }, y: { aggregate: 'mean', field: 'ms', type: 'quantitative', title: 'ms per step (mean, incl. compilation)', scale: { type: 'log' } }, color: POLICY_COLOR } },
          { mark: { type: 'point', filled: true, opacity: 0.7, tooltip: true }, encoding: { x: { field: 'batch', type: 'ordinal' }, y: { field: 'ms', type: 'quantitative' }, color: POLICY_COLOR } },
        ],
      },
    });
    const bars = (id: string, section: ChartSpec['section'], title: string, field: string, yTitle: string, values: object[]): ChartSpec => ({
      id: `${id}-${key}`,
      section,
      title,
      spec: {
        $schema: SCHEMA,
        width: 420,
        height: 220,
        data: { values },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'batch', type: 'ordinal', title: 'batch size B' },
          xOffset: { field: 'policy', type: 'nominal' },
          y: { field, type: 'quantitative', title: yTitle },
          color: POLICY_COLOR,
        },
      },
    });
    charts.push(bars('speedup', 'speedup', `Speedup (slowest policy's mean step time / each policy's): ${data}, ${model}`, 'speedup', 'speedup (x)', sums.map((s) => ({ policy: s.policy, batch: s.batch, speedup: s.speedup }))));
    charts.push(bars('compile', 'compile', `Compilations (plans built) per run: ${data}, ${model}`, 'compiles', 'compilations', sums.map((s) => ({ policy: s.policy, batch: s.batch, compiles: s.compile_count }))));
    charts.push(bars('fill', 'fill', `Edge fill (real / padded edges): ${data}, ${model}`, 'fill', 'edge fill', sums.map((s) => ({ policy: s.policy, batch: s.batch, fill: s.edge_fill }))));
    const curve: object[] = [];
    for (const r of rows) {
      if (r.rep !== rows[0].rep) continue;
      for (const p of r.loss_curve) if (p.loss > 0 && Number.isFinite(p.loss)) curve.push({ policy: r.policy, batch: `B=${r.batch}`, step: p.step, loss: p.loss });
    }
    if (curve.length) {
      charts.push({
        id: `learning-${key}`,
        section: 'learning',
        title: `Training loss (standardised MSE, repetition ${rows[0].rep}): ${data}, ${model}`,
        spec: {
          $schema: SCHEMA,
          data: { values: curve },
          facet: { column: { field: 'batch', type: 'ordinal', title: null, sort: { field: 'step', op: 'count' } } },
          spec: {
            width: 180,
            height: 160,
            mark: { type: 'line', tooltip: true },
            encoding: {
              x: { field: 'step', type: 'quantitative', title: 'step' },
              y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { type: 'log' } },
              color: POLICY_COLOR,
            },
          },
        },
      });
    }
  }
  for (const d of results.data) {
    if (!d.simulation.length) continue;
    charts.push({
      id: `simshapes-${slug(d.data)}`,
      section: 'compile',
      title: `Distinct padded shapes over ${d.simulated_steps} simulated steps (compilations of a run that long): ${d.data}`,
      spec: {
        $schema: SCHEMA,
        width: 420,
        height: 200,
        data: { values: d.simulation.map((r) => ({ policy: r.policy, batch: r.batch, shapes: r.shapes })) },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'batch', type: 'ordinal', title: 'batch size B' },
          xOffset: { field: 'policy', type: 'nominal' },
          y: { field: 'shapes', type: 'quantitative', title: 'shapes' },
          color: POLICY_COLOR,
        },
      },
    });
  }
  return charts;
}
