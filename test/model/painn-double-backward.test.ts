/**
 * PaiNN's double backward (docs/forces.md, docs/painn.md; program_painn.h
 * painnForwardTangent / painnBackwardDual): forceGrad's d(w . F + s . sigma)/d
 * params in float64 against central finite differences of the native force
 * pass over the parameters, for every parameter block (filters, message,
 * mix, update, readout, embedding) with per-block and shared filters, sum and
 * mean aggregation and readout, on molecules (edges beyond the cutoff
 * included) and a crystal with a stress term; float32 against float64;
 * forceLossAndGrad against its composition; the same bits with 1 and 2
 * threads; padding invariance (bitwise); the plan's buffers and profile sites.
 */
import { getThreads, native, nativeModel, setThreads } from '../../src/native';
import { resolveModelConfig, type ModelConfig } from '../../src/model/config';
import { paramLayout } from '../../src/model/params';
import { centralDifferences, spreadIndices } from '../helpers/gradcheck';
import { atomWeights, float32Params, packStructures, jitter, packBothPrecisions, relErr, volume, type TestStructure, type Vec3 } from './forces-reference';
import { forceGradFixture, itForceGradPrecisionAndComposition, paddedForceBatch } from './force-grad-checks';

const api = nativeModel();
const CUTOFF = 3.0;

function painnConfig(extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind: 'painn', latent: 6, passes: 2, basis: 6, cutoff: CUTOFF, numClasses: 20, readoutHidden: 5, ...extra });
}


const cellA: [Vec3, Vec3, Vec3] = [[2.9, 0, 0], [0.3, 3.1, 0], [0.2, -0.1, 3.3]];
/** A molecule, a molecule with edges beyond the model's cutoff, a crystal (cutoff graph). */
const structs: TestStructure[] = [
  { z: [1, 6, 8, 7], pos: jitter([[0, 0, 0], [1.2, 0, 0], [0, 1.3, 0.2], [0.4, 0.5, 1.1]], 1, 0.3), rule: { kind: 'fc' } },
  { z: [6, 6, 1, 1, 8], pos: jitter([[0, 0, 0], [1.4, 0, 0], [-0.9, 0.8, 0], [2.3, 0.7, 0.3], [0.7, -1.2, 0.9]], 2, 0.3), rule: { kind: 'fc' } },
  { z: [3, 9], pos: [[0.1, 0.2, 0.05], [1.5, 1.4, 1.7]], cell: cellA, rule: { kind: 'cutoff', cutoff: 3.2 } },
];
const REAL = 11; // atoms of the three structures
/** Cell volumes per graph: the crystal's, 1 elsewhere (those graphs' stress weights are 0). */
const volumes = (graphs: number): Float64Array => {
  const v = new Float64Array(graphs).fill(1);
  v[2] = volume(cellA);
  return v;
};





const configs: [string, Partial<ModelConfig>][] = [
  ['per-block filters, sum', {}],
  ['shared filters, mean aggregation, 3 blocks', { sharedFilters: true, aggregation: 'mean', passes: 3 }],
  ['mean readout, mean aggregation', { aggregation: 'mean', readout: 'mean' }],
];

