/** Test helper: random small graph stores and packed batches. */
import { native, type NativeStoreArrays, type PackOutput, type PackShape } from '../../src/native';
import { allocPackOutput, type DType } from '../../src/train/plan';

import { mulberry32 } from '../../src/data/split';

/** A tiny deterministic PRNG for tests (mulberry32). */
export const testRng = mulberry32;

/**
 * Random store: `sizes` gives node counts; edges are fully connected when
 * `fc`, else random with probability 0.5 per ordered pair (so some graphs have
 * no edges). Edges sorted by receiver then sender; senderPerm stable by sender.
 */
export function randomStore(sizes: number[], seed: number, fc = false, maxZ = 9): NativeStoreArrays {
  const rnd = testRng(seed);
  const nodeOffset = [0];
  const edgeOffset = [0];
  const z: number[] = [];
  const snd: number[] = [];
  const rcv: number[] = [];
  const dist: number[] = [];
  const perm: number[] = [];
  const target: number[] = [];
  for (const n of sizes) {
    for (let i = 0; i < n; i++) z.push(1 + Math.floor(rnd() * maxZ));
    const local: [number, number][] = [];
    for (let r = 0; r < n; r++) for (let s = 0; s < n; s++) if (s !== r && (fc || rnd() < 0.5)) local.push([s, r]);
    const base = snd.length;
    for (const [s, r] of local) {
      snd.push(s);
      rcv.push(r);
      dist.push(0.8 + 3 * rnd());
    }
    const order = local.map((_, i) => i).sort((a, b) => local[a][0] - local[b][0] || a - b);
    perm.push(...order);
    nodeOffset.push(nodeOffset[nodeOffset.length - 1] + n);
    edgeOffset.push(base + local.length);
    target.push(rnd() * 2 - 1);
  }
  return {
    nodeOffset: Int32Array.from(nodeOffset),
    edgeOffset: Int32Array.from(edgeOffset),
    atomicNumber: Uint8Array.from(z),
    senders: Int32Array.from(snd),
    receivers: Int32Array.from(rcv),
    distance: Float32Array.from(dist),
    senderPerm: Int32Array.from(perm),
    target: Float64Array.from(target),
  };
}

/** Packs graph ids into a fresh buffer set of `shape` (padded) or their exact totals (with the edge directions when `directions`: the store must have them). */
export function packBatch(store: NativeStoreArrays, ids: number[], shape: PackShape | 'exact', dtype: DType = 'float64', directions = false): { inputs: PackOutput; shape: PackShape } {
  let sh: PackShape;
  if (shape === 'exact') {
    let nodes = 0;
    let edges = 0;
    for (const g of ids) {
      nodes += store.nodeOffset[g + 1] - store.nodeOffset[g];
      edges += store.edgeOffset[g + 1] - store.edgeOffset[g];
    }
    sh = { nodes, edges, graphs: ids.length };
  } else sh = shape;
  const inputs = allocPackOutput(sh, dtype, directions);
  native().packGraphs(store, Int32Array.from(ids), sh, inputs);
  return { inputs, shape: sh };
}
