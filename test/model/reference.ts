/**
 * Plain TypeScript float64 reference of MPEU and SchNet, written straight from
 * PAPER.md in the unfused form (MLP on concat(h_s, h_r, e), explicit messages,
 * explicit mean): the oracle for the native forward pass.
 */
import type { ModelConfig } from '../../src/model/config';
import type { ParamLayout } from '../../src/model/params';
import type { PackOutput, PackShape } from '../../src/native';

const ssp = (x: number): number => Math.log1p(Math.exp(-Math.abs(x))) + Math.max(x, 0) - Math.LN2;

export type Mat = number[][];

export function weight(layout: ParamLayout, p: ArrayLike<number>, name: string): Mat {
  const e = layout.entries.find((x) => x.name === name);
  if (!e) throw new Error(`no weight ${name}`);
  const m: Mat = [];
  for (let r = 0; r < e.rows; r++) {
    const row: number[] = [];
    for (let c = 0; c < e.cols; c++) row.push(p[e.offset + r * e.cols + c]);
    m.push(row);
  }
  return m;
}

export function linear(x: number[], w: Mat, b: Mat | null): number[] {
  const out = new Array(w[0].length).fill(0);
  for (let i = 0; i < x.length; i++) for (let j = 0; j < out.length; j++) out[j] += x[i] * w[i][j];
  if (b) for (let j = 0; j < out.length; j++) out[j] += b[0][j];
  return out;
}

/** Per-graph predictions (standardised units) of the reference model. */
export function referencePredict(config: ModelConfig, layout: ParamLayout, p: ArrayLike<number>, b: PackOutput, shape: PackShape): number[] {
  const W = (n: string): Mat => weight(layout, p, n);
  const N = shape.nodes;
  const E = shape.edges;
  let h: number[][] = [];
  for (let n = 0; n < N; n++) {
    const onehot = new Array(config.numClasses).fill(0);
    onehot[b.atomicNumber[n]] = 1;
    h.push(linear(onehot, W('embed/w'), W('embed/b')));
  }
  const rbf: number[][] = [];
  for (let k = 0; k < E; k++) {
    const row: number[] = [];
    for (let j = 0; j < config.basis; j++) row.push(Math.exp(-config.rbfGamma * (b.distance[k] - config.rbfSpacing * j) ** 2));
    rbf.push(row);
  }
  let e: number[][] = rbf;
  for (let t = 0; t < config.passes; t++) {
    const pre = `pass${t}/`;
    let filterIn = rbf;
    if (config.kind === 'mpeu') {
      const newE: number[][] = [];
      for (let k = 0; k < E; k++) {
        const x = [...h[b.senders[k]], ...h[b.receivers[k]], ...e[k]];
        const a = linear(x, W(pre + 'edge/w1'), W(pre + 'edge/b1')).map(ssp);
        newE.push(linear(a, W(pre + 'edge/w2'), W(pre + 'edge/b2')));
      }
      e = newE;
      filterIn = e;
    }
    const msgs: number[][] = [];
    for (let k = 0; k < E; k++) {
      const f = linear(linear(filterIn[k], W(pre + 'filter/w1'), W(pre + 'filter/b1')).map(ssp), W(pre + 'filter/w2'), W(pre + 'filter/b2')).map(ssp);
      const hs = linear(h[b.senders[k]], W(pre + 'sender/w'), W(pre + 'sender/b'));
      msgs.push(f.map((x, j) => x * hs[j]));
    }
    const next: number[][] = [];
    for (let n = 0; n < N; n++) {
      const agg = new Array(config.latent).fill(0);
      let cnt = 0;
      for (let k = 0; k < E; k++) {
        if (b.receivers[k] !== n) continue;
        cnt++;
        for (let j = 0; j < config.latent; j++) agg[j] += msgs[k][j];
      }
      if (config.aggregation === 'mean' && cnt > 0) for (let j = 0; j < config.latent; j++) agg[j] /= cnt;
      const u = linear(linear(agg, W(pre + 'node/w1'), W(pre + 'node/b1')).map(ssp), W(pre + 'node/w2'), W(pre + 'node/b2'));
      next.push(h[n].map((x, j) => x + u[j]));
    }
    h = next;
  }
  const nodeOut = h.map((x) => linear(linear(x, W('readout/w1'), W('readout/b1')).map(ssp), W('readout/w2'), W('readout/b2'))[0]);
  const preds: number[] = [];
  let start = 0;
  for (let g = 0; g < shape.graphs; g++) {
    let s = 0;
    for (let n = start; n < start + b.nNode[g]; n++) s += nodeOut[n];
    preds.push(config.readout === 'mean' ? (b.nNode[g] > 0 ? s / b.nNode[g] : 0) : s);
    start += b.nNode[g];
  }
  return preds;
}