describe.each(configs)('PaiNN double backward vs finite differences (%s, float64)', (_name, extra) => {
  const c = painnConfig(extra);
  const layout = paramLayout(c);
  const params = float32Params(c, 7);
  const { inputs, shape } = packStructures(structs, [0, 1, 2], { nodes: 14, edges: 90, graphs: 4 });
  const plan = api.createPlan(c, shape, 'float64', { forces: true, forceTraining: true });
  const w = atomWeights(shape.nodes, REAL, 44);
  const s = new Float64Array(6 * shape.graphs);
  for (let v = 0; v < 6; v++) s[12 + v] = [0.7, -0.4, 0.5, 0.9, -0.6, 0.3][v]; // the crystal's stress weights
  const vol = volumes(shape.graphs);
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
    let t = 0;
    for (let i = 0; i < a.length; i++) t += a[i] * b[i];
    return t;
  };
  const forcePass = (p: Float64Array): { F: Float64Array; sigma: Float64Array; E: Float64Array } => {
    const F = new Float64Array(3 * shape.nodes), sigma = new Float64Array(6 * shape.graphs), E = new Float64Array(shape.graphs);
    native().forcesStep(plan, inputs, shape, p, E, F, sigma, vol);
    return { F, sigma, E };
  };
  const wF = (p: Float64Array): number => dot(w, forcePass(p).F);
  const wFs = (p: Float64Array): number => {
    const r = forcePass(p);
    return dot(w, r.F) + dot(s, r.sigma);
  };
  const P = layout.total;
  const grad = new Float64Array(P), egrad = new Float64Array(P), gradS = new Float64Array(P);
  const value = native().forceGrad(plan, inputs, shape, params, w, grad, egrad);
  const valueS = native().forceGrad(plan, inputs, shape, params, w, gradS, null, s, vol);
  const picks = spreadIndices(layout.entries, 4);
  const blockOf = (i: number): string => layout.entries.find((e) => i >= e.offset && i < e.offset + e.rows * e.cols)?.name ?? '?';

  it('returns w . F (+ s . sigma) of the force pass', () => {
    expect(Math.abs(value - wF(params))).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(value)));
    expect(Math.abs(valueS - wFs(params))).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(valueS)));
    let scale = 0;
    for (const x of grad) scale = Math.max(scale, Math.abs(x));
    expect(scale).toBeGreaterThan(1e-3);
  });

  it('d(w . F)/d params matches central differences in every parameter block', () => {
    const bad: string[] = [];
    for (const { index, fd } of centralDifferences(wF, params, picks))
      if (!(Math.abs(fd - grad[index]) <= 1e-8 + 1e-6 * Math.abs(fd))) bad.push(`${blockOf(index)}[${index}]: fd ${fd} grad ${grad[index]}`);
    expect(bad).toEqual([]);
    // Every block has a checked element with a non-zero gradient somewhere (the check is not vacuous).
    for (const e of layout.entries) {
      let m = 0;
      for (let i = e.offset; i < e.offset + e.rows * e.cols; i++) m = Math.max(m, Math.abs(grad[i]));
      if (e.name !== 'readout/b2') expect(m).toBeGreaterThan(0);
    }
  });

  it('with stress weights, d(w . F + s . sigma)/d params matches central differences', () => {
    const bad: string[] = [];
    for (const { index, fd } of centralDifferences(wFs, params, picks))
      if (!(Math.abs(fd - gradS[index]) <= 1e-8 + 1e-6 * Math.abs(fd))) bad.push(`${blockOf(index)}[${index}]: fd ${fd} grad ${gradS[index]}`);
    expect(bad).toEqual([]);
    expect(relErr(gradS, grad)).toBeGreaterThan(1e-6); // the stress term is there
  });

  it('the value part is the gradient of the summed energies', () => {
    const energy = (p: Float64Array): number => {
      const E = forcePass(p).E;
      return E[0] + E[1] + E[2];
    };
    for (const { index, fd } of centralDifferences(energy, params, spreadIndices(layout.entries, 1)))
      expect(Math.abs(fd - egrad[index])).toBeLessThanOrEqual(1e-8 + 1e-6 * Math.abs(fd));
  });

  it('forceLossAndGrad (energy + forces + stress) equals central differences of its loss', () => {
    const target = atomWeights(shape.nodes, REAL, 21);
    const aw = Float64Array.from({ length: shape.nodes }, (_, i) => 0.5 + (i % 3) * 0.25);
    const st = { targets: Float64Array.from({ length: 6 * shape.graphs }, (_, i) => 0.01 * ((i % 5) - 2)), weights: Float64Array.from({ length: shape.graphs }, (_, g) => (g === 2 ? 3 : 0)), volumes: vol };
    const ew = 0.3;
    const loss = (p: Float64Array): number => {
      const r = native().forceLossAndGrad(plan, inputs, shape, p, target, aw, ew, new Float64Array(P), null, st);
      return ew * r.energyLoss + r.forceLoss + r.stressLoss;
    };
    const g = new Float64Array(P);
    const r = native().forceLossAndGrad(plan, inputs, shape, params, target, aw, ew, g, null, st);
    expect(r.stressLoss).toBeGreaterThan(0);
    let scale = 0;
    for (const x of g) scale = Math.max(scale, Math.abs(x));
    for (const { index, fd } of centralDifferences(loss, params, spreadIndices(layout.entries, 2)))
      expect(Math.abs(fd - g[index])).toBeLessThanOrEqual(1e-6 * scale + 1e-6 * Math.abs(fd));
  });
});

