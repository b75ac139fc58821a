/**
 * The double backward's production path (issue 22; program_tangent.h,
 * docs/forces.md) beyond the finite-difference checks of
 * forces-double-backward.test.ts: float32 against float64 on the same
 * (float32-representable) inputs, forceLossAndGrad against its composition
 * (lossAndGrad + forceGrad with w = dL_F/dF), the same bits with 1 and 2
 * threads, padding invariance (bitwise), the plan's extra bytes (the tangent
 * twins of the energy buffers) and its profile sites.
 */
import { getThreads, native, nativeModel, setThreads } from '../../src/native';
import { resolveModelConfig, type ModelConfig, type ModelKind } from '../../src/model/config';
import { paramLayout } from '../../src/model/params';
import { float32Params, packBothPrecisions, type TestStructure, type Vec3 } from './forces-reference';
import { forceGradFixture, itForceGradPrecisionAndComposition, paddedForceBatch } from './force-grad-checks';

const api = nativeModel();

function config(kind: ModelKind, extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind, latent: 12, passes: 2, basis: 16, rbfSpacing: 0.3, rbfGamma: 3, numClasses: 20, readoutHidden: 6, ...extra });
}

const structs: TestStructure[] = [
  { z: [1, 6, 8, 7, 1], pos: [[0, 0, 0], [1.2, 0.1, 0], [0.1, 1.3, 0.2], [0.4, 0.5, 1.1], [-0.9, 0.3, 0.4]], rule: { kind: 'fc' } },
  { z: [3, 9], pos: [[0.1, 0.2, 0.05], [1.5, 1.4, 1.7]], cell: [[2.9, 0, 0], [0.3, 3.1, 0], [0.2, -0.1, 3.3]] as [Vec3, Vec3, Vec3], rule: { kind: 'cutoff', cutoff: 3.2 } },
  { z: [6, 6, 1], pos: [[0, 0, 0], [1.4, 0, 0], [2.0, 0.9, 0.1]], rule: { kind: 'fc' } },
];





const cases: [ModelKind, Partial<ModelConfig>][] = [['mpeu', {}], ['schnet', {}], ['schnet', { aggregation: 'sum', readout: 'sum' }]];

describe.each(cases)('float32 double backward (%s %j)', (kind, extra) => {
  const fx = forceGradFixture(config(kind, extra), structs);
  const { P, p32, f32, shape, w32, plan32 } = fx;

  itForceGradPrecisionAndComposition(fx, structs);

  it('gives the same bits with 1 and 2 threads (float32)', () => {
    const before = getThreads();
    const run = (): { g: Float32Array; t: Float32Array } => {
      const g = new Float32Array(P), t = new Float32Array(P);
      native().forceGrad(plan32, f32, shape, p32, w32, g, new Float32Array(P));
      native().forceLossAndGrad(plan32, f32, shape, p32, w32, new Float32Array(shape.nodes).fill(1), 0.5, t);
      return { g, t };
    };
    try {
      setThreads(1);
      const a = run();
      setThreads(2);
      const b = run();
      expect(Buffer.from(a.g.buffer).equals(Buffer.from(b.g.buffer))).toBe(true);
      expect(Buffer.from(a.t.buffer).equals(Buffer.from(b.t.buffer))).toBe(true);
    } finally {
      setThreads(before);
    }
  });

  it('padding changes no bit of forceLossAndGrad (float32)', () => {
    const padded = paddedForceBatch(fx, structs);
    const planP = padded.plan;
    const tA = new Float32Array(P), tB = new Float32Array(P);
    const targetP = new Float32Array(3 * padded.shape.nodes).fill(0.25);
    const awP = new Float32Array(padded.shape.nodes).fill(1);
    const rA = native().forceLossAndGrad(plan32, f32, shape, p32, targetP.subarray(0, 3 * shape.nodes), awP.subarray(0, shape.nodes), 0.5, tA);
    const rB = native().forceLossAndGrad(planP, padded.f32, padded.shape, p32, targetP, awP, 0.5, tB);
    expect(rB).toEqual(rA);
    expect(Buffer.from(tA.buffer).equals(Buffer.from(tB.buffer))).toBe(true);
    api.releasePlan(planP);
  });
});

