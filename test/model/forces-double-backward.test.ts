/**
 * The double backward of the force pass (issue 22; docs/forces.md):
 * forceGrad's d(w . F)/d params (the production path of program_tangent.h,
 * run in float64) against central finite differences of the native forces,
 * for every parameter block of MPEU and SchNet, and its energy gradient
 * against finite differences of the energies.
 */
import { native, nativeModel } from '../../src/native';
import { resolveModelConfig, type ModelConfig, type ModelKind } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { testRng } from '../helpers/batch';
import { centralDifferences } from '../helpers/gradcheck';
import { packStructures, type TestStructure, type Vec3 } from './forces-reference';

function smallConfig(kind: ModelKind, extra: Partial<ModelConfig> = {}): ModelConfig {
  return resolveModelConfig({ kind, latent: 5, passes: 2, basis: 8, rbfSpacing: 0.45, rbfGamma: 2, numClasses: 20, readoutHidden: 4, ...extra });
}

const structs: TestStructure[] = [
  { z: [1, 6, 8, 7], pos: [[0, 0, 0], [1.2, 0.1, 0], [0.1, 1.3, 0.2], [0.4, 0.5, 1.1]], rule: { kind: 'fc' } },
  { z: [3, 9], pos: [[0.1, 0.2, 0.05], [1.5, 1.4, 1.7]], cell: [[2.9, 0, 0], [0.3, 3.1, 0], [0.2, -0.1, 3.3]] as [Vec3, Vec3, Vec3], rule: { kind: 'cutoff', cutoff: 3.2 } },
];

describe.each([
  ['mpeu', {}],
  ['schnet', {}],
  ['schnet', { aggregation: 'sum', readout: 'sum' }],
] as [ModelKind, Partial<ModelConfig>][])('double backward (%s %j, float64)', (kind, extra) => {
  const config = smallConfig(kind, extra);
  const layout = paramLayout(config);
  const params = initParams(layout, 4, 'float64') as Float64Array;
  const rnd = testRng(44);
  for (let i = 0; i < params.length; i++) params[i] += (rnd() - 0.5) * 0.2;
  const { inputs, shape } = packStructures(structs, [0, 1], { nodes: 8, edges: 120, graphs: 3 });
  const api = nativeModel();
  const plan = api.createPlan(config, shape, 'float64', { forces: true, forceTraining: true });
  const w = new Float64Array(3 * shape.nodes);
  for (let i = 0; i < 3 * 6; i++) w[i] = rnd() - 0.5; // real atoms only (6)
  const wF = (p: Float64Array): number => {
    const forces = new Float64Array(3 * shape.nodes);
    native().forcesStep(plan, inputs, shape, p, new Float64Array(shape.graphs), forces);
    let s = 0;
    for (let i = 0; i < w.length; i++) s += w[i] * forces[i];
    return s;
  };
  const grad = new Float64Array(layout.total);
  const egrad = new Float64Array(layout.total);
  const value = native().forceGrad(plan, inputs, shape, params, w, grad, egrad);

  it('returns w . F of the force pass', () => {
    expect(Math.abs(value - wF(params))).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(value)));
  });

  it.each(layout.entries.map((e) => [e.name, e] as const))('block %s matches finite differences of w . F', (_n, entry) => {
    const size = entry.rows * entry.cols;
    const r = testRng(entry.offset + 7);
    const picks = new Set<number>();
    while (picks.size < Math.min(5, size)) picks.add(entry.offset + Math.floor(r() * size));
    for (const { index, fd } of centralDifferences(wF, params, picks)) expect(Math.abs(fd - grad[index])).toBeLessThanOrEqual(1e-8 + 1e-5 * Math.abs(fd));
  });

  it('the value part is the gradient of the summed energies', () => {
    const energy = (p: Float64Array): number => {
      const e = new Float64Array(shape.graphs);
      native().forcesStep(plan, inputs, shape, p, e, new Float64Array(3 * shape.nodes));
      return e[0] + e[1];
    };
    for (const { index, fd } of centralDifferences(energy, params, [0, Math.floor(layout.total / 2), layout.total - 1])) {
      expect(Math.abs(fd - egrad[index])).toBeLessThanOrEqual(1e-8 + 1e-5 * Math.abs(fd));
    }
  });
});

describe('forceGrad arguments', () => {
  it('needs a plan created with forceTraining (ERR_GNN_FORCES_PLAN)', () => {
    const config = smallConfig('schnet');
    const { inputs, shape } = packStructures(structs, [0], 'exact');
    const plan = nativeModel().createPlan(config, shape, 'float64', { forces: true });
    const p = new Float64Array(paramLayout(config).total);
    expect(() => native().forceGrad(plan, inputs, shape, p, new Float64Array(3 * shape.nodes), new Float64Array(p.length))).toThrow(expect.objectContaining({ code: 'ERR_GNN_FORCES_PLAN' }));
  });
});
