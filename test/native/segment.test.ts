/**
 * Segment kernels against plain TypeScript float64 references, for float32 and
 * float64 inputs and widths 1..512, plus 1-vs-2-thread bitwise identity.
 * The addon comes from src/native.ts, so GNNBATCH_ADDON=gyp runs the same
 * tests against the node-gyp build.
 */
import { native, FloatArray } from '../../src/native';
import { makeRng, randInt, stableArgsort } from '../helpers/store';

const addon = native();
type FloatCtor = Float32ArrayConstructor | Float64ArrayConstructor;
const DTYPES: [string, FloatCtor][] = [
  ['float32', Float32Array],
  ['float64', Float64Array],
];
const WIDTHS = [1, 3, 64, 512];

function randomFloats(F: FloatCtor, n: number, rng: () => number): FloatArray {
  const a = new F(n);
  for (let i = 0; i < n; i++) a[i] = rng() * 2 - 1;
  return a;
}

/** Row pointers over `rows` segments with ~25% empty ones (first and last included sometimes). */
function randomRowPtr(rows: number, rng: () => number, maxLen = 9): Int32Array {
  const ptr = new Int32Array(rows + 1);
  for (let r = 0; r < rows; r++) ptr[r + 1] = ptr[r] + (rng() < 0.25 ? 0 : randInt(rng, 1, maxLen));
  return ptr;
}

/**
 * Asserts `got` matches the float64 reference `want`; `scale[i]` bounds the
 * magnitude of the terms summed into element i (float32 rounding tolerance).
 */
