/** `static-constant`: the study's static batching with one worst-case shape. */
import type { PackShape } from '../native';
import { StaticPolicy } from './static';
import { staticConstantShape } from './shapes';
import { maxSizes } from './sizes';
import type { GraphSizes } from './policy';
import type { CommonPolicyOptions } from './base';

/**
 * B-1 real graphs + a padding graph, always padded to one shape derived from
 * the largest graph of the split x B (see {@link staticConstantShape}): one
 * compilation, but huge padding.
 */
export class StaticConstantPolicy extends StaticPolicy {
  readonly name = 'static-constant';
  readonly fixedShape: PackShape;

  constructor(sizes: GraphSizes, split: Int32Array, batchSize: number, seed: number, options: CommonPolicyOptions = {}) {
    super(sizes, split, batchSize, seed, options);
    const mx = maxSizes(sizes, split);
    this.fixedShape = Object.freeze(staticConstantShape(mx.nodes, mx.edges, batchSize));
  }

  protected shapeFor(): PackShape {
    return this.fixedShape;
  }
}
