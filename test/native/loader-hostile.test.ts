/**
 * Issue 21, item 9: the addon loader loads only regular `.node` files, with
 * process.dlopen (what GNNBATCH_ADDON names is never run as JavaScript or
 * parsed as JSON), and a malformed prebuilds manifest (a non-string
 * glibcRequired, ...) makes the prebuilt binaries unusable with a message:
 * the loader says why (coded), the install script builds from source; neither
 * crashes. Each case runs in a child process (the loader caches per process).
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { manifestProblem } from '../../src/native-loader';

const root = path.resolve(__dirname, '..', '..');
const ts = require.resolve('typescript');

/** The loader's source transpiled to CommonJS (what dist/native-loader.js holds). */
function loaderJs(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const t = require(ts) as typeof import('typescript');
  return t.transpileModule(fs.readFileSync(path.join(root, 'src', 'native-loader.ts'), 'utf8'), { compilerOptions: { module: t.ModuleKind.CommonJS, target: t.ScriptTarget.ES2022 } }).outputText;
}

/**
 * A package layout in a temporary folder: `dist/native-loader.js` (so its
 * package root, prebuilds/ and native-build/ are the folder's), and a
 * manifest when given. Returns the folder.
 */
function fakePackage(manifest?: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-loader-hostile-'));
  fs.mkdirSync(path.join(dir, 'dist'));
  fs.writeFileSync(path.join(dir, 'dist', 'native-loader.js'), loaderJs());
  if (manifest !== undefined) {
    const pre = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(pre, { recursive: true });
    fs.writeFileSync(path.join(pre, 'manifest.json'), manifest);
    fs.writeFileSync(path.join(pre, 'gnnbatch.x86-64-v2.node'), 'a prebuilt stand-in');
  }
  return dir;
}

/** Runs `body` with `loader` (the package's loader) in a child; returns its JSON line, or the crash. */
function inChild(pkg: string, body: string, env: NodeJS.ProcessEnv = {}): { threw?: { code?: string; message: string }; out?: unknown; crash?: string } {
  const script = `
    const loader = require(${JSON.stringify(path.join(pkg, 'dist', 'native-loader.js'))});
    try { const out = (() => { ${body} })(); console.log(JSON.stringify({ out })); }
    catch (e) { console.log(JSON.stringify({ threw: { code: e.code, message: e.message } })); }`;
  const clean: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of ['GNNBATCH_CPU_LEVEL', 'NODE_OPTIONS']) delete clean[k];
  if (env.GNNBATCH_ADDON === undefined) delete clean.GNNBATCH_ADDON;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: clean, timeout: 30000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as { threw?: { code?: string; message: string }; out?: unknown };
  } catch {
    return { crash: `${r.status} ${r.signal} ${r.stderr}` };
  }
}

