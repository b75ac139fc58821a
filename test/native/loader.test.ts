/**
 * The addon loader (src/native-loader.ts): CPU level detection, prebuilt
 * selection, refusing binaries compiled for missing CPU features, and the
 * idle-thread wait policy applied for the load only. Each case that loads an
 * addon runs in a child process (the loader caches per process).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cpuFlags, cpuLevel, locateAddon } from '../../src/native-loader';

const root = path.resolve(__dirname, '..', '..');
const loaderJs = path.join(root, 'src', 'native-loader.ts');

/**
 * Runs `body` in a child with `env` (the whole environment), the loader
 * transpiled on the fly; returns its stdout. `stub`, when given, replaces
 * process.dlopen first (the loader loads addons with it), so a test can stand
 * in for an addon without building one.
 */
function runLoader(body: string, env: NodeJS.ProcessEnv, stub = ''): string {
  const ts = require.resolve('typescript');
  const script = `
    ${stub}
    const ts = require(${JSON.stringify(ts)});
    const fs = require('fs');
    require.extensions['.ts'] = (m, f) => m._compile(ts.transpileModule(fs.readFileSync(f, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText, f);
    const loader = require(${JSON.stringify(loaderJs)});
    (async () => { ${body} })().catch((e) => { console.log(JSON.stringify({ threw: { code: e.code, message: e.message } })); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env, timeout: 60000 });
  return r.stdout.trim();
}

test('cpuLevel agrees with the CPU flags', () => {
  const flags = cpuFlags();
  const level = cpuLevel();
  if (!flags) {
    expect(level).toBe('x86-64-v2');
    return;
  }
  if (flags.has('avx512f') && flags.has('avx512bw') && flags.has('avx512vl') && flags.has('avx512dq') && flags.has('avx2')) expect(level).toBe('x86-64-v4');
  else if (flags.has('avx2') && flags.has('fma')) expect(level).toBe('x86-64-v3');
  else expect(level).toBe('x86-64-v2');
});

test('a binary compiled for CPU features this machine lacks is refused with ERR_GNN_ADDON_CPU, not run', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-loader-'));
  // Stands in for a binary built with -march=native on a newer CPU: it reports a feature no CPU has.
  const fake = path.join(dir, 'fake-addon.node');
  fs.writeFileSync(fake, 'not loaded: process.dlopen is stubbed');
  const stub = `process.dlopen = (m) => { m.exports = { info: () => ({ features: ['sse4_2', 'gnn_future_isa'] }) }; };`;
  const r = runLoader(`loader.loadAddon(); console.log(JSON.stringify({ loaded: true }));`, { ...process.env, GNNBATCH_ADDON: fake }, stub);
  const v = JSON.parse(r) as { threw?: { code: string; message: string } };
  expect(v.threw?.code).toBe('ERR_GNN_ADDON_CPU');
  expect(v.threw?.message).toContain('gnn_future_isa');
  expect(v.threw?.message).toContain('GNNBATCH_BUILD_FROM_SOURCE=1');
});

test('a missing binary is ERR_GNN_ADDON_MISSING with the possible solutions', () => {
  const r = runLoader(`loader.loadAddon();`, { ...process.env, GNNBATCH_ADDON: path.join(os.tmpdir(), 'no-such-addon.node') });
  const v = JSON.parse(r) as { threw?: { code: string; message: string } };
  expect(v.threw?.code).toBe('ERR_GNN_ADDON_MISSING');
  expect(v.threw?.message).toContain('Possible solutions');
});

test('the bounded spin is set for the load only: the host environment is unchanged after', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-loader-'));
  const probe = path.join(dir, 'probe.node');
  // The "addon" records what libgomp would see at load time.
  fs.writeFileSync(probe, 'not loaded: process.dlopen is stubbed');
  const stub = `process.dlopen = (m) => { const seen = process.env.GOMP_SPINCOUNT; m.exports = { info: () => ({ features: [], seen }) }; };`;
  const clean: NodeJS.ProcessEnv = { ...process.env, GNNBATCH_ADDON: probe };
  delete clean.GOMP_SPINCOUNT;
  delete clean.OMP_WAIT_POLICY;
  const r = runLoader(`const { addon } = loader.loadAddon(); console.log(JSON.stringify({ seen: addon.info().seen, after: process.env.GOMP_SPINCOUNT ?? null, dflt: loader.DEFAULT_SPIN_COUNT }));`, clean, stub);
  const v = JSON.parse(r) as { seen: string; after: string | null; dflt: number };
  expect(v.seen).toBe(String(v.dflt));
  expect(v.after).toBeNull();
  // A user's own OMP_WAIT_POLICY wins: nothing is set.
  const r2 = runLoader(`const { addon } = loader.loadAddon(); console.log(JSON.stringify({ seen: addon.info().seen ?? null }));`, { ...clean, OMP_WAIT_POLICY: 'active' }, stub);
  expect(JSON.parse(r2)).toEqual({ seen: null });
  // GNNBATCH_SPIN_COUNT overrides the default; a bad value is a coded error.
  const r3 = runLoader(`const { addon } = loader.loadAddon(); console.log(JSON.stringify({ seen: addon.info().seen }));`, { ...clean, GNNBATCH_SPIN_COUNT: '0' }, stub);
  expect(JSON.parse(r3)).toEqual({ seen: '0' });
  const r4 = runLoader(`loader.loadAddon();`, { ...clean, GNNBATCH_SPIN_COUNT: 'lots' }, stub);
  expect((JSON.parse(r4) as { threw: { code: string } }).threw.code).toBe('ERR_GNN_ADDON_ENV');
});

test('without GNNBATCH_ADDON the source build wins when there is one, else the best prebuilt level', () => {
  const saved = process.env.GNNBATCH_ADDON;
  delete process.env.GNNBATCH_ADDON;
  try {
    const loc = locateAddon();
    if (fs.existsSync(path.join(root, 'native-build', 'Release', 'gnnbatch.node'))) expect(loc?.source).toBe('cmake');
    else expect(loc?.source).toBe('prebuilt');
  } finally {
    if (saved !== undefined) process.env.GNNBATCH_ADDON = saved;
  }
});
