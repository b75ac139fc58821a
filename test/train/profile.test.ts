/** Per-kernel profile (issue 11): flops agree with the native counter, padding attribution, Chrome trace validity. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, type GraphStore } from '../../src/data';
import { measureProfileOverhead, profileSteps, toChromeTrace, writeChromeTrace, type ProfileResult } from '../../src/train/profile';
import { native, nativeModel } from '../../src/native';
import { packerArrays } from '../../src/data';
import { initParams, paramLayout } from '../../src/model/params';
import { PlanCache, inputsFor } from '../../src/train/plan';
import { profileCharts } from '../../src/report/charts';
import { renderVegaLiteSvg } from '../../src/report/vega';
import { train } from '../../src/train/trainer';
import { resolveModelConfig } from '../../src/model/config';
import { traceViolations } from '../helpers/trace';

let store: GraphStore;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-profile-'));

beforeAll(async () => {
  store = (await loadSource('qm9-like:200', { graph: 'fc' })).store;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const base = { target: 'U0', model: { kind: 'mpeu' as const, latent: 16 }, batchSize: 8, steps: 4, threads: 2 };

describe('per-kernel profile', () => {
  let dyn: ProfileResult;
  beforeAll(async () => {
    dyn = await profileSteps({ store, ...base, policy: 'dynamic', collectTrace: true });
  });

  it('the GEMM rows sum to the native flop counter of the steps', () => {
    expect(dyn.counter_gflop_per_step).toBeGreaterThan(0);
    expect(Math.abs(dyn.gemm_gflop_per_step - dyn.counter_gflop_per_step)).toBeLessThanOrEqual(1e-9 * dyn.counter_gflop_per_step);
    const sum = dyn.kernels.filter((k) => k.gemm).reduce((s, k) => s + k.gflop, 0) / dyn.steps;
    expect(sum / dyn.counter_gflop_per_step).toBeCloseTo(1, 9);
    expect(dyn.dropped_records).toBe(0);
  });

  it('rows are deterministic in structure and cover every kernel kind of MPEU', async () => {
    const again = await profileSteps({ store, ...base, policy: 'dynamic' });
    expect(again.kernels.map((k) => [k.kernel, k.calls])).toEqual(dyn.kernels.map((k) => [k.kernel, k.calls]));
    const names = dyn.kernels.map((k) => k.kernel);
    for (const n of ['fwd.rbf', 'fwd.embed', 'fwd.edge.w1e_gemm_gather', 'fwd.aggregate_segment', 'fwd.loss', 'bwd.edge.pr_segment', 'adam', 'pack', 'policy', 'plan_build'])
      expect(names).toContain(n);
    // One call per pass per step for pass kernels, one per step for the others.
    expect(dyn.kernels.find((k) => k.kernel === 'fwd.filter.w1_gemm')!.calls).toBe(3 * dyn.steps);
    expect(dyn.kernels.find((k) => k.kernel === 'adam')!.calls).toBe(dyn.steps);
    expect(dyn.kernels.find((k) => k.kernel === 'bwd.edge.w1e_dx_gemm')!.calls).toBe(2 * dyn.steps); // passes 1..2 only
    for (const k of dyn.kernels) {
      expect(k.total_ms).toBeGreaterThanOrEqual(0);
      expect(['compute', 'memory', 'none']).toContain(k.bound);
      if (k.where === 'native') {
        expect(k.gb).toBeGreaterThan(0);
        expect(k.bound).toBe(k.intensity >= dyn.limits.ridge_flop_per_byte ? 'compute' : 'memory');
      }
    }
    const native = dyn.kernels.filter((k) => k.where === 'native').reduce((s, k) => s + k.share, 0);
    expect(native).toBeGreaterThan(0.3);
    expect(native).toBeLessThanOrEqual(1);
    expect(dyn.limits.gemm_gflops).toBeGreaterThan(0);
    expect(dyn.limits.stream_gbps).toBeGreaterThan(0);
  });

  it('SchNet has no edge-update kernels', async () => {
    const r = await profileSteps({ store, ...base, model: { kind: 'schnet', latent: 16 }, policy: 'dynamic', steps: 2 });
    expect(r.kernels.some((k) => k.kernel.includes('.edge.'))).toBe(false);
    expect(r.gemm_gflop_per_step / r.counter_gflop_per_step).toBeCloseTo(1, 9);
  });

  it('padding share is 0 for the exact policy and > 0 for static-2pow', async () => {
    const exact = await profileSteps({ store, ...base, policy: 'exact' });
    for (const k of exact.kernels) {
      expect(k.padding_share).toBe(0);
      expect(k.padding_ms_per_step).toBe(0);
    }
    expect(exact.padding_ms_per_step).toBe(0);
    const pow = await profileSteps({ store, ...base, policy: 'static-2pow' });
    const edgeKernels = pow.kernels.filter((k) => k.rows === 'edge' && k.where === 'native');
    expect(edgeKernels.length).toBeGreaterThan(0);
    for (const k of edgeKernels) expect(k.padding_share).toBeCloseTo(1 - pow.edge_fill, 9);
    expect(pow.padding_ms_per_step).toBeGreaterThan(0);
    expect(pow.padding_share_of_step).toBeGreaterThan(0);
    expect(pow.padding_share_of_step).toBeLessThan(1);
  });

  it('writes a valid Chrome trace with a step-loop track and a kernel track', () => {
    const file = path.join(tmp, 'sub', 'trace.json');
    writeChromeTrace(file, dyn);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(traceViolations(doc)).toEqual([]);
    const evs = doc.traceEvents as { ph: string; tid: number; name: string; args: Record<string, unknown> }[];
    expect(evs.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.args.name).sort()).toEqual(['kernels', 'step loop']);
    const steps = evs.filter((e) => e.ph === 'X' && e.tid === 1);
    expect(steps.filter((e) => e.name.startsWith('step ')).length).toBe(dyn.steps);
    for (const n of ['policy', 'pack', 'update', 'plan_build']) expect(steps.some((e) => e.name === n)).toBe(true);
    const kern = evs.filter((e) => e.ph === 'X' && e.tid === 2);
    expect(kern.length).toBe(dyn.kernels.filter((k) => k.where === 'native').reduce((s, k) => s + k.calls, 0));
    for (const e of kern) for (const a of ['shape', 'flops', 'bytes', 'fill']) expect(e.args).toHaveProperty(a);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['trace.json']); // no temp file left
  });

  it('the roofline and stacked kernel-time charts render without warnings', async () => {
    const pow = await profileSteps({ store, ...base, policy: 'static-2pow', steps: 2 });
    const charts = profileCharts([dyn, pow]);
    expect(charts.map((c) => c.id)).toEqual(['roofline', 'kernel-time']);
    for (const c of charts) {
      const r = await renderVegaLiteSvg(c.spec);
      expect(r.warnings).toEqual([]);
      expect(r.svg.startsWith('<svg')).toBe(true);
    }
    expect(profileCharts([])).toEqual([]);
  });

  it('the validator catches broken traces', () => {
    const ok = toChromeTrace(dyn);
    const broken = JSON.parse(JSON.stringify(ok));
    const x = broken.traceEvents.filter((e: { ph: string }) => e.ph === 'X');
    x[0].dur = -1;
    x[1].ts = 'late';
    expect(traceViolations(broken).length).toBeGreaterThanOrEqual(2);
    const overlap = { traceEvents: [
      { name: 'a', ph: 'X', pid: 1, tid: 1, ts: 0, dur: 10, args: {} },
      { name: 'b', ph: 'X', pid: 1, tid: 1, ts: 5, dur: 10, args: {} },
    ] };
    expect(traceViolations(overlap)).toHaveLength(1);
    expect(traceViolations({})).toEqual(['traceEvents is not an array']);
  });

  it('records every kernel call while profiling is on and nothing while it is off', () => {
    const api = nativeModel();
    const config = resolveModelConfig({ kind: 'mpeu', latent: 8 });
    const layout = paramLayout(config);
    const arrays = packerArrays(store, new Float64Array(store.numGraphs));
    const ids = Int32Array.from([0, 1, 2]);
    const shape = { nodes: store.nodeOffset[3], edges: store.edgeOffset[3], graphs: 3 }; // exact: no padding
    const plan = new PlanCache(config).get(shape);
    const inputs = inputsFor(plan, shape);
    native().packGraphs(arrays, ids, shape, inputs);
    const params = initParams(layout, 1, 'float32') as Float32Array;
    const z = (): Float32Array => new Float32Array(layout.total);
    const adam = { lr: 1e-4, bc1: 0.1, bc2: 0.001, clipNorm: 0 };
    const m = z(), v = z(), g = z();
    api.trainStep(plan.handle, inputs, shape, params, g, m, v, adam);
    expect(api.takeProfileRecords(plan.handle).count).toBe(0);
    api.setProfile(plan.handle, true);
    const res = api.trainStep(plan.handle, inputs, shape, params, g, m, v, adam);
    const rec = api.takeProfileRecords(plan.handle);
    const sites = api.kernelSites();
    expect(rec.count).toBeGreaterThan(40);
    let gemmFlops = 0;
    for (let i = 0; i < rec.count; i++) {
      if (sites[rec.site[i]].gemm) gemmFlops += rec.flops[i];
      expect(rec.realRows[i]).toBe(rec.rows[i]); // exact batch
      expect(rec.durNs[i]).toBeGreaterThanOrEqual(0);
    }
    expect(gemmFlops).toBe(res.flops);
    expect(api.takeProfileRecords(plan.handle).count).toBe(0); // taken = cleared
    // Not taken: the reserved buffer (8192 records) fills, and further calls are counted, never stored.
    for (let i = 0; i * rec.count <= 8192; i++) api.trainStep(plan.handle, inputs, shape, params, g, m, v, adam);
    const full = api.takeProfileRecords(plan.handle);
    expect(full.count).toBe(8192);
    expect(full.dropped).toBeGreaterThan(0);
    api.setProfile(plan.handle, false);
    api.trainStep(plan.handle, inputs, shape, params, g, m, v, adam);
    expect(api.takeProfileRecords(plan.handle).count).toBe(0);
  });

  it('measures the on/off overhead on the same batches, interleaved', () => {
    const o = measureProfileOverhead({ store, ...base, policy: 'dynamic', steps: 2, rounds: 2 });
    expect(o.samples).toBe(4);
    expect(o.update_ms_off_median).toBeGreaterThan(0);
    expect(o.update_ms_on_median).toBeGreaterThan(0);
    expect(Number.isFinite(o.overhead_fraction)).toBe(true);
  });

  it('train({ profile: true }) carries per-kernel rows whose GEMM flops equal the run\'s flop count', async () => {
    const { result } = await train({ store, target: 'U0', model: { kind: 'mpeu', latent: 16 }, policy: 'static-2pow', batchSize: 8, steps: 3, seed: 1, skipEval: true, profile: true });
    const kp = result.kernel_profile!;
    expect(kp.dropped_records).toBe(0);
    const gemm = kp.kernels.filter((k) => k.gemm).reduce((s, k) => s + k.gflop, 0) / result.steps_run;
    expect(gemm / result.gflop_per_step).toBeCloseTo(1, 9);
    expect(kp.kernels.find((k) => k.kernel === 'adam')!.calls).toBe(3);
    expect(kp.kernels.some((k) => k.padding_share > 0)).toBe(true);
    const { result: plain } = await train({ store, target: 'U0', model: { kind: 'mpeu', latent: 16 }, policy: 'static-2pow', batchSize: 8, steps: 3, seed: 1, skipEval: true });
    expect(plain.kernel_profile).toBeUndefined();
    expect(plain.loss_curve).toEqual(result.loss_curve); // profiling changes no arithmetic
  });

  it('rejects bad options with ArgumentError', async () => {
    await expect(profileSteps({ store, ...base, policy: 'dynamic', steps: 0 })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
    await expect(profileSteps({ store, ...base, policy: 'dynamic', warmup: -1 })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
  });
});

describe('train({ profile, trace })', () => {
  it('keeps a trace whose kernel events are the profiled calls, beside the step loop; trace without profile is refused', async () => {
    const opts = { store, target: 'U0', model: { kind: 'mpeu' as const, latent: 8 }, policy: 'static-2pow' as const, batchSize: 8, steps: 3, seed: 1, skipEval: true };
    const { result, trace } = await train({ ...opts, profile: true, trace: true });
    expect(trace?.label).toBe('gnnbatch train');
    const doc = toChromeTrace(trace!);
    expect(traceViolations(doc)).toEqual([]);
    const calls = result.kernel_profile!.kernels.reduce((s, k) => s + k.calls, 0);
    expect(doc.traceEvents.filter((e) => e.ph === 'X' && e.tid === 2)).toHaveLength(calls);
    expect(doc.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1 && String(e.name).startsWith('step '))).toHaveLength(3);
    expect(doc.traceEvents.find((e) => e.name === 'process_name')?.args).toEqual({ name: 'gnnbatch train mpeu static-2pow B=8' });
    // Without trace: no events kept.
    expect((await train({ ...opts, profile: true })).trace).toBeUndefined();
    await expect(train({ ...opts, trace: true })).rejects.toMatchObject({ code: 'ERR_GNN_ARGUMENT' });
  });
});
