/**
 * CUDA engine bindings. Where no GPU is usable the calls must fail with a clear
 * code (ERR_GNN_NO_CUDA without a CUDA build, ERR_GNN_NO_DEVICE without a
 * device) and the GPU agreement test is skipped. The full GPU checks are the
 * standalone `gnn_native_check` (benchmarks/gpu/check.sh).
 */
import { native, nativeCuda, nativeModel, type CudaPlanHandle } from '../../src/native';
import { resolveModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { packBatch, randomStore } from '../helpers/batch';

const info = native().info();
const hasGpu = info.cuda.compiled && info.cuda.devices > 0;

describe('cuda bindings', () => {
  // Reported as skipped (not silently passed) where the case does not apply.
  (hasGpu ? it.skip : it)('reports a clear error where CUDA cannot run', () => {
    const config = resolveModelConfig({ kind: 'mpeu' });
    const params = new Float32Array(paramLayout(config).total);
    let code = '';
    try {
      nativeCuda().cudaCreateModel(config, params);
    } catch (e) {
      code = (e as { code?: string }).code ?? '';
    }
    expect(code).toBe(info.cuda.compiled ? 'ERR_GNN_NO_DEVICE' : 'ERR_GNN_NO_CUDA');
  });

  (info.cuda.compiled ? it : it.skip)('rejects a wrong handle with a TypeError (never a crash)', () => {
    let err: { name?: string; code?: string } = {};
    try {
      nativeCuda().cudaTrainStep({} as unknown as CudaPlanHandle, new Int32Array(1), { lr: 1e-3, bc1: 0.1, bc2: 0.001 });
    } catch (e) {
      err = e as { name?: string; code?: string };
    }
    expect(err.name).toBe('TypeError'); // (jest realms: compare names, not classes)
    expect(err.code).toBe('ERR_GNN_TYPE');
  });

  (hasGpu ? it : it.skip)('matches the CPU engine on a training step (GPU only)', () => {
    const config = resolveModelConfig({ kind: 'mpeu' });
    const layout = paramLayout(config);
    const sizes = Array.from({ length: 12 }, (_, i) => 4 + (i % 9));
    const store = randomStore(sizes, 3, true);
    const ids = [...Array(12).keys()];
    const shape = { nodes: 128, edges: 1024, graphs: 14 };
    const params = initParams(layout, 5) as Float32Array;
    const cuda = nativeCuda();
    const dStore = cuda.cudaUploadStore(store);
    const dModel = cuda.cudaCreateModel(config, params);
    const plan = cuda.cudaCreatePlan(dStore, dModel, shape);
    // A large eps makes Adam's first move lr * g / (|g| + eps) a smooth function
    // of the gradient (slope <= lr / eps = 0.1): rounding-level differences of
    // the two engines' gradients stay rounding-level in the parameters, where
    // the default eps would turn a near-zero gradient's sign into a jump of lr.
    const adam = { lr: 1e-3, bc1: 0.1, bc2: 0.001, eps: 1e-2 };
    const r = cuda.cudaTrainStep(plan, Int32Array.from(ids), adam);
    const api = nativeModel();
    const { inputs } = packBatch(store, ids, shape, 'float32');
    const cpuPlan = api.createPlan(config, shape, 'float32');
    const p = params.slice();
    const g = new Float32Array(layout.total), m = new Float32Array(layout.total), v = new Float32Array(layout.total);
    const c = api.trainStep(cpuPlan, inputs, shape, p, g, m, v, adam);
    expect(Math.abs(r.loss - c.loss) / c.loss).toBeLessThan(1e-5);
    expect(cuda.cudaPlanInfo(plan).captures).toBe(1);
    // The step itself (forward, backward and Adam): the parameters after it.
    const after = new Float32Array(layout.total);
    cuda.cudaDownloadParams(dModel, after);
    let moved = 0, worst = 0, worstAt = -1;
    for (let i = 0; i < layout.total; i++) {
      if (p[i] !== params[i]) moved++;
      const excess = Math.abs(after[i] - p[i]) / (1e-6 + 1e-6 * Math.abs(p[i]));
      if (excess > worst) { worst = excess; worstAt = i; }
    }
    expect(moved).toBeGreaterThan(layout.total / 2); // the CPU step really moved most weights
    // Within 1e-6 (+1e-6 relative): 0.1% of lr, far below one missed or doubled move.
    expect({ worstAt, excess: worst <= 1 ? 'ok' : `cuda ${after[worstAt]} cpu ${p[worstAt]}` }).toEqual({ worstAt, excess: 'ok' });
  });
});
