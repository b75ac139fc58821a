// Cost of the native force pass (issue 22): `node benchmarks/forces-cost.js [--threads N] [--reps N]`
// (after `npm run build:ts`). MPEU and SchNet with the study's defaults,
// float32, on qm9-like fully connected graphs (with directions), B = 32 and
// 128: per batch, interleaved in one run, the median time of
//   energy step: lossAndGrad (forward + backward to every parameter; no Adam)
//   force pass:  forcesStep (forward + energy backward to distances + scatter to atoms)
//   forward:     predict (forward only)
//   force train: forceLossAndGrad (forward + force pass + force loss + double
//                backward: the gradient of energy and force losses; no Adam)
// and their ratios. The force pass is what predicting energies and forces
// costs; force train / energy step is the cost of training on forces
// (docs/forces.md; issue 22's target <= 1.8x). --md FILE writes the table
// into FILE between <!-- forces:begin --> and <!-- forces:end -->.
'use strict';
const fs = require('fs');
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource, packerArrays } = require(path.join(dist, 'data'));
const { allocPackOutput } = require(path.join(dist, 'train', 'plan'));
const { native, setThreads, getThreads } = require(path.join(dist, 'native'));
const { resolveModelConfig } = require(path.join(dist, 'model', 'config'));
const { initParams, paramLayout } = require(path.join(dist, 'model', 'params'));
const { argValue } = require('./args');

const argString = (args, name) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : undefined;
};

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
  const lines = [
    `qm9-like:2000 fc, float32, ${getThreads()} threads, ${reps} interleaved reps per row (medians, ms); \`node benchmarks/forces-cost.js --reps ${reps}\``,
    '',
    '| model | B | energy step (fwd+bwd) | force pass (fwd+forces) | forward | force train (fwd+forces+double bwd) | force pass / energy step | force train / energy step |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const l of lines.slice(2)) console.log(l);
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
      console.log(line);
      lines.push(line);
      api.releasePlan(plan);
    }
  }
  const md = argString(args, '--md');
  if (md) writeSection(md, lines.join('\n'));
}

// Replaces (or appends) the section between the forces markers, atomically.
function writeSection(file, body) {
  const begin = '<!-- forces:begin -->';
  const end = '<!-- forces:end -->';
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const block = `${begin}\n${body}\n${end}`;
  const i = old.indexOf(begin);
  const j = old.indexOf(end);
  const text = i >= 0 && j > i ? old.slice(0, i) + block + old.slice(j + end.length) : `${old}${old.endsWith('\n') || !old ? '' : '\n'}\n${block}\n`;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
