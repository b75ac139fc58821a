/** The fused native Adam against a plain float64 reference, with and without global-norm clipping. */
import { nativeModel } from '../../src/native';
import { testRng } from '../helpers/batch';

function reference(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, lr: number, t: number, clip: number): void {
  let norm = 0;
  for (const x of g) norm += x * x;
  norm = Math.sqrt(norm);
  const scale = clip > 0 && norm > clip ? clip / norm : 1;
  const bc1 = 1 - 0.9 ** t;
  const bc2 = 1 - 0.999 ** t;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * scale;
    m[i] = 0.9 * m[i] + 0.1 * gi;
    v[i] = 0.999 * v[i] + 0.001 * gi * gi;
    p[i] -= (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + 1e-8);
  }
}

describe.each([0, 0.5])('adamUpdate (clipNorm %s)', (clip) => {
  it('matches the float64 reference over several steps', () => {
    const n = 5000;
    const rnd = testRng(4);
    const p = Float64Array.from({ length: n }, () => rnd() - 0.5);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    const pr = Float64Array.from(p);
    const mr = new Float64Array(n);
    const vr = new Float64Array(n);
    for (let t = 1; t <= 4; t++) {
      const g = Float64Array.from({ length: n }, () => (rnd() - 0.5) * 0.2); // norm ~4: clipping binds at 0.5
      nativeModel().adamUpdate(p, g, m, v, { lr: 1e-2, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t, clipNorm: clip });
      reference(pr, g, mr, vr, 1e-2, t, clip);
    }
    for (let i = 0; i < n; i++) {
      expect(Math.abs(p[i] - pr[i])).toBeLessThan(1e-12);
      expect(Math.abs(m[i] - mr[i])).toBeLessThan(1e-14);
    }
  });
});

it('rejects a negative clipNorm and missing bias corrections', () => {
  const a = new Float32Array(4);
  expect(() => nativeModel().adamUpdate(a, a, a, a, { lr: 1, bc1: 1, bc2: 1, clipNorm: -1 })).toThrow(/clipNorm/);
  expect(() => nativeModel().adamUpdate(a, a, a, a, { lr: 1 } as never)).toThrow(/adam\.bc1 is missing/);
});
