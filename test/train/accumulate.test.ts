/** Gradient accumulation in one process (issue 25): micro-batches, ordered sum, one Adam step. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, type GraphStore } from '../../src/data';
import { train } from '../../src/train/trainer';
import { readCheckpoint } from '../../src/train/checkpoint';
import { accumulationSetup, orderedSlotSum, type AccumulationInput, type GradientReducer } from '../../src/train/accumulate';
import { launchedByMpi, loadMpi } from '../../src/train/distributed';

let store: GraphStore;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-acc-'));
beforeAll(async () => {
  store = (await loadSource('qm9-like:300', { graph: 'fc' })).store;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 16 }, policy: 'static-64' as const, seed: 3, lr: 1e-3, skipEval: true };
const bits = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('gradient accumulation', () => {
  it('microBatches 1 is the fused step, bit for bit', async () => {
    const a = await train({ store, ...base, batchSize: 8, steps: 5 });
    const b = await train({ store, ...base, batchSize: 8, steps: 5, microBatches: 1 });
    expect(b.result.loss_curve).toEqual(a.result.loss_curve);
    expect(bits(b.model.params).equals(bits(a.model.params))).toBe(true);
  });

  it('two micro-batches weigh like one batch of their graphs (mean over real graphs)', async () => {
    // static-64 takes B - 1 real graphs of one shuffled epoch per draw: two draws of 8 are the 14 graphs of one draw of 15.
    const one = await train({ store, ...base, batchSize: 15, steps: 1 });
    const two = await train({ store, ...base, batchSize: 8, steps: 1, microBatches: 2 });
    const rel = Math.abs(two.result.loss_curve[0].loss - one.result.loss_curve[0].loss) / one.result.loss_curve[0].loss;
    expect(rel).toBeLessThan(1e-5);
    // Adam's first step moves every weight by about lr * sign(g): equal signs, equal steps.
    let same = 0;
    for (let i = 0; i < one.model.params.length; i++) if (Math.abs(one.model.params[i] - two.model.params[i]) < 1e-5) same++;
    expect(same / one.model.params.length).toBeGreaterThan(0.999);
  });

  it('is deterministic, and resume continues bitwise (clipping after the sum)', async () => {
    const opts = { store, ...base, policy: 'packed' as const, batchSize: 8, microBatches: 3, clipNorm: 0.5 };
    const full = await train({ ...opts, steps: 8 });
    const again = await train({ ...opts, steps: 8 });
    expect(bits(again.model.params).equals(bits(full.model.params))).toBe(true);
    const dir = path.join(tmp, 'ck');
    await train({ ...opts, steps: 3, checkpointDir: dir });
    const resumed = await train({ ...opts, steps: 8, resumeDir: dir });
    expect(resumed.result.steps_run).toBe(5);
    expect(resumed.result.loss_curve).toEqual(full.result.loss_curve);
    expect(bits(resumed.model.params).equals(bits(full.model.params))).toBe(true);
    // The checkpoint keeps the micro-batch count; another count cannot resume it (the step would mean other batches).
    expect(readCheckpoint(dir).microBatches).toBe(3);
    await expect(train({ ...opts, microBatches: 2, steps: 8, resumeDir: dir })).rejects.toMatchObject({ code: 'ERR_GNN_CHECKPOINT_MISMATCH', message: expect.stringMatching(/micro-batches per step .* is 3 but this run asks for 2/) });
    await expect(train({ ...opts, microBatches: 1, steps: 8, resumeDir: dir })).rejects.toMatchObject({ code: 'ERR_GNN_CHECKPOINT_MISMATCH' });
    // Three draws of 8 per step.
    expect(full.result.graphs_per_s).toBeGreaterThan(0);
  });

  it('a stop asked for between steps is honoured before the next step (one process)', async () => {
    let calls = 0;
    const { result } = await train({ store, ...base, batchSize: 8, steps: 10, microBatches: 2, shouldStop: () => ++calls > 3 });
    expect(result.stopped_early).toBe(true);
    expect(result.steps).toBe(3);
  });

  it('refuses what it cannot do, with codes', async () => {
    await expect(train({ store, ...base, batchSize: 8, steps: 1, microBatches: 0 })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
    await expect(train({ store, ...base, batchSize: 8, steps: 1, microBatches: 2.5 })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
    await expect(train({ store, ...base, batchSize: 8, steps: 1, microBatches: 2, device: 'cuda' })).rejects.toMatchObject({ code: 'ERR_GNN_UNSUPPORTED' });
    await expect(train({ store, ...base, batchSize: 8, steps: 1, microBatches: 2, profile: true })).rejects.toMatchObject({ code: 'ERR_GNN_UNSUPPORTED' });
    await expect(train({ store, ...base, batchSize: 8, steps: 1, microBatches: 2, asyncSteps: true })).rejects.toMatchObject({ code: 'ERR_GNN_UNSUPPORTED' });
  });
});

describe('the pieces', () => {
  it('orderedSlotSum is the left fold in float32', () => {
    const n = 5;
    const local = new Float32Array([1e8, 1, 2, 3, 4, 1, 1, 1, 1, 1, -1e8, 0.5, 0.25, 0.125, 3]);
    const out = new Float32Array(n);
    orderedSlotSum(local, 3, out);
    const f = Math.fround;
    for (let i = 0; i < n; i++) expect(out[i]).toBe(f(f(local[i] + local[n + i]) + local[2 * n + i]));
    expect(out[0]).toBe(0); // (1e8 + 1) rounds back to 1e8 in float32: the order is visible
  });

  it('ranks other than 0 neither write checkpoints nor evaluate; the micro-batch count must divide', () => {
    const rank1: GradientReducer = { rank: 1, size: 2, reduce: () => 0 };
    const input: AccumulationInput = { distributed: rank1, checkpointDir: '/x', evalEvery: 5 };
    const { opts, acc } = accumulationSetup(input);
    expect(acc?.microBatches).toBe(2);
    expect(opts.checkpointDir).toBeUndefined();
    expect(opts.evalEvery).toBe(0);
    expect(opts.skipEval).toBe(true);
    const rank0 = accumulationSetup({ distributed: { ...rank1, rank: 0 }, checkpointDir: '/x', microBatches: 4 });
    expect(rank0.opts.checkpointDir).toBe('/x');
    expect(() => accumulationSetup({ distributed: rank1, microBatches: 3 })).toThrow(expect.objectContaining({ code: 'ERR_GNN_ARGUMENT' }));
    expect(accumulationSetup({}).acc).toBeNull();
  });

  it('detects an MPI launch from Open MPI / PMIx / hydra variables', () => {
    expect(launchedByMpi({})).toBe(false);
    expect(launchedByMpi({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '4' })).toBe(true);
    expect(launchedByMpi({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '1' })).toBe(false);
    expect(launchedByMpi({ PMIX_RANK: '3' })).toBe(true);
    expect(launchedByMpi({ PMI_RANK: '1', PMI_SIZE: '2' })).toBe(true);
    expect(launchedByMpi({ SLURM_NTASKS: '8' })).toBe(false);
  });

  it('a missing MPI module is ERR_GNN_MPI saying how to build it', () => {
    expect(() => loadMpi({ GNNBATCH_MPI_ADDON: path.join(tmp, 'nope.node') })).toThrow(expect.objectContaining({ code: 'ERR_GNN_MPI', message: expect.stringMatching(/libopenmpi-dev.*build/) }));
  });
});
