/**
 * The options every command that takes a SOURCE shares: `--format`,
 * `--graph fc|cutoff:R|knn:K`, `--target NAME`, `--drop-edgeless`, `--data-seed N`.
 */
import { Option, type Command } from 'commander';
import { parseGraphRule } from '../data/graph-rule';
import { SOURCE_FORMATS, isSourceFormat } from '../data/formats/detect';
import { loadSource, type LoadSourceOptions, type LoadedSource } from '../data/source';
import { UsageError } from '../errors';

/** Raw values commander collects for the source options. */
export interface SourceOptionValues {
  format?: string;
  graph?: string;
  target?: string;
  dropEdgeless?: boolean;
  dataSeed?: string;
  /** Not a flag: set by a command whose model needs edge directions (PaiNN). */
  directions?: boolean;
}

/** Adds the shared source options to a command (returns it for chaining). */
export function addSourceOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--format <format>', 'source format (detected from the name when omitted)').choices([...SOURCE_FORMATS]))
    .option('--graph <rule>', 'graph rule: fc | cutoff:R (Å) | knn:K (default fc for molecules, knn:12 for crystals)')
    .option('--target <name>', 'target property; every structure must have it')
    .option('--drop-edgeless', 'drop structures without edges under the graph rule (default: keep them)')
    .option('--data-seed <n>', 'seed of the built-in generators (qm9-like, aflow-like)', '42');
}

/** Converts and validates the collected values (throws a RangeError naming the bad option). */
export function sourceOptionsFrom(values: SourceOptionValues): LoadSourceOptions {
  const out: LoadSourceOptions = {};
  if (values.format !== undefined) {
    if (!isSourceFormat(values.format)) throw new UsageError(`--format ${values.format}: use one of ${SOURCE_FORMATS.join(', ')}`);
    out.format = values.format;
  }
  if (values.graph !== undefined) {
    try {
      out.graph = parseGraphRule(values.graph);
    } catch (e) {
      throw new UsageError(`--graph ${(e as Error).message}`);
    }
  }
  if (values.target !== undefined) out.target = values.target;
  if (values.dropEdgeless) out.dropEdgeless = true;
  if (values.directions) out.directions = true;
  if (values.dataSeed !== undefined) {
    const seed = Number(values.dataSeed);
    if (!Number.isInteger(seed)) throw new UsageError(`--data-seed ${values.dataSeed}: expected an integer`);
    out.seed = seed;
  }
  return out;
}

/** Loads a SOURCE with the shared options, reporting progress on stderr when it is a terminal. */
export async function loadSourceFromCli(source: string, values: SourceOptionValues): Promise<LoadedSource> {
  const options = sourceOptionsFrom(values);
  if (process.stderr.isTTY) options.onProgress = (n) => process.stderr.write(`\rread ${n} structures`);
  const loaded = await loadSource(source, options);
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  if (loaded.edgeless > 0)
    process.stderr.write(`${loaded.edgeless} structure(s) have no edges under ${loaded.store.graphRule}: ${loaded.dropped > 0 ? 'dropped' : 'kept as edgeless graphs (--drop-edgeless drops them)'}\n`);
  return loaded;
}
