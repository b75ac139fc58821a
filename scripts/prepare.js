#!/usr/bin/env node
// The package's `prepare` script: compiles the TypeScript (dist/) for
// installs from a checkout. npm runs it after `npm install` in this repository,
// for a git URL dependency, and for `npm install <path to a checkout>`. In the
// last case npm links the folder without installing its own dependencies, so
// the compiler and cmake-js are missing: they are installed here first from the
// lockfile (npm packages only), and the native addon is built from source if
// the install script did not run.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`gnnbatch prepare: ${path.basename(cmd)} ${args.join(' ')} failed (exit ${r.status})\n`);
    process.exit(r.status ?? 1);
  }
}

function resolvable(id) {
  try {
    require.resolve(id, { paths: [root] });
    return true;
  } catch {
    return false;
  }
}

if (!resolvable('typescript/bin/tsc') || !resolvable('cmake-js/bin/cmake-js')) {
  process.stderr.write('gnnbatch prepare: installing the build dependencies of this checkout (npm ci --ignore-scripts) ...\n');
  const npmCli = process.env.npm_execpath;
  if (npmCli && fs.existsSync(npmCli)) run(process.execPath, [npmCli, 'ci', '--ignore-scripts', '--no-audit', '--no-fund']);
  else run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
}
run(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [root] }), '-p', path.join(root, 'tsconfig.build.json')]);
if (!fs.existsSync(path.join(root, 'native-build', 'Release', 'gnnbatch.node'))) {
  run(process.execPath, [path.join(root, 'scripts', 'install.js')]);
}
