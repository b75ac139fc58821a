// Cost of the native force pass (issue 22): `node benchmarks/forces-cost.js [--threads N] [--reps N]`
// (after `npm run build:ts`). MPEU and SchNet with the study's defaults,
// float32, on qm9-like fully connected graphs (with directions), B = 32 and
// 128: per batch, interleaved in one run, the median time of
//   energy step: lossAndGrad (forward + backward to every parameter; no Adam)
//   force pass:  forcesStep (forward + energy backward to distances + scatter to atoms)
//   forward:     predict (forward only)
// and their ratios. The force pass is what predicting energies and forces
// costs; training on forces adds the double backward (docs/forces.md).
'use strict';
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

async function main() {
  const args = process.argv.slice(2);
  setThreads(argValue(args, '--threads', 2));
  const reps = argValue(args, '--reps', 30);
  const { store } = await loadSource('qm9-like:2000', { graph: 'fc', directions: true });
  const arrays = packerArrays(store, new Float64Array(store.numGraphs));
  const api = native();
  console.log(`qm9-like:2000 fc, float32, ${getThreads()} threads, ${reps} interleaved reps per row (medians, ms)`);
  console.log('| model | B | energy step (fwd+bwd) | force pass (fwd+forces) | forward | force / energy step | force / forward |');
  console.log('|---|---|---|---|---|---|---|');
  for (const kind of ['mpeu', 'schnet']) {
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
      const plan = api.createPlan(config, shape, 'float32', { forces: true });
      const energy = new Float32Array(B);
      const forces = new Float32Array(3 * nodes);
      const pred = new Float32Array(B);
      const t = { step: [], force: [], fwd: [] };
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
        if (r >= 0) (t.step.push(a), t.force.push(b), t.fwd.push(c));
      }
      const [s, f, w] = [median(t.step), median(t.force), median(t.fwd)];
      console.log(`| ${kind} | ${B} | ${s.toFixed(2)} | ${f.toFixed(2)} | ${w.toFixed(2)} | ${(f / s).toFixed(2)} | ${(f / w).toFixed(2)} |`);
      api.releasePlan(plan);
    }
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
