/**
 * Test helpers of the force pass (issue 22): small synthetic structures, their
 * edges built in float64 in TypeScript (fc and cutoff, periodic or not; the
 * same rules as native/core/neighbours.h, cross-checked against
 * buildNeighbours), packed float64 batches whose distances and directions are
 * exact float64 (the store holds float32, too coarse for finite differences),
 * and a plain float64 reference of the SchNet force (forward-mode dual
 * numbers through the forward of reference.ts, an oracle independent of the
 * native reverse pass).
 */
import type { ModelConfig } from '../../src/model/config';
import { initParams, paramLayout, type ParamLayout } from '../../src/model/params';
import type { NativeStoreArrays, PackOutput, PackShape } from '../../src/native';
import { packBatch, testRng } from '../helpers/batch';
import { weight, type Mat } from './reference';

export type Vec3 = [number, number, number];

/** A test structure: atomic numbers, positions (Å), optional cell (rows = lattice vectors) and its rule. */
export interface TestStructure {
  z: number[];
  pos: Vec3[];
  /** Lattice vectors as rows; present = periodic in all three directions. */
  cell?: [Vec3, Vec3, Vec3];
  rule: { kind: 'fc' } | { kind: 'cutoff'; cutoff: number };
}

/** One edge: sender s, receiver r, integer image n (r_k = x_s + n . cell - x_r). */
export interface TestEdge {
  s: number;
  r: number;
  n: Vec3;
}

const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const norm = (a: Vec3): number => Math.hypot(a[0], a[1], a[2]);

/** The displacement x_s + n . cell - x_r of an edge. */
export function edgeVector(st: TestStructure, e: TestEdge): Vec3 {
  const v: Vec3 = sub(st.pos[e.s], st.pos[e.r]);
  if (st.cell) for (let i = 0; i < 3; i++) for (let a = 0; a < 3; a++) v[a] += e.n[i] * st.cell[i][a];
  return v;
}

/**
 * The edges of a structure: fc = every ordered pair i != j (periodic: the
 * minimum image over a box of images), cutoff R = every (j, image) with
 * 0 < d <= R. Sorted by receiver, then sender, then image (lexicographic).
 */
export function buildEdges(st: TestStructure, box = 3): TestEdge[] {
  const N = st.z.length;
  const images: Vec3[] = [];
  if (st.cell) {
    for (let i = -box; i <= box; i++) for (let j = -box; j <= box; j++) for (let k = -box; k <= box; k++) images.push([i, j, k]);
  } else images.push([0, 0, 0]);
  const out: TestEdge[] = [];
  for (let r = 0; r < N; r++)
    for (let s = 0; s < N; s++) {
      if (st.rule.kind === 'fc') {
        if (s === r) continue;
        let best: TestEdge | undefined;
        let bd = Infinity;
        for (const n of images) {
          const d = norm(edgeVector(st, { s, r, n }));
          if (d < bd - 1e-9) (bd = d), (best = { s, r, n });
        }
        out.push(best as TestEdge);
      } else {
        for (const n of images) {
          const d = norm(edgeVector(st, { s, r, n }));
          if (d > 0 && d <= st.rule.cutoff) out.push({ s, r, n });
        }
      }
    }
  return out;
}

/** Float64 distances and unit vectors ([edges x 3]) of an edge list. */
export function edgeGeometry(st: TestStructure, edges: TestEdge[]): { d: number[]; u: number[] } {
  const d: number[] = [];
  const u: number[] = [];
  for (const e of edges) {
    const v = edgeVector(st, e);
    const l = norm(v);
    d.push(l);
    u.push(v[0] / l, v[1] / l, v[2] / l);
  }
  return { d, u };
}

/** A store (with directions) of structures and their edge lists. */
export function storeOf(structs: TestStructure[], edgeLists: TestEdge[][]): NativeStoreArrays {
  const nodeOffset = [0];
  const edgeOffset = [0];
  const z: number[] = [];
  const snd: number[] = [];
  const rcv: number[] = [];
  const dist: number[] = [];
  const dir: number[] = [];
  const perm: number[] = [];
  structs.forEach((st, g) => {
    const edges = edgeLists[g];
    const { d, u } = edgeGeometry(st, edges);
    z.push(...st.z);
    for (const e of edges) (snd.push(e.s), rcv.push(e.r));
    dist.push(...d);
    dir.push(...u);
    perm.push(...edges.map((_, i) => i).sort((a, b) => edges[a].s - edges[b].s || a - b));
    nodeOffset.push(nodeOffset[g] + st.z.length);
    edgeOffset.push(edgeOffset[g] + edges.length);
  });
  return {
    nodeOffset: Int32Array.from(nodeOffset),
    edgeOffset: Int32Array.from(edgeOffset),
    atomicNumber: Uint8Array.from(z),
    senders: Int32Array.from(snd),
    receivers: Int32Array.from(rcv),
    distance: Float32Array.from(dist),
    senderPerm: Int32Array.from(perm),
    target: new Float64Array(structs.length),
    direction: Float32Array.from(dir),
  };
}

