// One measurement of benchmarks/host.js in a fresh process (libgomp reads its
// wait policy once per process, so each variant needs its own).
//   node host-child.js step    -> MPEU B=32 dynamic training: median step ms
//   node host-child.js idle    -> CPU ms burnt in the 200 ms after each sync predict
//   node host-child.js contend -> predict latency alone / beside a busy worker thread; sync vs async
//   node host-child.js guest   -> sync predict, predictAsync and an MPEU B=32 train step (medians),
//                                 for `host --contention` (the parent runs the competing process);
//                                 GNNBATCH_BENCH_THREADS=N sets the native thread count first
'use strict';
const path = require('path');
const { Worker } = require('worker_threads');
const dist = path.join(__dirname, '..', 'dist');
const g = require(dist);

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function step() {
  const { store } = g.buildStore([...g.qm9Like(3000, 5)], { graph: { kind: 'fc' } });
  const { result } = await g.train({ store, target: 'U0', model: { kind: 'mpeu' }, policy: 'dynamic', batchSize: 32, steps: 25, seed: 42, skipEval: true });
  return { step_ms: result.ms_per_step_median, info: g.nativeInfo() };
}

async function idle(ck) {
  const m = g.loadModel(ck);
  const mols = [...g.qm9Like(32, 9)];
  m.predict(mols);
  await sleep(200);
  const cpu = [];
  for (let i = 0; i < 8; i++) {
    m.predict(mols);
    const c0 = process.cpuUsage();
    await sleep(200);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  // 2 s of idleness after one predict (the figure).
  m.predict(mols);
  const c0 = process.cpuUsage();
  await sleep(2000);
  const c = process.cpuUsage(c0);
  return { cpu_ms_200ms_after_predict: median(cpu), cpu_ms_2s_idle: (c.user + c.system) / 1000 };
}

async function contend(ck) {
  const m = g.loadModel(ck);
  const mols = [...g.qm9Like(32, 9)];
  const time = async (f) => {
    const t = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      await f();
      t.push(performance.now() - t0);
      await sleep(5);
    }
    return median(t);
  };
  m.predict(mols);
  await m.predictAsync(mols);
  const syncAlone = await time(() => m.predict(mols));
  const asyncAlone = await time(() => m.predictAsync(mols));
  // Another pool in the process: a worker thread running the same model in a loop
  // (its own OpenMP team, as another native library's pool would have).
  const w = new Worker(
    `const g = require(${JSON.stringify(dist)}); const { parentPort } = require('worker_threads');
     const m = g.loadModel(${JSON.stringify(ck)}); const mols = [...g.qm9Like(32, 3)]; let stop = false;
     parentPort.on('message', () => { stop = true; });
     (async () => { parentPort.postMessage('ready'); while (!stop) { m.predict(mols); await new Promise((r) => setTimeout(r, 2)); } parentPort.postMessage('done'); })();`,
    { eval: true },
  );
  await new Promise((r) => w.once('message', r));
  const syncBusy = await time(() => m.predict(mols));
  const asyncBusy = await time(() => m.predictAsync(mols));
  w.postMessage('stop');
  await new Promise((r) => w.once('message', r));
  await w.terminate();
  const out = { sync_alone_ms: syncAlone, async_alone_ms: asyncAlone, sync_busy_ms: syncBusy, async_busy_ms: asyncBusy };
  // onnxruntime-node's own (spinning) intra-op pool in the same process, when it is installed
  // (not a dependency: point GNNBATCH_BENCH_ORT at a folder whose node_modules has it).
  let ortPath = null;
  try {
    ortPath = require.resolve('onnxruntime-node', { paths: [process.env.GNNBATCH_BENCH_ORT ?? process.cwd()] });
  } catch {
    ortPath = null;
  }
  if (ortPath) {
    const o = new Worker(
      `const ort = require(${JSON.stringify(ortPath)}); const { parentPort } = require('worker_threads');
       const { mlpModel } = require(${JSON.stringify(path.join(__dirname, 'onnx-mlp.js'))});
       let stop = false; let runs = 0; parentPort.on('message', () => { stop = true; });
       (async () => {
         const s = await ort.InferenceSession.create(mlpModel(512, 4));
         const x = new ort.Tensor('float32', new Float32Array(256 * 512).fill(0.1), [256, 512]);
         parentPort.postMessage('ready');
         while (!stop) { await s.run({ X: x }); runs++; await new Promise((r) => setTimeout(r, 2)); }
         parentPort.postMessage(runs);
       })();`,
      { eval: true },
    );
    await new Promise((r) => o.once('message', r));
    out.sync_ort_ms = await time(() => m.predict(mols));
    out.async_ort_ms = await time(() => m.predictAsync(mols));
    o.postMessage('stop');
    out.ort_runs = await new Promise((r) => o.once('message', r));
    await o.terminate();
  }
  return out;
}

// One cell of `host --contention`: the three figures the good-guest bound is about.
async function guest(ck) {
  if (process.env.GNNBATCH_BENCH_THREADS) g.setThreads(Number(process.env.GNNBATCH_BENCH_THREADS));
  const reps = Number(process.env.GNNBATCH_BENCH_REPS ?? 9);
  const m = g.loadModel(ck);
  const mols = [...g.qm9Like(32, 9)];
  m.predict(mols);
  await m.predictAsync(mols);
  const sync = [];
  const asyn = [];
  // Interleaved sync/async so drifting load hits both alike.
  for (let i = 0; i < reps; i++) {
    let t0 = performance.now();
    m.predict(mols);
    sync.push(performance.now() - t0);
    t0 = performance.now();
    await m.predictAsync(mols);
    asyn.push(performance.now() - t0);
  }
  const { store } = g.buildStore([...g.qm9Like(600, 5)], { graph: { kind: 'fc' } });
  const { result } = await g.train({ store, target: 'U0', model: { kind: 'mpeu' }, policy: 'dynamic', batchSize: 32, steps: reps + 3, seed: 42, skipEval: true });
  return { sync_ms: median(sync), async_ms: median(asyn), step_ms: result.ms_per_step_median, threads: g.getThreads(), info: g.nativeInfo() };
}

const modes = { step, idle, contend, guest };
modes[process.argv[2]](process.argv[3]).then(
  (r) => process.stdout.write(JSON.stringify(r) + '\n'),
  (e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
