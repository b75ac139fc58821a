/**
 * `train --forces --profile` / `--trace` (issue 22): a force-training run
 * collects the same per-kernel rows as `gnnbatch profile --forces` (the
 * profile runs the very engine train() runs): the force pass's and the double
 * backward's sites, their GEMM rows summing to the run's native flop count,
 * and a valid trace with the force step's host phases.
 */
import { loadSource, type GraphStore } from '../../src/data';
import { train } from '../../src/train/trainer';
import { profileSteps, toChromeTrace } from '../../src/train/profile';
import { registerTrainCommand } from '../../src/cli/train';
import { runCli } from '../helpers/cli';
import { traceViolations } from '../helpers/trace';

let qm9: GraphStore;
beforeAll(async () => {
  qm9 = (await loadSource('qm9-like:120', { graph: 'fc', directions: true })).store;
});

const opts = { target: 'U0', model: { kind: 'schnet' as const, latent: 16, passes: 2 }, policy: 'dynamic' as const, batchSize: 8, threads: 2, skipEval: true };

describe('train --forces --profile', () => {
  it('collects the force and double-backward kernel rows; GEMM rows sum to the run\'s flops; the trace is valid', async () => {
    const steps = 4;
    const { result, trace } = await train({ store: qm9, ...opts, steps, forces: true, profile: true, trace: true });
    const kp = result.kernel_profile;
    expect(kp).toBeDefined();
    const names = kp!.kernels.map((k) => k.kernel);
    for (const n of ['force.seed', 'force.scatter', 'force.loss', 'dbl.dist_tan', 'dbl.bwd.edge_dw_tan_gemm', 'dbl.bwd.embed_tan']) expect(names).toContain(n);
    expect(kp!.kernels.find((k) => k.kernel === 'force.loss')?.calls).toBe(steps);
    expect(kp!.kernels.some((k) => k.kernel === 'adam')).toBe(false);
    expect(kp!.dropped_records).toBe(0);
    const gemmGflop = kp!.kernels.filter((k) => k.gemm).reduce((s, k) => s + k.gflop, 0);
    expect(Math.abs(gemmGflop - result.gflop_per_step * steps) / gemmGflop).toBeLessThan(1e-9);
    expect(trace).toBeDefined();
    const doc = toChromeTrace(trace!);
    expect(traceViolations(doc)).toEqual([]);
    const evNames = new Set(doc.traceEvents.map((e) => e.name));
    for (const n of ['step 1', 'step 4', 'policy', 'plan_build', 'pack', 'targets', 'update', 'adam_update', 'force.scatter']) expect(evNames.has(n)).toBe(true);
  }, 60_000);

  it('the profile and the run list the same kernel sites with the same calls per step', async () => {
    const steps = 3;
    const { result } = await train({ store: qm9, ...opts, steps, forces: true, profile: true });
    const p = await profileSteps({ store: qm9, ...opts, steps, forces: true });
    const native = p.kernels.filter((k) => k.where === 'native').map((k) => [k.kernel, k.calls]);
    expect(result.kernel_profile!.kernels.map((k) => [k.kernel, k.calls])).toEqual(native);
    // The profile's host rows of a force step.
    for (const h of ['policy', 'pack', 'targets', 'adam_update']) expect(p.kernels.find((k) => k.kernel === h && k.where === 'host')?.calls).toBe(steps);
  }, 60_000);

  it('gnnbatch train --forces --profile prints the kernel rows', async () => {
    const text = await runCli(registerTrainCommand, ['train', 'qm9-like:60', '--model', 'schnet', '--latent', '16', '--batch', '8', '--steps', '2', '--forces', '--profile', '--threads', '2']);
    expect(text).toMatch(/kernel profile \(CPU engine, 2 steps/);
    expect(text).toMatch(/dbl\.bwd\.edge_dw_tan_gemm/);
  }, 120_000);
});