function expectClose(got: FloatArray, want: Float64Array, scale: Float64Array, isF32: boolean): void {
  expect(got.length).toBe(want.length);
  const rel = isF32 ? 2e-6 : 1e-14;
  for (let i = 0; i < want.length; i++) {
    const tol = rel * Math.max(1, scale[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new Error(`element ${i}: got ${got[i]}, want ${want[i]} (tol ${tol})`);
    }
  }
}

function refCsr(src: FloatArray, ptr: Int32Array, w: number, mean: boolean): [Float64Array, Float64Array] {
  const rows = ptr.length - 1;
  const out = new Float64Array(rows * w);
  const scale = new Float64Array(rows * w);
  for (let r = 0; r < rows; r++) {
    const len = ptr[r + 1] - ptr[r];
    for (let k = ptr[r]; k < ptr[r + 1]; k++)
      for (let f = 0; f < w; f++) {
        out[r * w + f] += src[k * w + f];
        scale[r * w + f] += Math.abs(src[k * w + f]) * 4;
      }
    if (mean && len > 0) for (let f = 0; f < w; f++) out[r * w + f] /= len;
  }
  return [out, scale];
}

function refSegmentSum(src: FloatArray, seg: Int32Array, nseg: number, w: number): [Float64Array, Float64Array] {
  const out = new Float64Array(nseg * w);
  const scale = new Float64Array(nseg * w);
  for (let i = 0; i < seg.length; i++)
    for (let f = 0; f < w; f++) {
      out[seg[i] * w + f] += src[i * w + f];
      scale[seg[i] * w + f] += Math.abs(src[i * w + f]) * 4;
    }
  return [out, scale];
}

function refGather(src: FloatArray, idx: Int32Array, w: number): Float64Array {
  const out = new Float64Array(idx.length * w);
  for (let i = 0; i < idx.length; i++) for (let f = 0; f < w; f++) out[i * w + f] = src[idx[i] * w + f];
  return out;
}

function refCsrBackward(gout: FloatArray, ptr: Int32Array, w: number, mean: boolean): Float64Array {
  const rows = ptr.length - 1;
  const g = new Float64Array(ptr[rows] * w);
  for (let r = 0; r < rows; r++) {
    const len = ptr[r + 1] - ptr[r];
    for (let k = ptr[r]; k < ptr[r + 1]; k++)
      for (let f = 0; f < w; f++) g[k * w + f] = gout[r * w + f] / (mean ? len : 1);
  }
  return g;
}

/** Backward of gatherRows(src, idx): scatter-add of gradOut rows into idx rows. */
function refGatherBackward(gout: FloatArray, idx: Int32Array, rows: number, w: number): [Float64Array, Float64Array] {
  return refSegmentSum(gout, idx, rows, w);
}

/** A sorted-by-row permutation and its row pointers for gather indices `idx`. */
function permAndPtr(idx: Int32Array, rows: number): [Int32Array, Int32Array] {
  const perm = Int32Array.from(stableArgsort(idx));
  const ptr = new Int32Array(rows + 1);
  for (const r of idx) ptr[r + 1]++;
  for (let r = 0; r < rows; r++) ptr[r + 1] += ptr[r];
  return [perm, ptr];
}

const ones = (n: number) => new Float64Array(n).fill(1);

describe.each(DTYPES)('segment kernels (%s)', (_name, F) => {
  const isF32 = F === Float32Array;

  describe.each(WIDTHS)('width %i', (w) => {
    const rng = makeRng(1000 + w + (isF32 ? 0 : 1));
    const rows = w >= 512 ? 37 : 211;

    test('segmentSumCsr and segmentMeanCsr match the reference (empty segments give 0)', () => {
      const ptr = randomRowPtr(rows, rng);
      const src = randomFloats(F, ptr[rows] * w, rng);
      for (const mean of [false, true]) {
        const out = new F(rows * w).fill(NaN);
        if (mean) addon.segmentMeanCsr(src, ptr, w, out);
        else addon.segmentSumCsr(src, ptr, w, out);
        const [want, scale] = refCsr(src, ptr, w, mean);
        expectClose(out, want, scale, isF32);
        for (let r = 0; r < rows; r++)
          if (ptr[r] === ptr[r + 1]) for (let f = 0; f < w; f++) expect(out[r * w + f]).toBe(0);
      }
    });

    test('segmentSum (unsorted ids) matches the reference', () => {
      const n = rows * 5;
      const nseg = rows + 3; // some segments never appear
      const seg = Int32Array.from({ length: n }, () => randInt(rng, 0, rows - 1));
      const src = randomFloats(F, n * w, rng);
      const out = new F(nseg * w).fill(NaN);
      addon.segmentSum(src, seg, nseg, w, out);
      const [want, scale] = refSegmentSum(src, seg, nseg, w);
      expectClose(out, want, scale, isF32);
    });

    test('gatherRows matches the reference exactly', () => {
      const srcRows = rows;
      const n = rows * 3;
      const idx = Int32Array.from({ length: n }, () => randInt(rng, 0, srcRows - 1));
      const src = randomFloats(F, srcRows * w, rng);
      const out = new F(n * w).fill(NaN);
      addon.gatherRows(src, idx, w, out);
      expect(Array.from(out)).toEqual(Array.from(refGather(src, idx, w)));
    });

    test('segmentCsrBackward (sum and mean) matches the reference', () => {
      const ptr = randomRowPtr(rows, rng);
      const gout = randomFloats(F, rows * w, rng);
      for (const mean of [false, true]) {
        const gsrc = new F(ptr[rows] * w).fill(NaN);
        addon.segmentCsrBackward(gout, ptr, w, mean, gsrc);
        const want = refCsrBackward(gout, ptr, w, mean);
        expectClose(gsrc, want, ones(want.length), isF32);
      }
    });

    test('gatherRowsBackward with a permutation and with identity (null) matches the reference', () => {
      const srcRows = rows;
      const n = rows * 3;
      const idx = Int32Array.from({ length: n }, () => randInt(rng, 0, srcRows - 1));
      const gout = randomFloats(F, n * w, rng);
      const [perm, ptr] = permAndPtr(idx, srcRows);
      const gsrc = new F(srcRows * w).fill(NaN);
      addon.gatherRowsBackward(gout, perm, ptr, w, gsrc);
      const [want, scale] = refGatherBackward(gout, idx, srcRows, w);
      expectClose(gsrc, want, scale, isF32);

      // Sorted indices (a receiver gather): perm = null means identity.
      const sortedIdx = Int32Array.from(idx).sort();
      const [, ptr2] = permAndPtr(sortedIdx, srcRows);
      const gsrc2 = new F(srcRows * w).fill(NaN);
      addon.gatherRowsBackward(gout, null, ptr2, w, gsrc2);
      const [want2, scale2] = refGatherBackward(gout, sortedIdx, srcRows, w);
      expectClose(gsrc2, want2, scale2, isF32);
    });
  });

  test('zero rows and zero-length inputs are accepted', () => {
    const out = new F(0);
    addon.segmentSumCsr(new F(0), new Int32Array([0]), 4, out);
    addon.segmentMeanCsr(new F(0), new Int32Array([0, 0, 0]), 2, new F(4).fill(7));
    addon.segmentSum(new F(0), new Int32Array(0), 3, 2, new F(6).fill(7));
    addon.gatherRows(new F(8), new Int32Array(0), 4, new F(0));
    const z = new F(6).fill(7);
    addon.segmentSum(new F(0), new Int32Array(0), 3, 2, z);
    expect(Array.from(z)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test('byteOffset is honoured (views into a larger buffer)', () => {
    const rng = makeRng(77);
    const w = 3;
    const ptr = new Int32Array([0, 2, 2, 5]);
    const big = randomFloats(F, 40, rng);
    const src = new F(big.buffer as ArrayBuffer, 5 * F.BYTES_PER_ELEMENT, 5 * w);
    const outBig = new F(30).fill(NaN);
    const out = new F(outBig.buffer as ArrayBuffer, 7 * F.BYTES_PER_ELEMENT, 3 * w);
    const ptrBig = new Int32Array(10);
    ptrBig.set(ptr, 3);
    addon.segmentSumCsr(src, ptrBig.subarray(3, 7), w, out);
    const [want, scale] = refCsr(src, ptr, w, false);
    expectClose(out, want, scale, isF32);
    expect(Number.isNaN(outBig[6])).toBe(true);
    expect(Number.isNaN(outBig[16])).toBe(true);
  });
});

describe('determinism across thread counts', () => {
  const before = addon.getThreads();
  afterAll(() => addon.setThreads(before));

  test.each(DTYPES)('1 and 2 threads give bitwise identical results (%s)', (_name, F) => {
    const rng = makeRng(4242);
    const w = 64;
    const rows = 3001;
    const ptr = randomRowPtr(rows, rng, 40);
    const E = ptr[rows];
    const src = randomFloats(F, E * w, rng);
    const seg = Int32Array.from({ length: E }, () => randInt(rng, 0, rows - 1));
    const idx = Int32Array.from({ length: E }, () => randInt(rng, 0, rows - 1));
    const [perm, gptr] = permAndPtr(idx, rows);
    const gout = randomFloats(F, rows * w, rng);

    const run = (threads: number): FloatArray[] => {
      addon.setThreads(threads);
      expect(addon.getThreads()).toBe(threads);
      const a = new F(rows * w);
      const b = new F(rows * w);
      const c = new F(rows * w);
      const d = new F(E * w);
      const e = new F(E * w);
      const g = new F(rows * w);
      addon.segmentSumCsr(src, ptr, w, a);
      addon.segmentMeanCsr(src, ptr, w, b);
      addon.segmentSum(src, seg, rows, w, c);
      addon.gatherRows(gout, idx, w, d);
      addon.segmentCsrBackward(gout, ptr, w, true, e);
      addon.gatherRowsBackward(src, perm, gptr, w, g);
      return [a, b, c, d, e, g];
    };
    const one = run(1);
    const two = run(2);
    one.forEach((x, i) => expect(Buffer.from(two[i].buffer).equals(Buffer.from(x.buffer))).toBe(true));
  });
});

describe('shared memory', () => {
  test('SharedArrayBuffer-backed arrays are read and written in place', () => {
    const src = new Float32Array(new SharedArrayBuffer(4 * 6));
    src.set([1, 2, 3, 4, 5, 6]);
    const ptr = new Int32Array(new SharedArrayBuffer(4 * 3));
    ptr.set([0, 1, 3]);
    const out = new Float32Array(new SharedArrayBuffer(4 * 4), 4, 2 * 1);
    addon.segmentSumCsr(src.subarray(0, 3), ptr, 1, out);
    expect(Array.from(out)).toEqual([1, 5]);
  });
});