describe('GNNBATCH_ADDON names only a regular .node file, loaded with process.dlopen', () => {
  let pkg: string;
  let marker: string;
  beforeAll(() => {
    pkg = fakePackage();
    marker = path.join(pkg, 'ran-as-javascript');
  });
  afterEach(() => expect(fs.existsSync(marker)).toBe(false));

  test('a directory (with an index.js) is ERR_GNN_ADDON_ENV and its index.js is not run', () => {
    const dir = path.join(pkg, 'addon-dir');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'index.js'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = { info: () => ({ features: [] }) };`);
    const r = inChild(pkg, 'loader.loadAddon(); return "loaded";', { GNNBATCH_ADDON: dir });
    expect(r.threw?.code).toBe('ERR_GNN_ADDON_ENV');
    expect(r.threw?.message).toContain('is a directory');
  });

  test('a .js file is ERR_GNN_ADDON_ENV and is not run', () => {
    const js = path.join(pkg, 'evil.js');
    fs.writeFileSync(js, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = { info: () => ({ features: [] }) };`);
    const r = inChild(pkg, 'loader.loadAddon(); return "loaded";', { GNNBATCH_ADDON: js });
    expect(r.threw?.code).toBe('ERR_GNN_ADDON_ENV');
    expect(r.threw?.message).toContain('is not a .node file');
  });

  test('a JSON file is ERR_GNN_ADDON_ENV (not parsed as the addon)', () => {
    const json = path.join(pkg, 'addon.json');
    fs.writeFileSync(json, '{"info": 1}');
    const r = inChild(pkg, 'loader.loadAddon(); return "loaded";', { GNNBATCH_ADDON: json });
    expect(r.threw?.code).toBe('ERR_GNN_ADDON_ENV');
  });

  test('a FIFO named .node is ERR_GNN_ADDON_ENV, at once', () => {
    const fifo = path.join(pkg, 'pipe.node');
    execFileSync('mkfifo', [fifo]);
    const r = inChild(pkg, 'loader.loadAddon(); return "loaded";', { GNNBATCH_ADDON: fifo });
    expect(r.threw?.code).toBe('ERR_GNN_ADDON_ENV');
    expect(r.threw?.message).toContain('FIFO');
  });

  test('a .node file that is a script, or a link named .node to one, is ERR_GNN_ADDON_LOAD (dlopen refuses it; nothing runs)', () => {
    const fake = path.join(pkg, 'script.node');
    fs.writeFileSync(fake, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = { info: () => ({ features: [] }) };`);
    expect(inChild(pkg, 'loader.loadAddon(); return "loaded";', { GNNBATCH_ADDON: fake }).threw?.code).toBe('ERR_GNN_ADDON_LOAD');
    const js = path.join(pkg, 'target.js');
    fs.writeFileSync(js, fs.readFileSync(fake));
    const link = path.join(pkg, 'link.node');
    fs.symlinkSync(js, link);
    expect(inChild(pkg, 'loader.loadAddon(); return "loaded";', { GNNBATCH_ADDON: link }).threw?.code).toBe('ERR_GNN_ADDON_LOAD');
  });

  test('the real addon named by path loads (through dlopen)', () => {
    const real = path.join(root, 'native-build', 'Release', 'gnnbatch.node');
    if (!fs.existsSync(real)) return;
    const r = inChild(pkg, 'const { addon, location } = loader.loadAddon(); return [location.source, Array.isArray(addon.info().features), typeof addon.buildNeighbours];', { GNNBATCH_ADDON: real });
    expect(r.out).toEqual(['path', true, 'function']);
  });
});

describe('the prebuilds manifest is checked field by field', () => {
  test('manifestProblem names the malformed field', () => {
    const ok = { platform: process.platform, arch: process.arch, libc: 'glibc', glibcRequired: '2.28', binaries: [{ isa: 'x86-64-v2', file: 'gnnbatch.x86-64-v2.node', bytes: 10 }] };
    expect(manifestProblem(ok)).toBeNull();
    expect(manifestProblem({})).toBeNull();
    const bad: [unknown, RegExp][] = [
      [null, /not a JSON object/],
      [[], /not a JSON object/],
      ['2.28', /not a JSON object/],
      [{ glibcRequired: 5 }, /glibcRequired must be a version string/],
      [{ glibcRequired: ['2', '28'] }, /glibcRequired/],
      [{ glibcRequired: null }, /glibcRequired/],
      [{ glibcRequired: 'abc' }, /glibcRequired/],
      [{ glibcRequired: '2.28; rm -rf /' }, /glibcRequired/],
      [{ platform: 7 }, /platform must be a string/],
      [{ platform: 'win32-or-other' }, /it is for platform/],
      [{ libc: {} }, /libc must be a string/],
      [{ binaries: 'x' }, /binaries must be a list/],
      [{ binaries: [null] }, /binaries\[0\] must be an object/],
      [{ binaries: [{ isa: 'v2', file: '../../etc/x.node', bytes: 1 }] }, /binaries\[0\]\.file must be a plain \.node file name/],
      [{ binaries: [{ isa: 'v2', file: 'a.node', bytes: '1' }] }, /binaries\[0\]\.bytes/],
    ];
    for (const [doc, message] of bad) expect(manifestProblem(doc)).toMatch(message);
  });

  test.each([
    ['glibcRequired: 5', '{"glibcRequired": 5}', /glibcRequired must be a version string/],
    ['glibcRequired: {}', '{"glibcRequired": {}}', /glibcRequired/],
    ['not JSON', '{"glibcRequired": ', /not valid JSON/],
    ['a JSON array', '[1, 2]', /not a JSON object/],
  ])('a manifest with %s: prebuiltFor is null with the reason; loadAddon is a coded ERR_GNN_ADDON_MISSING naming it', (_, text, message) => {
    const pkg = fakePackage(text);
    const r = inChild(pkg, 'return { unusable: loader.prebuiltUnusable(), pre: loader.prebuiltFor() };');
    expect(r.crash).toBeUndefined();
    expect(r.threw).toBeUndefined();
    const out = r.out as { unusable: string; pre: unknown };
    expect(out.pre).toBeNull();
    expect(out.unusable).toMatch(message);
    const load = inChild(pkg, 'loader.loadAddon(); return "loaded";');
    expect(load.threw?.code).toBe('ERR_GNN_ADDON_MISSING');
    expect(load.threw?.message).toMatch(message);
    expect(inChild(pkg, 'loader.loadAddon(); return "loaded";', { GNNBATCH_ADDON: 'prebuilt' }).threw?.code).toMatch(/^ERR_GNN_ADDON_/);
  });

  test('scripts/install.js with a malformed manifest falls back to a source build (no crash)', () => {
    const pkg = fakePackage('{"glibcRequired": 5, "binaries": "x"}');
    fs.mkdirSync(path.join(pkg, 'scripts'));
    fs.copyFileSync(path.join(root, 'scripts', 'install.js'), path.join(pkg, 'scripts', 'install.js'));
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['GNNBATCH_ADDON', 'GNNBATCH_CPU_LEVEL', 'GNNBATCH_BUILD_FROM_SOURCE', 'NODE_OPTIONS', 'npm_config_build_from_source', 'npm_config_gnnbatch_build_from_source']) delete env[k];
    const r = spawnSync(process.execPath, [path.join(pkg, 'scripts', 'install.js')], { encoding: 'utf8', env, timeout: 60000 });
    // The fallback is taken: a source build, which in this bare folder stops at "cmake-js is not installed".
    expect(r.stderr).toMatch(/building the native addon from source \(the prebuilt binaries' manifest .* is malformed: glibcRequired must be a version string/);
    expect(r.stderr).not.toMatch(/TypeError|at main/);
  });
});
