/**
 * The report's charts as Vega-Lite specs built from a results document.
 * Data are inlined (`data.values`), so each spec renders on its own.
 */
import type { StudyResults } from '../experiment/results';
import { analyseStudy, type StudyAnalysis } from '../experiment/stats';
import type { VegaLiteSpec } from './vega';
import type { ProfileResult } from '../train/profile';

/** A chart with its place in the report. */
export interface ChartSpec {
  id: string;
  section: 'data' | 'time' | 'speedup' | 'compile' | 'fill' | 'learning' | 'profile';
  title: string;
  /** One sentence: what to read from the chart. */
  caption?: string;
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
      caption: 'Counts on a symmetric-log axis so that a long tail of large graphs stays visible: the largest graphs set static-constant\'s padded size and the dynamic budget.',
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
            y: { field: 'count', type: 'quantitative', title: 'graphs (symlog)', scale: { type: 'symlog' } },
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
      caption: 'Log axis: equal vertical gaps are equal ratios; points far from their line are repetitions disturbed by the machine\'s load.',
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
    const bars = (id: string, section: ChartSpec['section'], title: string, field: string, yTitle: string, values: object[], caption: string, scale?: object): ChartSpec => ({
      id: `${id}-${key}`,
      section,
      title,
      caption,
      spec: {
        $schema: SCHEMA,
        width: 420,
        height: 220,
        data: { values },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'batch', type: 'ordinal', title: 'batch size B' },
          xOffset: { field: 'policy', type: 'nominal' },
          y: { field, type: 'quantitative', title: yTitle, ...(scale ? { scale } : {}) },
          color: POLICY_COLOR,
        },
      },
    });
    charts.push(bars('speedup', 'speedup', `Speedup per graph (slowest policy's ms per 1,000 graphs / each policy's, steady state): ${data}, ${model}`, 'speedup', 'speedup per graph (x)', sums.map((s) => ({ policy: s.policy, batch: s.batch, speedup: s.speedup_per_graph })),
      'Per graph, not per step: a policy whose steps carry fewer graphs (dynamic) needs more steps for the same data; the tallest bar at a batch size is the fastest there.'));
    charts.push(bars('compile', 'compile', `Compilations (plans built) per run: ${data}, ${model}`, 'compiles', 'compilations (symlog)', sums.map((s) => ({ policy: s.policy, batch: s.batch, compiles: s.compile_count })),
      'Symmetric-log axis: counts span orders of magnitude; on an XLA-like backend every compilation is a pause, so fewer is better for long runs.', { type: 'symlog' }));
    charts.push(bars('fill', 'fill', `Edge fill (real / padded edges): ${data}, ${model}`, 'fill', 'edge fill', sums.map((s) => ({ policy: s.policy, batch: s.batch, fill: s.edge_fill })),
      'The share of computed edges that are real: 1 - fill is work spent on padding.'));
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
        caption: 'Log axis; curves that fall together mean the batching did not change what was learned over these steps (1 = predicting the mean).',
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
      caption: 'Symmetric-log axis, so that a policy with a few shapes stays visible beside one with thousands: each shape is a compilation on an XLA-like backend.',
      spec: {
        $schema: SCHEMA,
        width: 420,
        height: 200,
        data: { values: d.simulation.map((r) => ({ policy: r.policy, batch: r.batch, shapes: r.shapes })) },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'batch', type: 'ordinal', title: 'batch size B' },
          xOffset: { field: 'policy', type: 'nominal' },
          y: { field: 'shapes', type: 'quantitative', title: 'shapes (symlog)', scale: { type: 'symlog' } },
          color: POLICY_COLOR,
        },
      },
    });
  }
  return charts;
}

/** Kernels shown by name in the stacked time chart (the rest are summed as "other"). */
const STACKED_KERNELS = 10;

/**
 * Charts of per-kernel profiles (one profile per policy, say): a roofline
 * (achieved GFLOP/s against arithmetic intensity per native kernel, log-log,
 * under each run's measured GEMM peak and streaming bandwidth) and the step
 * time stacked by kernel per run, with the time attributed to padding.
 */