/**
 * Packs structures `ids` (their edges rebuilt from the current positions) into
 * a float64 batch with directions, then overwrites the real edges' distances
 * and directions with their float64 values.
 */
export function packStructures(structs: TestStructure[], ids: number[], shape: PackShape | 'exact', edgeLists?: TestEdge[][]): { inputs: PackOutput; shape: PackShape; edges: TestEdge[][] } {
  const lists = edgeLists ?? structs.map((s) => buildEdges(s));
  const store = storeOf(structs, lists);
  const packed = packBatch(store, ids, shape, 'float64', true);
  let k = 0;
  for (const g of ids) {
    const { d, u } = edgeGeometry(structs[g], lists[g]);
    for (let i = 0; i < d.length; i++, k++) {
      packed.inputs.distance[k] = d[i];
      for (let a = 0; a < 3; a++) (packed.inputs.direction as Float64Array)[3 * k + a] = u[3 * i + a];
    }
  }
  return { ...packed, edges: lists };
}

/** Cell volume |det(cell)|. */
export function volume(cell: [Vec3, Vec3, Vec3]): number {
  const [a, b, c] = cell;
  return Math.abs(a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]));
}

// ---- the SchNet force oracle (forward-mode dual numbers) ----

/** A value and its derivatives along P tangents. */
class Dual {
  constructor(
    public v: number,
    public d: Float64Array,
  ) {}
  static c(v: number, P: number): Dual {
    return new Dual(v, new Float64Array(P));
  }
}
const dadd = (a: Dual, b: Dual): Dual => new Dual(a.v + b.v, a.d.map((x, i) => x + b.d[i]));
const dmul = (a: Dual, b: Dual): Dual => new Dual(a.v * b.v, a.d.map((x, i) => x * b.v + a.v * b.d[i]));
const dscale = (a: Dual, s: number): Dual => new Dual(a.v * s, a.d.map((x) => x * s));
const dssp = (a: Dual): Dual => {
  const v = Math.log1p(Math.exp(-Math.abs(a.v))) + Math.max(a.v, 0) - Math.LN2;
  const sig = 1 / (1 + Math.exp(-a.v));
  return new Dual(v, a.d.map((x) => x * sig));
};
function dlinear(x: Dual[], w: Mat, b: Mat | null, P: number): Dual[] {
  const out: Dual[] = [];
  for (let j = 0; j < w[0].length; j++) {
    let acc = Dual.c(b ? b[0][j] : 0, P);
    for (let i = 0; i < x.length; i++) acc = dadd(acc, dscale(x[i], w[i][j]));
    out.push(acc);
  }
  return out;
}

/**
 * Energy (standardised units) and forces -dE/dx ([atoms][3]) of one
 * structure under a SchNet configuration, straight from PAPER.md (explicit
 * messages, explicit mean), differentiated forward-mode along every atom
 * coordinate.
 */
