/**
 * One entry point for every source: files of each format, generator specs and
 * `.gnb` caches all become a {@link GraphStore}.
 */
import { loadStore } from './cache';
import { DataFormatError } from './errors';
import { readAflowJson } from './formats/aflow-json';
import { readAseDb } from './formats/ase-db';
import { detectFormat, type SourceFormat } from './formats/detect';
import { readExtxyz } from './formats/extxyz';
import { readQm9 } from './formats/qm9-xyz';
import { formatGraphRule, parseGraphRule, type GraphRule } from './graph-rule';
import { buildStoreAsync, withDirections } from './store';
import { generate, parseGeneratorSpec } from './synthetic';
import type { GraphStore, Structure } from './types';
import { ArgumentError } from '../errors';
import type { DataLimits } from './limits';

/** Options of {@link loadSource} and {@link readStructures}; the size ceilings are documented in limits.ts. */
export interface LoadSourceOptions extends DataLimits {
  /** Force a format instead of detecting it. */
  format?: SourceFormat;
  /** Graph rule (`fc`, `cutoff:R`, `knn:K` or parsed); default `fc` for molecules, `knn:12` when any structure is periodic; a cache keeps its own. */
  graph?: string | GraphRule;
  /** The target the caller will train on: every structure must have it (checked with the entry named). */
  target?: string;
  /** Drop structures without edges under the rule (default: keep them as edgeless graphs). */
  dropEdgeless?: boolean;
  /**
   * Also build the unit edge vectors ({@link GraphStore.directions}; default
   * false; PaiNN needs them). A `.gnb` cache without them gets them through
   * {@link withDirections} (recomputed from its positions, checked against its edges).
   */
  directions?: boolean;
  /** Seed of the generators (default 42). */
  seed?: number;
  /** Called every 1000 structures read. */
  onProgress?: (structuresRead: number) => void;
}

/** What {@link loadSource} returns. */
export interface LoadedSource {
  store: GraphStore;
  format: SourceFormat;
  /** Graphs without edges (kept or dropped). */
  edgeless: number;
  /** Graphs dropped because they had no edge. */
  dropped: number;
  /** True when the store came from a `.gnb` cache. */
  fromCache: boolean;
}

/** Streams the structures of a file or generator source (not a `.gnb` cache). */
export async function* readStructures(source: string, options: Pick<LoadSourceOptions, 'format' | 'seed' | 'maxMemberBytes'> = {}): AsyncGenerator<Structure> {
  const format = options.format ?? detectFormat(source);
  switch (format) {
    case 'qm9-xyz': yield* readQm9(source, { maxMemberBytes: options.maxMemberBytes }); return;
    case 'extxyz': yield* readExtxyz(source); return;
    case 'ase-db': yield* readAseDb(source); return;
    case 'aflow-json': yield* readAflowJson(source); return;
    case 'qm9-like':
    case 'aflow-like': {
      const spec = parseGeneratorSpec(source) ?? { name: format, count: Number(/:(\d+)$/.exec(source)?.[1] ?? NaN) };
      if (spec.name !== format || !Number.isInteger(spec.count)) throw new ArgumentError(`source '${source}' is not a ${format}[:N] spec`);
      yield* generate(spec, options.seed);
      return;
    }
    case 'gnb': throw new ArgumentError(`'${source}' is a .gnb cache of graphs, not of structures; use loadSource`);
  }
}

/**
 * Loads any source into a graph store: parses (streamed), checks the target,
 * builds graphs natively. A `.gnb` cache loads without parsing; its graph rule
 * must match `options.graph` when one is given.
 */
export async function loadSource(source: string, options: LoadSourceOptions = {}): Promise<LoadedSource> {
  const format = options.format ?? detectFormat(source);
  const rule = typeof options.graph === 'string' ? parseGraphRule(options.graph) : options.graph;
  if (format === 'gnb') {
    let store = loadStore(source);
    if (rule && formatGraphRule(rule) !== store.graphRule)
      throw new ArgumentError(`${source} was built with graph rule '${store.graphRule}', not '${formatGraphRule(rule)}'; rebuild it with "gnnbatch data build"`);
    if (options.target !== undefined && !store.targetNames.includes(options.target))
      throw new DataFormatError({ file: source, field: options.target }, `missing target; the cache has: ${store.targetNames.join(', ') || '(none)'}`, 'ERR_GNN_DATA_TARGET');
    let edgeless = 0;
    for (let g = 0; g < store.numGraphs; g++) if (store.edgeOffset[g + 1] === store.edgeOffset[g]) edgeless++;
    if (options.dropEdgeless && edgeless > 0) throw new ArgumentError(`${source} holds ${edgeless} edgeless graphs; rebuild it with --drop-edgeless`);
    if (store.numGraphs === 0) throw new DataFormatError({ file: source }, 'the .gnb cache holds no graphs', 'ERR_GNN_DATA_EMPTY');
    if (options.directions) store = await withDirections(store, source);
    return { store, format, edgeless, dropped: 0, fromCache: true };
  }
  const structures: Structure[] = [];
  for await (const s of readStructures(source, { format, seed: options.seed, maxMemberBytes: options.maxMemberBytes })) {
    if (options.target !== undefined && !(options.target in s.targets)) {
      const known = Object.keys(s.targets);
      throw new DataFormatError({ file: source, entry: structures.length, field: options.target },
        `missing target (structure '${s.id}' has: ${known.join(', ') || 'no numeric properties'})`, 'ERR_GNN_DATA_TARGET');
    }
    structures.push(s);
    if (options.onProgress && structures.length % 1000 === 0) options.onProgress(structures.length);
  }
  if (structures.length === 0)
    throw new DataFormatError({ file: source }, `no structures found (read as ${format}${format === 'qm9-xyz' ? ': a folder is searched for QM9 .xyz files' : ''}); check the path and --format`, 'ERR_GNN_DATA_EMPTY');
  const graph = rule ?? (structures.some((s) => s.pbc.some((p) => p)) ? parseGraphRule('knn:12') : parseGraphRule('fc'));
  const built = await buildStoreAsync(structures, {
    graph, source, dropEdgeless: options.dropEdgeless, directions: options.directions, maxEdgesPerGraph: options.maxEdgesPerGraph, maxTotalEdges: options.maxTotalEdges,
  });
  return { ...built, format, fromCache: false };
}
