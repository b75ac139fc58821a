// Native A/B of the training step (issue 10's "within 3% of today's, same
// run"): `npm run bench -- native-ab --old PATH [--label TEXT] [--rounds N] [--threads T]`.
// Loads two builds of the addon into ONE process (PATH: another build's
// gnnbatch.node, e.g. of an earlier commit: `git worktree add /tmp/old REV` and
// `npx cmake-js compile -O /tmp/old-build` there) and runs their trainStep
// alternately on the same packed batches (qm9-like fully connected, dynamic
// policy), MPEU and SchNet at B = 32 and 128 (`--models painn` for PaiNN at
// B = 16 and 128, when both builds have it). A shared machine's load drifts
// over seconds, so each pair of calls is compared: the figure is the median of
// the per-pair ratios new / old.
//
// It also says whether the two builds compute the same bits: lossAndGrad of
// both on the same packed batches (each model at B = 8, 16, 32 and 128,
// float32 and float64, 1 and 2 threads), loss and gradient compared byte for
// byte; and forceLossAndGrad (the force-training step: force pass, tangent
// forward, dual backward) at B = 8 and 32, losses, forces and gradient. A
// change meant to be a pure speed-up (a new task split, a serial path, a
// shared helper) should report every case identical.
'use strict';
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource, storeArraysFor } = require(path.join(dist, 'data'));
const { createPolicy, sizesOf } = require(path.join(dist, 'batching'));
const { allocPackOutput } = require(path.join(dist, 'train', 'plan'));
const { native } = require(path.join(dist, 'native'));

const { argValue } = require('./args');

const median = (x) => {
  const y = [...x].sort((a, b) => a - b);
  return y.length % 2 ? y[y.length >> 1] : (y[y.length / 2 - 1] + y[y.length / 2]) / 2;
};

