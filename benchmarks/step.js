// Training-step benchmark (issues 5, 27): `npm run bench -- step [--threads N] [--steps N] [--json]`.
// MPEU and SchNet (B = 32, 128) and PaiNN (B = 16, 32, 128) on qm9-like fully
// connected graphs with the dynamic policy: median step (batching + update), the share of batching, the
// flops the kernels perform, the matrix work's rate (a short profile of the same
// row), and both against a GEMM reference that holds:
//   - our own GEMM on the model's shape (9984x64x128) sampled before the rows,
//     between every two rows and after them (the best sample kept; their spread
//     is reported, so a reader sees when the machine drifted);
//   - a strong BLAS on the same cores in the same run (numpy's OpenBLAS through
//     /usr/bin/python3, benchmarks/peers/blas_ref.py, OPENBLAS_NUM_THREADS = the
//     thread count) on 2048^3 and on the model's shapes, before and after the rows;
//   - the best kernel's own rate, should a kernel beat both (then the reference
//     was measured badly: it is raised and the row flagged, never clamped).
// The reference is the best of them; no figure is above 100%.
// Memory: the plan's bytes (planBytesModel: native buffers + packed inputs) of
// the policy's batches, per graph and per real edge.
'use strict';
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource } = require(path.join(dist, 'data'));
const { train } = require(path.join(dist, 'train', 'trainer'));
const { profileSteps } = require(path.join(dist, 'train', 'profile'));
const { planBytesModel } = require(path.join(dist, 'train', 'plan'));
const { createPolicy, sizesOf } = require(path.join(dist, 'batching'));
const { splitGraphs } = require(path.join(dist, 'data'));
const { resolveModelConfig } = require(path.join(dist, 'model', 'config'));
const { blasComparison } = require(path.join(dist, 'cli', 'profile'));
const { nativeModel, setThreads, getThreads, nativeInfo } = require(path.join(dist, 'native'));

const { argValue } = require('./args');

const REF = [9984, 64, 128];

/** One sample of our GEMM on the model's shape (GFLOP/s, best of 3 medians). */
function gemmSample(api) {
  const [M, N, K] = REF;
  api.gemmBench(M, N, K, 3);
  let best = 0;
  for (let i = 0; i < 3; i++) best = Math.max(best, (2 * M * N * K) / api.gemmBench(M, N, K, 10) / 1e9);
  return best;
}

/** Mean plan bytes of the policy's first batches, per graph and per real edge. */
function planMemory(store, kind, B) {
  let maxZ = 0;
  for (const z of store.atomicNumber) if (z > maxZ) maxZ = z;
  const config = resolveModelConfig({ numClasses: Math.max(100, maxZ + 1), kind });
  const bm = planBytesModel(config, 'float32');
  const split = splitGraphs(store.numGraphs, { seed: 42 });
  const policy = createPolicy('dynamic', sizesOf(store), split.train, B, 42, {});
  let bytes = 0, graphs = 0, edges = 0;
  const n = 20;
  for (let i = 0; i < n; i++) {
    const { shape, graphIds } = policy.next();
    bytes += bm.base + bm.perNode * shape.nodes + bm.perEdge * shape.edges + bm.perGraph * shape.graphs;
    graphs += graphIds.length;
    for (const g of graphIds) edges += store.edgeOffset[g + 1] - store.edgeOffset[g];
  }
  return { plan_mib: bytes / n / 2 ** 20, bytes_per_graph: bytes / graphs, bytes_per_edge: bytes / edges, per_node: bm.perNode, per_edge: bm.perEdge };
}

