// Learning on energies and forces (issue 22, the learning row): `npm run bench -- learn-forces [--steps N] [--threads T]
// [--models mpeu,schnet,painn]` (after `npm run build:ts`). Each model at the study's default sizes, dynamic policy, B = 32,
// trained with `train({ forces: true })` (loss 0.01 MSE(energy) + 0.99 MSE(force components), the
// library's defaults) on qm9-like (fully connected; exact Morse forces from the generator), the same
// steps, schedule and seed for both; force and energy errors on the held-out test split against
// what predicting zero forces and the mean energy would score.
'use strict';
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource, splitGraphs } = require(path.join(dist, 'data'));
const { train } = require(path.join(dist, 'train', 'trainer'));
const { setThreads, getThreads } = require(path.join(dist, 'native'));
const { argValue } = require('./args');

/** RMS of the force components of `ids` (what predicting zero forces scores). */
function forceRms(store, ids) {
  let s = 0;
  let n = 0;
  for (const g of ids) {
    for (let k = 3 * store.nodeOffset[g]; k < 3 * store.nodeOffset[g + 1]; k++) {
      const f = store.forces[k];
      if (Number.isFinite(f)) (s += f * f), n++;
    }
  }
  return Math.sqrt(s / n);
}

async function run({ args, log }) {
  const steps = argValue(args, '--steps', 2000);
  const graphs = argValue(args, '--graphs', 5000);
  setThreads(argValue(args, '--threads', 2));
  const source = `qm9-like:${graphs}`;
  const { store } = await loadSource(source, { graph: 'fc', directions: true });
  if (!store.forces) throw new Error(`${source} has no forces`);
  const target = store.targetNames.includes('energy') ? 'energy' : 'U0';
  // The trainer's default split (seed 42, 80/10/10): the zero-force baseline on the same test graphs.
  const split = splitGraphs(store.numGraphs, { seed: 42 });
  const zeroRms = forceRms(store, split.test);
  const rows = [];
  const mi = args.indexOf('--models');
  const models = mi >= 0 && args[mi + 1] ? args[mi + 1].split(',') : ['mpeu', 'schnet', 'painn'];
  for (const model of models) {
    const t0 = Date.now();
    const { result: r } = await train({ store, target, model: { kind: model }, policy: 'dynamic', batchSize: 32, steps, seed: 42, lr: 5e-4, schedule: 'cosine', atomref: true, forces: true });
    const m = r.force_training?.test;
    if (!m) throw new Error(`${model}: no force metrics in the result`);
    const row = {
      model, data: source, target, steps, wall_s: (Date.now() - t0) / 1000,
      force_mae: m.force_mae, force_rmse: m.force_rmse, zero_force_rms: zeroRms, force_rmse_over_rms: m.force_rmse / zeroRms,
      energy_mae: m.energy_mae, energy_rmse: m.energy_rmse, energy_mae_per_atom: m.energy_mae_per_atom,
      target_std: r.target_std, residual_std: r.residual_std,
      first_loss: r.loss_curve[0].loss, final_train_loss: r.final_train_loss,
    };
    rows.push(row);
    log(`${model}: force RMSE ${row.force_rmse.toFixed(4)} vs ${zeroRms.toFixed(4)} for zero forces (${(100 * row.force_rmse_over_rms).toFixed(1)}%), energy MAE ${row.energy_mae.toFixed(4)} in ${row.wall_s.toFixed(0)} s`);
  }
  const md = [
    '## Learning on energies and forces (`npm run bench -- learn-forces`)',
    '',
    `${source} (fully connected, forces from the generator's Morse potential), ${models.join(', ')} at the study's default sizes, dynamic policy, B = 32, ${steps} steps, ` +
      `Adam lr 5e-4 with cosine decay, loss 0.01 MSE(energy) + 0.99 MSE(force components) in standardised units, per-element reference energies; ${getThreads()} threads. ` +
      `Errors on the held-out test split (10%, ${split.test.length} structures); "zero forces" is the RMS force component there (what predicting F = 0 scores).`,
    '',
    '| model | target | force MAE | force RMSE | zero forces (RMS) | force RMSE / RMS | energy MAE | energy MAE per atom | energy RMSE | residual std | train loss first → last (std. units) | wall s |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.target} | ${r.force_mae.toFixed(4)} | ${r.force_rmse.toFixed(4)} | ${r.zero_force_rms.toFixed(4)} | ${(100 * r.force_rmse_over_rms).toFixed(1)}% | ${r.energy_mae.toFixed(4)} | ${r.energy_mae_per_atom.toFixed(5)} | ${r.energy_rmse.toFixed(4)} | ${Number.isFinite(r.residual_std) ? r.residual_std.toFixed(3) : 'n/a'} | ${r.first_loss.toFixed(3)} → ${r.final_train_loss.toFixed(3)} | ${r.wall_s.toFixed(0)} |`,
    ),
  ];
  return { markdown: md.join('\n'), data: rows };
}

module.exports = { run };
