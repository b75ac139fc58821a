/**
 * Stress training's double backward (issue 22; program_tangent.h's strain
 * tangent, docs/forces.md "Training on stress"): in float64,
 * forceGrad's d(w . F + s . sigma)/d params and forceLossAndGrad's gradient of
 * a stress loss and of a combined energy + forces + stress loss against
 * central finite differences of the native force pass's outputs, for every
 * parameter block of MPEU and SchNet; then the same bits with 1 and 2
 * threads, padding that changes no bit, the profile's stress sites and the
 * argument checks.
 */
import { getThreads, native, nativeModel, setThreads, type PackOutput, type PackShape } from '../../src/native';
import { resolveModelConfig, type ModelConfig, type ModelKind } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { testRng } from '../helpers/batch';
import { centralDifferences } from '../helpers/gradcheck';
import { packStructures, volume, type TestStructure, type Vec3 } from './forces-reference';

const api = nativeModel();

function smallConfig(kind: ModelKind, extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind, latent: 5, passes: 2, basis: 8, rbfSpacing: 0.45, rbfGamma: 2, numClasses: 20, readoutHidden: 4, ...extra });
}

const cellA: [Vec3, Vec3, Vec3] = [[2.9, 0, 0], [0.3, 3.1, 0], [0.2, -0.1, 3.3]];
const cellB: [Vec3, Vec3, Vec3] = [[3.4, 0.2, 0.1], [-0.4, 3.0, 0.3], [0.5, 0.1, 2.8]];
// Two crystals (their stress is scored) around a molecule (volume 0: never scored).
const structs: TestStructure[] = [
  { z: [3, 9], pos: [[0.1, 0.2, 0.05], [1.5, 1.4, 1.7]], cell: cellA, rule: { kind: 'cutoff', cutoff: 3.2 } },
  { z: [1, 6, 8, 7], pos: [[0, 0, 0], [1.2, 0.1, 0], [0.1, 1.3, 0.2], [0.4, 0.5, 1.1]], rule: { kind: 'fc' } },
  { z: [11, 17, 11], pos: [[0.2, 0.1, 0.3], [1.6, 1.2, 1.1], [2.4, 2.5, 0.4]], cell: cellB, rule: { kind: 'cutoff', cutoff: 3.0 } },
];
const volumesOf = (ids: number[], graphs: number): Float64Array => {
  const v = new Float64Array(graphs);
  ids.forEach((g, k) => (v[k] = structs[g].cell ? volume(structs[g].cell as [Vec3, Vec3, Vec3]) : 0));
  return v;
};

const cases: [ModelKind, Partial<ModelConfig>][] = [['mpeu', {}], ['schnet', {}], ['schnet', { aggregation: 'sum', readout: 'sum' }]];

/** Picks up to `n` entries of every parameter block (deterministic). */
function picks(layout: ReturnType<typeof paramLayout>, n: number): number[] {
  const out: number[] = [];
  for (const e of layout.entries) {
    const size = e.rows * e.cols;
    const r = testRng(e.offset + 11);
    const s = new Set<number>();
    while (s.size < Math.min(n, size)) s.add(e.offset + Math.floor(r() * size));
    out.push(...s);
  }
  return out;
}