async function run({ args, log }) {
  const threads = argValue(args, '--threads', 2);
  const steps = argValue(args, '--steps', 60);
  const profSteps = argValue(args, '--profile-steps', 10);
  setThreads(threads);
  const source = 'qm9-like:20000';
  // Directions for PaiNN (the other models ignore them).
  const { store } = await loadSource(source, { graph: 'fc', directions: true });
  const api = nativeModel();
  const gemmSamples = [];
  const sample = () => gemmSamples.push(gemmSample(api));
  const blasShapes = [[2048, 2048, 2048], [9984, 64, 128], [9984, 128, 64]];
  const blasRuns = [];
  const blas = () => {
    const b = blasComparison(threads, blasShapes);
    blasRuns.push(b);
    log(b.available ? `BLAS: ${b.shapes.map((x) => `${x.m}x${x.n}x${x.k} ${x.blas_gflops.toFixed(1)} (ours ${x.ours_gflops.toFixed(1)})`).join(', ')} GFLOP/s` : `BLAS reference not available: ${b.reason}`);
  };
  sample();
  blas();
  sample();
  const rows = [];
  const grid = [['mpeu', [32, 128]], ['schnet', [32, 128]], ['painn', [16, 32, 128]]];
  for (const [model, sizes] of grid) {
    for (const B of sizes) {
      const { result: r } = await train({ store, target: 'U0', model: { kind: model }, policy: 'dynamic', batchSize: B, steps, seed: 42, skipEval: true, profile: false });
      sample();
      // The matrix work's rate: GEMM flops over GEMM time in a short profile of the same row.
      const p = await profileSteps({ store, target: 'U0', model: { kind: model }, policy: 'dynamic', batchSize: B, steps: profSteps, warmup: 2, seed: 42, threads });
      const maxKernel = p.kernels.filter((k) => k.where === 'native').reduce((a, k) => (k.gflops > a.gflops ? k : a), { gflops: 0, kernel: '' });
      const mem = planMemory(store, model, B);
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
        matrix_gflops: p.matrix_gflops,
        max_kernel: maxKernel.kernel,
        max_kernel_gflops: maxKernel.gflops,
        graphs_per_s: r.graphs_per_s,
        ...mem,
      };
      rows.push(row);
      log(`${model} B=${B}: ${row.step_ms_median.toFixed(1)} ms/step (batching ${row.batching_ms_median.toFixed(3)} ms), ${row.gflops.toFixed(1)} GFLOP/s step, matrix work ${row.matrix_gflops.toFixed(1)}, plan ${mem.plan_mib.toFixed(1)} MiB`);
    }
  }
  blas();
  sample();
  // The reference: the best of our GEMM samples, the BLAS on any shape, and (flagged) any kernel.
  const ownBest = Math.max(...gemmSamples);
  const blasBest = blasRuns.filter((b) => b.available).flatMap((b) => b.shapes).reduce((a, x) => (x.blas_gflops > a.gflops ? { gflops: x.blas_gflops, shape: `${x.m}x${x.n}x${x.k}` } : a), { gflops: 0, shape: '' });
  let peak = Math.max(ownBest, blasBest.gflops);
  let source_ = ownBest >= blasBest.gflops ? `our GEMM ${REF.join('x')}` : `OpenBLAS ${blasBest.shape}`;
  const kernelBest = rows.reduce((a, r) => (r.max_kernel_gflops > a.gflops ? { gflops: r.max_kernel_gflops, what: `${r.model} B=${r.batch} ${r.max_kernel}` } : a), { gflops: 0, what: '' });
  const raisedBy = kernelBest.gflops > peak ? kernelBest.what : null;
  if (raisedBy) {
    peak = kernelBest.gflops;
    source_ = `kernel ${raisedBy} (faster than every reference sample: the references were measured low)`;
  }
  for (const r of rows) {
    r.peak_gflops = peak;
    r.share_of_peak = r.gflops / peak;
    r.matrix_share_of_peak = r.matrix_gflops / peak;
  }
  const spread = (Math.max(...gemmSamples) - Math.min(...gemmSamples)) / Math.max(...gemmSamples);
  const info = nativeInfo();
  const pct = (x) => `${(100 * x).toFixed(0)}%`;
  const blasLines = blasRuns.map((b, i) =>
    b.available
      ? `- BLAS ${i === 0 ? 'before' : 'after'} the rows (numpy ${b.library ? `with ${(b.library.split(', ').find((x) => /libopenblas|libblis|libmkl/i.test(path.basename(x))) ?? b.library)}` : ''}, ${b.threads} threads), GFLOP/s, with our GEMM on the same shape right after: ` +
        b.shapes.map((x) => `${x.m}x${x.n}x${x.k} BLAS ${x.blas_gflops.toFixed(1)} / ours ${x.ours_gflops.toFixed(1)}`).join('; ') + '.'
      : `- BLAS ${i === 0 ? 'before' : 'after'} the rows: **not available** (${b.reason}); the reference is our own GEMM alone.`,
  );
  const lines = [
    '## Training step (`npm run bench -- step`)',
    '',
    `${source}, fully connected, dynamic policy, ${steps} steps per row, ${getThreads()} threads, SIMD ${info.simd}. Medians over steps (the mean would include the one plan build). ` +
      `Matrix work = GEMM flops / GEMM time in a ${profSteps}-step profile of the same row (after 2 warm-up steps).`,
    '',
    `Reference: **${peak.toFixed(1)} GFLOP/s** (${source_}). Our GEMM ${REF.join('x')} sampled ${gemmSamples.length} times (before, between every two rows, after): ` +
      `${Math.min(...gemmSamples).toFixed(1)}-${ownBest.toFixed(1)} GFLOP/s, spread ${pct(spread)} within the run.`,
    ...blasLines,
    '',
    '| model | B | step ms (median) | batching ms | batching share | update ms | GFLOP/step | step GFLOP/s | step % of reference | matrix GFLOP/s | matrix % of reference | graphs/s | plan MiB | plan bytes/graph | plan bytes/edge |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.batch} | ${r.step_ms_median.toFixed(1)} | ${r.batching_ms_median.toFixed(3)} | ${(100 * r.batching_share).toFixed(2)}% | ${r.update_ms_median.toFixed(1)} | ${r.gflop_per_step.toFixed(2)} | ${r.gflops.toFixed(1)} | ${pct(r.share_of_peak)} | ${r.matrix_gflops.toFixed(1)} | ${pct(r.matrix_share_of_peak)} | ${r.graphs_per_s.toFixed(0)} | ${r.plan_mib.toFixed(1)} | ${Math.round(r.bytes_per_graph).toLocaleString('en-US')} | ${Math.round(r.bytes_per_edge).toLocaleString('en-US')} |`),
    '',
    'Plan bytes: the float32 training plan (native buffers and packed inputs, `planBytesModel`: base + perNode x N + perEdge x E + perGraph x G) of the policy\'s first 20 padded batches, divided by their real graphs and real edges.',
  ];
  return {
    markdown: lines.join('\n'),
    data: { threads: getThreads(), peak_gflops: peak, reference_source: source_, reference_raised_by: raisedBy, gemm_samples: gemmSamples, gemm_spread: spread, blas: blasRuns, rows },
  };
}

module.exports = { run };
