// Training-step benchmark (issue 5): `npm run bench -- step [--threads N] [--steps N] [--json]`.
// MPEU and SchNet (B = 32, 128) and PaiNN (B = 16, 32, 128) on qm9-like fully
// connected graphs with the dynamic policy: median step (batching + update), the share of batching, the
// flops the kernels perform, and GFLOP/s against an in-run dense matrix-product
// peak measured by the same process with the same thread count.
'use strict';
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource } = require(path.join(dist, 'data'));
const { train } = require(path.join(dist, 'train', 'trainer'));
const { nativeModel, setThreads, getThreads, nativeInfo } = require(path.join(dist, 'native'));

const { argValue } = require('./args');

async function run({ args, log }) {
  const threads = argValue(args, '--threads', 2);
  const steps = argValue(args, '--steps', 60);
  setThreads(threads);
  const source = 'qm9-like:20000';
  // Directions for PaiNN (the other models ignore them).
  const { store } = await loadSource(source, { graph: 'fc', directions: true });
  const api = nativeModel();
  // Dense peak: the same SIMD GEMM on a tall-skinny product like the model's.
  api.gemmBench(9984, 64, 128, 3);
  const peakSec = api.gemmBench(9984, 64, 128, 30);
  const peak = (2 * 9984 * 64 * 128) / peakSec / 1e9;
  const rows = [];
  const grid = [['mpeu', [32, 128]], ['schnet', [32, 128]], ['painn', [16, 32, 128]]];
  for (const [model, sizes] of grid) {
    for (const B of sizes) {
      const { result: r } = await train({ store, target: 'U0', model: { kind: model }, policy: 'dynamic', batchSize: B, steps, seed: 42, skipEval: true, profile: false });
      const row = {
        model,
        batch: B,
        steps,
        step_ms_median: r.ms_per_step_median,
        batching_ms_median: r.batching_ms_median,
        update_ms_median: r.update_ms_median,
        batching_share: r.batching_ms_median / r.ms_per_step_median,
        compile_ms: r.compile_ms_total,
        gflop_per_step: r.gflop_per_step,
        gflops: r.gflops,
        peak_gflops: peak,
        share_of_peak: r.gflops / peak,
        graphs_per_s: r.graphs_per_s,
      };
      rows.push(row);
      log(`${model} B=${B}: ${row.step_ms_median.toFixed(1)} ms/step (batching ${row.batching_ms_median.toFixed(3)} ms, ${(100 * row.batching_share).toFixed(2)}%), ${row.gflops.toFixed(1)} GFLOP/s = ${(100 * row.share_of_peak).toFixed(0)}% of ${peak.toFixed(0)}`);
    }
  }
  const info = nativeInfo();
  const lines = [
    '## Training step (`npm run bench -- step`)',
    '',
    `${source}, fully connected, dynamic policy, ${steps} steps per row, ${getThreads()} threads, SIMD ${info.simd}. ` +
      `Dense peak: in-run GEMM 9984x64x128 = ${peak.toFixed(1)} GFLOP/s. Medians over steps (the mean would include the one plan build).`,
    '',
    '| model | B | step ms (median) | batching ms | batching share | update ms | GFLOP/step | GFLOP/s | % of GEMM peak | graphs/s |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.batch} | ${r.step_ms_median.toFixed(1)} | ${r.batching_ms_median.toFixed(3)} | ${(100 * r.batching_share).toFixed(2)}% | ${r.update_ms_median.toFixed(1)} | ${r.gflop_per_step.toFixed(2)} | ${r.gflops.toFixed(1)} | ${(100 * r.share_of_peak).toFixed(0)}% | ${r.graphs_per_s.toFixed(0)} |`),
  ];
  return { markdown: lines.join('\n'), data: { threads: getThreads(), peak_gflops: peak, rows } };
}

module.exports = { run };
