// Batching-policy simulation (issue 4): `npm run bench -- batching [--steps N] [--json]`.
// Every policy on the built-in qm9-like (fully connected) and aflow-like (knn:12)
// data at B = 16/32/64/128: distinct shapes (= plans / XLA compilations), fills,
// graphs per batch, padded work relative to exact, decision time; plus the
// dynamic budgets next to the study's QM9 budgets (PAPER.md).
'use strict';
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource, splitGraphs } = require(path.join(dist, 'data'));
const { compareBatching, sizesOf } = require(path.join(dist, 'batching'));

const STUDY_QM9_BUDGETS = { 16: '320/4992', 32: '576/9984', 64: '1152/19968', 128: '2304/39936' };
const STUDY_SHAPES = {
  qm9: { 'static-2pow': '3/4/1/1', 'static-64': '60/89/128/195', dynamic: '1/1/1/1' },
  aflow: { 'static-2pow': '7/6/5/4', 'static-64': '121/174/243/342', dynamic: '1/1/1/1' },
};

const { argValue } = require('./args');

async function run({ args, log }) {
  const steps = argValue(args, '--steps', 100000);
  const data = [
    { key: 'qm9', source: 'qm9-like', graph: 'fc' },
    { key: 'aflow', source: 'aflow-like', graph: 'knn:12' },
  ];
  const out = [];
  const md = ['## Batching policies (`npm run bench -- batching`)', ''];
  for (const d of data) {
    const t0 = Date.now();
    const { store } = await loadSource(d.source, { graph: d.graph });
    const split = splitGraphs(store.numGraphs, { seed: 42 });
    const tLoad = (Date.now() - t0) / 1000;
    const t1 = Date.now();
    const rows = compareBatching({ sizes: sizesOf(store), split: split.train, batchSizes: [16, 32, 64, 128], steps, seed: 42 });
    const tSim = (Date.now() - t1) / 1000;
    log(`${d.source}: ${store.numGraphs} graphs (${tLoad.toFixed(1)} s to build), ${rows.length} runs of ${steps} steps in ${tSim.toFixed(1)} s`);
    out.push({ data: d.source, graphs: store.numGraphs, steps, simulate_s: tSim, rows });
    md.push(`### ${d.source} (${store.numGraphs} graphs, ${d.graph}; ${steps} steps per policy and B; simulated in ${tSim.toFixed(1)} s)`, '');
    md.push('Distinct shapes over the run (B = 16 / 32 / 64 / 128), with the study\'s counts where it reports them:', '');
    md.push('| policy | shapes (ours) | shapes (study) |', '|---|---|---|');
    const policies = [...new Set(rows.map((r) => r.policy))];
    for (const p of policies) {
      const s = [16, 32, 64, 128].map((b) => rows.find((r) => r.policy === p && r.batch === b)?.shapes ?? '-').join(' / ');
      md.push(`| ${p} | ${s} | ${STUDY_SHAPES[d.key][p] ?? '-'} |`);
    }
    md.push('', '| policy | B | graphs/batch | node fill | edge fill | padded edges vs exact | budget (n/e/g) | study budget | ns/graph |', '|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const budget = r.budget_nodes === null ? '-' : `${r.budget_nodes}/${r.budget_edges}/${r.budget_graphs}`;
      const study = d.key === 'qm9' && r.policy === 'dynamic' ? STUDY_QM9_BUDGETS[r.batch] : '';
      md.push(`| ${r.policy} | ${r.batch} | ${r.graphs_per_batch_mean.toFixed(1)} | ${(100 * r.node_fill).toFixed(1)}% | ${(100 * r.edge_fill).toFixed(1)}% | ${r.padded_edges_vs_exact.toFixed(3)}x | ${budget} | ${study} | ${r.decision_ns_per_graph.toFixed(0)} |`);
    }
    md.push('');
  }
  return { markdown: md.join('\n'), data: out };
}

module.exports = { run };
