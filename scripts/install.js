#!/usr/bin/env node
// The package's `install` script.
//
// - In a checkout (the repository itself, `npm install <path>` or a git URL):
//   build the addon from source with cmake-js (CUDA when nvcc is found,
//   -march=native); TypeScript is compiled by `prepare`.
// - In an installed package (a registry or tarball install): use the prebuilt
//   binary for this CPU that ships in prebuilds/ after checking, in a child
//   process, that it loads; no compiler, cmake or Python is needed. Without a
//   usable prebuilt (another platform, musl, or it fails to load), build from
//   source (CPU only unless GNN_CUDA=ON).
//
// Force a source build: GNNBATCH_BUILD_FROM_SOURCE=1, or
// `npm install gnnbatch --build-from-source` (npm_config_build_from_source),
// or `npm config set gnnbatch_build_from_source true`.
// Source-build knobs: GNN_CUDA=AUTO|ON|OFF, GNN_ISA=native|x86-64-v2|x86-64-v3|x86-64-v4,
// GNN_MPI=AUTO|ON|OFF (the optional MPI module gnnbatch_mpi.node for `train --distributed mpi`).
// Nothing is downloaded here.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const env = process.env;

function say(s) {
  process.stderr.write(`gnnbatch: ${s}\n`);
}

function truthy(v) {
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** A checkout has the TypeScript sources, which the published package does not ship. */
function isCheckout() {
  return fs.existsSync(path.join(root, 'src', 'index.ts')) && fs.existsSync(path.join(root, 'tsconfig.json'));
}

function fromSourceRequested() {
  return truthy(env.GNNBATCH_BUILD_FROM_SOURCE) || truthy(env.npm_config_gnnbatch_build_from_source) || truthy(env.npm_config_build_from_source);
}

/**
 * Loads `file` in a fresh process (a broken binary must not take the
 * installer down), with process.dlopen: a native addon only, never a script.
 */
function loads(file) {
  const code = `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(file)}); process.stdout.write(JSON.stringify(m.exports.info()))`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60000 });
  if (r.status === 0) {
    try {
      const info = JSON.parse(r.stdout);
      if (info && typeof info === 'object') return { ok: true, info };
    } catch {
      /* not an addon's info(): refused below */
    }
    return { ok: false, why: 'it loaded but info() did not describe a gnnbatch addon' };
  }
  return { ok: false, why: (r.stderr || r.error?.message || `exit ${r.status} signal ${r.signal}`).trim().split('\n').slice(-3).join(' ') };
}

function sourceBuild(why) {
  const cuda = env.GNN_CUDA ?? (isCheckout() ? 'AUTO' : 'OFF');
  const isa = env.GNN_ISA ?? (env.GNN_PORTABLE === 'ON' ? 'x86-64-v2' : 'native');
  say(`building the native addon from source (${why}; CUDA ${cuda}, ISA ${isa}) ...`);
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    say('cmake-js is not installed, so the addon cannot be built from source. Run `npm install` inside the package folder first.');
    process.exit(1);
  }
  const mpi = env.GNN_MPI ?? 'AUTO';
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '-O', 'native-build', `--CDGNN_CUDA=${cuda}`, `--CDGNN_ISA=${isa}`, `--CDGNN_MPI=${mpi}`], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    say(
      'the source build failed. It needs cmake >= 3.18 and a C++17 compiler with OpenMP (Debian/Ubuntu: apt install cmake g++). ' +
        (isCheckout() ? '' : 'On linux-x64 with glibc the package ships prebuilt binaries and needs no build; unset GNNBATCH_BUILD_FROM_SOURCE to use them.'),
    );
    process.exit(r.status ?? 1);
  }
}

function main() {
  if (isCheckout()) return sourceBuild('a checkout');
  if (fromSourceRequested()) return sourceBuild('asked for by GNNBATCH_BUILD_FROM_SOURCE / --build-from-source');
  let loader;
  try {
    loader = require(path.join(root, 'dist', 'native-loader.js'));
  } catch (e) {
    return sourceBuild(`the compiled loader is missing (${e.message.split('\n')[0]})`);
  }
  // The loader checks the manifest field by field; anything it still throws
  // (a bad GNNBATCH_CPU_LEVEL, say) means a source build, not a crash.
  let level;
  let pre;
  try {
    level = loader.cpuLevel();
    pre = loader.prebuiltFor(level);
    if (!pre) return sourceBuild(loader.prebuiltUnusable() ?? `no prebuilt binary for ${process.platform}-${process.arch}`);
  } catch (e) {
    return sourceBuild(`the prebuilt binaries cannot be checked (${String(e && e.message).split('\n')[0]})`);
  }
  const r = loads(pre.file);
  if (!r.ok) return sourceBuild(`the prebuilt ${path.basename(pre.file)} does not load here: ${r.why}`);
  say(`using the prebuilt ${pre.level} binary (this CPU: ${level}; simd ${r.info.simd})`);
}

main();
