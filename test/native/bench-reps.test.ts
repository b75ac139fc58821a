/**
 * Issue 21, item 9: the native benchmark exports (memcpyBench,
 * copyGraphSlicesBench, gemmBench, streamBench) bound their repetitions
 * (at most 10,000, documented in native/addon/timing.h) and their total work
 * (2^34 bytes copied, 2^39 flops), refused up front with a coded RangeError
 * instead of holding the process (copyGraphSlicesBench once ran 1,000,000
 * repetitions past a 10 s watchdog). Each refusal is followed by a call that
 * must still work.
 */
import { native, type NativeStoreArrays } from '../../src/native';
import { packerArrays } from '../../src/data/store';
import { loadSource } from '../../src/data/source';
import { allocPackOutput, totals } from '../helpers/store';

const addon = native();

/** The error `f` throws, with the time it took (ms). */
function refusal(f: () => unknown): { name?: string; code?: string; message: string; ms: number } {
  const t0 = Date.now();
  try {
    f();
  } catch (e) {
    const x = e as Error & { code?: string };
    return { name: x.name, code: x.code, message: x.message, ms: Date.now() - t0 };
  }
  return { message: 'no error', ms: Date.now() - t0 };
}

let arrays: NativeStoreArrays;
beforeAll(async () => {
  const { store } = await loadSource('qm9-like:8', {});
  arrays = packerArrays(store, new Float64Array(store.numGraphs).fill(0.5));
});

describe('benchmark exports bound their repetitions', () => {
  test('copyGraphSlicesBench: 1,000,000 repetitions (and 10,001) are a RangeError ERR_GNN_RANGE, at once', () => {
    const ids = Int32Array.from([0, 1]);
    const t = totals(arrays, [0, 1]);
    const shape = { nodes: t.nodes + 1, edges: t.edges, graphs: t.graphs + 1 };
    const out = allocPackOutput(shape, Float32Array);
    for (const reps of [1_000_000, 10_001]) {
      const r = refusal(() => addon.copyGraphSlicesBench(arrays, ids, shape, out, reps));
      expect(r).toMatchObject({ name: 'RangeError', code: 'ERR_GNN_RANGE', message: expect.stringContaining('copyGraphSlicesBench') });
      expect(r.ms).toBeLessThan(1000);
    }
    expect(addon.copyGraphSlicesBench(arrays, ids, shape, out, 10_000)).toBeGreaterThanOrEqual(0);
  });

  test('memcpyBench: over 10,000 repetitions, or over 2^34 bytes in all, is ERR_GNN_RANGE', () => {
    const small = new Uint8Array(64);
    expect(refusal(() => addon.memcpyBench(small, new Uint8Array(64), 1_000_000))).toMatchObject({ name: 'RangeError', code: 'ERR_GNN_RANGE' });
    const big = new Uint8Array(4 << 20);
    const r = refusal(() => addon.memcpyBench(big, new Uint8Array(4 << 20), 5000)); // 4 MiB x 5000 = 20 GiB
    expect(r).toMatchObject({ name: 'RangeError', code: 'ERR_GNN_RANGE', message: expect.stringContaining('exceed the benchmark bound') });
    expect(r.ms).toBeLessThan(1000);
    expect(addon.memcpyBench(small, new Uint8Array(64), 3)).toBeGreaterThanOrEqual(0);
  });

  test('gemmBench and streamBench: too many repetitions or too much work in all are ERR_GNN_RANGE before anything is allocated', () => {
    expect(refusal(() => addon.gemmBench(8, 8, 8, 1_000_000))).toMatchObject({ name: 'RangeError', code: 'ERR_GNN_RANGE' });
    // 2 x 2^21 x 32 x 32 flops = 2^32 per repetition: 2^39 in all is reached at 128.
    expect(refusal(() => addon.gemmBench(1 << 21, 32, 32, 200))).toMatchObject({ name: 'RangeError', code: 'ERR_GNN_RANGE', message: expect.stringContaining('flops') });
    const s = refusal(() => addon.streamBench(4096, 5)); // 20 GiB copied
    expect(s).toMatchObject({ name: 'RangeError', code: 'ERR_GNN_RANGE' });
    expect(s.ms).toBeLessThan(1000);
    expect(refusal(() => addon.streamBench(1, 20_000))).toMatchObject({ name: 'RangeError', code: 'ERR_GNN_RANGE' });
    expect(addon.gemmBench(8, 8, 8, 2)).toBeGreaterThanOrEqual(0);
    expect(addon.streamBench(1, 2)).toBeGreaterThanOrEqual(0);
  });
});
