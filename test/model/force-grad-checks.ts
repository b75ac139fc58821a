/**
 * The double backward's precision and composition checks, shared by every
 * model's force-training tests (forces-double-backward-fast for MPEU and
 * SchNet, painn-double-backward for PaiNN): float32 forceGrad against float64
 * on the same float32-representable inputs (every parameter block, and
 * w . F), forceLossAndGrad against its composition lossAndGrad +
 * forceGrad at w = 2 a (F - F*) in float64, with float32 agreeing, and
 * forceGrad bitwise unchanged by padding.
 */
import type { ModelConfig } from '../../src/model/config';
import { paramLayout } from '../../src/model/params';
import { native, nativeModel, type PackOutput, type PackShape, type PlanHandle } from '../../src/native';
import { atomWeights, float32Params, packBothPrecisions, relErr, type TestStructure } from './forces-reference';

/** The float32 and float64 batches, parameters, plans and a direction w over the atoms of structures 0-2. */
export interface ForceGradFixture {
  c: ModelConfig;
  P: number;
  p64: Float64Array;
  p32: Float32Array;
  f32: PackOutput;
  f64: PackOutput;
  shape: PackShape;
  w64: Float64Array;
  w32: Float32Array;
  plan32: PlanHandle;
  plan64: PlanHandle;
}

export function forceGradFixture(c: ModelConfig, structs: TestStructure[]): ForceGradFixture {
  const api = nativeModel();
  const p64 = float32Params(c, 3);
  const { f32, f64, shape } = packBothPrecisions(structs, [0, 1, 2], 'exact');
  const w64 = atomWeights(shape.nodes, shape.nodes, 9);
  return {
    c,
    P: paramLayout(c).total,
    p64,
    p32: Float32Array.from(p64),
    f32,
    f64,
    shape,
    w64,
    w32: Float32Array.from(w64),
    plan32: api.createPlan(c, shape, 'float32', { forces: true, forceTraining: true }),
    plan64: api.createPlan(c, shape, 'float64', { forceTraining: true }),
  };
}

/**
 * The fixture's batch with 5 padding atoms, 37 padding edges and 2 padding
 * graphs, its float32 plan and the fixture's w extended over the padding atoms
 * by a non-zero weight (padding atoms must play no part).
 */
export function paddedForceBatch(fx: ForceGradFixture, structs: TestStructure[]): { f32: PackOutput; shape: PackShape; plan: PlanHandle; w: Float32Array } {
  const padded = packBothPrecisions(structs, [0, 1, 2], { nodes: fx.shape.nodes + 5, edges: fx.shape.edges + 37, graphs: fx.shape.graphs + 2 });
  const w = new Float32Array(3 * padded.shape.nodes);
  w.set(fx.w32);
  for (let i = fx.w32.length; i < w.length; i++) w[i] = 0.3;
  return { f32: padded.f32, shape: padded.shape, plan: nativeModel().createPlan(fx.c, padded.shape, 'float32', { forceTraining: true }), w };
}

/** Registers the three checks (call inside a describe). */
export function itForceGradPrecisionAndComposition(fx: ForceGradFixture, structs: TestStructure[]): void {
  it('padding changes no bit of forceGrad (float32)', () => {
    const { P, p32, f32, shape, w32, plan32 } = fx;
    const padded = paddedForceBatch(fx, structs);
    const gA = new Float32Array(P), gB = new Float32Array(P), eA = new Float32Array(P), eB = new Float32Array(P);
    const vA = native().forceGrad(plan32, f32, shape, p32, w32, gA, eA);
    const vB = native().forceGrad(padded.plan, padded.f32, padded.shape, p32, padded.w, gB, eB);
    expect(vB).toBe(vA);
    expect(Buffer.from(gA.buffer).equals(Buffer.from(gB.buffer))).toBe(true);
    expect(Buffer.from(eA.buffer).equals(Buffer.from(eB.buffer))).toBe(true);
    nativeModel().releasePlan(padded.plan);
  });

  const { c, P, p64, p32, f32, f64, shape, w64, w32, plan32, plan64 } = fx;
  it('float32 forceGrad agrees with float64 (every block, and w . F)', () => {
    const g32 = new Float32Array(P), e32 = new Float32Array(P), g64 = new Float64Array(P), e64 = new Float64Array(P);
    const v32 = native().forceGrad(plan32, f32, shape, p32, w32, g32, e32);
    const v64 = native().forceGrad(plan64, f64, shape, p64, w64, g64, e64);
    expect(Math.abs(v32 - v64)).toBeLessThanOrEqual(1e-4 * Math.abs(v64) + 1e-6);
    expect(relErr(g32, g64)).toBeLessThan(1e-4);
    expect(relErr(e32, e64)).toBeLessThan(1e-4);
    for (const e of paramLayout(c).entries) {
      const a = g32.subarray(e.offset, e.offset + e.rows * e.cols), b = g64.subarray(e.offset, e.offset + e.rows * e.cols);
      let scale = 0;
      for (const x of b) scale = Math.max(scale, Math.abs(x));
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(2e-4 * scale + 1e-6);
    }
  });

  it('forceLossAndGrad is energyWeight * lossAndGrad + forceGrad at w = 2 a (F - F*) (float64), and agrees in float32', () => {
    const target = atomWeights(shape.nodes, shape.nodes, 21);
    const aw = Float64Array.from({ length: shape.nodes }, (_, i) => 0.5 + (i % 3) * 0.25);
    const ew = 0.7;
    const g = new Float64Array(P), F = new Float64Array(3 * shape.nodes);
    const r = native().forceLossAndGrad(plan64, f64, shape, p64, target, aw, ew, g, F);
    // The composition from the separate calls.
    const F2 = new Float64Array(3 * shape.nodes);
    const loss = native().forcesStep(plan64, f64, shape, p64, new Float64Array(shape.graphs), F2);
    expect(Array.from(F)).toEqual(Array.from(F2));
    let fl = 0;
    const w = new Float64Array(3 * shape.nodes);
    for (let i = 0; i < shape.nodes; i++)
      for (let a = 0; a < 3; a++) {
        const d = F2[3 * i + a] - target[3 * i + a];
        fl += aw[i] * d * d;
        w[3 * i + a] = 2 * aw[i] * d;
      }
    expect(r.energyLoss).toBeCloseTo(loss, 12);
    expect(Math.abs(r.forceLoss - fl)).toBeLessThanOrEqual(1e-12 * fl);
    const gl = new Float64Array(P), gf = new Float64Array(P);
    native().lossAndGrad(plan64, f64, shape, p64, gl);
    native().forceGrad(plan64, f64, shape, p64, w, gf);
    const want = gl.map((x, i) => ew * x + gf[i]);
    expect(relErr(g, want)).toBeLessThan(1e-11);
    // float32 of the same call.
    const g32 = new Float32Array(P);
    const r32 = native().forceLossAndGrad(plan32, f32, shape, p32, Float32Array.from(target), Float32Array.from(aw), ew, g32);
    expect(Math.abs(r32.forceLoss - r.forceLoss)).toBeLessThanOrEqual(1e-4 * r.forceLoss);
    expect(relErr(g32, g)).toBeLessThan(1e-4);
  });
}
