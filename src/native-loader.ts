/**
 * Finds and loads the native addon: which binary (a source build or one of the
 * prebuilt binaries shipped in the package), whether this CPU can run it, and
 * how its OpenMP threads wait when idle. Plain Node, no addon needed, so the
 * install script can use it before anything is built.
 *
 * Where the binary comes from (`GNNBATCH_ADDON`):
 * - unset: the source build (`native-build/Release/gnnbatch.node`) when there is
 *   one, else the best prebuilt binary for this CPU (`prebuilds/<platform>-<arch>/`);
 * - `cmake` / `gyp` / `prebuilt`: that one only;
 * - a path to a `.node` file.
 *
 * Whatever the source, only a regular file whose name ends in `.node` is
 * loaded, and it is loaded with `process.dlopen` (never `require`, which
 * would run a `.js` or parse a `.json` file as the addon): a directory, a
 * FIFO or a script named by GNNBATCH_ADDON is ERR_GNN_ADDON_ENV. The
 * prebuilds manifest is checked field by field; a malformed one makes the
 * prebuilt binaries unusable (the install script then builds from source),
 * never a crash.
 */
import * as fs from 'fs';
import * as path from 'path';

/** x86-64 micro-architecture levels of the prebuilt binaries, lowest first. */
export type CpuLevel = 'x86-64-v2' | 'x86-64-v3' | 'x86-64-v4';

/** Where a loadable addon comes from. */
export type AddonSource = 'cmake' | 'gyp' | 'prebuilt' | 'path';

/** The binary {@link locateAddon} picked. */
export interface AddonLocation {
  file: string;
  source: AddonSource;
  /** Level of a prebuilt binary; undefined for source builds. */
  level?: CpuLevel;
}

const LEVELS: readonly CpuLevel[] = ['x86-64-v2', 'x86-64-v3', 'x86-64-v4'];

/** CPU flags (as /proc/cpuinfo names them) each level needs on top of the previous. */
const LEVEL_FLAGS: Record<CpuLevel, readonly string[]> = {
  'x86-64-v2': ['cx16', 'lahf_lm', 'popcnt', 'pni', 'sse4_1', 'sse4_2', 'ssse3'],
  'x86-64-v3': ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'],
  'x86-64-v4': ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'],
};

const packageRoot = path.resolve(__dirname, '..');

let flagsCache: Set<string> | null | undefined;

/**
 * The CPU's feature flags, read from /proc/cpuinfo (the kernel's view of cpuid,
 * with features the OS does not enable, such as AVX-512 state, removed).
 * Null where they cannot be read (non-Linux).
 */
export function cpuFlags(): Set<string> | null {
  if (flagsCache !== undefined) return flagsCache;
  flagsCache = null;
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^flags\s*:\s*(.*)$/m.exec(text);
    if (m) flagsCache = new Set(m[1].trim().split(/\s+/));
  } catch {
    flagsCache = null;
  }
  return flagsCache;
}

/** The highest x86-64 level this CPU supports ('x86-64-v2' when unknown). */
export function cpuLevel(): CpuLevel {
  const flags = cpuFlags();
  if (!flags || process.arch !== 'x64') return 'x86-64-v2';
  let best: CpuLevel = 'x86-64-v2';
  for (const level of LEVELS) {
    if (LEVEL_FLAGS[level].every((f) => flags.has(f))) best = level;
    else break;
  }
  return best;
}

/** The running glibc's version ('2.36'), or null (musl, or not Linux). */
function glibcVersion(): string | null {
  if (process.platform !== 'linux') return null;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ?? null;
}

function versionAtLeast(have: string, need: string): boolean {
  const [a, b = 0] = have.split('.').map(Number);
  const [c, d = 0] = need.split('.').map(Number);
  if (![a, b, c, d].every(Number.isFinite)) return false;
  return a !== c ? a > c : b >= d;
}

/** Largest prebuilds manifest read (bytes): it is a few hundred. */
const MAX_MANIFEST_BYTES = 1 << 20;

/** The fields of `prebuilds/<platform>-<arch>/manifest.json` the loader relies on (scripts/prebuild.js writes it). */
export interface PrebuiltManifest {
  platform?: string;
  arch?: string;
  libc?: string;
  /** Oldest glibc the binaries run on, `MAJOR.MINOR`. */
  glibcRequired?: string;
  binaries?: { isa: string; file: string; bytes: number }[];
}

