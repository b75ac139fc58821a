/**
 * Build information, the loader, and loading the addon inside a worker thread.
 * With GNNBATCH_ADDON=gyp this checks that the node-gyp build is the one under
 * test (so the kernel tests of that run really exercise it).
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import { addonPath, native, nativeInfo, getThreads, setThreads } from '../../src/native';

describe('info()', () => {
  test('reports the cpu backend and the CUDA state without crashing (no GPU here)', () => {
    const info = nativeInfo();
    expect(info.backend).toBe('cpu');
    expect(typeof info.cuda.compiled).toBe('boolean');
    expect(Number.isInteger(info.cuda.devices)).toBe(true);
    expect(info.cuda.devices).toBeGreaterThanOrEqual(0);
    if (!process.env.GNNBATCH_EXPECT_GPU) expect(info.cuda.devices).toBe(0);
    expect(info.openmp).toBe(true);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(typeof info.simd).toBe('string');
  });

  test('the selected build is the one loaded', () => {
    const pick = process.env.GNNBATCH_ADDON ?? 'cmake';
    const info = nativeInfo();
    if (pick === 'gyp') {
      expect(info.build).toBe('node-gyp');
      expect(info.cuda.compiled).toBe(false);
      expect(addonPath()).toBe(path.resolve(__dirname, '../../build/Release/gnnbatch.node'));
    } else if (pick === 'cmake') {
      expect(info.build).toBe('cmake-js');
      expect(addonPath()).toBe(path.resolve(__dirname, '../../native-build/Release/gnnbatch.node'));
    }
  });

  test('a missing binary gives an actionable error with a code', () => {
    const saved = process.env.GNNBATCH_ADDON;
    process.env.GNNBATCH_ADDON = path.join(__dirname, 'no-such-addon.node');
    try {
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fresh = require('../../src/native') as typeof import('../../src/native');
        let err: (Error & { code?: string }) | undefined;
        try {
          fresh.native();
        } catch (e) {
          err = e as Error & { code?: string };
        }
        expect(err?.code).toBe('ERR_GNN_ADDON_MISSING');
        expect(err?.message).toMatch(/npm install/);
      });
    } finally {
      if (saved === undefined) delete process.env.GNNBATCH_ADDON;
      else process.env.GNNBATCH_ADDON = saved;
    }
  });

  test('native() loads once', () => {
    expect(native()).toBe(native());
  });

  test('setThreads/getThreads round-trip', () => {
    const before = getThreads();
    setThreads(1);
    expect(getThreads()).toBe(1);
    expect(nativeInfo().threads).toBe(1);
    setThreads(before);
    expect(getThreads()).toBe(before);
  });
});

describe('worker threads', () => {
  // Plain JS in the worker (ts-jest does not transform worker code): it loads
  // the same .node file, runs a kernel and a bad call, and reports back.
  const workerSource = `
    const { parentPort, workerData } = require('worker_threads');
    const addon = require(workerData.file);
    const out = new Float64Array(2);
    addon.segmentSumCsr(new Float64Array([1, 2, 3, 4]), new Int32Array([0, 3, 4]), 1, out);
    let error = null;
    try { addon.gatherRows(new Float64Array(2), new Int32Array([5]), 1, new Float64Array(1)); }
    catch (e) { error = { name: e.name, code: e.code, message: e.message }; }
    parentPort.postMessage({ info: addon.info(), sums: Array.from(out), error });
  `;

  function runWorker(): Promise<{ info: { backend: string; build: string }; sums: number[]; error: { name: string; code: string; message: string } }> {
    return new Promise((resolve, reject) => {
      const w = new Worker(workerSource, { eval: true, workerData: { file: addonPath() } });
      w.once('message', (m) => {
        void w.terminate().then(() => resolve(m));
      });
      w.once('error', reject);
    });
  }

  test('the addon loads and runs inside a Worker, and again after the first one ends', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await runWorker();
      expect(r.info.backend).toBe('cpu');
      expect(r.info.build).toBe(nativeInfo().build);
      expect(r.sums).toEqual([6, 4]);
      expect(r.error.name).toBe('RangeError');
      expect(r.error.code).toBe('ERR_GNN_RANGE');
      expect(r.error.message).toMatch(/indices\[0\]=5/);
    }
    // The main thread's instance is unaffected.
    const out = new Float32Array(1);
    native().segmentSumCsr(new Float32Array([2, 3]), new Int32Array([0, 2]), 1, out);
    expect(out[0]).toBe(5);
  });
});
