/**
 * Plain TypeScript float64 reference of PaiNN, written from docs/painn.md in
 * the unfused form (explicit per-edge messages x_ij, explicit vector features
 * as [3][F] arrays, std Math functions): the oracle for the native forward.
 * Also the molecule-store helper the PaiNN tests share (directions computed
 * here in float64, independently of the native graph builder).
 */
import type { ModelConfig } from '../../src/model/config';
import type { ParamLayout } from '../../src/model/params';
import type { NativeStoreArrays, PackOutput, PackShape } from '../../src/native';
import { testRng } from '../helpers/batch';
import { linear, weight, type Mat } from './reference';

const silu = (x: number): number => x / (1 + Math.exp(-x));

/** Per-graph predictions (standardised units) of the reference PaiNN. */
export function painnReferencePredict(config: ModelConfig, layout: ParamLayout, p: ArrayLike<number>, b: PackOutput, shape: PackShape): number[] {
  const W = (n: string): Mat => weight(layout, p, n);
  const N = shape.nodes;
  const E = shape.edges;
  const F = config.latent;
  const rc = config.cutoff;
  const dir = b.direction;
  if (!dir) throw new Error('PaiNN reference needs inputs.direction');
  let s: number[][] = [];
  let v: number[][][] = [];
  for (let n = 0; n < N; n++) {
    const onehot = new Array<number>(config.numClasses).fill(0);
    onehot[b.atomicNumber[n]] = 1;
    s.push(linear(onehot, W('embed/w'), W('embed/b')));
    v.push([0, 1, 2].map(() => new Array<number>(F).fill(0)));
  }
  // Filters of every block: (sinc basis . filter/w + filter/b) * cosine cutoff.
  const filters: number[][] = [];
  for (let k = 0; k < E; k++) {
    const d = b.distance[k];
    const rbf: number[] = [];
    for (let n = 1; n <= config.basis; n++) rbf.push(d > 0 ? Math.sin((n * Math.PI * d) / rc) / d : 0);
    const fc = d > 0 && d < rc ? 0.5 * (Math.cos((Math.PI * d) / rc) + 1) : 0;
    filters.push(linear(rbf, W('filter/w'), W('filter/b')).map((x) => x * fc));
  }
  for (let t = 0; t < config.passes; t++) {
    const pre = `pass${t}/`;
    const fo = config.sharedFilters ? 0 : 3 * F * t;
    // Message.
    const q = s.map((x) => linear(linear(x, W(pre + 'message/w1'), W(pre + 'message/b1')).map(silu), W(pre + 'message/w2'), W(pre + 'message/b2')));
    const ds = s.map(() => new Array<number>(F).fill(0));
    const dv = v.map(() => [0, 1, 2].map(() => new Array<number>(F).fill(0)));
    const deg = new Array<number>(N).fill(0);
    for (let k = 0; k < E; k++) {
      const i = b.receivers[k];
      const j = b.senders[k];
      deg[i]++;
      const x = q[j].map((qq, c) => qq * filters[k][fo + c]);
      for (let f = 0; f < F; f++) {
        ds[i][f] += x[f];
        for (let c = 0; c < 3; c++) dv[i][c][f] += x[F + f] * v[j][c][f] + x[2 * F + f] * dir[3 * k + c];
      }
    }
    for (let i = 0; i < N; i++) {
      const scale = config.aggregation === 'mean' ? (deg[i] > 0 ? 1 / deg[i] : 0) : 1;
      for (let f = 0; f < F; f++) {
        s[i][f] += scale * ds[i][f];
        for (let c = 0; c < 3; c++) v[i][c][f] += scale * dv[i][c][f];
      }
    }
    // Update.
    const mix = W(pre + 'update/mix');
    const ns: number[][] = [];
    const nv: number[][][] = [];
    for (let i = 0; i < N; i++) {
      const VU = v[i].map((row) => linear(row, mix, null));
      const Vv = VU.map((r) => r.slice(0, F));
      const Uv = VU.map((r) => r.slice(F));
      const norm = Array.from({ length: F }, (_, f) => Math.sqrt(Vv[0][f] ** 2 + Vv[1][f] ** 2 + Vv[2][f] ** 2 + 1e-8));
      const a = linear(linear([...s[i], ...norm], W(pre + 'update/w1'), W(pre + 'update/b1')).map(silu), W(pre + 'update/w2'), W(pre + 'update/b2'));
      ns.push(s[i].map((x, f) => x + a[F + f] * (Uv[0][f] * Vv[0][f] + Uv[1][f] * Vv[1][f] + Uv[2][f] * Vv[2][f]) + a[2 * F + f]));
      nv.push(v[i].map((row, c) => row.map((x, f) => x + a[f] * Uv[c][f])));
    }
    s = ns;
    v = nv;
  }
  const nodeOut = s.map((x) => linear(linear(x, W('readout/w1'), W('readout/b1')).map(silu), W('readout/w2'), W('readout/b2'))[0]);
  const preds: number[] = [];
  let start = 0;
  for (let g = 0; g < shape.graphs; g++) {
    let sum = 0;
    for (let n = start; n < start + b.nNode[g]; n++) sum += nodeOut[n];
    preds.push(config.readout === 'mean' ? (b.nNode[g] > 0 ? sum / b.nNode[g] : 0) : sum);
    start += b.nNode[g];
  }
  return preds;
}