/**
 * Checks a parsed prebuilds manifest field by field: an object; `platform`,
 * `arch`, `libc` strings when present (and this platform's); `glibcRequired`
 * a `MAJOR.MINOR` version; `binaries` a list of `{isa, file, bytes}` with
 * plain file names. Returns what is wrong, or null when it is usable.
 */
export function manifestProblem(doc: unknown): string | null {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return 'it is not a JSON object';
  const m = doc as Record<string, unknown>;
  const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : Array.isArray(v) ? 'an array' : String(v === null ? 'null' : typeof v === 'object' ? 'an object' : v));
  for (const k of ['platform', 'arch', 'libc'] as const) {
    if (m[k] !== undefined && typeof m[k] !== 'string') return `${k} must be a string, got ${show(m[k])}`;
  }
  if (m.platform !== undefined && m.platform !== process.platform) return `it is for platform ${show(m.platform)}, this is ${process.platform}`;
  if (m.arch !== undefined && m.arch !== process.arch) return `it is for arch ${show(m.arch)}, this is ${process.arch}`;
  if (m.glibcRequired !== undefined && (typeof m.glibcRequired !== 'string' || !/^[0-9]{1,4}\.[0-9]{1,4}$/.test(m.glibcRequired))) {
    return `glibcRequired must be a version string such as "2.28", got ${show(m.glibcRequired)}`;
  }
  if (m.binaries !== undefined) {
    if (!Array.isArray(m.binaries)) return `binaries must be a list, got ${show(m.binaries)}`;
    for (let i = 0; i < m.binaries.length; i++) {
      const b = m.binaries[i] as Record<string, unknown> | null;
      if (!b || typeof b !== 'object') return `binaries[${i}] must be an object, got ${show(b)}`;
      if (typeof b.isa !== 'string') return `binaries[${i}].isa must be a string, got ${show(b.isa)}`;
      if (typeof b.file !== 'string' || !/^[A-Za-z0-9._-]+\.node$/.test(b.file)) return `binaries[${i}].file must be a plain .node file name, got ${show(b.file)}`;
      if (typeof b.bytes !== 'number' || !Number.isSafeInteger(b.bytes) || b.bytes < 0) return `binaries[${i}].bytes must be a byte count, got ${show(b.bytes)}`;
    }
  }
  return null;
}

/** Reads and checks the manifest: the manifest, or why it cannot be used. */
function readManifest(): { manifest: PrebuiltManifest } | { problem: string } {
  const file = path.join(prebuiltDir(), 'manifest.json');
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return { problem: `${file} is not a regular file` };
    if (st.size > MAX_MANIFEST_BYTES) return { problem: `${file} is ${st.size} bytes, more than a manifest has` };
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { problem: `no prebuilt binaries for ${process.platform}-${process.arch} in this package` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { problem: `the prebuilt binaries' manifest ${file} is not valid JSON (${(e as Error).message})` };
  }
  const problem = manifestProblem(doc);
  if (problem !== null) return { problem: `the prebuilt binaries' manifest ${file} is malformed: ${problem}` };
  return { manifest: doc as PrebuiltManifest };
}

/**
 * Why the prebuilt binaries cannot be used on this machine (a missing or
 * malformed manifest, or glibc builds that need the glibc version their
 * manifest names), or null when they can.
 */
export function prebuiltUnusable(): string | null {
  const read = readManifest();
  if ('problem' in read) return read.problem;
  const glibc = glibcVersion();
  if (glibc === null) return 'the prebuilt binaries need glibc (this is musl or another C library)';
  const need = read.manifest.glibcRequired;
  if (need !== undefined && !versionAtLeast(glibc, need)) return `the prebuilt binaries need glibc >= ${need}, this system has ${glibc}`;
  return null;
}

/** The folder of prebuilt binaries for this platform. */
export function prebuiltDir(): string {
  return path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
}

/**
 * The best prebuilt binary for this CPU (`GNNBATCH_CPU_LEVEL` caps the level,
 * e.g. to test the baseline binary on a newer CPU), or null when the package
 * has none that runs here.
 */
