/** Issue 27: the profile's references hold (interleaved samples, spread, no fraction above 1, BLAS beside our GEMM). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource, type GraphStore } from '../../src/data';
import { KernelProfileCollector, ReferenceSampler, mergeLimits, profileSteps, settleLimits, withGemmReference, type KernelProfileEntry, type MachineLimits } from '../../src/train/profile';
import { blasComparison, formatBlas, formatLimits } from '../../src/cli/profile';
import { train } from '../../src/train/trainer';

let store: GraphStore;
beforeAll(async () => {
  store = (await loadSource('qm9-like:120', { graph: 'fc' })).store;
});

const limits = (gemm: number[], stream: number[]): MachineLimits =>
  mergeLimits(
    { threads: 2, gemm_gflops: 0, stream_gbps: 0, ridge_flop_per_byte: 0, gemm_samples: gemm, gemm_spread: 0, stream_samples: stream, stream_spread: 0, dram_gbps: 10, gemm_raised_by: null, stream_raised_by: null },
    { threads: 2, gemm_gflops: 0, stream_gbps: 0, ridge_flop_per_byte: 0, gemm_samples: [], gemm_spread: 0, stream_samples: [], stream_spread: 0, dram_gbps: 0, gemm_raised_by: null, stream_raised_by: null },
  );

const row = (kernel: string, gflops: number, gbps: number): KernelProfileEntry => ({
  kernel, where: 'native', rows: 'edge', gemm: true, calls: 1, total_ms: 1, median_ms_per_step: 1, ms_per_step: 1, share: 0.5,
  gflop: gflops / 1000, gb: gbps / 1000, gflops, gbps, intensity: gflops / gbps, peak_fraction: 0, bandwidth_fraction: 0, bound: 'none', padding_share: 0, padding_ms_per_step: 0,
});

describe('reference limits', () => {
  it('the best sample is the reference and the spread says how far the samples drifted', () => {
    const l = limits([100, 200, 150], [40, 50]);
    expect(l.gemm_gflops).toBe(200);
    expect(l.gemm_spread).toBeCloseTo(0.5, 12);
    expect(l.stream_gbps).toBe(50);
    expect(l.stream_spread).toBeCloseTo(0.2, 12);
    expect(l.ridge_flop_per_byte).toBeCloseTo(4, 12);
  });

  it('a kernel faster than its reference raises it and is named; no fraction exceeds 1', () => {
    const l = limits([100], [20]);
    const { limits: s, kernels } = settleLimits(l, [row('a', 80, 10), row('b', 117.8, 52)]);
    expect(s.gemm_gflops).toBe(117.8);
    expect(s.gemm_raised_by).toBe('b');
    expect(s.stream_gbps).toBe(52);
    expect(s.stream_raised_by).toBe('b');
    for (const k of kernels) {
      expect(k.peak_fraction).toBeLessThanOrEqual(1);
      expect(k.bandwidth_fraction).toBeLessThanOrEqual(1);
    }
    expect(kernels[0].peak_fraction).toBeCloseTo(80 / 117.8, 12);
    // The input is not changed.
    expect(l.gemm_gflops).toBe(100);
    expect(formatLimits(s)).toMatch(/kernel b ran faster than every GEMM sample/);
  });

  it('a reference that holds is left alone', () => {
    const { limits: s } = settleLimits(limits([300], [100]), [row('a', 80, 10)]);
    expect(s.gemm_gflops).toBe(300);
    expect(s.gemm_raised_by).toBeNull();
    expect(s.stream_raised_by).toBeNull();
  });

  it('the sampler keeps every sample', () => {
    const r = new ReferenceSampler(2);
    r.sample();
    r.sample();
    const l = r.limits();
    expect(l.gemm_samples).toHaveLength(2);
    expect(l.stream_samples).toHaveLength(2);
    expect(l.gemm_gflops).toBe(Math.max(...l.gemm_samples));
    expect(l.dram_gbps).toBeGreaterThan(0);
    expect(l.stream_gbps).toBeGreaterThanOrEqual(l.dram_gbps);
  });
});

describe('profile against interleaved references', () => {
  it('samples before, between and after the steps; no figure above 100%', async () => {
    const r = await profileSteps({ store, target: 'U0', model: { kind: 'mpeu', latent: 16 }, policy: 'dynamic', batchSize: 8, steps: 8, threads: 2 });
    expect(r.limits.gemm_samples.length).toBeGreaterThanOrEqual(3);
    expect(r.limits.gemm_spread).toBeGreaterThanOrEqual(0);
    for (const k of r.kernels) {
      expect(k.peak_fraction).toBeLessThanOrEqual(1);
      expect(k.bandwidth_fraction).toBeLessThanOrEqual(1);
    }
    expect(r.matrix_peak_fraction).toBeGreaterThan(0);
    expect(r.matrix_peak_fraction).toBeLessThanOrEqual(1);
    expect(r.step_peak_fraction).toBeLessThanOrEqual(r.matrix_peak_fraction);
    const higher = withGemmReference(r, 4 * r.limits.gemm_gflops, 'BLAS 2048x2048x2048');
    expect(higher.limits.gemm_raised_by).toBe('BLAS 2048x2048x2048');
    expect(higher.matrix_peak_fraction).toBeCloseTo(r.matrix_peak_fraction / 4, 9);
    expect(withGemmReference(r, r.limits.gemm_gflops / 2, 'x')).toBe(r);
  });

  it('train --profile rows are settled too (collector samples merged with the one after the run)', async () => {
    const { result } = await train({ store, target: 'U0', model: { kind: 'mpeu', latent: 16 }, policy: 'dynamic', batchSize: 8, steps: 6, seed: 1, skipEval: true, profile: true });
    const kp = result.kernel_profile!;
    expect(kp.limits.gemm_samples.length).toBeGreaterThanOrEqual(2);
    for (const k of kp.kernels) {
      expect(k.peak_fraction).toBeLessThanOrEqual(1);
      expect(k.bandwidth_fraction).toBeLessThanOrEqual(1);
    }
    expect(KernelProfileCollector).toBeDefined();
  });
});

describe('BLAS beside our GEMM', () => {
  it('runs numpy on the same cores, or says clearly why not', () => {
    const b = blasComparison(2, [[256, 64, 128]]);
    if (b.available) {
      expect(b.shapes).toHaveLength(1);
      expect(b.shapes[0].blas_gflops).toBeGreaterThan(0);
      expect(b.shapes[0].ours_gflops).toBeGreaterThan(0);
      expect(formatBlas(b)).toMatch(/256x64x128 \(MxNxK\): BLAS/);
    } else expect(formatBlas(b)).toMatch(/not available \(.+\)/);
  });

  it('an absent python is reported, not thrown', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-blas-'));
    const old = process.env.GNNBATCH_BENCH_PYTHON;
    process.env.GNNBATCH_BENCH_PYTHON = path.join(dir, 'no-python');
    try {
      const b = blasComparison(2, [[64, 64, 64]]);
      expect(b.available).toBe(false);
      expect(formatBlas(b)).toMatch(/BLAS reference: not available/);
    } finally {
      if (old === undefined) delete process.env.GNNBATCH_BENCH_PYTHON;
      else process.env.GNNBATCH_BENCH_PYTHON = old;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
