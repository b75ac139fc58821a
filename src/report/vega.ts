/**
 * Headless Vega: Vega-Lite spec -> Vega spec -> SVG string, in Node, with no
 * canvas and no browser. vega and vega-lite ship as ES modules, which this
 * CommonJS package (and jest) cannot require; their UMD bundles
 * (`build/*.min.js`) are evaluated instead with a CommonJS shim.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GnnError } from '../errors';

/** The small part of vega's API used here. */
interface VegaModule {
  parse(spec: object, config?: object): object;
  View: new (runtime: object, opts: { renderer: string; logger?: object }) => { toSVG(scale?: number): Promise<string>; finalize(): void };
  logger(level?: number): VegaLogger;
  version: string;
}

interface VegaLogger {
  level(n?: number): unknown;
  warn(...args: unknown[]): unknown;
  error(...args: unknown[]): unknown;
  info(...args: unknown[]): unknown;
  debug(...args: unknown[]): unknown;
}

interface VegaLiteModule {
  compile(spec: object, opts?: { logger?: object }): { spec: object };
  version: string;
}

/** A Vega-Lite specification (kept loose: the compiler validates it). */
export type VegaLiteSpec = Record<string, unknown>;

let loaded: { vega: VegaModule; vegaLite: VegaLiteModule } | null = null;

function bundlePath(pkg: string, file: string): string {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(pkg));
  } catch {
    dir = path.join(__dirname, '..', '..', 'node_modules', pkg, 'build');
  }
  const p = path.join(dir, file);
  if (!fs.existsSync(p)) throw new GnnError('ERR_GNN_REPORT', `${pkg}: bundle ${p} not found (is ${pkg} installed?)`);
  return p;
}

function evalUmd(file: string, deps: Record<string, unknown>): unknown {
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const req = (name: string): unknown => {
    if (!(name in deps)) throw new GnnError('ERR_GNN_REPORT', `${path.basename(file)} requires '${name}', which is not provided`);
    return deps[name];
  };
  // The bundle takes its CommonJS branch when `exports` and `module` exist.
  new Function('exports', 'module', 'require', 'define', fs.readFileSync(file, 'utf8'))(mod.exports, mod, req, undefined);
  return mod.exports;
}

/** Loads vega and vega-lite once (UMD bundles). */
export function loadVega(): { vega: VegaModule; vegaLite: VegaLiteModule } {
  if (!loaded) {
    const vega = evalUmd(bundlePath('vega', 'vega.min.js'), {}) as VegaModule;
    const vegaLite = evalUmd(bundlePath('vega-lite', 'vega-lite.min.js'), { vega }) as VegaLiteModule;
    loaded = { vega, vegaLite };
  }
  return loaded;
}

/** A rendered chart and everything the compilers complained about. */
export interface RenderedChart {
  svg: string;
  /** Warnings of vega-lite's compiler and vega's runtime (a clean spec has none). */
  warnings: string[];
}

/** Compiles a Vega-Lite spec and renders it to SVG; throws on an invalid spec. */
export async function renderVegaLiteSvg(spec: VegaLiteSpec): Promise<RenderedChart> {
  const { vega, vegaLite } = loadVega();
  const warnings: string[] = [];
  const text = (args: unknown[]): string => args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
  let level = 2;
  const logger: VegaLogger = {
    level(n?: number) {
      if (n === undefined) return level;
      level = n;
      return logger;
    },
    warn: (...a: unknown[]) => {
      warnings.push(text(a));
      return logger;
    },
    error: (...a: unknown[]) => {
      throw new GnnError('ERR_GNN_REPORT', text(a));
    },
    info: () => logger,
    debug: () => logger,
  };
  const compiled = vegaLite.compile(spec, { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger });
  try {
    return { svg: await view.toSVG(), warnings };
  } finally {
    view.finalize();
  }
}