export function profileCharts(profiles: readonly ProfileResult[]): ChartSpec[] {
  if (!profiles.length) return [];
  const label = (p: ProfileResult): string => `${p.policy} B=${p.batch}`;
  const pts = profiles.flatMap((p) =>
    p.kernels
      .filter((k) => k.where === 'native' && k.gflops > 0 && k.intensity > 0)
      .map((k) => ({ run: label(p), kernel: k.kernel, intensity: k.intensity, gflops: k.gflops, ms_per_step: k.ms_per_step, bound: k.bound, padding: k.padding_share })),
  );
  const xs = pts.map((q) => q.intensity);
  const lo = Math.min(...xs, ...profiles.map((p) => p.limits.ridge_flop_per_byte)) / 2;
  const hi = Math.max(...xs, ...profiles.map((p) => p.limits.ridge_flop_per_byte)) * 2;
  const roof: object[] = [];
  for (const p of profiles) {
    for (let i = 0; i <= 40; i++) {
      const x = lo * Math.pow(hi / lo, i / 40);
      roof.push({ run: label(p), intensity: x, gflops: Math.min(p.limits.gemm_gflops, p.limits.stream_gbps * x) });
    }
  }
  const RUN = { field: 'run', type: 'nominal', title: 'run' };
  const charts: ChartSpec[] = [
    {
      id: 'roofline',
      section: 'profile',
      title: `Roofline: achieved GFLOP/s vs arithmetic intensity per kernel (${profiles[0].model}; lines: each run's measured GEMM peak and stream bandwidth at ${profiles[0].threads} threads; size: ms per step)`,
      spec: {
        $schema: SCHEMA,
        width: 520,
        height: 320,
        layer: [
          {
            data: { values: roof },
            mark: { type: 'line', strokeDash: [4, 3] },
            encoding: {
              x: { field: 'intensity', type: 'quantitative', title: 'arithmetic intensity (flop / byte)', scale: { type: 'log' } },
              y: { field: 'gflops', type: 'quantitative', title: 'GFLOP/s', scale: { type: 'log' } },
              color: RUN,
            },
          },
          {
            data: { values: pts },
            mark: { type: 'point', filled: true, opacity: 0.75, tooltip: true },
            encoding: {
              x: { field: 'intensity', type: 'quantitative', scale: { type: 'log' } },
              y: { field: 'gflops', type: 'quantitative', scale: { type: 'log' } },
              color: RUN,
              size: { field: 'ms_per_step', type: 'quantitative', title: 'ms / step' },
              shape: { field: 'bound', type: 'nominal', title: 'bound' },
            },
          },
        ],
      },
    },
  ];
  // Stacked time: the kernels that take the most time over all runs by name, the rest as "other".
  const total = new Map<string, number>();
  for (const p of profiles) for (const k of p.kernels) total.set(k.kernel, (total.get(k.kernel) ?? 0) + k.ms_per_step);
  const top = new Set([...total.entries()].sort((a, b) => b[1] - a[1]).slice(0, STACKED_KERNELS).map(([k]) => k));
  const bars: object[] = [];
  for (const p of profiles) {
    let other = 0, otherPad = 0;
    for (const k of p.kernels) {
      if (top.has(k.kernel)) {
        bars.push({ run: label(p), kernel: k.kernel, part: 'real rows', ms: k.ms_per_step - k.padding_ms_per_step });
        bars.push({ run: label(p), kernel: k.kernel, part: 'padding rows', ms: k.padding_ms_per_step });
      } else {
        other += k.ms_per_step - k.padding_ms_per_step;
        otherPad += k.padding_ms_per_step;
      }
    }
    bars.push({ run: label(p), kernel: 'other', part: 'real rows', ms: other });
    bars.push({ run: label(p), kernel: 'other', part: 'padding rows', ms: otherPad });
  }
  charts.push({
    id: 'kernel-time',
    section: 'profile',
    title: `Time per step by kernel and run (lighter: the part of each kernel's time spent on padding rows; top ${STACKED_KERNELS} kernels by time, the rest as other)`,
    spec: {
      $schema: SCHEMA,
      width: 520,
      height: 40 + 28 * profiles.length,
      data: { values: bars },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'run', type: 'nominal', title: null },
        x: { field: 'ms', type: 'quantitative', title: 'ms per step', stack: 'zero' },
        color: { field: 'kernel', type: 'nominal', title: 'kernel' },
        opacity: { field: 'part', type: 'ordinal', title: 'rows', scale: { domain: ['real rows', 'padding rows'], range: [1, 0.45] } },
        order: { field: 'part', type: 'nominal', sort: 'descending' },
      },
    },
  });
  return charts;
}