describe.each(cases)('stress double backward (%s %j, float64)', (kind, extra) => {
  const config = smallConfig(kind, extra);
  const layout = paramLayout(config);
  const params = initParams(layout, 4, 'float64') as Float64Array;
  const rnd = testRng(45);
  for (let i = 0; i < params.length; i++) params[i] += (rnd() - 0.5) * 0.2;
  const ids = [0, 1, 2];
  const { inputs, shape } = packStructures(structs, ids, { nodes: 12, edges: 400, graphs: 4 });
  const vol = volumesOf(ids, shape.graphs);
  const plan = api.createPlan(config, shape, 'float64', { forces: true, forceTraining: true });
  const realAtoms = 9;
  const run = (p: Float64Array) => {
    const energy = new Float64Array(shape.graphs), forces = new Float64Array(3 * shape.nodes), stress = new Float64Array(6 * shape.graphs);
    const loss = native().forcesStep(plan, inputs, shape, p, energy, forces, stress, vol.map((v) => v || 1));
    return { loss, energy, forces, stress };
  };
  // Stress weights s of the crystals only (the molecule's and the padding graph's are 0).
  const sw = new Float64Array(6 * shape.graphs);
  // (1/V ~ 0.03 / Å^3: weights of 100 make the stress part as large as the forces'.)
  for (const g of [0, 2]) for (let v = 0; v < 6; v++) sw[6 * g + v] = 100 * (rnd() - 0.5);
  const w = new Float64Array(3 * shape.nodes);
  for (let i = 0; i < 3 * realAtoms; i++) w[i] = rnd() - 0.5;
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>, n: number): number => {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * b[i];
    return s;
  };
  const fdCheck = (f: (p: Float64Array) => number, grad: Float64Array, h = 1e-5): void => {
    const fds: [number, number][] = centralDifferences(f, params, picks(layout, 4), h).map(({ index, fd }) => [fd, grad[index]]);
    const scale = Math.max(...fds.map(([fd]) => Math.abs(fd)));
    expect(scale).toBeGreaterThan(1e-3);
    // Every entry to 1e-5 relative (plus 1e-6 of the largest), the worst to 1e-6 of the largest.
    for (const [fd, g] of fds) expect(Math.abs(fd - g)).toBeLessThanOrEqual(1e-5 * Math.abs(fd) + 1e-6 * scale);
    expect(Math.max(...fds.map(([fd, g]) => Math.abs(fd - g))) / scale).toBeLessThan(1e-6);
  };

  it('forceGrad with stress weights: value w . F + s . sigma, gradient = finite differences (every block)', () => {
    const grad = new Float64Array(layout.total);
    const value = native().forceGrad(plan, inputs, shape, params, w, grad, null, sw, vol);
    const r = run(params);
    const want = dot(w, r.forces, w.length) + dot(sw, r.stress, sw.length);
    expect(Math.abs(value - want)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));
    fdCheck((p) => {
      const x = run(p);
      return dot(w, x.forces, w.length) + dot(sw, x.stress, sw.length);
    }, grad);
    // Stress alone (w = 0): the tangent is a pure strain of each cell.
    const g2 = new Float64Array(layout.total);
    const v2 = native().forceGrad(plan, inputs, shape, params, new Float64Array(w.length), g2, null, sw, vol);
    expect(Math.abs(v2 - dot(sw, r.stress, sw.length))).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(v2)));
    fdCheck((p) => dot(sw, run(p).stress, sw.length), g2);
  });

  it('the off-diagonal Voigt weights act once per component (each component alone)', () => {
    // s = e_v on graph 0 only: d(sigma_v)/d params, for a diagonal and each off-diagonal component.
    for (const v of [0, 3, 4, 5]) {
      const s = new Float64Array(6 * shape.graphs);
      s[v] = 1;
      const grad = new Float64Array(layout.total);
      const value = native().forceGrad(plan, inputs, shape, params, new Float64Array(w.length), grad, null, s, vol);
      expect(Math.abs(value - run(params).stress[v])).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(value)));
      const k = layout.entries[layout.entries.length - 4].offset; // a readout weight
      const h = 1e-5;
      const orig = params[k];
      params[k] = orig + h;
      const up = run(params).stress[v];
      params[k] = orig - h;
      const down = run(params).stress[v];
      params[k] = orig;
      const fd = (up - down) / (2 * h);
      expect(Math.abs(fd - grad[k])).toBeLessThanOrEqual(1e-9 + 1e-6 * Math.abs(fd));
    }
  });

  const targetStress = Float64Array.from({ length: 6 * shape.graphs }, () => (rnd() - 0.5) * 0.5);
  const graphWeights = Float64Array.of(80, 60, 130, 90); // graph 1 (no volume) and 3 (padding) carry weights: ignored (no volume / not real)
  graphWeights[1] = 0;
  const stressLoss = (s: Float64Array): number => {
    let l = 0;
    for (const g of [0, 2]) for (let v = 0; v < 6; v++) l += graphWeights[g] * (s[6 * g + v] - targetStress[6 * g + v]) ** 2;
    return l;
  };

  it('forceLossAndGrad: the stress loss and its gradient (energy and force weights 0)', () => {
    const grad = new Float64Array(layout.total);
    const out = new Float64Array(6 * shape.graphs);
    const r = native().forceLossAndGrad(plan, inputs, shape, params, new Float64Array(3 * shape.nodes), new Float64Array(shape.nodes), 0, grad, null, { targets: targetStress, weights: graphWeights, volumes: vol, out });
    const x = run(params);
    expect(r.forceLoss).toBe(0);
    expect(Math.abs(r.stressLoss - stressLoss(x.stress))).toBeLessThanOrEqual(1e-13 * Math.max(1e-6, r.stressLoss));
    for (const g of [0, 2]) for (let v = 0; v < 6; v++) expect(Math.abs(out[6 * g + v] - x.stress[6 * g + v])).toBeLessThanOrEqual(1e-14);
    for (let v = 0; v < 6; v++) expect(out[6 + v]).toBe(0); // the molecule: no volume
    fdCheck((p) => stressLoss(run(p).stress), grad);
  });

  it('forceLossAndGrad: energy + forces + stress in one tangent pass (gradient = finite differences of the whole loss)', () => {
    const tF = Float64Array.from({ length: 3 * shape.nodes }, () => rnd() - 0.5);
    const aw = Float64Array.from({ length: shape.nodes }, (_, i) => (i < realAtoms ? 0.3 + 0.1 * (i % 3) : 0));
    const ew = 0.7;
    const grad = new Float64Array(layout.total);
    const r = native().forceLossAndGrad(plan, inputs, shape, params, tF, aw, ew, grad, null, { targets: targetStress, weights: graphWeights, volumes: vol });
    const loss = (p: Float64Array): number => {
      const x = run(p);
      let lf = 0;
      for (let i = 0; i < realAtoms; i++) for (let a = 0; a < 3; a++) lf += aw[i] * (x.forces[3 * i + a] - tF[3 * i + a]) ** 2;
      return ew * x.loss + lf + stressLoss(x.stress);
    };
    expect(Math.abs(ew * r.energyLoss + r.forceLoss + r.stressLoss - loss(params))).toBeLessThanOrEqual(1e-12 * loss(params));
    fdCheck(loss, grad);
    // The composition: without the stress term, plus forceGrad's stress part at s = dL_S/dsigma.
    const gNo = new Float64Array(layout.total);
    native().forceLossAndGrad(plan, inputs, shape, params, tF, aw, ew, gNo);
    const x = run(params);
    const s = new Float64Array(6 * shape.graphs);
    for (const g of [0, 2]) for (let v = 0; v < 6; v++) s[6 * g + v] = 2 * graphWeights[g] * (x.stress[6 * g + v] - targetStress[6 * g + v]);
    const gS = new Float64Array(layout.total);
    native().forceGrad(plan, inputs, shape, params, new Float64Array(w.length), gS, null, s, vol);
    let d = 0, n = 0;
    for (let i = 0; i < grad.length; i++) (d += (grad[i] - gNo[i] - gS[i]) ** 2), (n += grad[i] ** 2);
    expect(Math.sqrt(d / n)).toBeLessThan(1e-11);
  });
});

