// Training-step benchmark (issues 5, 27): `npm run bench -- step [--threads N] [--steps N] [--profile-steps N] [--no-torch] [--keep-batches DIR] [--json]`.
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
// PyTorch eager side by side (issue 27): benchmarks/peers/torch_models.py, the
// same models written plainly in PyTorch (Debian's python3-torch through
// /usr/bin/python3 or GNNBATCH_BENCH_PYTHON, float32, the same thread count),
// trains on the very batches gnnbatch packed for the row (written to a temp
// directory with gnnbatch's initial parameters; the peer checks its parameter
// count, loss and gradient on the first batch against gnnbatch's lossAndGrad
// before anything is timed). The two run interleaved in blocks of steps
// (gnnbatch: pack + native train step; PyTorch: forward, loss, backward, Adam;
// which side goes first alternates), and each side's median is reported with
// the speedup. The peer flushes subnormal floats as gnnbatch does
// (GNNBATCH_TORCH_FLUSH_DENORMAL=0: PyTorch's default). Without torch the table says so (never silently); `--no-torch`
// skips the comparison, also said in the output.
'use strict';
const fs = require('fs');
const os = require('os');
const { spawn } = require('child_process');
const readline = require('readline');
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
const { nativeModel, native, setThreads, getThreads, nativeInfo } = require(path.join(dist, 'native'));
const { packerArrays, targetColumn, targetStats } = require(path.join(dist, 'data'));
const { paramLayout, initParams } = require(path.join(dist, 'model', 'params'));
const { PlanCache, allocPackOutput, needsDirections } = require(path.join(dist, 'train', 'plan'));
const { median } = require(path.join(dist, 'train', 'metrics'));

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

// ---- PyTorch eager side by side ----

const PEER = path.join(__dirname, 'peers', 'torch_models.py');
/** Speedup targets of issue 27 (B = 32 and 128). */
const TARGET = { mpeu: 10, schnet: 7, painn: 7 };

/**
 * Starts the PyTorch peer (torch_models.py --serve): resolves to
 * { available: true, torch, request(cmd) -> Promise<reply>, close() } or
 * { available: false, reason }.
 */