describe('force-training plans', () => {
  it.each(['mpeu', 'schnet'] as ModelKind[])('hold the tangent twin of every energy buffer, plus distances, forces and weights (%s)', (kind) => {
    const c = config(kind);
    const { shape } = packBothPrecisions(structs, [0, 1], 'exact');
    const bytes = (o?: { forces?: boolean; forceTraining?: boolean }): number => {
      const h = api.createPlan(c, shape, 'float64', o);
      try {
        return api.planInfo(h).bytes;
      } finally {
        api.releasePlan(h);
      }
    };
    const energy = bytes(), forces = bytes({ forces: true }), training = bytes({ forces: true, forceTraining: true });
    expect(bytes({ forceTraining: true })).toBe(training); // forceTraining implies forces
    const C = c.latent, H = 2 * C, K = c.basis, R = c.readoutHidden;
    const wt = Math.max(K * H, K * C, H * C, C * R, C * C); // the weight-transpose scratch (no twin)
    const graphStart = 8 * (shape.graphs + 1);
    const invCnt = 8 * shape.nodes; // no tangent: depends on the graph only
    const extra = 8 * (shape.edges + 6 * shape.nodes + 12 * shape.graphs); // distance tangents, forces, force-loss weights, strain derivative and strain weights
    expect(training - forces).toBe(energy - 8 * wt - graphStart - invCnt + extra);
  });

  it('run forceGrad / forceLossAndGrad only with forceTraining', () => {
    const c = config('schnet');
    const { f64, shape } = packBothPrecisions(structs, [0], 'exact');
    const P = paramLayout(c).total;
    const plain = api.createPlan(c, shape, 'float64', { forces: true });
    expect(() => native().forceLossAndGrad(plain, f64, shape, new Float64Array(P), new Float64Array(3 * shape.nodes), new Float64Array(shape.nodes), 1, new Float64Array(P))).toThrow(expect.objectContaining({ code: 'ERR_GNN_FORCES_PLAN' }));
    const plan = api.createPlan(c, shape, 'float64', { forceTraining: true });
    expect(() => native().forceLossAndGrad(plan, f64, shape, new Float64Array(P), new Float64Array(3 * shape.nodes), new Float64Array(shape.nodes), -1, new Float64Array(P))).toThrow(expect.objectContaining({ code: 'ERR_GNN_RANGE' }));
    expect(() => native().forceGrad(plan, { ...f64, direction: undefined }, shape, new Float64Array(P), new Float64Array(3 * shape.nodes), new Float64Array(P))).toThrow(expect.objectContaining({ code: 'ERR_GNN_DATA_DIRECTIONS' }));
  });

  it('record their own profile sites, whose products sum to the native flop counter', () => {
    for (const kind of ['mpeu', 'schnet'] as ModelKind[]) {
      const c = config(kind);
      const { f32, shape } = packBothPrecisions(structs, [0, 1, 2], 'exact');
      const P = paramLayout(c).total;
      const plan = api.createPlan(c, shape, 'float32', { forceTraining: true });
      api.setProfile(plan, true);
      api.resetFlops();
      native().forceLossAndGrad(plan, f32, shape, Float32Array.from(float32Params(c, 5)), new Float32Array(3 * shape.nodes), new Float32Array(shape.nodes).fill(1), 1, new Float32Array(P));
      const flops = api.flopsCount();
      const rec = api.takeProfileRecords(plan);
      const sites = api.kernelSites();
      const names = new Set(Array.from(rec.site, (s) => sites[s].name));
      for (const n of ['dbl.dist_tan', 'dbl.rbf_tan', 'dbl.fwd.edge_tan_gemm', 'dbl.bwd.edge_dw_tan_gemm', 'dbl.bwd.node_dx_tan_gemm', 'force.loss', 'force.scatter'])
        expect(names.has(n)).toBe(true);
      let gemm = 0;
      for (let i = 0; i < rec.count; i++) if (sites[rec.site[i]].gemm) gemm += rec.flops[i];
      expect(gemm).toBe(flops);
      const phases = api.getProfile(plan);
      expect(phases.tangent_forward).toBeGreaterThan(0);
      expect(phases.double_backward).toBeGreaterThan(0);
      api.releasePlan(plan);
    }
  });
});
