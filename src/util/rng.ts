/**
 * Small seeded PRNG: xoshiro128** (Blackman & Vigna) on 32-bit integers, seeded
 * through splitmix32. Deterministic across platforms (only `Math.imul`, shifts
 * and xors), with state save/restore for bitwise-exact checkpoint resume.
 */
import { ArgumentError } from '../errors';

// Module-level aliases: under vm contexts (jest) every global lookup such as
// `Math` goes through an interceptor and costs ~20x; hot paths avoid them.
const imul = Math.imul;

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = imul(z ^ (z >>> 16), 0x85ebca6b);
  z = imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Seeded xoshiro128** generator. */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /**
   * @param seed any finite number; integers up to 2^53 are mixed in full
   *   (low and high 32-bit words both enter the seed).
   */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new ArgumentError(`Rng: seed must be a finite number, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(Math.abs(seed) / 4294967296) >>> 0;
    const st = { s: lo ^ imul(hi, 0x27d4eb2d) };
    this.s0 = splitmix32(st);
    this.s1 = splitmix32(st);
    this.s2 = splitmix32(st);
    this.s3 = splitmix32(st);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    const m = imul(s1, 5);
    const result = imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    this.s0 = s0 ^ s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  /** A standard normal variate (Box-Muller on two uniforms with 53 random bits). */
  normal(): number {
    let u = 0;
    while (u === 0) u = (this.nextU32() * 2097152 + (this.nextU32() >>> 11)) / 9007199254740992;
    const v = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling); 1 <= n <= 2^32. */
  below(n: number): number {
    if (!(n >= 1 && (n >>> 0 === n || n === 4294967296))) {
      throw new ArgumentError(`Rng.below: n must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** In-place Fisher-Yates shuffle of `a`. */
  shuffle(a: Int32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /** The four state words (JSON-serialisable). */
  getState(): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** Restore a state from {@link getState}. */
  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.some((x) => !Number.isInteger(x) || x < 0 || x > 0xffffffff)) {
      throw new ArgumentError('Rng.setState: expected four unsigned 32-bit integers');
    }
    if ((state[0] | state[1] | state[2] | state[3]) === 0) throw new ArgumentError('Rng.setState: all-zero state is invalid');
    this.s0 = state[0] | 0;
    this.s1 = state[1] | 0;
    this.s2 = state[2] | 0;
    this.s3 = state[3] | 0;
  }
}
