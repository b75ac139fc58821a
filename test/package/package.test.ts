/**
 * The package as a consumer gets it: `npm pack`, install the tarball into an
 * empty project with a PATH that holds only node, npm and sh (no cmake, no
 * compiler, no Python, no nvcc), then require it, train and predict with the
 * prebuilt binary, import it from ESM, compile strict TypeScript consumers
 * (CommonJS and ESM), and lint the package (publint, attw).
 *
 * The tarball: `GNNBATCH_TARBALL` when set (.ci/run packs with `npm pack`, so
 * `prepack` builds dist/ and the prebuilt binaries from these sources);
 * otherwise this test packs the checkout itself with the prebuilt binaries
 * already there (building them first when missing).
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

jest.setTimeout(600_000);

const root = path.resolve(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-consumer-'));
const project = path.join(work, 'project');
const bin = path.join(work, 'bin');
let tarball: string;
let installSeconds = 0;

function which(cmd: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} not found on this machine`);
  return fs.realpathSync(r.stdout.trim());
}

/** Environment of the consumer: only node, npm and sh on PATH. */
function consumerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: bin };
  for (const k of ['GNNBATCH_ADDON', 'GNNBATCH_CPU_LEVEL', 'GNNBATCH_BUILD_FROM_SOURCE', 'NODE_OPTIONS', 'npm_config_build_from_source']) delete env[k];
  return env;
}

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  return execFileSync(path.join(bin, 'npm'), args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(() => {
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(which('npm'), path.join(bin, 'npm'));
  fs.symlinkSync(which('sh'), path.join(bin, 'sh'));
  tarball = process.env.GNNBATCH_TARBALL ?? '';
  if (!tarball) {
    if (!fs.existsSync(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'manifest.json'))) {
      execFileSync(process.execPath, [path.join(root, 'scripts', 'prebuild.js')], { cwd: root, stdio: 'ignore' });
    }
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' });
    tarball = path.join(work, (JSON.parse(out) as { filename: string }[])[0].filename);
  }
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const t0 = Date.now();
  npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], project, consumerEnv());
  installSeconds = (Date.now() - t0) / 1000;
  // Reported by .ci/run and quoted in the issue note.
  fs.writeFileSync(path.join(root, '.ci', 'consumer-install-seconds.txt'), `${installSeconds.toFixed(1)}\n`, { flag: 'w' });
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('the consumer PATH has no build tools', () => {
  for (const tool of ['cmake', 'g++', 'gcc', 'cc', 'c++', 'make', 'python3', 'nvcc']) {
    const r = spawnSync(path.join(bin, 'sh'), ['-c', `command -v ${tool}`], { env: consumerEnv() });
    expect({ tool, found: r.status === 0 }).toEqual({ tool, found: false });
  }
});

test('the tarball installs without build tools, quickly, with prebuilt binaries and no TypeScript sources', () => {
  const pkg = path.join(project, 'node_modules', 'gnnbatch');
  expect(fs.existsSync(path.join(pkg, 'dist', 'index.js'))).toBe(true);
  expect(fs.existsSync(path.join(pkg, 'src'))).toBe(false);
  expect(fs.existsSync(path.join(pkg, 'native-build'))).toBe(false); // nothing was compiled
  const manifest = JSON.parse(fs.readFileSync(path.join(pkg, 'prebuilds', 'linux-x64', 'manifest.json'), 'utf8')) as { binaries: { isa: string }[] };
  expect(manifest.binaries.map((b) => b.isa)).toEqual(['x86-64-v2', 'x86-64-v3', 'x86-64-v4']);
  expect(fs.existsSync(path.join(project, 'node_modules', 'better-sqlite3'))).toBe(false); // optional peer, not installed
  expect(installSeconds).toBeLessThan(60);
});

