// The checkpoint the serving and host benchmarks predict with: the study's MPEU
// (default configuration) after 2 training steps on 1,000 qm9-like molecules
// (prediction cost does not depend on how well it learned).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const STEPS = 2;

/** Trains it into a fresh temp folder; returns { dir (remove it after), ck, steps }. */
async function benchCheckpoint(g) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-bench-ck-'));
  const { store } = g.buildStore([...g.qm9Like(1000, 2)], { graph: { kind: 'fc' } });
  const { result } = await g.train({ store, target: 'U0', model: { kind: 'mpeu' }, policy: 'dynamic', batchSize: 32, steps: STEPS, seed: 1, skipEval: true, checkpointDir: path.join(dir, 'ck') });
  return { dir, ck: path.join(dir, 'ck'), steps: result.steps };
}

module.exports = { benchCheckpoint };
