/** Summary statistics of a graph store: what a team asks before choosing a batching policy. */
import { ELEMENT_SYMBOLS } from './elements';
import type { GraphStore } from './types';

/** A histogram: `counts[i]` values fall in [edges[i], edges[i+1]) (last bin closed). */
export interface Histogram {
  edges: number[];
  counts: number[];
}

/** Distribution of one per-graph quantity. */
export interface Distribution {
  count: number;
  mean: number;
  std: number;
  min: number;
  /** Nearest-rank percentiles p1, p5, p25, p50, p75, p95, p99. */
  percentiles: Record<'p1' | 'p5' | 'p25' | 'p50' | 'p75' | 'p95' | 'p99', number>;
  max: number;
  histogram: Histogram;
}

/** Summary of one target column (NaN values counted as missing). */
export interface TargetSummary {
  count: number;
  missing: number;
  mean: number;
  std: number;
  min: number;
  max: number;
}

/** Everything `gnnbatch data stats` reports. */
export interface StoreStats {
  /** Total graphs, atoms and edges. */
  graphs: number;
  atoms: number;
  edges: number;
  /** Graphs without any edge. */
  edgeless: number;
  graphRule: string;
  source: string;
  atomsPerGraph: Distribution;
  edgesPerGraph: Distribution;
  /** Atom count per element symbol. */
  elements: Record<string, number>;
  targets: Record<string, TargetSummary>;
  /** Bytes of the store's arrays per edge (all arrays, divided by the edge count). */
  bytesPerEdge: number;
}

/** Distribution of integer or real values (mean, population std, nearest-rank percentiles, histogram). */
export function distribution(values: ArrayLike<number>, bins = 20): Distribution {
  const n = values.length;
  const sorted = Float64Array.from(values).sort();
  let mean = 0;
  for (let i = 0; i < n; i++) mean += sorted[i];
  mean = n ? mean / n : NaN;
  let v = 0;
  for (let i = 0; i < n; i++) v += (sorted[i] - mean) ** 2;
  const pct = (p: number) => (n ? sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] : NaN);
  const min = n ? sorted[0] : NaN;
  const max = n ? sorted[n - 1] : NaN;
  const histogram: Histogram = { edges: [], counts: [] };
  if (n) {
    const integral = sorted.every((x) => Number.isInteger(x));
    let width: number;
    if (integral) width = Math.max(1, Math.ceil((max - min + 1) / bins));
    else width = max > min ? (max - min) / bins : 1;
    const nb = integral ? Math.ceil((max - min + 1) / width) : max > min ? bins : 1;
    histogram.edges = Array.from({ length: nb + 1 }, (_, i) => min + i * width);
    histogram.counts = new Array<number>(nb).fill(0);
    for (let i = 0; i < n; i++) histogram.counts[Math.min(nb - 1, Math.floor((sorted[i] - min) / width))]++;
  }
  return {
    count: n,
    mean,
    std: n ? Math.sqrt(v / n) : NaN,
    min,
    percentiles: { p1: pct(1), p5: pct(5), p25: pct(25), p50: pct(50), p75: pct(75), p95: pct(95), p99: pct(99) },
    max,
    histogram,
  };
}

/** Computes {@link StoreStats} for a store. */
export function storeStats(store: GraphStore): StoreStats {
  const G = store.numGraphs;
  const atoms = new Int32Array(G), edges = new Int32Array(G);
  let edgeless = 0;
  for (let g = 0; g < G; g++) {
    atoms[g] = store.nodeOffset[g + 1] - store.nodeOffset[g];
    edges[g] = store.edgeOffset[g + 1] - store.edgeOffset[g];
    if (edges[g] === 0) edgeless++;
  }
  const zc = new Float64Array(256);
  for (const z of store.atomicNumber) zc[z]++;
  const elements: Record<string, number> = {};
  for (let z = 0; z < 256; z++) if (zc[z]) elements[ELEMENT_SYMBOLS[z] ?? `Z${z}`] = zc[z];
  const targets: Record<string, TargetSummary> = {};
  const T = store.targetNames.length;
  store.targetNames.forEach((name, t) => {
    let count = 0, mean = 0, m2 = 0, min = Infinity, max = -Infinity;
    for (let g = 0; g < G; g++) {
      const x = store.targets[g * T + t];
      if (Number.isNaN(x)) continue;
      count++;
      const d = x - mean;
      mean += d / count;
      m2 += d * (x - mean);
      min = Math.min(min, x);
      max = Math.max(max, x);
    }
    targets[name] = { count, missing: G - count, mean: count ? mean : NaN, std: count ? Math.sqrt(m2 / count) : NaN, min: count ? min : NaN, max: count ? max : NaN };
  });
  const E = store.senders.length;
  const bytes = [store.nodeOffset, store.edgeOffset, store.atomicNumber, store.positions, store.senders, store.receivers, store.distance, store.senderPerm, store.targets]
    .reduce((s, a) => s + a.byteLength, 0);
  return {
    graphs: G,
    atoms: store.atomicNumber.length,
    edges: E,
    edgeless,
    graphRule: store.graphRule,
    source: store.source,
    atomsPerGraph: distribution(atoms),
    edgesPerGraph: distribution(edges),
    elements,
    targets,
    bytesPerEdge: E ? bytes / E : NaN,
  };
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toFixed(3));

function formatDistribution(title: string, d: Distribution): string[] {
  const p = d.percentiles;
  const lines = [
    `${title}: mean ${fmt(d.mean)}, std ${fmt(d.std)}, min ${fmt(d.min)}, p5 ${fmt(p.p5)}, p25 ${fmt(p.p25)}, median ${fmt(p.p50)}, p75 ${fmt(p.p75)}, p95 ${fmt(p.p95)}, p99 ${fmt(p.p99)}, max ${fmt(d.max)}`,
  ];
  const peak = Math.max(1, ...d.histogram.counts);
  d.histogram.counts.forEach((c, i) => {
    const lo = d.histogram.edges[i], hi = d.histogram.edges[i + 1];
    lines.push(`  [${fmt(lo).padStart(8)}, ${fmt(hi).padStart(8)}) ${String(c).padStart(8)} ${'#'.repeat(Math.round((40 * c) / peak))}`);
  });
  return lines;
}

/** Human-readable multi-line report of {@link StoreStats}. */
export function formatStats(s: StoreStats): string {
  const lines = [
    `source: ${s.source}   graph rule: ${s.graphRule}`,
    `graphs ${s.graphs}, atoms ${s.atoms}, edges ${s.edges}, edgeless graphs ${s.edgeless}, store bytes per edge ${fmt(s.bytesPerEdge)}`,
    ...formatDistribution('atoms per graph', s.atomsPerGraph),
    ...formatDistribution('edges per graph', s.edgesPerGraph),
    `elements: ${Object.entries(s.elements).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    'targets:',
    ...Object.entries(s.targets).map(([k, t]) => `  ${k}: n ${t.count} (missing ${t.missing}), mean ${fmt(t.mean)}, std ${fmt(t.std)}, min ${fmt(t.min)}, max ${fmt(t.max)}`),
  ];
  return lines.join('\n');
}
