/** `static-64`: the study's static batching padded to multiples of 64. */
import type { PackShape } from '../native';
import { StaticPolicy } from './static';
import { static64Shape } from './shapes';

/** B-1 real graphs + a padding graph; nodes and edges padded to multiples of 64 (see {@link static64Shape}). */
export class Static64Policy extends StaticPolicy {
  readonly name = 'static-64';
  readonly fixedShape = null;
  protected shapeFor(n: number, e: number): PackShape {
    return static64Shape(n, e, this.batchSize);
  }
}