async function run({ args, log }) {
  const i = args.indexOf('--old');
  if (i < 0 || !args[i + 1]) throw new RangeError('native-ab needs --old PATH (another build of gnnbatch.node)');
  const oldPath = path.resolve(args[i + 1]);
  const rounds = argValue(args, '--rounds', 30);
  const threads = argValue(args, '--threads', 2);
  // What the old build is (e.g. its commit); default: the name of its build folder.
  const li = args.indexOf('--label');
  const oldLabel = li >= 0 && args[li + 1] ? args[li + 1] : path.basename(path.dirname(path.dirname(oldPath)));
  const oldA = require(oldPath);
  const newA = native();
  for (const a of [oldA, newA]) a.setThreads(threads);
  const m = args.indexOf('--models');
  const models = m >= 0 && args[m + 1] ? args[m + 1].split(',') : ['mpeu', 'schnet'];
  const grid = [];
  for (const B of [32, 128]) for (const model of models) grid.push([model, model === 'painn' && B === 32 ? 16 : B]);
  // Directions for PaiNN and for every model's force pass (the bitwise check below).
  const { store } = await loadSource('qm9-like:4000', { graph: 'fc', directions: true });
  const arrays = storeArraysFor(store, 'U0', { mean: 0, std: 1000 });
  const ids = Int32Array.from({ length: store.numGraphs }, (_, g) => g);
  const rows = [];
  for (const [model, B] of grid) {
    const policy = createPolicy('dynamic', sizesOf(store), ids, B, 42);
    const shape = policy.fixedShape;
    const batches = [];
    for (let b = 0; b < 8; b++) {
      const inputs = allocPackOutput(shape, 'float32', model === 'painn');
      newA.packGraphs(arrays, policy.next().graphIds, shape, inputs);
      batches.push(inputs);
    }
    const config = { kind: model };
    const L = newA.modelLayout(config);
    const state = [oldA, newA].map((a) => {
      const p = new Float32Array(L.total);
      for (let k = 0; k < L.total; k++) p[k] = Math.sin(k) * 0.05;
      return { a, plan: a.createPlan(config, shape, 'float32'), p, g: new Float32Array(L.total), m: new Float32Array(L.total), v: new Float32Array(L.total) };
    });
    const times = [[], []];
    for (let r = -2; r < rounds; r++) {
      for (const w of r % 2 ? [1, 0] : [0, 1]) {
        const s = state[w];
        const t0 = process.hrtime.bigint();
        s.a.trainStep(s.plan, batches[(r + 8) % 8], shape, s.p, s.g, s.m, s.v, { lr: 1e-4, bc1: 1, bc2: 1 });
        if (r >= 0) times[w].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    const row = { model, batch: B, old_ms: median(times[0]), new_ms: median(times[1]), ratio: median(times[1].map((t, k) => t / times[0][k])), rounds };
    rows.push(row);
    log(`${model} B=${B}: old ${row.old_ms.toFixed(1)} ms, new ${row.new_ms.toFixed(1)} ms, paired median new/old ${row.ratio.toFixed(3)}`);
  }
  // The first batch of the dynamic policy at B, packed (with directions) in dtype.
  const firstBatch = (B, dtype) => {
    const policy = createPolicy('dynamic', sizesOf(store), ids, B, 42);
    const shape = policy.fixedShape;
    const inputs = allocPackOutput(shape, dtype, true);
    newA.packGraphs(arrays, policy.next().graphIds, shape, inputs);
    return { shape, inputs };
  };
  // Bitwise: the same inputs through both builds' lossAndGrad.
  let cases = 0;
  const differ = [];
  for (const model of models)
    for (const B of [8, 16, 32, 128])
      for (const dtype of ['float32', 'float64'])
        for (const th of [1, 2]) {
          const { shape, inputs } = firstBatch(B, dtype);
          const config = { kind: model };
          const L = newA.modelLayout(config);
          const out = [oldA, newA].map((a) => {
            a.setThreads(th);
            const Arr = dtype === 'float32' ? Float32Array : Float64Array;
            const p = Arr.from({ length: L.total }, (_, k) => Math.sin(k) * 0.05);
            const g = new Arr(L.total);
            const plan = a.createPlan(config, shape, dtype);
            const loss = a.lossAndGrad(plan, inputs, shape, p, g);
            a.releasePlan(plan);
            return { loss, g: Buffer.from(g.buffer) };
          });
          cases++;
          if (!(Object.is(out[0].loss, out[1].loss) && out[0].g.equals(out[1].g))) differ.push(`${model} B=${B} ${dtype} ${th} thread(s)`);
        }
  // The force-training step (forward, force pass, tangent forward, dual
  // backward) of both builds: forceLossAndGrad's losses, forces and gradient.
  let forceCases = 0;
  const forceDiffer = [];
  for (const model of models)
    for (const B of [8, 32])
      for (const dtype of ['float32', 'float64'])
        for (const th of [1, 2]) {
          if (typeof oldA.forceLossAndGrad !== 'function') continue;
          const { shape, inputs } = firstBatch(B, dtype);
          const config = { kind: model };
          const L = newA.modelLayout(config);
          const Arr = dtype === 'float32' ? Float32Array : Float64Array;
          const target = Arr.from({ length: 3 * shape.nodes }, (_, k) => Math.cos(k) * 0.1);
          const aw = Arr.from({ length: shape.nodes }, () => 1);
          const out = [oldA, newA].map((a) => {
            a.setThreads(th);
            const p = Arr.from({ length: L.total }, (_, k) => Math.sin(k) * 0.05);
            const g = new Arr(L.total);
            const F = new Arr(3 * shape.nodes);
            const plan = a.createPlan(config, shape, dtype, { forces: true, forceTraining: true });
            const r = a.forceLossAndGrad(plan, inputs, shape, p, target, aw, 0.5, g, F);
            a.releasePlan(plan);
            return { r, g: Buffer.from(g.buffer), F: Buffer.from(F.buffer) };
          });
          forceCases++;
          const same = ['energyLoss', 'forceLoss', 'stressLoss'].every((k) => Object.is(out[0].r[k], out[1].r[k])) && out[0].g.equals(out[1].g) && out[0].F.equals(out[1].F);
          if (!same) forceDiffer.push(`${model} B=${B} ${dtype} ${th} thread(s)`);
        }
  for (const a of [oldA, newA]) a.setThreads(threads);
  log(`bitwise: ${cases} lossAndGrad cases, ${differ.length} differ${differ.length ? `: ${differ.join('; ')}` : ''}`);
  log(`bitwise: ${forceCases} forceLossAndGrad cases, ${forceDiffer.length} differ${forceDiffer.length ? `: ${forceDiffer.join('; ')}` : ''}`);
  const md = [
    '## Native A/B of the training step (`npm run bench -- native-ab --old PATH`)',
    '',
    `Two builds of the addon in one process, trainStep alternated on the same packed batches (qm9-like:4000 fully connected, dynamic policy; models ${models.join(', ')}), ${rounds} pairs per row after 2 warm-up pairs, ${threads} threads. Old: ${oldLabel}. Ratio: median over pairs of new / old (robust to the shared machine's drifting load; the medians of each side are shown too).`,
    '',
    '| model | B | old ms (median) | new ms (median) | new / old (paired median) |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.batch} | ${r.old_ms.toFixed(1)} | ${r.new_ms.toFixed(1)} | ${r.ratio.toFixed(3)} |`),
    '',
    `Same bits: lossAndGrad of both builds on the same packed batches (models ${models.join(', ')} at B = 8, 16, 32, 128; float32 and float64; 1 and 2 threads): ${cases} cases, ${differ.length === 0 ? 'every one identical (loss and gradient, byte for byte)' : `${differ.length} differ: ${differ.join('; ')}`}. ` +
      `The force-training step (forceLossAndGrad: losses, forces and gradient; B = 8 and 32, float32 and float64, 1 and 2 threads): ${forceCases === 0 ? 'not compared (the old build has no forceLossAndGrad)' : `${forceCases} cases, ${forceDiffer.length === 0 ? 'every one identical' : `${forceDiffer.length} differ: ${forceDiffer.join('; ')}`}`}.`,
  ];
  return { markdown: md.join('\n'), data: { rows, bitwise: { cases, differ, forceCases, forceDiffer } } };
}

module.exports = { run };
