/**
 * `gnnbatch profile --forces` (issue 22): the per-kernel profile of
 * force-training steps lists the force pass's and the double backward's
 * kernels as rows of their own with non-zero flops and bytes, its GEMM rows
 * sum to the native flop counter, and its rows' times add up to no more than
 * the measured steps (and to most of them).
 */
import { loadSource, type GraphStore } from '../../src/data';
import { measureProfileOverhead, profileSteps, toChromeTrace, type ProfileResult } from '../../src/train/profile';
import { registerProfileCommand } from '../../src/cli/profile';
import { runCli } from '../helpers/cli';
import { traceViolations } from '../helpers/trace';

let qm9: GraphStore;
beforeAll(async () => {
  qm9 = (await loadSource('qm9-like:120', { graph: 'fc', directions: true })).store;
});

const FORCE_ROWS = ['force.seed', 'force.rbf_dx_gemm', 'force.rbf_bwd', 'force.scatter', 'force.loss'];
const DOUBLE_BACKWARD_ROWS = [
  'dbl.dist_tan', 'dbl.rbf_tan', 'dbl.fwd.edge_tan_gemm', 'dbl.fwd.node_tan_gemm', 'dbl.fwd.aggregate_tan', 'dbl.fwd.pool_tan', 'dbl.bwd.seed_tan',
  'dbl.bwd.readout.dr1_tan', 'dbl.bwd.edge_dx_tan_gemm', 'dbl.bwd.node_dx_tan_gemm', 'dbl.bwd.edge_dw_tan_gemm', 'dbl.bwd.node_dw_tan_gemm',
  'dbl.bwd.message.df2_tan', 'dbl.bwd.message.dhs_tan', 'dbl.bwd.embed_tan',
];

function checkConsistent(r: ProfileResult): void {
  // GEMM rows = the native flop counter of the steps (forceLossAndGrad's products, all recorded).
  expect(r.counter_gflop_per_step).toBeGreaterThan(0);
  expect(Math.abs(r.gemm_gflop_per_step - r.counter_gflop_per_step)).toBeLessThanOrEqual(1e-9 * r.counter_gflop_per_step);
  expect(r.dropped_records).toBe(0);
  // Kernel rows and host phases are disjoint spans of the step: their shares sum to at most 1, and to most of it.
  const native = r.kernels.filter((k) => k.where === 'native').reduce((s, k) => s + k.share, 0);
  const all = r.kernels.reduce((s, k) => s + k.share, 0);
  expect(native).toBeGreaterThan(0.3);
  expect(all).toBeLessThanOrEqual(1 + 1e-9);
  expect(all).toBeGreaterThan(0.5);
  const stepMs = r.step_ms_mean * r.steps;
  expect(r.kernels.reduce((s, k) => s + k.total_ms, 0)).toBeLessThanOrEqual(stepMs * (1 + 1e-9));
  for (const h of ['policy', 'pack', 'targets', 'adam_update']) expect(r.kernels.find((k) => k.kernel === h && k.where === 'host')?.calls).toBe(r.steps);
}

describe.each(['schnet', 'mpeu'] as const)('profile of force-training steps (%s)', (kind) => {
  let r: ProfileResult;
  beforeAll(async () => {
    r = await profileSteps({ store: qm9, target: 'U0', model: { kind, latent: 16, passes: 2 }, policy: 'dynamic', batchSize: 8, steps: 4, threads: 2, forces: true, collectTrace: true });
  });

  it('lists the force pass and double backward kernels with non-zero flops and bytes', () => {
    expect(r.forces).toEqual({ energy: 0.01, forces: 0.99, stress: 0 });
    for (const name of [...FORCE_ROWS, ...DOUBLE_BACKWARD_ROWS, ...(kind === 'mpeu' ? ['dbl.bwd.edge.csr_tan'] : [])]) {
      const row = r.kernels.find((k) => k.kernel === name);
      expect(row).toBeDefined();
      expect(row?.where).toBe('native');
      expect(row?.calls).toBeGreaterThanOrEqual(r.steps);
      expect(row?.gflop).toBeGreaterThan(0);
      expect(row?.gb).toBeGreaterThan(0);
      expect(row?.total_ms).toBeGreaterThanOrEqual(0);
    }
    // The energy step's own Adam site is not there: the optimiser is a host phase of force steps.
    expect(r.kernels.some((k) => k.kernel === 'adam')).toBe(false);
    // One tangent distance and one force loss per step; the stress sites only with a stress weight.
    expect(r.kernels.find((k) => k.kernel === 'dbl.dist_tan')?.calls).toBe(r.steps);
    expect(r.kernels.find((k) => k.kernel === 'force.loss')?.calls).toBe(r.steps);
    expect(r.kernels.some((k) => k.kernel === 'dbl.strain_tan' || k.kernel === 'force.stress_loss')).toBe(false);
  });

  it('sums consistently: GEMM rows = native counter, rows within the step time', () => {
    checkConsistent(r);
  });

  it('writes a valid trace with the force step\'s phases', () => {
    const doc = toChromeTrace(r);
    expect(traceViolations(doc)).toEqual([]);
    const names = new Set(doc.traceEvents.map((e) => e.name));
    for (const n of ['targets', 'update', 'adam_update', 'dbl.bwd.edge_dw_tan_gemm', 'force.scatter']) expect(names.has(n)).toBe(true);
  });
});

