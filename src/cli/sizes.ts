/** Loads a SOURCE for commands that only need graph sizes and a split (batching compare). */
import { sizesOf, type GraphSizes } from '../batching';
import { splitGraphs } from '../data';
import { loadSourceFromCli, type SourceOptionValues } from './source-options';

/** Sizes and the seeded 80/10/10 split's train part of a source. */
export async function loadSizesFromCli(
  source: string,
  opts: { seed: number } & SourceOptionValues,
): Promise<{ sizes: GraphSizes; split: Int32Array; description: string }> {
  const loaded = await loadSourceFromCli(source, opts);
  const split = splitGraphs(loaded.store.numGraphs, { seed: opts.seed });
  return {
    sizes: sizesOf(loaded.store),
    split: split.train,
    description: `${source} (${loaded.store.numGraphs} graphs, ${loaded.store.graphRule})`,
  };
}