export function referenceSchnetForces(config: ModelConfig, layout: ParamLayout, p: ArrayLike<number>, st: TestStructure, edges: TestEdge[]): { energy: number; forces: Vec3[] } {
  if (config.kind !== 'schnet') throw new Error('the oracle is SchNet only');
  const W = (n: string): Mat => weight(layout, p, n);
  const N = st.z.length;
  const P = 3 * N;
  let h: Dual[][] = [];
  for (let n = 0; n < N; n++) h.push(W('embed/w')[st.z[n]].map((x, j) => Dual.c(x + W('embed/b')[0][j], P)));
  const rbf: Dual[][] = edges.map((e) => {
    const v = edgeVector(st, e);
    const d = norm(v);
    const dd = new Float64Array(P);
    for (let a = 0; a < 3; a++) {
      dd[3 * e.s + a] += v[a] / d;
      dd[3 * e.r + a] -= v[a] / d;
    }
    const row: Dual[] = [];
    for (let j = 0; j < config.basis; j++) {
      const x = d - config.rbfSpacing * j;
      const val = Math.exp(-config.rbfGamma * x * x);
      row.push(new Dual(val, dd.map((t) => t * val * -2 * config.rbfGamma * x)));
    }
    return row;
  });
  for (let t = 0; t < config.passes; t++) {
    const pre = `pass${t}/`;
    const msgs = edges.map((e, k) => {
      const f = dlinear(dlinear(rbf[k], W(pre + 'filter/w1'), W(pre + 'filter/b1'), P).map(dssp), W(pre + 'filter/w2'), W(pre + 'filter/b2'), P).map(dssp);
      const hs = dlinear(h[e.s], W(pre + 'sender/w'), W(pre + 'sender/b'), P);
      return f.map((x, j) => dmul(x, hs[j]));
    });
    const next: Dual[][] = [];
    for (let n = 0; n < N; n++) {
      let agg: Dual[] = new Array(config.latent).fill(0).map(() => Dual.c(0, P));
      let cnt = 0;
      edges.forEach((e, k) => {
        if (e.r !== n) return;
        cnt++;
        agg = agg.map((x, j) => dadd(x, msgs[k][j]));
      });
      if (config.aggregation === 'mean' && cnt > 0) agg = agg.map((x) => dscale(x, 1 / cnt));
      const u = dlinear(dlinear(agg, W(pre + 'node/w1'), W(pre + 'node/b1'), P).map(dssp), W(pre + 'node/w2'), W(pre + 'node/b2'), P);
      next.push(h[n].map((x, j) => dadd(x, u[j])));
    }
    h = next;
  }
  let e = Dual.c(0, P);
  for (let n = 0; n < N; n++) e = dadd(e, dlinear(dlinear(h[n], W('readout/w1'), W('readout/b1'), P).map(dssp), W('readout/w2'), W('readout/b2'), P)[0]);
  if (config.readout === 'mean') e = dscale(e, 1 / N);
  const forces: Vec3[] = [];
  for (let n = 0; n < N; n++) forces.push([-e.d[3 * n], -e.d[3 * n + 1], -e.d[3 * n + 2]]);
  return { energy: e.v, forces };
}

/** Positions moved by up to amp/2 per coordinate (seeded). */
export function jitter(base: Vec3[], seed: number, amp: number): Vec3[] {
  const rnd = testRng(seed);
  return base.map((p) => [p[0] + (rnd() - 0.5) * amp, p[1] + (rnd() - 0.5) * amp, p[2] + (rnd() - 0.5) * amp] as Vec3);
}

/**
 * The packed batch of `ids` twice: float32 inputs, and float64 inputs holding
 * the same (float32-rounded) values, for float32-vs-float64 comparisons.
 */
export function packBothPrecisions(structs: TestStructure[], ids: number[], shape: PackShape | 'exact'): { f32: PackOutput; f64: PackOutput; shape: PackShape } {
  const p = packStructures(structs, ids, shape);
  const round = (a: ArrayLike<number>): Float64Array => Float64Array.from(Float32Array.from(a));
  const f64 = { ...p.inputs, distance: round(p.inputs.distance), target: round(p.inputs.target), mask: round(p.inputs.mask), direction: round(p.inputs.direction as Float64Array) };
  const f32 = { ...p.inputs, distance: Float32Array.from(f64.distance), target: Float32Array.from(f64.target), mask: Float32Array.from(f64.mask), direction: Float32Array.from(f64.direction) };
  return { f32, f64, shape: p.shape };
}

/** Seeded initial parameters moved by up to 0.1, rounded to float32 (the same values in both precisions). */
export function float32Params(c: ModelConfig, seed: number): Float64Array {
  const p = initParams(paramLayout(c), seed, 'float64') as Float64Array;
  const r = testRng(seed + 100);
  for (let i = 0; i < p.length; i++) p[i] = Math.fround(p[i] + (r() - 0.5) * 0.2);
  return p;
}

/** A direction over the atoms ([nodes x 3], the first `real` atoms non-zero, float32 values). */
export function atomWeights(nodes: number, real: number, seed: number): Float64Array {
  const r = testRng(seed);
  const w = new Float64Array(3 * nodes);
  for (let i = 0; i < 3 * real; i++) w[i] = Math.fround(r() - 0.5);
  return w;
}

/** ||a - b|| / ||b||. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) (d += (a[i] - b[i]) ** 2), (n += b[i] ** 2);
  return Math.sqrt(d / Math.max(n, 1e-300));
}
