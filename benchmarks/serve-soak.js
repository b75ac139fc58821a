// Serving memory under a hostile mix (issue 21): `npm run bench -- serve-soak [--seconds S]`.
//
// A child process (fresh RSS) loads the study's MPEU checkpoint with
// createPredictor at its defaults and runs, for S seconds per phase:
//   1. small: 8 callers, each sending 4 qm9-like molecules in a loop;
//   2. the same, plus the largest allowed requests, one after the other: the
//      largest single fc structure the plan limit admits (twice), and a request
//      of maxRequestEdges edges (qm9-like molecules); then one refused just past
//      each limit (ERR_GNN_REQUEST_TOO_LARGE, nothing built);
//   3. small again.
// RSS is sampled every 20 ms. Reported: RSS after warm-up, peak RSS, RSS after
// the oversized requests (phase 3's end, before and after a forced GC: the
// plan is freed at once, the request's JS arrays at the next GC) and the documented budget
// (docs/serving-memory.md): RSS after warm-up + (planCacheBytes - the budget
// plan's bytes) + 48 bytes x maxQueuedEdges + 64 MiB. The check fails when the
// peak exceeds it, or when RSS after the oversized requests does not come back
// within 64 MiB of phase 1's.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { argValue } = require('./args');
const { benchCheckpoint } = require('./checkpoint');

const MiB = 1024 * 1024;
const root = path.join(__dirname, '..');

/** A compact cluster of n carbon atoms on a 1.4 Å grid (every pair is an fc edge). */
function cluster(n) {
  const side = Math.ceil(Math.cbrt(n));
  const positions = new Float64Array(3 * n);
  for (let i = 0; i < n; i++) {
    positions[3 * i] = 1.4 * (i % side);
    positions[3 * i + 1] = 1.4 * (Math.floor(i / side) % side);
    positions[3 * i + 2] = 1.4 * Math.floor(i / (side * side));
  }
  return { id: `cluster-${n}`, numbers: new Uint8Array(n).fill(6), positions, cell: null, pbc: [false, false, false], targets: {} };
}

async function child(ck, seconds) {
  const g = require(path.join(root, 'dist'));
  const { planBytesModel } = require(path.join(root, 'dist', 'train', 'plan'));
  const samples = [];
  let peak = 0;
  const sample = () => {
    const r = process.memoryUsage().rss;
    peak = Math.max(peak, r);
    samples.push(r);
    return r;
  };
  const sampler = setInterval(sample, 20);
  const p = await g.createPredictor(ck);
  const warm = sample();
  peak = warm;
  const st0 = p.stats();
  const config = p.config;
  const m = planBytesModel(config, 'float32', config.kind === 'painn');
  const planOf = (n, e, graphs) => m.base + m.perNode * n + m.perEdge * e + m.perGraph * graphs;
  // The defaults of createPredictor (src/serve/predictor.ts).
  const budgetBytes = planOf(p.budget.nodes, p.budget.edges, p.budget.graphs);
  const planLimit = budgetBytes + 256 * MiB;
  const maxRequestEdges = 4_000_000;
  const maxQueuedEdges = 16_000_000;
  let n = 2;
  while (planOf(n + 1, (n + 1) * n, 1) <= planLimit) n++;
  const largest = n;

  let stop = false;
  const small = { done: 0, ms: [] };
  const caller = async (k) => {
    let i = 0;
    while (!stop) {
      const t0 = performance.now();
      await p.predict([...g.qm9Like(4, 1000 * k + i++)]);
      small.ms.push(performance.now() - t0);
      small.done++;
    }
  };
  const phase = async (extra) => {
    stop = false;
    const callers = Array.from({ length: 8 }, (_, k) => caller(k));
    const t0 = performance.now();
    const out = extra ? await extra() : null;
    const left = seconds * 1000 - (performance.now() - t0);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    stop = true;
    await Promise.all(callers);
    return out;
  };

  const collected = () => {
    global.gc();
    return sample();
  };
  await phase();
  const phase1 = collected();
  const oversized = await phase(async () => {
    const r = { structureAtoms: largest, structureMs: [], requestMolecules: 0, requestMs: 0, refused: [] };
    for (let k = 0; k < 2; k++) {
      const t0 = performance.now();
      await p.predict([cluster(largest)]);
      r.structureMs.push(performance.now() - t0);
    }
    const mols = [];
    let edges = 0;
    for (const mol of g.qm9Like(40_000, 5)) {
      const e = mol.numbers.length * (mol.numbers.length - 1);
      if (edges + e > maxRequestEdges) break;
      edges += e;
      mols.push(mol);
    }
    r.requestMolecules = mols.length;
    r.requestEdges = edges;
    const t0 = performance.now();
    await p.predict(mols);
    r.requestMs = performance.now() - t0;
    for (const bad of [[cluster(largest + 1)], [...mols, ...g.qm9Like(40, 6)]]) {
      await p.predict(bad).then(
        () => r.refused.push('accepted'),
        (e) => r.refused.push(e.code),
      );
    }
    return r;
  });
  const afterNoGc = sample();
  const after = collected();
  const st = p.stats();
  await p.close();
  const closed = sample();
  clearInterval(sampler);
  const budget = warm + (planLimit - budgetBytes) + 48 * maxQueuedEdges + 64 * MiB;
  small.ms.sort((a, b) => a - b);
  return {
    model: config.kind,
    latent: config.latent,
    budget_shape: p.budget,
    plan_bytes_per_edge: m.perEdge,
    plan_bytes_per_node: m.perNode,
    budget_plan_mib: budgetBytes / MiB,
    plan_limit_mib: planLimit / MiB,
    rss_warm_mib: warm / MiB,
    rss_phase1_mib: phase1 / MiB,
    rss_peak_mib: peak / MiB,
    rss_after_oversized_no_gc_mib: afterNoGc / MiB,
    rss_after_oversized_mib: after / MiB,
    rss_after_close_mib: closed / MiB,
    documented_budget_mib: budget / MiB,
    within_budget: peak <= budget,
    came_back: after - phase1 <= 64 * MiB,
    oversized,
    small_requests: small.done,
    small_p50_ms: small.ms[Math.floor(small.ms.length / 2)],
    small_p99_ms: small.ms[Math.floor(small.ms.length * 0.99)],
    plan_builds: st.planBuilds - st0.planBuilds,
    too_large: st.tooLarge,
  };
}

