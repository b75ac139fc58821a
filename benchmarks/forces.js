// Cost of the native force pass (issue 22): `npm run bench -- forces [--threads N] [--reps N]
// [--models mpeu,schnet,painn]` (after `npm run build:ts`). MPEU, SchNet and PaiNN with the study's defaults,
// float32, on qm9-like fully connected graphs (with directions), B = 32 and
// 128: per batch, interleaved in one run, the median time of
//   energy step: lossAndGrad (forward + backward to every parameter; no Adam)
//   force pass:  forcesStep (forward + energy backward to distances + scatter to atoms)
//   forward:     predict (forward only)
//   force train: forceLossAndGrad (forward + force pass + force loss + double
//                backward: the gradient of energy and force losses; no Adam)
// and their ratios. The force pass is what predicting energies and forces
// costs; force train / energy step is the cost of training on forces
// (docs/forces.md; issue 22's target <= 1.8x). The runner writes the table,
// the machine's load and the verdict to benchmarks/RESULTS.md ("forces").
'use strict';
const os = require('os');
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource, packerArrays } = require(path.join(dist, 'data'));
const { allocPackOutput } = require(path.join(dist, 'train', 'plan'));
const { native, setThreads, getThreads } = require(path.join(dist, 'native'));
const { resolveModelConfig } = require(path.join(dist, 'model', 'config'));
const { initParams, paramLayout } = require(path.join(dist, 'model', 'params'));
const { argValue } = require('./args');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Force target: energy+forces training step <= this many energy steps (issue 22). */
const TARGET = 1.8;

async function run({ args, log }) {
  setThreads(argValue(args, '--threads', 2));
  const reps = argValue(args, '--reps', 30);
  const { store } = await loadSource('qm9-like:2000', { graph: 'fc', directions: true });
  const arrays = packerArrays(store, new Float64Array(store.numGraphs));
  const api = native();
  const load0 = os.loadavg()[0];
  log(`qm9-like:2000 fc, float32, ${getThreads()} threads, ${reps} interleaved reps per row (medians, ms)`);
  const ratios = [];
  const lines = [
    `qm9-like:2000 fc, float32, ${getThreads()} threads, ${reps} interleaved reps per row (medians, ms); \`npm run bench -- forces --reps ${reps}\``,
    '',
    '| model | B | energy step (fwd+bwd) | force pass (fwd+forces) | forward | force train (fwd+forces+double bwd) | force pass / energy step | force train / energy step |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const l of lines.slice(2)) log(l);
  const mi = args.indexOf('--models');
  const models = mi >= 0 ? String(args[mi + 1] ?? '').split(',') : ['mpeu', 'schnet', 'painn'];
  for (const m of models) if (!['mpeu', 'schnet', 'painn'].includes(m)) throw new RangeError(`--models: unknown model '${m}' (mpeu, schnet, painn)`);
  for (const kind of models) {
    const config = resolveModelConfig({ kind });
    const params = initParams(paramLayout(config), 1, 'float32');
    const grads = new Float32Array(params.length);
    for (const B of [32, 128]) {
      const ids = Int32Array.from({ length: B }, (_, i) => (i * 7) % store.numGraphs);
      let nodes = 0;
      let edges = 0;
      for (const g of ids) (nodes += store.nodeOffset[g + 1] - store.nodeOffset[g]), (edges += store.edgeOffset[g + 1] - store.edgeOffset[g]);
      const shape = { nodes, edges, graphs: B };
      const inputs = allocPackOutput(shape, 'float32', true);
      api.packGraphs(arrays, ids, shape, inputs);
      const plan = api.createPlan(config, shape, 'float32', { forces: true, forceTraining: true });
      const targetF = new Float32Array(3 * nodes);
      const atomW = new Float32Array(nodes).fill(1 / (3 * nodes));
      const tgrads = new Float32Array(params.length);
      const energy = new Float32Array(B);
      const forces = new Float32Array(3 * nodes);
      const pred = new Float32Array(B);
      const t = { step: [], force: [], fwd: [], train: [] };
      for (let r = -3; r < reps; r++) {
        let t0 = now();
        api.lossAndGrad(plan, inputs, shape, params, grads);
        const a = now() - t0;
        t0 = now();
        api.forcesStep(plan, inputs, shape, params, energy, forces);
        const b = now() - t0;
        t0 = now();
        api.predict(plan, inputs, shape, params, pred);
        const c = now() - t0;
        t0 = now();
        api.forceLossAndGrad(plan, inputs, shape, params, targetF, atomW, 1, tgrads);
        const d = now() - t0;
        if (r >= 0) (t.step.push(a), t.force.push(b), t.fwd.push(c), t.train.push(d));
      }
      const [s, f, w, tr] = [median(t.step), median(t.force), median(t.fwd), median(t.train)];
      const line = `| ${kind} | ${B} | ${s.toFixed(2)} | ${f.toFixed(2)} | ${w.toFixed(2)} | ${tr.toFixed(2)} | ${(f / s).toFixed(2)} | ${(tr / s).toFixed(2)} |`;
      log(line);
      lines.push(line);
      ratios.push(tr / s);
      api.releasePlan(plan);
    }
  }
  const lo = Math.min(...ratios), hi = Math.max(...ratios);
  lines.push(
    '',
    `Machine while measured: load average ${load0.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end, on ${os.cpus().length} cores. ` +
      `Force train / energy step: ${lo.toFixed(2)}-${hi.toFixed(2)}x; issue 22's target (<= ${TARGET}x) is ${hi <= TARGET ? 'met' : 'not met'} (docs/forces.md, "Cost": where the products go).`,
  );
  return { markdown: lines.join('\n'), data: { ratios } };
}

module.exports = { run };
