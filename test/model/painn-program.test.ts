/**
 * PaiNN on the model program (issue 22): its matrix products go through the
 * executor's gemm / gemmTN with their kernel sites, so the per-kernel
 * profile's GEMM rows sum exactly to the native flop counter; its buffers are
 * the program's layout (the plan's bytes are its size estimate's).
 */
import { nativeModel } from '../../src/native';
import { resolveModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { packBatch } from '../helpers/batch';
import { moleculeStore, randomMolecules } from './painn-reference';

const mols = randomMolecules([4, 2, 5, 3, 6], 7, 5);
const store = moleculeStore(mols);

describe.each([
  ['per-block filters, sum', resolveModelConfig({ kind: 'painn', latent: 8, passes: 3, basis: 5, cutoff: 3, numClasses: 12, readoutHidden: 4 })],
  ['shared filters, mean', resolveModelConfig({ kind: 'painn', latent: 8, passes: 2, basis: 5, cutoff: 3, numClasses: 12, readoutHidden: 4, sharedFilters: true, aggregation: 'mean', readout: 'mean' })],
])('PaiNN on the program (%s)', (_n, config) => {
  const api = nativeModel();
  const layout = paramLayout(config);

  it('the profile\'s GEMM rows sum to the native flop counter of the step, with every PaiNN site recorded', () => {
    const { inputs, shape } = packBatch(store, [0, 1, 2, 3, 4], { nodes: 24, edges: 90, graphs: 6 }, 'float32', true);
    const plan = api.createPlan(config, shape, 'float32');
    const params = initParams(layout, 1, 'float32') as Float32Array;
    const z = (): Float32Array => new Float32Array(layout.total);
    const adam = { lr: 1e-4, bc1: 0.1, bc2: 0.001, clipNorm: 0 };
    const m = z(), v = z(), g = z();
    api.setProfile(plan, true);
    const res = api.trainStep(plan, inputs, shape, params, g, m, v, adam);
    const rec = api.takeProfileRecords(plan);
    const sites = api.kernelSites();
    let gemmFlops = 0;
    const seen = new Set<string>();
    for (let i = 0; i < rec.count; i++) {
      if (sites[rec.site[i]].gemm) gemmFlops += rec.flops[i];
      seen.add(sites[rec.site[i]].name);
    }
    expect(res.flops).toBeGreaterThan(0);
    expect(gemmFlops).toBe(res.flops);
    // Every PaiNN site of an energy step (the double backward's, dbl.*, are test/model/painn-double-backward.test.ts's).
    for (const s of sites) if (s.name.includes('.painn.') && !s.name.startsWith('dbl.')) expect(seen.has(s.name)).toBe(true);
    api.releasePlan(plan);
  });

  it('a plan allocates what its size estimate says (one buffer list)', () => {
    const cap = { nodes: 40, edges: 300, graphs: 8 };
    const plan = api.createPlan(config, cap, 'float64');
    const info = api.planInfo(plan);
    // F features, T blocks, K basis, R hidden, LF filter columns: the sum of program.h's painnBufElems.
    const F = config.latent, T = config.passes, K = config.basis, R = config.readoutHidden, N = cap.nodes, E = cap.edges, G = cap.graphs;
    const LF = 3 * F * (config.sharedFilters ? 1 : T);
    const elems = E * K + E + (2 * T + 1) * N * F * 4 + 5 * T * N * F + 2 * T * N * 3 * F + T * N * 6 * F + T * N * 2 * F +
      3 * N * R + 3 * N + G + 3 * N * F + 4 * N * 3 * F + N * 2 * F + N * 6 * F + Math.ceil(N / 32) * (K + 1) * LF;
    const wt = Math.max(3 * F * F, 2 * F * F, F * R);
    expect(info.bytes).toBe(8 * (elems + wt) + 8 * (G + 1));
  });
});
