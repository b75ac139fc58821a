// `npm run bench -- mpi`: the gradient exchange of data-parallel training on
// MPI (docs/scale-out.md) at 2 ranks on this machine (mpirun --oversubscribe,
// 1 thread per rank): the ordered-sum collective's time per step for each
// model's gradient size (both ways of moving the slots), its share of a
// training step (packed, dynamic and exact policies: the time a rank waits
// for the other is in it), a latency/bandwidth fit, and a projection of
// scaling efficiency at 8 and 64 nodes with stated assumptions.
// Needs Open MPI and the MPI module (npm run build:native with MPI installed).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');

// ---------------------------------------------------------------- child (one rank)
async function child() {
  const { initDistributed } = require(path.join(dist, 'train', 'distributed'));
  const { train } = require(path.join(dist, 'train', 'trainer'));
  const { loadSource } = require(path.join(dist, 'data'));
  const { nativeModel, setThreads } = require(path.join(dist, 'native'));
  const { modelConfigForStore } = require(path.join(dist, 'model', 'config'));
  setThreads(1);
  const ctx = initDistributed({ timeoutMs: 120000 });
  const out = { library: ctx.library, size: ctx.size, sizes: [], models: [], steps: [] };
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
  const time = (n, algorithm, reps) => {
    const local = new Float32Array(n).fill(1e-3 * (ctx.rank + 1));
    const res = new Float32Array(n);
    const api = require(path.join(root, 'native-build', 'Release', 'gnnbatch_mpi.node'));
    for (let i = 0; i < 3; i++) api.orderedSum(local, 1, res, 60000, algorithm);
    const t = [];
    for (let i = 0; i < reps; i++) {
      ctx.barrier();
      t.push(api.orderedSum(local, 1, res, 60000, algorithm).ms);
    }
    return median(t);
  };
  // Latency / bandwidth: message sizes 1 float .. 4 M floats.
  for (const n of [1, 1024, 16384, 262144, 1048576, 4194304])
    out.sizes.push({ floats: n, allgather_ms: time(n, 'allgather', n > 1e6 ? 10 : 50), alltoall_ms: time(n, 'alltoall', n > 1e6 ? 10 : 50) });
  // Each model's gradient (+ the 2N+1 loss/stop floats of a slot).
  const { store } = await loadSource('qm9-like:1000', { graph: 'fc', directions: true });
  for (const kind of ['mpeu', 'schnet', 'painn']) {
    const n = nativeModel().modelLayout(modelConfigForStore(store, { kind })).total;
    out.models.push({ kind, params: n, allgather_ms: time(n + 5, 'allgather', 100), alltoall_ms: time(n + 5, 'alltoall', 100) });
  }
  // Share of a training step: the reducer's time (collective + waiting for the slower rank).
  for (const [kind, policy] of [['mpeu', 'packed'], ['mpeu', 'dynamic'], ['mpeu', 'exact'], ['schnet', 'packed'], ['painn', 'packed']]) {
    let reduceMs = 0;
    let calls = 0;
    const reducer = { rank: ctx.rank, size: ctx.size, reduce: (l, s, o, st) => { const ms = ctx.reduce(l, s, o, st); if (st >= 3) { reduceMs += ms; calls++; } return ms; } };
    const steps = kind === 'painn' ? 10 : 25;
    const t0 = Date.now();
    const { result } = await train({ store, target: 'U0', model: { kind }, policy, batchSize: 32, steps, seed: 1, skipEval: true, threads: 1, distributed: reducer, microBatches: 2 });
    const wall = Date.now() - t0;
    out.steps.push({ kind, policy, rank: ctx.rank, steps, step_ms_median: result.ms_per_step_median, reduce_ms_per_step: reduceMs / calls, wall_ms: wall });
  }
  // Gather both ranks' step rows on rank 0 (JSON through stdout of rank 0 only).
  const mine = Float32Array.from(out.steps.flatMap((s) => [s.step_ms_median, s.reduce_ms_per_step]));
  // Sum trick: rank r puts its numbers in its own half of a 2x buffer.
  const wide = new Float32Array(mine.length * ctx.size);
  wide.set(mine, ctx.rank * mine.length);
  const sum = new Float32Array(wide.length);
  ctx.reduce(wide, 1, sum, 0);
  if (ctx.rank === 0) {
    out.perRank = [];
    for (let r = 0; r < ctx.size; r++) out.perRank.push(Array.from(sum.subarray(r * mine.length, (r + 1) * mine.length)));
    process.stdout.write('MPIBENCH ' + JSON.stringify(out) + '\n');
  }
  ctx.finalize();
}