/** Float32 copies of a float64 batch. */
function f32Inputs(p: PackOutput): PackOutput {
  return { ...p, distance: Float32Array.from(p.distance), target: Float32Array.from(p.target), mask: Float32Array.from(p.mask), direction: Float32Array.from(p.direction as Float64Array) };
}

describe.each([['mpeu'], ['schnet']] as [ModelKind][])('stress training kernels (%s, float32)', (kind) => {
  const config = resolveModelConfig({ kind, latent: 12, passes: 2, basis: 16, rbfSpacing: 0.3, rbfGamma: 3, numClasses: 20, readoutHidden: 6 });
  const P = paramLayout(config).total;
  const params = Float32Array.from(initParams(paramLayout(config), 5, 'float64') as Float64Array);
  const ids = [0, 1, 2];
  const exact = packStructures(structs, ids, 'exact');
  const shape = exact.shape;
  const inputs = f32Inputs(exact.inputs);
  const vol = volumesOf(ids, shape.graphs);
  const r = testRng(3);
  const tF = Float32Array.from({ length: 3 * shape.nodes }, () => r() - 0.5);
  const aw = new Float32Array(shape.nodes).fill(0.1);
  const tS = Float32Array.from({ length: 6 * shape.graphs }, () => (r() - 0.5) * 0.02);
  const gw = Float32Array.from({ length: shape.graphs }, (_, g) => (g === 1 ? 0 : 0.5));
  const plan = api.createPlan(config, shape, 'float32', { forceTraining: true });

  const step = (pl = plan, inp: PackOutput = inputs, sh: PackShape = shape, t = tF, a = aw, st = tS, w = gw, v = vol) => {
    const g = new Float32Array(P);
    const out = new Float32Array(6 * sh.graphs);
    const res = native().forceLossAndGrad(pl, inp, sh, params, t, a, 0.5, g, null, { targets: st, weights: w, volumes: v, out });
    return { g, res, out };
  };

  it('gives the same bits with 1 and 2 threads', () => {
    const before = getThreads();
    try {
      setThreads(1);
      const a = step();
      setThreads(2);
      const b = step();
      expect(a.res.stressLoss).toBeGreaterThan(0);
      expect(b.res).toEqual(a.res);
      expect(Buffer.from(a.g.buffer).equals(Buffer.from(b.g.buffer))).toBe(true);
      expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
    } finally {
      setThreads(before);
    }
  });

  it('padding (nodes, edges, graphs) changes no bit; padding graphs weigh nothing', () => {
    const padded = packStructures(structs, ids, { nodes: shape.nodes + 5, edges: shape.edges + 37, graphs: shape.graphs + 2 });
    const ps = padded.shape;
    const planP = api.createPlan(config, ps, 'float32', { forceTraining: true });
    const t = new Float32Array(3 * ps.nodes).fill(0.25);
    t.set(tF);
    const a = new Float32Array(ps.nodes).fill(1);
    a.set(aw);
    const st = new Float32Array(6 * ps.graphs).fill(0.5);
    st.set(tS);
    const w = new Float32Array(ps.graphs).fill(2); // the padding graphs' weights and volumes play no part
    w.set(gw);
    const v = new Float64Array(ps.graphs).fill(7);
    v.set(vol);
    const A = step();
    const B = step(planP, f32Inputs(padded.inputs), ps, t, a, st, w, v);
    expect(B.res).toEqual(A.res);
    expect(Buffer.from(A.g.buffer).equals(Buffer.from(B.g.buffer))).toBe(true);
    expect(Buffer.from(A.out.buffer).equals(Buffer.from(B.out.subarray(0, 6 * shape.graphs).slice().buffer))).toBe(true);
    for (let i = 6 * shape.graphs; i < B.out.length; i++) expect(B.out[i]).toBe(0);
    api.releasePlan(planP);
  });

  it('records the strain tangent and the stress loss as profile sites with flops and bytes', () => {
    api.setProfile(plan, true);
    api.resetFlops();
    step();
    const flops = api.flopsCount();
    const rec = api.takeProfileRecords(plan);
    api.setProfile(plan, false);
    const sites = api.kernelSites();
    const seen = new Map<string, { flops: number; bytes: number }>();
    let gemm = 0;
    for (let i = 0; i < rec.count; i++) {
      const n = sites[rec.site[i]].name;
      const s = seen.get(n) ?? { flops: 0, bytes: 0 };
      s.flops += rec.flops[i];
      s.bytes += rec.bytes[i];
      seen.set(n, s);
      if (sites[rec.site[i]].gemm) gemm += rec.flops[i];
    }
    for (const n of ['dbl.strain_tan', 'force.stress_loss', 'force.virial', 'dbl.dist_tan']) {
      expect(seen.get(n)?.flops).toBeGreaterThan(0);
      expect(seen.get(n)?.bytes).toBeGreaterThan(0);
    }
    expect(gemm).toBe(flops);
  });

  it('checks its arguments', () => {
    const g = new Float32Array(P);
    const zeros = new Float32Array(shape.nodes);
    const run = (stress: Parameters<ReturnType<typeof native>['forceLossAndGrad']>[9]) =>
      native().forceLossAndGrad(plan, inputs, shape, params, tF, zeros, 0, g, null, stress);
    // A scored graph without a volume.
    expect(() => run({ targets: tS, weights: new Float32Array(shape.graphs).fill(1), volumes: vol })).toThrow(expect.objectContaining({ code: 'ERR_GNN_RANGE' }));
    // A scored graph with a NaN target.
    const bad = tS.slice();
    bad[0] = NaN;
    expect(() => run({ targets: bad, weights: gw, volumes: vol })).toThrow(expect.objectContaining({ code: 'ERR_GNN_RANGE' }));
    expect(() => run({ targets: tS, weights: gw, volumes: vol.subarray(0, 1) })).toThrow(expect.objectContaining({ code: 'ERR_GNN_LENGTH' }));
    expect(() => run({ targets: tS, weights: gw } as never)).toThrow(expect.objectContaining({ code: 'ERR_GNN_TYPE' }));
    expect(() => native().forceGrad(plan, inputs, shape, params, tF, g, null, new Float32Array(6 * shape.graphs))).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
  });
});