/** Random molecules: positions per graph (Å) and atomic numbers. */
export interface Molecules {
  sizes: number[];
  positions: number[][];
  z: number[][];
}

export function randomMolecules(sizes: number[], seed: number, box = 4, maxZ = 9): Molecules {
  const r = testRng(seed);
  return {
    sizes,
    positions: sizes.map((n) => Array.from({ length: 3 * n }, () => (r() - 0.5) * box)),
    z: sizes.map((n) => Array.from({ length: n }, () => 1 + Math.floor(r() * maxZ))),
  };
}

/** Rotates every molecule by the rotation matrix R (row-major 3x3). */
export function rotateMolecules(m: Molecules, R: number[]): Molecules {
  return {
    ...m,
    positions: m.positions.map((p) => {
      const out = new Array<number>(p.length);
      for (let a = 0; a < p.length / 3; a++)
        for (let i = 0; i < 3; i++) out[3 * a + i] = R[3 * i] * p[3 * a] + R[3 * i + 1] * p[3 * a + 1] + R[3 * i + 2] * p[3 * a + 2];
      return out;
    }),
  };
}

/** A random rotation (unit quaternion) as a row-major 3x3 matrix. */
export function randomRotation(seed: number): number[] {
  const r = testRng(seed);
  let [w, x, y, z] = [r() - 0.5, r() - 0.5, r() - 0.5, r() - 0.5];
  const n = Math.hypot(w, x, y, z);
  [w, x, y, z] = [w / n, x / n, y / n, z / n];
  return [
    1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
    2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
    2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  ];
}

/**
 * Fully connected store of the molecules (receiver-sorted, stable sender
 * permutation) with float32 distances and unit directions from receiver to
 * sender, computed here in float64.
 */
export function moleculeStore(m: Molecules, targetSeed = 1): NativeStoreArrays & { direction: Float32Array } {
  const r = testRng(targetSeed);
  const nodeOffset = [0];
  const edgeOffset = [0];
  const z: number[] = [];
  const snd: number[] = [];
  const rcv: number[] = [];
  const dist: number[] = [];
  const dir: number[] = [];
  const perm: number[] = [];
  const target: number[] = [];
  m.sizes.forEach((n, g) => {
    const p = m.positions[g];
    z.push(...m.z[g]);
    const local: [number, number][] = [];
    for (let rr = 0; rr < n; rr++) for (let ss = 0; ss < n; ss++) if (ss !== rr) local.push([ss, rr]);
    for (const [ss, rr] of local) {
      const d = [0, 1, 2].map((c) => p[3 * ss + c] - p[3 * rr + c]);
      const len = Math.hypot(d[0], d[1], d[2]);
      snd.push(ss);
      rcv.push(rr);
      dist.push(len);
      dir.push(d[0] / len, d[1] / len, d[2] / len);
    }
    perm.push(...local.map((_, i) => i).sort((a, b) => local[a][0] - local[b][0] || a - b));
    nodeOffset.push(nodeOffset[nodeOffset.length - 1] + n);
    edgeOffset.push(edgeOffset[edgeOffset.length - 1] + local.length);
    target.push(r() * 2 - 1);
  });
  return {
    nodeOffset: Int32Array.from(nodeOffset),
    edgeOffset: Int32Array.from(edgeOffset),
    atomicNumber: Uint8Array.from(z),
    senders: Int32Array.from(snd),
    receivers: Int32Array.from(rcv),
    distance: Float32Array.from(dist),
    direction: Float32Array.from(dir),
    senderPerm: Int32Array.from(perm),
    target: Float64Array.from(target),
  };
}