test('require(): train a checkpoint, predict, serve-style predictor, all on the prebuilt binary', () => {
  const script = `
    const g = require('gnnbatch');
    const path = require('path');
    (async () => {
      const where = g.addonLocation();
      const { store } = g.buildStore([...g.qm9Like(200, 3)], { graph: { kind: 'fc' } });
      const ck = path.join(process.cwd(), 'ck');
      await g.train({ store, target: 'U0', model: { kind: 'schnet', latent: 16, passes: 2, basis: 20 }, policy: 'dynamic', batchSize: 8, steps: 3, seed: 1, skipEval: true, checkpointDir: ck });
      const mols = [...g.qm9Like(10, 9)];
      const a = g.loadModel(ck).predict(mols);
      const p = await g.createPredictor(ck);
      const b = await p.predict(mols);
      await p.close();
      let ase = 'no error';
      // A format reader below the top level: the internals subpath resolves in the installed package.
      const { readAseDb } = require('gnnbatch/internals');
      try { for await (const s of readAseDb('x.db')) void s; } catch (e) { ase = e.code; }
      console.log(JSON.stringify({ where, info: g.nativeInfo(), a: Array.from(a), b: Array.from(b), ase }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  fs.writeFileSync(path.join(project, 'consumer.js'), script);
  const out = execFileSync(path.join(bin, 'node'), ['consumer.js'], { cwd: project, env: consumerEnv(), encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').pop() as string) as { where: { source: string; level: string }; info: { isa: string }; a: number[]; b: number[]; ase: string };
  expect(r.where.source).toBe('prebuilt');
  expect(r.info.isa).toBe(r.where.level);
  expect(r.a).toHaveLength(10);
  expect(r.a.every(Number.isFinite)).toBe(true);
  expect(r.b).toEqual(r.a);
  // better-sqlite3 is optional: reading a .db without it is one actionable, coded error.
  expect(r.ase).toBe('ERR_GNN_SQLITE_MISSING');
});

test('the baseline (x86-64-v2) binary loads and predicts on this CPU too', () => {
  fs.writeFileSync(path.join(project, 'v2.js'), `const g = require('gnnbatch'); console.log(JSON.stringify([g.addonLocation().level, g.nativeInfo().simd]));`);
  const out = execFileSync(path.join(bin, 'node'), ['v2.js'], { cwd: project, env: { ...consumerEnv(), GNNBATCH_CPU_LEVEL: 'x86-64-v2' }, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual(['x86-64-v2', 'sse2']);
});

test('import from ESM: named exports', () => {
  fs.writeFileSync(path.join(project, 'consumer.mjs'), `import { loadModel, createPredictor, startServer, GnnError, nativeInfo } from 'gnnbatch';\nimport { native } from 'gnnbatch/native';\nimport { PlanCache } from 'gnnbatch/internals';\nconsole.log([typeof loadModel, typeof createPredictor, typeof startServer, typeof GnnError, nativeInfo().backend, typeof native().packGraphs, typeof PlanCache].join(' '));\n`);
  const out = execFileSync(path.join(bin, 'node'), ['consumer.mjs'], { cwd: project, env: consumerEnv(), encoding: 'utf8' });
  expect(out.trim()).toBe('function function function function cpu function function');
});

test('strict TypeScript consumers compile, CommonJS and ESM (node16 resolution)', () => {
  const src = (kind: string) => `import { createPredictor, loadModel, nativeInfo, type Predictor, type GnnErrorCode, type NativeInfo } from 'gnnbatch';
import { native, type NativeAddon } from 'gnnbatch/native';
import { PlanCache } from 'gnnbatch/internals';
export const raw: NativeAddon = native();
export const cacheClass: typeof PlanCache = PlanCache;
// @ts-expect-error: the raw binding has no index signature (a misspelt call does not compile)
export const typoCall = (): number => native().getThread();
export async function use${kind}(dir: string): Promise<number> {
  const p: Predictor = await createPredictor(dir, { maxBatchGraphs: 8, maxQueueDelayMs: 1 });
  const r: Float64Array = await p.predict([], { signal: new AbortController().signal });
  await p.close();
  const info: NativeInfo = nativeInfo();
  const isa: 'native' | 'x86-64-v2' | 'x86-64-v3' | 'x86-64-v4' | 'none' = info.isa;
  const code: GnnErrorCode = 'ERR_GNN_QUEUE_FULL';
  // @ts-expect-error: error codes are a closed union
  const typo: GnnErrorCode = 'ERR_GNN_QUEUE_FUL';
  void typo; void isa; void code;
  return r.length + loadModel(dir).step;
}
`;
  fs.writeFileSync(path.join(project, 'consumer-cjs.cts'), src('Cjs'));
  fs.writeFileSync(path.join(project, 'consumer-esm.mts'), src('Esm'));
  fs.writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, module: 'node16', moduleResolution: 'node16', target: 'es2022', noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] }, files: ['consumer-cjs.cts', 'consumer-esm.mts'] }),
  );
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { encoding: 'utf8' });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});

test("the README's TypeScript blocks compile and run as written, in a CommonJS and in an ESM project", () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  expect(blocks.length).toBeGreaterThanOrEqual(2);
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const type of ['commonjs', 'module'] as const) {
    const dir = path.join(work, `readme-${type}`);
    fs.mkdirSync(dir);
    fs.symlinkSync(path.join(project, 'node_modules'), path.join(dir, 'node_modules'));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `readme-${type}`, private: true, type }));
    const files = blocks.map((_, i) => `block${i}.ts`);
    blocks.forEach((code, i) => fs.writeFileSync(path.join(dir, files[i]), code));
    // What `tsc --init` writes today (module node16 follows package.json's "type"), strict.
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'node16', target: 'es2022', types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], outDir: 'out' }, files }));
    const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    expect(`${type}: ${r.stdout}${r.stderr}`).toBe(`${type}: `);
    expect(r.status).toBe(0);
    // The blocks run in order (the second one serves the checkpoint the first one trained). The
    // training block (1000 MPEU steps on 5,000 graphs: 1-2 minutes on 2 busy cores) runs once, in the CommonJS project;
    // the ESM project serves a copy of its checkpoint.
    if (type === 'module') fs.cpSync(path.join(work, 'readme-commonjs', 'run1'), path.join(dir, 'run1'), { recursive: true });
    for (let i = type === 'module' ? 1 : 0; i < blocks.length; i++) {
      const run = spawnSync(path.join(bin, 'node'), [path.join('out', `block${i}.js`)], { cwd: dir, env: consumerEnv(), encoding: 'utf8', timeout: 480_000 });
      expect(`${type} block ${i}: exit ${run.status} ${run.stderr}`).toBe(`${type} block ${i}: exit 0 `);
    }
    expect(fs.existsSync(path.join(dir, 'run1', 'checkpoint.json'))).toBe(true);
  }
}, 900_000);

test('publint and attw find no problems', () => {
  const pkgDir = path.join(project, 'node_modules', 'gnnbatch');
  const pub = spawnSync(process.execPath, [path.join(root, 'node_modules', 'publint', 'src', 'cli.js'), pkgDir, '--strict'], { encoding: 'utf8' });
  expect(pub.stdout + pub.stderr).not.toMatch(/Errors:|Warnings:/);
  expect(pub.status).toBe(0);
  const attw = spawnSync(process.execPath, [path.join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'), tarball, '--format', 'json'], { encoding: 'utf8' });
  const report = JSON.parse(attw.stdout) as { problems?: Record<string, unknown[]> | unknown[] };
  const problems = Array.isArray(report.problems) ? report.problems : Object.values(report.problems ?? {}).flat();
  expect(problems).toEqual([]);
});