export function prebuiltFor(level: CpuLevel = cpuLevel()): AddonLocation | null {
  if (prebuiltUnusable() !== null) return null;
  const cap = process.env.GNNBATCH_CPU_LEVEL as CpuLevel | undefined;
  if (cap !== undefined && !LEVELS.includes(cap)) {
    throw Object.assign(new RangeError(`GNNBATCH_CPU_LEVEL must be one of ${LEVELS.join(', ')}, got "${cap}"`), { code: 'ERR_GNN_ADDON_ENV' });
  }
  const top = cap !== undefined && LEVELS.indexOf(cap) < LEVELS.indexOf(level) ? cap : level;
  for (let i = LEVELS.indexOf(top); i >= 0; i--) {
    const file = path.join(prebuiltDir(), `gnnbatch.${LEVELS[i]}.node`);
    if (fs.existsSync(file)) return { file, source: 'prebuilt', level: LEVELS[i] };
  }
  return null;
}

/** The source build cmake-js writes (by `npm install` in a checkout, or a fallback build). */
export function sourceBuildPath(): string {
  return path.join(packageRoot, 'native-build', 'Release', 'gnnbatch.node');
}

/** Picks the binary to load (see the module comment); null when there is none. */
export function locateAddon(): AddonLocation | null {
  const pick = process.env.GNNBATCH_ADDON;
  if (pick === undefined || pick === '') {
    if (fs.existsSync(sourceBuildPath())) return { file: sourceBuildPath(), source: 'cmake' };
    return prebuiltFor();
  }
  if (pick === 'cmake') return { file: sourceBuildPath(), source: 'cmake' };
  if (pick === 'gyp') return { file: path.join(packageRoot, 'build', 'Release', 'gnnbatch.node'), source: 'gyp' };
  if (pick === 'prebuilt') return prebuiltFor() ?? { file: path.join(prebuiltDir(), 'gnnbatch.x86-64-v2.node'), source: 'prebuilt' };
  return { file: path.resolve(pick), source: 'path' };
}

/**
 * Spin-wait budget of idle OpenMP threads, in libgomp spin iterations (libgomp
 * estimates ~100,000 per millisecond). libgomp's own default (300,000, ~3 ms)
 * keeps a whole team spinning after every call, taking the cores from the host
 * process (and from any other team of the process); passive waiting (0) makes
 * every parallel region of a step pay a futex wake-up. About a millisecond keeps
 * a training step's back-to-back regions hot (measured: the same step time as
 * 300,000, while 10,000 was ~10% slower) and lets the threads sleep within about
 * a millisecond after a call returns (benchmarks/host.js measures both sides).
 */
export const DEFAULT_SPIN_COUNT = 100000;

/**
 * Environment libgomp reads once, when it is loaded with the addon. Applied only
 * for the duration of the load and only where the user set neither
 * OMP_WAIT_POLICY nor GOMP_SPINCOUNT; the host's environment is restored after,
 * so child processes see what they saw before. `GNNBATCH_SPIN_COUNT` overrides
 * the default ({@link DEFAULT_SPIN_COUNT}).
 */
function withThreadWaitPolicy<T>(load: () => T): T {
  const env = process.env;
  if (env.OMP_WAIT_POLICY !== undefined || env.GOMP_SPINCOUNT !== undefined) return load();
  const wanted = env.GNNBATCH_SPIN_COUNT ?? String(DEFAULT_SPIN_COUNT);
  if (!/^\d+$/.test(wanted)) {
    throw Object.assign(new RangeError(`GNNBATCH_SPIN_COUNT must be a non-negative integer, got "${wanted}"`), { code: 'ERR_GNN_ADDON_ENV' });
  }
  env.GOMP_SPINCOUNT = wanted;
  try {
    return load();
  } finally {
    delete env.GOMP_SPINCOUNT;
  }
}

/** CPU features the loaded binary was compiled to use (its `info().features`). */
function missingFeatures(compiled: readonly string[]): string[] {
  const flags = cpuFlags();
  if (!flags) return [];
  return compiled.filter((f) => !flags.has(f));
}

function addonError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** What to do when no binary can be loaded, for this platform. */
function remedies(): string {
  return (
    'Possible solutions:\n' +
    '  - reinstall: npm install gnnbatch (a prebuilt binary is used on linux-x64 with glibc)\n' +
    '  - build from source (needs cmake, a C++17 compiler with OpenMP): GNNBATCH_BUILD_FROM_SOURCE=1 npm rebuild gnnbatch\n' +
    '  - in a checkout: npm install (cmake-js) or npm run build:gyp (then GNNBATCH_ADDON=gyp)'
  );
}

