// Learning check (issue 5): `npm run bench -- learn [--steps N] [--threads T]`.
// MPEU at B = 32 with the dynamic policy on qm9-like (fully connected) and
// aflow-like (knn:12), and PaiNN on qm9-like, for a few thousand steps (same
// steps, schedule and seed for every row); test RMSE and MAE against the
// target's standard deviation (and the residual's, after per-element
// reference values fitted on the train split).
'use strict';
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource } = require(path.join(dist, 'data'));
const { train } = require(path.join(dist, 'train', 'trainer'));
const { setThreads, getThreads } = require(path.join(dist, 'native'));

const { argValue } = require('./args');

async function run({ args, log }) {
  const steps = argValue(args, '--steps', 3000);
  setThreads(argValue(args, '--threads', 2));
  const sets = [
    { source: 'qm9-like:20000', graph: 'fc', target: 'U0', model: 'mpeu' },
    { source: 'aflow-like:8000', graph: 'knn:12', target: null, model: 'mpeu' },
    { source: 'qm9-like:20000', graph: 'fc', target: 'U0', model: 'painn' },
  ];
  const rows = [];
  for (const s of sets) {
    const { store } = await loadSource(s.source, { graph: s.graph, directions: s.model === 'painn' });
    const target = s.target ?? store.targetNames[0];
    const t0 = Date.now();
    const { result: r } = await train({ store, target, model: { kind: s.model }, policy: 'dynamic', batchSize: 32, steps, seed: 42, lr: 5e-4, schedule: 'cosine', atomref: true });
    const row = {
      model: s.model, data: s.source, graph: s.graph, target, steps, wall_s: (Date.now() - t0) / 1000,
      test_rmse: r.test_rmse, test_mae: r.test_mae, target_std: r.target_std, residual_std: r.residual_std,
      rmse_over_std: r.test_rmse / r.target_std, rmse_over_residual_std: r.test_rmse / r.residual_std,
      first_loss: r.loss_curve[0].loss, final_train_loss: r.final_train_loss,
    };
    rows.push(row);
    log(`${s.model} ${s.source} ${target}: test RMSE ${row.test_rmse.toFixed(4)} (std ${row.target_std.toFixed(3)}, residual std ${row.residual_std.toFixed(3)}) in ${row.wall_s.toFixed(0)} s`);
  }
  const md = [
    '## Learning (`npm run bench -- learn`)',
    '',
    `MPEU (study configuration) and PaiNN (paper defaults, docs/painn.md), dynamic policy, B = 32, ${steps} steps, Adam lr 5e-4 with cosine decay, ${getThreads()} threads; per-element reference values fitted on the train split (\`--atomref\`), the network learns the residual. RMSE/MAE on the held-out test split (10%).`,
    '',
    '| model | data | target | test RMSE | test MAE | target std | RMSE / std | residual std | RMSE / residual std | train loss first → last (std. units) | wall s |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.model} | ${r.data} (${r.graph}) | ${r.target} | ${r.test_rmse.toFixed(4)} | ${r.test_mae.toFixed(4)} | ${r.target_std.toFixed(3)} | ${r.rmse_over_std.toFixed(4)} | ${r.residual_std.toFixed(3)} | ${r.rmse_over_residual_std.toFixed(3)} | ${r.first_loss.toFixed(3)} → ${r.final_train_loss.toFixed(3)} | ${r.wall_s.toFixed(0)} |`),
  ];
  return { markdown: md.join('\n'), data: rows };
}

module.exports = { run };