// ---------------------------------------------------------------- parent
const f = (x, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/** Efficiency of weak scaling: each node computes `computeMs` per step, then the exchange. */
function projection(alphaUs, gbps, params, computeMs) {
  const bytes = 4 * params;
  const rows = [];
  for (const W of [2, 8, 64]) {
    // reduce-scatter by hand + allgather: 2 (W-1) messages, 2 (W-1)/W of the vector per rank (pairwise exchanges).
    const a2a = (2 * (W - 1) * alphaUs) / 1000 + (2 * ((W - 1) / W) * bytes) / (gbps * 1e6);
    // allgather of whole vectors: (W-1) messages, (W-1) vectors per rank.
    const ag = ((W - 1) * alphaUs) / 1000 + ((W - 1) * bytes) / (gbps * 1e6);
    rows.push({ W, alltoall_ms: a2a, allgather_ms: ag, eff_alltoall: computeMs / (computeMs + a2a), eff_allgather: computeMs / (computeMs + ag) });
  }
  return rows;
}

async function run({ log }) {
  const v = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) throw new Error('bench mpi: mpirun not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev) and rebuild (npm run build:native)');
  if (!fs.existsSync(path.join(root, 'native-build', 'Release', 'gnnbatch_mpi.node'))) throw new Error('bench mpi: the MPI module is not built (npm run build:native with Open MPI installed)');
  const args = ['-n', '2', '--oversubscribe', ...(process.getuid && process.getuid() === 0 ? ['--allow-run-as-root'] : []), process.execPath, __filename, '--child'];
  log('mpirun -n 2 (1 thread per rank) ...');
  const r = spawnSync('mpirun', args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 600000, maxBuffer: 64 << 20 });
  const line = (r.stdout || '').split('\n').find((l) => l.startsWith('MPIBENCH '));
  if (r.status !== 0 || !line) throw new Error(`bench mpi: the ranks failed (exit ${r.status}):\n${(r.stderr || '').slice(-3000)}`);
  const d = JSON.parse(line.slice(9));
  // Latency and bandwidth of this machine's exchange (least squares on the alltoall sizes >= 16k floats, plus the 1-float latency).
  const big = d.sizes.filter((s) => s.floats >= 16384);
  const xs = big.map((s) => s.floats * 4);
  const ys = big.map((s) => s.alltoall_ms);
  const mx = xs.reduce((a, b) => a + b) / xs.length;
  const my = ys.reduce((a, b) => a + b) / ys.length;
  const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0); // ms per byte
  const latencyUs = d.sizes[0].alltoall_ms * 1000;
  const loopGBs = 1 / (slope * 1e6); // GB/s of the whole exchange (2 (W-1)/W vectors at W=2 = 1 vector)
  const steps = d.steps.map((s, i) => ({ ...s, rank1_step_ms: d.perRank[1][2 * i], rank1_reduce_ms: d.perRank[1][2 * i + 1] }));
  const mpeu = d.models.find((m) => m.kind === 'mpeu');
  const packed = steps.find((s) => s.kind === 'mpeu' && s.policy === 'packed');
  const computeMs = packed.step_ms_median - packed.reduce_ms_per_step;
  const nets = [
    { name: 'this machine (shared memory, measured)', alphaUs: latencyUs, gbps: loopGBs },
    { name: '25 GbE, TCP (assumed 25 us, 2.9 GB/s)', alphaUs: 25, gbps: 2.9 },
    { name: 'InfiniBand HDR (assumed 2 us, 23 GB/s)', alphaUs: 2, gbps: 23 },
  ];
  const proj = [];
  for (const net of nets) for (const cm of [computeMs, computeMs / 36]) proj.push({ net: net.name, computeMs: cm, rows: projection(net.alphaUs, net.gbps, mpeu.params, cm) });

  let md = `## Data-parallel training on MPI (\`npm run bench -- mpi\`)\n\n`;
  md += `${d.library}; mpirun -n 2 --oversubscribe on this machine (${require('os').cpus().length} cores, ${require('os').cpus()[0].model}), 1 thread per rank. `;
  md += 'The collective is the ordered sum of gnnbatch_mpi.node (MPI_Iallgather, or MPI_Ialltoallv + MPI_Iallgatherv: reduce-scatter by hand), polled with MPI_Test; medians.\n\n';
  md += '| model | parameters | gradient MB | allgather ms | alltoall ms |\n|---|---:|---:|---:|---:|\n';
  for (const m of d.models) md += `| ${m.kind} | ${m.params} | ${f((4 * m.params) / 1e6, 2)} | ${f(m.allgather_ms)} | ${f(m.alltoall_ms)} |\n`;
  md += '\nShare of a training step (2 micro-batches of B = 32, one per rank; qm9-like:1000; the reducer\'s time includes waiting for the slower rank):\n\n';
  md += '| model | policy | step ms (rank 0 / 1, median) | reduce ms per step (rank 0 / 1) | share (rank 0) |\n|---|---|---:|---:|---:|\n';
  for (const s of steps) md += `| ${s.kind} | ${s.policy} | ${f(s.step_ms_median, 1)} / ${f(s.rank1_step_ms, 1)} | ${f(s.reduce_ms_per_step)} / ${f(s.rank1_reduce_ms)} | ${f((100 * s.reduce_ms_per_step) / s.step_ms_median, 1)}% |\n`;
  md += `\nLatency / bandwidth here: ${f(latencyUs, 1)} us for 1 float; ${f(loopGBs, 2)} GB/s for large vectors (alltoall, fit over 64 KB-16 MB).\n\n`;
  md += '**Projection** (on paper). Weak scaling: every node computes its micro-batches in `compute` ms, then one exchange of the MPEU gradient ';
  md += `(${mpeu.params} floats). Exchange time: alltoall = 2(W-1)·α + 2(W-1)/W·bytes/bandwidth (pairwise messages, no pipelining); `;
  md += 'allgather = (W-1)·α + (W-1)·bytes/bandwidth. Efficiency = compute / (compute + exchange); no overlap of the exchange with backward, no stragglers (the dynamic/exact rows above show what unequal shapes add). ';
  md += `compute = ${f(computeMs, 1)} ms (this machine's MPEU step, 1 thread) and ${f(computeMs / 36, 2)} ms (the same on 36 cores at perfect speed-up, a 72-core node's socket).\n\n`;
  md += '| network | compute ms | W | alltoall ms | efficiency | allgather ms | efficiency |\n|---|---:|---:|---:|---:|---:|---:|\n';
  for (const p of proj) for (const r of p.rows.filter((x) => x.W > 2)) md += `| ${p.net} | ${f(p.computeMs, 2)} | ${r.W} | ${f(r.alltoall_ms)} | ${f(100 * r.eff_alltoall, 1)}% | ${f(r.allgather_ms)} | ${f(100 * r.eff_allgather, 1)}% |\n`;
  log(md);
  return { markdown: md, data: { ...d, steps, latencyUs, loopGBs, projection: proj } };
}

if (process.argv.includes('--child')) {
  child().catch((e) => {
    process.stderr.write(`bench mpi child: ${e.stack || e}\n`);
    process.exit(1);
  });
}

module.exports = { run };
