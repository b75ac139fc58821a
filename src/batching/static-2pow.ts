/** `static-2pow`: the study's static-2^N batching. */
import type { PackShape } from '../native';
import { StaticPolicy } from './static';
import { staticPow2Shape } from './shapes';

/** B-1 real graphs + a padding graph; nodes and edges padded to powers of two (see {@link staticPow2Shape}). */
export class StaticPow2Policy extends StaticPolicy {
  readonly name = 'static-2pow';
  readonly fixedShape = null;
  protected shapeFor(n: number, e: number): PackShape {
    return staticPow2Shape(n, e, this.batchSize);
  }
}
