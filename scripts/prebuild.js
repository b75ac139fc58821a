#!/usr/bin/env node
// Builds the prebuilt Node-API binaries shipped inside the npm package
// (run by `prepack`, or by hand: `node scripts/prebuild.js [--isa x86-64-v4,...]`).
//
// One complete addon per x86-64 micro-architecture level (v2 = SSE4.2, v3 = AVX2+FMA,
// v4 = AVX-512), CPU only, libstdc++/libgcc linked statically and libgomp.so.1
// copied beside them (found through RPATH=$ORIGIN). At load time src/native-loader.ts
// reads the CPU's features and loads the best level it supports.
//
// Why whole binaries per level instead of per-function dispatch inside one .so:
// the kernels are templates that instantiate std:: and node-addon-api inline
// functions; compiled under different -march flags in one shared object, the
// linker keeps one copy of each such inline function, possibly the AVX-512 one,
// which would crash (SIGILL) the baseline path. Separate shared objects cannot
// mix them. The cost is package size (a few MB per level).
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const os = require('os');

const root = path.resolve(__dirname, '..');
const LEVELS = ['x86-64-v2', 'x86-64-v3', 'x86-64-v4'];

function log(s) {
  process.stderr.write(`prebuild: ${s}\n`);
}

function main() {
  const args = process.argv.slice(2);
  const isaArg = args.indexOf('--isa');
  const levels = isaArg >= 0 ? args[isaArg + 1].split(',') : LEVELS;
  for (const l of levels) if (!LEVELS.includes(l)) throw new Error(`prebuild: unknown level ${l} (expected ${LEVELS.join(', ')})`);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(`no prebuilt binaries for ${process.platform}-${process.arch}; installs there build from source`);
    return;
  }
  const platformDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.rmSync(platformDir, { recursive: true, force: true });
  fs.mkdirSync(platformDir, { recursive: true });
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const built = [];
  for (const isa of levels) {
    const out = path.join(root, 'build-prebuild', isa);
    const t0 = Date.now();
    log(`building ${isa} in ${path.relative(root, out)} ...`);
    execFileSync(process.execPath, [cmakeJs, 'compile', '-O', out, '--CDGNN_CUDA=OFF', '--CDGNN_MPI=OFF', `--CDGNN_ISA=${isa}`, '--CDGNN_STATIC_RUNTIME=ON'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const dst = path.join(platformDir, `gnnbatch.${isa}.node`);
    fs.copyFileSync(path.join(out, 'Release', 'gnnbatch.node'), dst);
    execFileSync('strip', ['--strip-unneeded', dst]);
    built.push({ isa, file: path.basename(dst), bytes: fs.statSync(dst).size, seconds: (Date.now() - t0) / 1000 });
  }
  // libgomp.so.1 beside the binaries (GCC runtime library exception applies).
  const gomp = execFileSync('g++', ['-print-file-name=libgomp.so.1'], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(gomp) || !fs.existsSync(gomp)) throw new Error(`prebuild: libgomp.so.1 not found (g++ -print-file-name gave "${gomp}")`);
  fs.copyFileSync(fs.realpathSync(gomp), path.join(platformDir, 'libgomp.so.1'));
  // Each binary must load here (for the levels this CPU has) and report its level.
  const { cpuLevel } = require(path.join(root, 'dist', 'native-loader.js'));
  const have = cpuLevel();
  for (const b of built) {
    if (LEVELS.indexOf(b.isa) > LEVELS.indexOf(have)) {
      log(`${b.isa}: not load-tested (this CPU is ${have})`);
      continue;
    }
    const r = spawnSync(process.execPath, ['-p', `JSON.stringify(require(${JSON.stringify(path.join(platformDir, b.file))}).info())`], { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: '' } });
    if (r.status !== 0) throw new Error(`prebuild: ${b.file} does not load: ${r.stderr}`);
    const info = JSON.parse(r.stdout);
    if (info.isa !== b.isa) throw new Error(`prebuild: ${b.file} reports isa ${info.isa}`);
  }
  // The newest glibc symbol version any shipped file needs: the loader skips
  // the prebuilt binaries on an older glibc (and the install falls back to a
  // source build) instead of failing with "version GLIBC_x not found".
  let glibcRequired = '2.17';
  const newer = (a, b) => {
    const [x1, y1] = a.split('.').map(Number);
    const [x2, y2] = b.split('.').map(Number);
    return x1 !== x2 ? x1 > x2 : y1 > y2;
  };
  for (const f of [...built.map((b) => b.file), 'libgomp.so.1']) {
    const syms = execFileSync('objdump', ['-T', path.join(platformDir, f)], { encoding: 'utf8' });
    for (const m of syms.matchAll(/GLIBC_(\d+\.\d+)/g)) if (newer(m[1], glibcRequired)) glibcRequired = m[1];
  }
  const pkg = require(path.join(root, 'package.json'));
  const manifest = {
    package: `${pkg.name}@${pkg.version}`,
    napi: pkg.binary.napi_versions[0],
    platform: process.platform,
    arch: process.arch,
    libc: 'glibc',
    glibcBuiltWith: process.report.getReport().header.glibcVersionRuntime,
    glibcRequired,
    compiler: execFileSync('g++', ['--version'], { encoding: 'utf8' }).split('\n')[0],
    builtOn: os.cpus()[0].model,
    binaries: built.map(({ isa, file, bytes }) => ({ isa, file, bytes })),
    openmp: 'libgomp.so.1',
  };
  fs.writeFileSync(path.join(platformDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  for (const b of built) log(`${b.file}: ${(b.bytes / 1e6).toFixed(1)} MB, ${b.seconds.toFixed(0)} s`);
  log(`needs glibc >= ${glibcRequired}`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