describe('profile of force-training steps with stress (aflow-like)', () => {
  it('adds the strain tangent, the virial and the stress loss as rows', async () => {
    const { store } = await loadSource('aflow-like:60', { graph: 'cutoff:4', directions: true });
    const r = await profileSteps({ store, target: 'energy', model: { kind: 'schnet', latent: 16, passes: 2 }, policy: 'dynamic', batchSize: 8, steps: 3, threads: 2, forces: { stress: 10 } });
    expect(r.forces?.stress).toBe(10);
    for (const name of ['dbl.strain_tan', 'force.virial', 'force.stress_loss', 'dbl.dist_tan']) {
      const row = r.kernels.find((k) => k.kernel === name);
      expect(row?.calls).toBe(r.steps);
      expect(row?.gflop).toBeGreaterThan(0);
      expect(row?.gb).toBeGreaterThan(0);
    }
    checkConsistent(r);
  }, 60_000);
});

describe('profile --forces refusals and overhead', () => {
  it('profiles PaiNN force steps (its double backward rows, GEMM rows = the flop counter)', async () => {
    const p = await profileSteps({ store: qm9, target: 'U0', model: { kind: 'painn', latent: 8, passes: 1 }, policy: 'dynamic', batchSize: 4, steps: 2, forces: true });
    for (const name of ['force.scatter', 'force.loss', 'dbl.dist_tan', 'dbl.painn.edge_tan', 'dbl.painn.message_tan', 'dbl.bwd.painn.message_tan', 'dbl.bwd.painn.filter_dw_reduce_tan', 'dbl.bwd.node_dw_tan_gemm']) {
      const row = p.kernels.find((k) => k.kernel === name);
      expect(row?.calls).toBeGreaterThanOrEqual(p.steps);
      expect(row?.gflop).toBeGreaterThan(0);
    }
    expect(Math.abs(p.gemm_gflop_per_step - p.counter_gflop_per_step)).toBeLessThanOrEqual(1e-9 * p.counter_gflop_per_step);
  });

  it('refuses data without forces or stress, with codes', async () => {
    await expect(profileSteps({ store: qm9, target: 'U0', model: { kind: 'schnet', latent: 8 }, policy: 'dynamic', batchSize: 4, steps: 1, forces: { stress: 1 } })).rejects.toMatchObject({ code: 'ERR_GNN_DATA_TARGET' });
    const noDirections = (await loadSource('qm9-like:20', { graph: 'fc' })).store;
    await expect(profileSteps({ store: noDirections, target: 'U0', model: { kind: 'schnet', latent: 8 }, policy: 'dynamic', batchSize: 4, steps: 1, forces: true })).rejects.toMatchObject({ code: 'ERR_GNN_DATA_DIRECTIONS' });
  });

  it('measures the profiling overhead of force steps', () => {
    const o = measureProfileOverhead({ store: qm9, target: 'U0', model: { kind: 'schnet', latent: 16, passes: 2 }, policy: 'dynamic', batchSize: 8, steps: 2, threads: 2, rounds: 2, forces: true });
    expect(o.samples).toBe(4);
    expect(o.update_ms_off_median).toBeGreaterThan(0);
    expect(o.update_ms_on_median).toBeGreaterThan(0);
  });
});

describe('gnnbatch profile --forces', () => {
  it('prints the force rows (--json) and refuses weights without --forces', async () => {
    const doc = JSON.parse(await runCli(registerProfileCommand, ['profile', 'qm9-like:60', '--model', 'schnet', '--latent', '16', '--batch', '8', '--steps', '3', '--threads', '2', '--forces', '--json']));
    expect(doc.forces).toEqual({ energy: 0.01, forces: 0.99, stress: 0 });
    const names = doc.kernels.map((k: { kernel: string }) => k.kernel);
    for (const n of ['force.rbf_dx_gemm', 'dbl.bwd.edge_dw_tan_gemm', 'targets', 'adam_update']) expect(names).toContain(n);
    const text = await runCli(registerProfileCommand, ['profile', 'qm9-like:60', '--model', 'mpeu', '--latent', '16', '--batch', '8', '--steps', '2', '--forces', '--force-weight', '0.5']);
    expect(text).toMatch(/force-training steps \(loss weights energy \/ forces \/ stress 0\.01 \/ 0\.5 \/ 0/);
    expect(text).toMatch(/dbl\.fwd\.edge_tan_gemm/);
    await expect(runCli(registerProfileCommand, ['profile', 'qm9-like:20', '--stress-weight', '1'])).rejects.toThrow(/need --forces/);
  }, 120_000);
});