describe.each(configs)('PaiNN double backward, production guarantees (%s)', (_name, extra) => {
  const fx = forceGradFixture(painnConfig(extra), structs);
  const { c, P, p64, p32, f32, shape, plan32 } = fx;

  itForceGradPrecisionAndComposition(fx, structs);

  it('gives the same bits with 1 and 2 threads (float32 and float64, with a stress term)', () => {
    const before = getThreads();
    // 36 structures (132 atoms): several receiver and sender chunks per thread.
    const ids = Array.from({ length: 36 }, (_, i) => i % 3);
    const big = packBothPrecisions(structs, ids, 'exact');
    const bs = big.shape;
    const wb = atomWeights(bs.nodes, bs.nodes, 19);
    const vol = new Float64Array(bs.graphs).fill(1);
    for (let g = 2; g < bs.graphs; g += 3) vol[g] = volume(cellA);
    const crystal = (g: number): boolean => g % 3 === 2;
    const b32 = api.createPlan(c, bs, 'float32', { forceTraining: true });
    const b64 = api.createPlan(c, bs, 'float64', { forceTraining: true });
    const run = (): Buffer[] => {
      const g = new Float32Array(P), t = new Float32Array(P), d = new Float64Array(P);
      native().forceGrad(b32, big.f32, bs, p32, Float32Array.from(wb), g, new Float32Array(P));
      native().forceLossAndGrad(b32, big.f32, bs, p32, Float32Array.from(wb), new Float32Array(bs.nodes).fill(1), 0.5, t, null, {
        targets: new Float32Array(6 * bs.graphs).fill(0.01), weights: Float32Array.from({ length: bs.graphs }, (_, i) => (crystal(i) ? 1 : 0)), volumes: vol,
      });
      native().forceGrad(b64, big.f64, bs, p64, wb, d, null, Float64Array.from({ length: 6 * bs.graphs }, (_, i) => (crystal(Math.floor(i / 6)) ? 0.3 : 0)), vol);
      return [Buffer.from(g.buffer), Buffer.from(t.buffer), Buffer.from(d.buffer)];
    };
    try {
      setThreads(1);
      const a = run();
      setThreads(2);
      const b = run();
      for (let i = 0; i < a.length; i++) expect(a[i].equals(b[i])).toBe(true);
    } finally {
      setThreads(before);
      api.releasePlan(b32);
      api.releasePlan(b64);
    }
  });

  it('padding changes no bit of forceLossAndGrad (float32)', () => {
    const padded = paddedForceBatch(fx, structs);
    const planP = padded.plan;
    const tA = new Float32Array(P), tB = new Float32Array(P);
    const targetP = new Float32Array(3 * padded.shape.nodes).fill(0.25);
    const awP = new Float32Array(padded.shape.nodes).fill(1);
    const volA = volumes(shape.graphs), volB = new Float64Array(padded.shape.graphs).fill(7);
    volB.set(volA);
    const stA = { targets: new Float32Array(6 * shape.graphs).fill(0.01), weights: Float32Array.from({ length: shape.graphs }, (_, i) => (i === 2 ? 1 : 0)), volumes: volA };
    const stB = { targets: new Float32Array(6 * padded.shape.graphs).fill(0.01), weights: Float32Array.from({ length: padded.shape.graphs }, (_, i) => (i === 2 || i >= shape.graphs ? 1 : 0)), volumes: volB };
    const rA = native().forceLossAndGrad(plan32, f32, shape, p32, targetP.subarray(0, 3 * shape.nodes), awP.subarray(0, shape.nodes), 0.5, tA, null, stA);
    const rB = native().forceLossAndGrad(planP, padded.f32, padded.shape, p32, targetP, awP, 0.5, tB, null, stB);
    expect(rB).toEqual(rA);
    expect(Buffer.from(tA.buffer).equals(Buffer.from(tB.buffer))).toBe(true);
    api.releasePlan(planP);
  });
});

