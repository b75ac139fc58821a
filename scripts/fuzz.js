#!/usr/bin/env node
/**
 * `npm run fuzz`: the long-budget robustness runs (issue 14), i.e. jest on
 * test/fuzz/ with GNN_FUZZ=long:
 *
 *   test/fuzz/native-*.test.ts       random and adversarial calls of every native export, in child processes
 *   test/fuzz/checkpoint-*.test.ts   SIGKILL fault injection into `gnnbatch train --checkpoint`, resumed and
 *                                    compared bitwise with an uninterrupted run (>= 20 kills)
 *
 * The same files run with a short budget in `npm test`. Extra arguments go to
 * jest (e.g. `npm run fuzz -- checkpoint` for one file); GNN_FUZZ_SEED fixes the
 * seeds (each test prints the one it used). Builds dist/ first when it is
 * missing (the checkpoint test runs the built CLI).
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const jest = path.join(root, 'node_modules/jest/bin/jest.js');
if (!fs.existsSync(path.join(root, 'dist/cli/main.js'))) {
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}
const args = process.argv.slice(2);
const patterns = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const selection = patterns.length ? patterns.map((p) => (p.includes('/') ? p : `test/fuzz/.*${p}`)) : ['test/fuzz/'];
const t0 = Date.now();
const r = spawnSync(process.execPath, [jest, '--runInBand', ...flags, ...selection], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, GNN_FUZZ: process.env.GNN_FUZZ ?? 'long' },
});
process.stderr.write(`fuzz: ${r.status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
process.exit(r.status ?? 1);