function startTorchPeer(threads) {
  const python = process.env.GNNBATCH_BENCH_PYTHON ?? '/usr/bin/python3';
  if (!fs.existsSync(PEER)) return Promise.resolve({ available: false, reason: `${PEER} is not there` });
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), OMP_WAIT_POLICY: undefined, GOMP_SPINCOUNT: undefined };
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(python, [PEER, '--serve', '--threads', String(threads)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ available: false, reason: `${python} cannot be started: ${e.message}` });
      return;
    }
    let stderr = '';
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    const waiting = [];
    let hello = null;
    let exited = null;
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        msg = { ok: false, error: `non-JSON line from the peer: ${line.slice(0, 200)}` };
      }
      if (!hello) {
        hello = msg;
        if (!msg.available) resolve({ available: false, reason: msg.reason ?? 'torch unavailable' });
        else resolve({
          available: true,
          torch: msg.torch,
          threads: msg.threads,
          python: msg.python,
          flushDenormal: msg.flush_denormal,
          request(cmd) {
            if (exited) return Promise.reject(new Error(`the PyTorch peer exited (${exited}): ${stderr.trim().split('\n').pop() ?? ''}`));
            return new Promise((res, rej) => {
              waiting.push({ res, rej });
              child.stdin.write(JSON.stringify(cmd) + '\n');
            });
          },
          close() {
            if (!exited) child.stdin.end(JSON.stringify({ cmd: 'quit' }) + '\n');
          },
        });
        return;
      }
      const w = waiting.shift();
      if (w) w.res(msg);
    });
    child.on('error', (e) => {
      exited = e.message;
      if (!hello) resolve({ available: false, reason: `${python} cannot be started: ${e.message}` });
    });
    child.on('exit', (code, sig) => {
      exited = `code ${code}${sig ? `, signal ${sig}` : ''}`;
      if (!hello) resolve({ available: false, reason: `${python} ${path.basename(PEER)} exited (${exited}): ${stderr.trim().split('\n').pop() ?? ''}` });
      for (const w of waiting.splice(0)) w.rej(new Error(`the PyTorch peer exited (${exited}): ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The f-quantile (0..1) of x by the nearest rank. */
function quantile(x, f) {
  const y = [...x].sort((a, b) => a - b);
  return y[Math.min(y.length - 1, Math.max(0, Math.round(f * (y.length - 1))))];
}

/**
 * The row's batches for the side-by-side run: the dynamic policy's first `nb`
 * batches (seed 42, train split, standardised U0), each packed into its own
 * buffers, with the plan, initial parameters and Adam state gnnbatch trains.
 */
function rowSetup(store, kind, B, nb) {
  const split = splitGraphs(store.numGraphs, { seed: 42 });
  const column = targetColumn(store, 'U0');
  const st = targetStats(column, split.train);
  const inv = st.std > 0 ? 1 / st.std : 1;
  const arrays = packerArrays(store, column.map((y) => (Number.isFinite(y) ? (y - st.mean) * inv : 0)));
  let maxZ = 0;
  for (const z of store.atomicNumber) if (z > maxZ) maxZ = z;
  const config = resolveModelConfig({ numClasses: Math.max(100, maxZ + 1), kind });
  const layout = paramLayout(config);
  const nativeTotal = nativeModel().modelLayout(config).total;
  const policy = createPolicy('dynamic', sizesOf(store), split.train, B, 42, {});
  const cache = new PlanCache(config, 'float32');
  const dirs = needsDirections(config);
  const batches = Array.from({ length: nb }, () => {
    const spec = policy.next();
    const inputs = allocPackOutput(spec.shape, 'float32', dirs);
    native().packGraphs(arrays, spec.graphIds, spec.shape, inputs);
    return { spec, plan: cache.get(spec.shape), inputs };
  });
  const params = initParams(layout, 42, 'float32');
  return { arrays, config, layout, nativeTotal, batches, params, m: new Float32Array(layout.total), v: new Float32Array(layout.total), grads: new Float32Array(layout.total), cache };
}

/** Writes the row's batches, initial parameters and gnnbatch's first-batch loss and gradient for the peer. */
function exportRow(dir, setup) {
  const { config, layout, batches, params } = setup;
  const chunks = [];
  let offset = 0;
  const seg = (a) => {
    const dtype = a instanceof Float32Array ? 'f32' : a instanceof Int32Array ? 'i32' : null;
    if (!dtype) throw new TypeError('exportRow: float32 or int32 arrays only');
    const buf = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    chunks.push(buf);
    const s = { dtype, offset, length: a.length };
    offset += buf.length;
    return s;
  };
  const b0 = batches[0];
  const grad = new Float32Array(layout.total);
  const loss = nativeModel().lossAndGrad(b0.plan.handle, b0.inputs, b0.spec.shape, params, grad);
  const names = ['atomicNumber', 'nodeGraph', 'senders', 'receivers', 'nNode', 'distance', 'target', 'mask'];
  if (needsDirections(config)) names.push('direction');
  const manifest = {
    data: 'batches.bin',
    config,
    layout_total: layout.total,
    layout: layout.entries.map((e) => ({ name: e.name, offset: e.offset, rows: e.rows, cols: e.cols })),
    params: seg(Float32Array.from(params)),
    check: { loss, grad: seg(grad) },
    batches: batches.map((b) => ({
      nodes: b.spec.shape.nodes,
      edges: b.spec.shape.edges,
      graphs: b.spec.shape.graphs,
      arrays: Object.fromEntries(names.map((n) => [n, seg(b.inputs[n])])),
    })),
  };
  fs.writeFileSync(path.join(dir, 'batches.bin'), Buffer.concat(chunks));
  const file = path.join(dir, 'manifest.json');
  fs.writeFileSync(file, JSON.stringify(manifest));
  return file;
}

/**
 * gnnbatch and the PyTorch peer on the same batches, interleaved: after
 * warm-up, blocks of `block` steps alternate (the side that goes first
 * alternates too, and both sides sleep 20 ms between blocks so the other's
 * idle threads have stopped spinning). Returns both medians and the peer's check.
 */
async function sideBySide(peer, store, kind, B, steps, dir) {
  const nb = Math.min(8, steps);
  const setup = rowSetup(store, kind, B, nb);
  const manifest = exportRow(dir, setup);
  const check = await peer.request({ cmd: 'load', manifest });
  if (!check.ok) throw new Error(`PyTorch peer, ${kind} B=${B}: ${check.error}`);
  const api = nativeModel();
  let k = 0;
  const gnnStep = () => {
    const b = setup.batches[k % setup.batches.length];
    const i = k++;
    const t0 = process.hrtime.bigint();
    native().packGraphs(setup.arrays, b.spec.graphIds, b.spec.shape, b.inputs);
    api.trainStep(b.plan.handle, b.inputs, b.spec.shape, setup.params, setup.grads, setup.m, setup.v, { lr: 1e-4, bc1: 1 - Math.pow(0.9, i + 1), bc2: 1 - Math.pow(0.999, i + 1), clipNorm: 0 });
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const gnn = [];
  const torch = [];
  // Each block's median, in order: block r of one side and block r of the
  // other ran back to back, so their ratio is paired against drift.
  const gnnBlocks = [];
  const torchBlocks = [];
  const gnnBlock = (n) => {
    const t = [];
    for (let j = 0; j < n; j++) t.push(gnnStep());
    gnn.push(...t);
    gnnBlocks.push(median(t));
  };
  const torchBlock = async (n) => {
    const r = await peer.request({ cmd: 'run', steps: n });
    if (!r.ok) throw new Error(`PyTorch peer, ${kind} B=${B}: ${r.error}`);
    torch.push(...r.ms);
    torchBlocks.push(median(r.ms));
    return r;
  };
  // Warm-up (pages, caches, the allocator of each side), not counted.
  for (let j = 0; j < 2; j++) gnnStep();
  await sleep(20);
  const warm = await peer.request({ cmd: 'run', steps: 2 });
  if (!warm.ok) throw new Error(`PyTorch peer, ${kind} B=${B}: ${warm.error}`);
  await sleep(20);
  const block = Math.max(1, Math.min(5, Math.ceil(steps / 4)));
  let lastTorch = null;
  for (let r = 0, done = 0; done < steps; r++) {
    const n = Math.min(block, steps - done);
    done += n;
    if (r % 2 === 0) {
      gnnBlock(n);
      await sleep(20);
      lastTorch = await torchBlock(n);
    } else {
      lastTorch = await torchBlock(n);
      await sleep(20);
      gnnBlock(n);
    }
    await sleep(20);
  }
  setup.cache.close();
  const gnnMs = median(gnn);
  const torchMs = median(torch);
  const pairRatios = gnnBlocks.map((g, r) => torchBlocks[r] / g);
  const q = (f) => quantile(pairRatios, f);
  const lossRel = Math.abs(check.loss - check.loss_ref) / Math.max(Math.abs(check.loss_ref), 1e-30);
  return {
    gnn_ms: gnnMs,
    torch_ms: torchMs,
    // The figure judged against the target: the median over adjacent block
    // pairs of PyTorch's block median / gnnbatch's (robust to the machine's
    // drift between blocks); speedup_of_medians is the ratio of the two sides'
    // overall medians, and the quartiles show how much the pairs spread.
    speedup: median(pairRatios),
    speedup_of_medians: torchMs / gnnMs,
    speedup_q1: q(0.25),
    speedup_q3: q(0.75),
    pairs: pairRatios.length,
    // Each side's step distribution: PyTorch's eager step on this machine is
    // bimodal (docs/performance.md), so its fast quartile is given too.
    gnn_q1: quantile(gnn, 0.25),
    gnn_q3: quantile(gnn, 0.75),
    torch_q1: quantile(torch, 0.25),
    torch_q3: quantile(torch, 0.75),
    torch_min: Math.min(...torch),
    gnn_samples: gnn.length,
    torch_samples: torch.length,
    block,
    torch_last_loss: lastTorch?.loss,
    check: { params: check.params, params_ref: check.params_ref, params_native: setup.nativeTotal, loss: check.loss, loss_ref: check.loss_ref, loss_rel_err: lossRel, grad_rel_err: check.grad_rel_err, edges: check.edges },
    // The same model, checked: one parameter count on all three sides, loss and gradient of the first batch within float32 round-off.
    same_model: check.params === check.params_ref && check.params_ref === setup.nativeTotal && lossRel < 1e-3 && check.grad_rel_err < 1e-3,
    edges_packed: setup.batches.map((b) => b.spec.shape.edges),
  };
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
  // The PyTorch peer, started once for every row.
  const torchPeer = args.includes('--no-torch')
    ? { available: false, reason: 'skipped (--no-torch)' }
    : await startTorchPeer(threads);
  log(torchPeer.available ? `PyTorch ${torchPeer.torch} (${torchPeer.python}, ${torchPeer.threads} threads): eager peer side by side` : `PyTorch eager comparison: **not run**: ${torchPeer.reason}`);
  // --keep-batches DIR: the exported batches stay in DIR/<model>-<B>/ (for torch_models.py --check / --profile).
  const ki = args.indexOf('--keep-batches');
  const keep = ki >= 0 ? args[ki + 1] : null;
  if (ki >= 0 && (!keep || keep.startsWith('--'))) throw new RangeError('--keep-batches needs a directory');
  const tmp = !torchPeer.available ? null : keep ? (fs.mkdirSync(keep, { recursive: true }), keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-step-torch-'));
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
      let side = null;
      if (torchPeer.available) {
        try {
          const dir = path.join(tmp, `${model}-${B}`);
          fs.mkdirSync(dir, { recursive: true });
          side = await sideBySide(torchPeer, store, model, B, steps, dir);
        } catch (e) {
          side = { error: e.message };
          log(`${model} B=${B}: PyTorch side by side failed: ${e.message}`);
        }
        sample();
      }
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
        torch: side,
        // Per-kernel rows of the profile (per step), for the gap table against 70% of the reference.
        kernels: p.kernels.filter((k) => k.where === 'native' && k.ms_per_step > 0).map((k) => ({ kernel: k.kernel, gemm: k.gemm, ms: k.ms_per_step, gflop: (k.gflops * k.ms_per_step) / 1e3, gflops: k.gflops, gbps: k.gbps })),
        profile_step_ms: p.step_ms_median,
      };
      rows.push(row);
      log(`${model} B=${B}: ${row.step_ms_median.toFixed(1)} ms/step (batching ${row.batching_ms_median.toFixed(3)} ms), ${row.gflops.toFixed(1)} GFLOP/s step, matrix work ${row.matrix_gflops.toFixed(1)}, plan ${mem.plan_mib.toFixed(1)} MiB` +
        (side && !side.error ? `; side by side: gnnbatch ${side.gnn_ms.toFixed(1)} ms, PyTorch eager ${side.torch_ms.toFixed(1)} ms, ${side.speedup.toFixed(2)}x (check: params ${side.check.params}/${side.check.params_ref}, loss rel ${side.check.loss_rel_err.toExponential(1)}, grad rel ${side.check.grad_rel_err.toExponential(1)})` : ''));
    }
  }
  if (torchPeer.available) {
    torchPeer.close();
    if (!keep) fs.rmSync(tmp, { recursive: true, force: true });
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
  // The gap: where the matrix work loses time against 70% of the reference
  // (excess = a product's time minus its flops at 70%), and the largest kernels
  // that are not matrix products (outside the matrix-work figure, inside the step).
  for (const r of rows) {
    const g = r.kernels.filter((k) => k.gemm && k.gflop > 0);
    r.matrix_ms = g.reduce((a, k) => a + k.ms, 0);
    r.matrix_ms_at_70 = g.reduce((a, k) => a + k.gflop, 0) / (0.7 * peak) * 1e3;
    r.gap = g.map((k) => ({ kernel: k.kernel, ms: k.ms, excess_ms: k.ms - (k.gflop / (0.7 * peak)) * 1e3, share_of_peak: k.gflops / peak })).sort((a, b) => b.excess_ms - a.excess_ms);
    r.other = r.kernels.filter((k) => !(k.gemm && k.gflop > 0)).sort((a, b) => b.ms - a.ms);
    r.other_ms = r.other.reduce((a, k) => a + k.ms, 0);
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
  const torchCells = (r) => {
    if (!r.torch) return 'not run | not run | - | -';
    if (r.torch.error) return `failed | failed: ${r.torch.error.replace(/\|/g, '/')} | - | -`;
    const t = r.torch;
    const target = r.batch === 32 || r.batch === 128 ? TARGET[r.model] : null;
    const verdict = target ? ` (>= ${target}x: ${t.speedup >= target ? 'met' : 'not met'})` : ' (no target at this B)';
    return `${t.gnn_ms.toFixed(1)} | ${t.torch_ms.toFixed(1)} | ${t.same_model ? '' : '**model check failed** '}${t.speedup.toFixed(2)}x${verdict} | ${t.speedup_q1.toFixed(2)}-${t.speedup_q3.toFixed(2)}x`;
  };
  const torchLines = torchPeer.available
    ? [
        `PyTorch eager side by side: \`benchmarks/peers/torch_models.py\` (PyTorch ${torchPeer.torch}, ${torchPeer.python}, ${torchPeer.threads} threads, float32, eager, subnormals ${torchPeer.flushDenormal ? 'flushed as gnnbatch does (torch.set_flush_denormal; GNNBATCH_TORCH_FLUSH_DENORMAL=0 leaves them, which slows PyTorch\'s basis products)' : 'not flushed (PyTorch\'s default)'}), the same model on the very batches gnnbatch packed for the row (the policy's first ${Math.min(8, steps)} batches, cycled), from gnnbatch's initial parameters. ` +
          `Interleaved: after 2 warm-up steps each, blocks of ${rows[0]?.torch?.block ?? '?'} steps alternate (the first side alternates; 20 ms pause between blocks), ${steps} steps per side. The ms columns are each side's median; the speedup is the median over the ${rows[0]?.torch?.pairs ?? '?'} adjacent block pairs of PyTorch's block median / gnnbatch's (paired, so the machine's drift between blocks cancels), with the pairs' quartiles beside it. gnnbatch side = pack + native train step; PyTorch side = zero_grad, forward, masked MSE, backward, Adam (the batch already in tensors). ` +
          'Plain eager: gathers with index_select, sums with index_add, MPEU\'s edge MLP on concat(h[snd], h[rcv], e); PaiNN keeps only the edges inside the cutoff (as gnnbatch computes). Targets (issue 27, B = 32 and 128): >= 10x MPEU, >= 7x SchNet and PaiNN.',
        'Same-model check before timing (first batch, initial parameters; PyTorch vs gnnbatch\'s lossAndGrad): ' +
          rows.filter((r) => r.torch && !r.torch.error).map((r) => `${r.model} B=${r.batch}: params ${r.torch.check.params.toLocaleString('en-US')} (gnnbatch ${r.torch.check.params_native.toLocaleString('en-US')}), loss rel diff ${r.torch.check.loss_rel_err.toExponential(1)}, gradient rel diff ${r.torch.check.grad_rel_err.toExponential(1)}`).join('; ') + '.',
      ]
    : [`PyTorch eager side by side: **not run**: ${torchPeer.reason}.`];
  const lines = [
    '## Training step (`npm run bench -- step`)',
    '',
    `${source}, fully connected, dynamic policy, ${steps} steps per row, ${getThreads()} threads of ${os.cpus()[0]?.model ?? 'an unknown CPU'} (${os.cpus().length} CPUs), SIMD ${info.simd}. Medians over steps (the mean would include the one plan build). ` +
      `Matrix work = GEMM flops / GEMM time in a ${profSteps}-step profile of the same row (after 2 warm-up steps).`,
    '',
    `Reference: **${peak.toFixed(1)} GFLOP/s** (${source_}). Our GEMM ${REF.join('x')} sampled ${gemmSamples.length} times (before, between every two rows, after): ` +
      `${Math.min(...gemmSamples).toFixed(1)}-${ownBest.toFixed(1)} GFLOP/s, spread ${pct(spread)} within the run.`,
    ...blasLines,
    '',
    '| model | B | step ms (median) | batching ms | batching share | update ms | GFLOP/step | step GFLOP/s | step % of reference | matrix GFLOP/s | matrix % of reference | gnnbatch ms (side by side) | PyTorch eager ms | speedup (target) | speedup, quartiles of the pairs | graphs/s | plan MiB | plan bytes/graph | plan bytes/edge |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.batch} | ${r.step_ms_median.toFixed(1)} | ${r.batching_ms_median.toFixed(3)} | ${(100 * r.batching_share).toFixed(2)}% | ${r.update_ms_median.toFixed(1)} | ${r.gflop_per_step.toFixed(2)} | ${r.gflops.toFixed(1)} | ${pct(r.share_of_peak)} | ${r.matrix_gflops.toFixed(1)} | ${pct(r.matrix_share_of_peak)} | ${torchCells(r)} | ${r.graphs_per_s.toFixed(0)} | ${r.plan_mib.toFixed(1)} | ${Math.round(r.bytes_per_graph).toLocaleString('en-US')} | ${Math.round(r.bytes_per_edge).toLocaleString('en-US')} |`),
    '',
    ...torchLines,
    ...(rows.some((r) => r.torch && !r.torch.error)
      ? [
          '',
          'Each side\'s step times (ms) in the side-by-side runs: quartiles and PyTorch\'s fastest step. The conservative speedup is PyTorch\'s lower quartile over gnnbatch\'s median: on a 2-vCPU VM PyTorch\'s eager step is bimodal (its OpenMP threads spin by default; a step that loses a vCPU mid-way can take 3-5x longer), so its median depends on how busy the host was.',
          '',
          '| model | B | gnnbatch q1 / median / q3 | PyTorch min / q1 / median / q3 | speedup, PyTorch q1 / gnnbatch median |',
          '|---|---|---|---|---|',
          ...rows
            .filter((r) => r.torch && !r.torch.error)
            .map((r) => {
              const t = r.torch;
              return `| ${r.model} | ${r.batch} | ${t.gnn_q1.toFixed(1)} / ${t.gnn_ms.toFixed(1)} / ${t.gnn_q3.toFixed(1)} | ${t.torch_min.toFixed(1)} / ${t.torch_q1.toFixed(1)} / ${t.torch_ms.toFixed(1)} / ${t.torch_q3.toFixed(1)} | ${(t.torch_q1 / t.gnn_ms).toFixed(2)}x |`;
            }),
        ]
      : []),
    '',
    'Gap to 70% of the reference, per kernel (the same profile; per step): matrix ms = the products\' time, at 70% = their flops at 70% of the reference; each listed product\'s excess = its time minus its flops at 70% (the four largest), with its own rate as % of the reference; other kernels = gathers, scatters, segment sums, basis, loss and Adam (not matrix work, but step time). Per-kernel explanation: docs/performance.md.',
    '',
    '| model | B | matrix ms | at 70% | products holding it below 70%: excess ms (own % of reference) | other kernels ms | largest other kernels ms |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.batch} | ${r.matrix_ms.toFixed(1)} | ${r.matrix_ms_at_70.toFixed(1)} | ${r.gap.slice(0, 4).map((k) => `${k.kernel} ${k.excess_ms.toFixed(1)} (${pct(k.share_of_peak)})`).join(', ')} | ${r.other_ms.toFixed(1)} | ${r.other.slice(0, 3).map((k) => `${k.kernel} ${k.ms.toFixed(1)}`).join(', ')} |`),
    '',
    'Plan bytes: the float32 training plan (native buffers and packed inputs, `planBytesModel`: base + perNode x N + perEdge x E + perGraph x G) of the policy\'s first 20 padded batches, divided by their real graphs and real edges.',
  ];
  return {
    markdown: lines.join('\n'),
    data: { threads: getThreads(), torch: torchPeer.available ? { torch: torchPeer.torch, python: torchPeer.python, threads: torchPeer.threads, flush_denormal: torchPeer.flushDenormal } : { available: false, reason: torchPeer.reason }, peak_gflops: peak, reference_source: source_, reference_raised_by: raisedBy, gemm_samples: gemmSamples, gemm_spread: spread, blas: blasRuns, rows },
  };
}

module.exports = { run, startTorchPeer, sideBySide };