async function run({ args, log }) {
  const seconds = argValue(args, '--seconds', 4);
  const g = require(path.join(root, 'dist'));
  const { dir, ck } = await benchCheckpoint(g);
  try {
    const res = await new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['--expose-gc', __filename, '--child', ck, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`soak child exited ${code}`))));
    });
    const f = (x) => x.toFixed(0);
    const o = res.oversized;
    const lines = [
      '## Serving soak: RSS under small and oversized requests (`npm run bench -- serve-soak`)',
      '',
      `createPredictor at its defaults on the study's ${res.model.toUpperCase()} (latent ${res.latent}), batch budget ${res.budget_shape.graphs} graphs / ${res.budget_shape.nodes} nodes / ${res.budget_shape.edges} edges; ` +
        `plan ${f(res.plan_bytes_per_edge)} B per edge, ${f(res.plan_bytes_per_node)} B per node; budget plan ${f(res.budget_plan_mib)} MiB, planCacheBytes ${f(res.plan_limit_mib)} MiB. ` +
        `8 callers of 4 molecules for ${seconds} s per phase; phase 2 adds the largest allowed structure (${o.structureAtoms} atoms under fc, twice: ${o.structureMs.map(f).join(', ')} ms) ` +
        `and the largest allowed request (${o.requestMolecules} molecules, ${o.requestEdges.toLocaleString('en-US')} edges: ${f(o.requestMs)} ms); one atom or 40 molecules more: ${o.refused.join(', ')}.`,
      '',
      '| RSS | MiB |',
      '|---|---:|',
      `| after warm-up | ${f(res.rss_warm_mib)} |`,
      `| end of phase 1 (small only; after a GC) | ${f(res.rss_phase1_mib)} |`,
      `| peak | ${f(res.rss_peak_mib)} |`,
      `| end of phase 3, after the oversized requests (no GC) | ${f(res.rss_after_oversized_no_gc_mib)} |`,
      `| end of phase 3, after a GC | ${f(res.rss_after_oversized_mib)} |`,
      `| after close() | ${f(res.rss_after_close_mib)} |`,
      `| documented budget (docs/serving-memory.md) | ${f(res.documented_budget_mib)} |`,
      '',
      `Peak within the budget: **${res.within_budget ? 'yes' : 'NO'}**; RSS (after a GC) back within 64 MiB of phase 1's after the oversized requests: **${res.came_back ? 'yes' : 'NO'}**. ` +
        `${res.small_requests} small requests, p50 ${res.small_p50_ms.toFixed(1)} ms, p99 ${res.small_p99_ms.toFixed(1)} ms; ${res.plan_builds} plan builds after warm-up.`,
    ];
    const markdown = lines.join('\n');
    log(markdown);
    if (!res.within_budget || !res.came_back) process.exitCode = 1;
    return { markdown, data: res };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module && process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4]))
    .then((r) => process.stdout.write(JSON.stringify(r)))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}

module.exports = { run };