/**
 * Refuses anything but a regular `.node` file (links are followed): a
 * directory, a FIFO or device, or a `.js`/`.json` file named by
 * GNNBATCH_ADDON is ERR_GNN_ADDON_ENV (a path the user gave), else
 * ERR_GNN_ADDON_LOAD.
 */
function checkAddonFile(location: AddonLocation): void {
  const code = location.source === 'path' ? 'ERR_GNN_ADDON_ENV' : 'ERR_GNN_ADDON_LOAD';
  const named = location.source === 'path' ? `GNNBATCH_ADDON=${process.env.GNNBATCH_ADDON}` : `the ${location.source} addon`;
  let st: fs.Stats;
  try {
    st = fs.statSync(location.file);
  } catch (e) {
    throw addonError(`gnnbatch: ${named}: cannot read ${location.file} (${(e as Error).message}).\n${remedies()}`, code);
  }
  if (!st.isFile()) {
    const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : 'not a regular file';
    throw addonError(`gnnbatch: ${named}: ${location.file} is ${what}; it must name a native addon file (gnnbatch.node).`, code);
  }
  if (path.extname(location.file) !== '.node') {
    throw addonError(`gnnbatch: ${named}: ${location.file} is not a .node file; only native addons are loaded (never JavaScript or JSON).`, code);
  }
}

/** Loads a native addon file with process.dlopen (the loader behind require for .node files, without its other file types). */
function dlopenAddon<T>(file: string): T {
  const mod: { exports: unknown } = { exports: {} };
  process.dlopen(mod as NodeJS.Module, file);
  return mod.exports as T;
}

/**
 * Loads the addon once per process: picks the binary, sets the idle-thread wait
 * policy for the load, and refuses a binary compiled for CPU features this
 * machine lacks (instead of crashing later with SIGILL).
 * Errors: ERR_GNN_ADDON_MISSING, ERR_GNN_ADDON_LOAD, ERR_GNN_ADDON_CPU,
 * ERR_GNN_ADDON_ENV (GNNBATCH_ADDON names something other than a regular
 * `.node` file; a bad GNNBATCH_SPIN_COUNT or GNNBATCH_CPU_LEVEL).
 */
export function loadAddon<T extends { info(): { features?: readonly string[] } }>(): { addon: T; location: AddonLocation } {
  const location = locateAddon();
  if (!location || !fs.existsSync(location.file)) {
    const where = location ? location.file : `${sourceBuildPath()} or ${prebuiltDir()}/gnnbatch.<level>.node`;
    const unusable = location?.source === 'path' ? null : prebuiltUnusable();
    throw addonError(`gnnbatch: native addon not found (looked for ${where})${unusable ? `; prebuilt binaries: ${unusable}` : ''}.\n${remedies()}`, 'ERR_GNN_ADDON_MISSING');
  }
  checkAddonFile(location);
  let addon: T;
  try {
    addon = withThreadWaitPolicy(() => dlopenAddon<T>(location.file));
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('ERR_GNN_')) throw e;
    throw addonError(
      `gnnbatch: native addon at ${location.file} failed to load (${(e as Error).message}). ` +
        `It may be built for another Node version, platform or C library.\n${remedies()}`,
      'ERR_GNN_ADDON_LOAD',
    );
  }
  const info = typeof (addon as { info?: unknown } | null)?.info === 'function' ? addon.info() : undefined;
  const features = info?.features ?? [];
  if (!info || !Array.isArray(features) || !features.every((f) => typeof f === 'string')) {
    throw addonError(`gnnbatch: ${location.file} loaded but is not a gnnbatch addon (no info() with a list of CPU features).\n${remedies()}`, 'ERR_GNN_ADDON_LOAD');
  }
  const missing = missingFeatures(features);
  if (missing.length > 0) {
    throw addonError(
      `gnnbatch: the native addon at ${location.file} was compiled for CPU features this machine lacks (${missing.join(', ')}); ` +
        `running it would crash with an illegal instruction. Rebuild it here (GNNBATCH_BUILD_FROM_SOURCE=1 npm rebuild gnnbatch), ` +
        `or build portable binaries with GNN_ISA=x86-64-v2.`,
      'ERR_GNN_ADDON_CPU',
    );
  }
  return { addon, location };
}