describe('PaiNN force-training plans', () => {
  it('hold the tangent twin of every PaiNN buffer, plus the edge tangents, forces and weights', () => {
    for (const extra of [{}, { sharedFilters: true }]) {
      const c = painnConfig(extra);
      const { shape } = packBothPrecisions(structs, [0, 1, 2], 'exact');
      const bytes = (o?: { forces?: boolean; forceTraining?: boolean }): number => {
        const h = api.createPlan(c, shape, 'float64', o);
        try {
          return api.planInfo(h).bytes;
        } finally {
          api.releasePlan(h);
        }
      };
      const energy = bytes(), forces = bytes({ forces: true }), training = bytes({ forces: true, forceTraining: true });
      expect(bytes({ forceTraining: true })).toBe(training);
      const F = c.latent, R = c.readoutHidden;
      const wt = Math.max(3 * F * F, 2 * F * F, F * R); // the weight-transpose scratch (no twin)
      const graphStart = 8 * (shape.graphs + 1);
      const noTwin = 8 * (shape.edges + shape.nodes); // the cutoff (its tangent is counted below) and 1 / in-degree
      // Tangents of the distance, the edge direction [E x 3] and the cutoff; forces and force-loss
      // weights; strain derivative and strain weights.
      const extraBytes = 8 * (5 * shape.edges + 6 * shape.nodes + 12 * shape.graphs);
      expect(training - forces).toBe(energy - 8 * wt - graphStart - noTwin + extraBytes);
    }
  });

  it('record their own profile sites, whose products sum to the native flop counter', () => {
    const c = painnConfig();
    const { f32, shape } = packBothPrecisions(structs, [0, 1, 2], 'exact');
    const P = paramLayout(c).total;
    const plan = api.createPlan(c, shape, 'float32', { forceTraining: true });
    api.setProfile(plan, true);
    api.resetFlops();
    native().forceLossAndGrad(plan, f32, shape, Float32Array.from(float32Params(c, 5)), new Float32Array(3 * shape.nodes), new Float32Array(shape.nodes).fill(1), 1, new Float32Array(P), null, {
      targets: new Float32Array(6 * shape.graphs), weights: Float32Array.from({ length: shape.graphs }, (_, i) => (i === 2 ? 1 : 0)), volumes: volumes(shape.graphs),
    });
    const flops = api.flopsCount();
    const rec = api.takeProfileRecords(plan);
    const sites = api.kernelSites();
    const names = new Set(Array.from(rec.site, (s) => sites[s].name));
    for (const n of ['dbl.dist_tan', 'dbl.strain_tan', 'dbl.painn.edge_tan', 'dbl.painn.message_tan', 'dbl.painn.norm_tan', 'dbl.painn.silu_tan', 'dbl.painn.update_tan',
      'dbl.fwd.node_tan_gemm', 'dbl.bwd.painn.update_tan', 'dbl.bwd.painn.norm_tan', 'dbl.bwd.painn.silu_dual', 'dbl.bwd.painn.message_tan', 'dbl.bwd.painn.filter_dw_reduce_tan',
      'dbl.bwd.node_dx_tan_gemm', 'dbl.bwd.node_dw_tan_gemm', 'dbl.bwd.embed_tan', 'force.loss', 'force.stress_loss', 'force.scatter'])
      expect(names.has(n)).toBe(true);
    let gemm = 0;
    for (let i = 0; i < rec.count; i++) if (sites[rec.site[i]].gemm) gemm += rec.flops[i];
    expect(gemm).toBe(flops);
    for (let i = 0; i < rec.count; i++) expect(rec.bytes[i]).toBeGreaterThan(0);
    const phases = api.getProfile(plan);
    expect(phases.tangent_forward).toBeGreaterThan(0);
    expect(phases.double_backward).toBeGreaterThan(0);
    api.releasePlan(plan);
  });
});
