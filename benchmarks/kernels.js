// Kernel benchmarks (issue 2): segmentSumCsr bandwidth and packGraphs speed,
// each against an in-run native memcpy moving the same bytes, and packGraphs
// against a straightforward TypeScript-style packer. Needs `npm run build:ts`
// (loads the addon through dist/native.js, so GNNBATCH_ADDON=gyp works too).
'use strict';
const os = require('os');
const path = require('path');

let nativeMod;
try {
  nativeMod = require(path.join(__dirname, '..', 'dist', 'native.js'));
} catch (e) {
  throw new Error(`benchmarks need the compiled TypeScript: run "npm run build:ts" first (${e.message})`);
}
const addon = nativeMod.native();

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median seconds of fn() over reps sized to ~budget seconds (at least minReps). */
function timeIt(fn, budget = 0.6, minReps = 7, maxReps = 2000) {
  fn(); // warm-up (page faults, caches)
  const t0 = process.hrtime.bigint();
  fn();
  const once = Number(process.hrtime.bigint() - t0) / 1e9;
  const reps = Math.max(minReps, Math.min(maxReps, Math.ceil(budget / Math.max(once, 1e-7))));
  const ts = [];
  for (let r = 0; r < reps; r++) {
    const a = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - a) / 1e9);
  }
  return { seconds: median(ts), reps };
}

/**
 * Native memcpy time for moving `traffic` bytes (read + written), i.e. a copy
 * of traffic/2 bytes, median of many reps; returns seconds.
 */
function memcpySeconds(traffic, reps) {
  const n = Math.max(64, Math.round(traffic / 2));
  const src = new Uint8Array(n).fill(1);
  const dst = new Uint8Array(n);
  addon.memcpyBench(dst, src, 2); // fault pages in
  return addon.memcpyBench(dst, src, reps);
}

const rng = require(path.join(__dirname, '..', 'dist', 'data', 'split')).mulberry32;

// ---------------------------------------------------------------- segmentSumCsr
function benchSegment(log, sizes) {
  const width = 64;
  const rows = [];
  for (const E of sizes) {
    const R = Math.max(1, Math.round(E / 17));
    const ptr = new Int32Array(R + 1);
    for (let r = 0; r <= R; r++) ptr[r] = Math.floor((r * E) / R);
    const src = new Float32Array(E * width);
    const rand = rng(E);
    for (let i = 0; i < src.length; i += 97) src[i] = rand();
    const out = new Float32Array(R * width);
    const traffic = src.byteLength + ptr.byteLength + out.byteLength;
    const budget = E >= 1e7 ? 3 : 1;
    const k = timeIt(() => addon.segmentSumCsr(src, ptr, width, out), budget, E >= 1e7 ? 7 : 11);
    const m = memcpySeconds(traffic, Math.max(7, Math.min(501, k.reps)));
    const row = {
      edges: E,
      rows: R,
      width,
      bytes: traffic,
      seconds: k.seconds,
      reps: k.reps,
      gbps: traffic / k.seconds / 1e9,
      memcpyGbps: traffic / m / 1e9,
      ratio: m / k.seconds,
    };
    rows.push(row);
    log(`segmentSumCsr f32 w=64 E=${E.toExponential(0)}: ${row.gbps.toFixed(2)} GB/s, memcpy ${row.memcpyGbps.toFixed(2)} GB/s, ratio ${row.ratio.toFixed(2)} (${k.reps} reps)`);
  }
  return rows;
}

// ---------------------------------------------------------------- packGraphs
/** A QM9-like store of fully connected graphs: 3..29 atoms (mean ~18), n(n-1) edges. */
function qm9LikeStore(numGraphs, seed) {
  const rand = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const sizes = Array.from({ length: numGraphs }, () => Math.min(29, Math.max(3, Math.round(18 + 3 * gauss()))));
  const N = sizes.reduce((a, b) => a + b, 0);
  const E = sizes.reduce((a, n) => a + n * (n - 1), 0);
  const s = {
    nodeOffset: new Int32Array(numGraphs + 1),
    edgeOffset: new Int32Array(numGraphs + 1),
    atomicNumber: new Uint8Array(N),
    senders: new Int32Array(E),
    receivers: new Int32Array(E),
    distance: new Float32Array(E),
    senderPerm: new Int32Array(E),
    target: new Float64Array(numGraphs),
  };
  let n0 = 0;
  let e0 = 0;
  sizes.forEach((n, g) => {
    s.nodeOffset[g] = n0;
    s.edgeOffset[g] = e0;
    for (let j = 0; j < n; j++) s.atomicNumber[n0 + j] = 1 + Math.floor(rand() * 9);
    // Fully connected, sorted by receiver then sender.
    let k = 0;
    for (let r = 0; r < n; r++)
      for (let snd = 0; snd < n; snd++)
        if (snd !== r) {
          s.senders[e0 + k] = snd;
          s.receivers[e0 + k] = r;
          s.distance[e0 + k] = 1 + 3 * rand();
          k++;
        }
    // Stable sender order: for sender snd, edges (r, snd) for r in order.
    const idx = Array.from({ length: k }, (_, i) => i).sort((a, b) => s.senders[e0 + a] - s.senders[e0 + b] || a - b);
    for (let i = 0; i < k; i++) s.senderPerm[e0 + i] = idx[i];
    s.target[g] = rand();
    n0 += n;
    e0 += k;
  });
  s.nodeOffset[numGraphs] = n0;
  s.edgeOffset[numGraphs] = e0;
  return s;
}

function allocOut(shape) {
  return {
    atomicNumber: new Int32Array(shape.nodes),
    nodeGraph: new Int32Array(shape.nodes),
    senders: new Int32Array(shape.edges),
    receivers: new Int32Array(shape.edges),
    distance: new Float32Array(shape.edges),
    nNode: new Int32Array(shape.graphs),
    nEdge: new Int32Array(shape.graphs),
    target: new Float32Array(shape.graphs),
    mask: new Float32Array(shape.graphs),
    recvPtr: new Int32Array(shape.nodes + 1),
    sendPerm: new Int32Array(shape.edges),
    sendPtr: new Int32Array(shape.nodes + 1),
  };
}

/**
 * The straightforward TypeScript packer (same outputs as the native one, no
 * validation beyond what the loops need): the "what if we did it in JS" baseline.
 */
function packJs(s, ids, shape, out) {
  let ns = 0;
  let es = 0;
  for (let i = 0; i < ids.length; i++) {
    const g = ids[i];
    const n0 = s.nodeOffset[g];
    const n = s.nodeOffset[g + 1] - n0;
    const e0 = s.edgeOffset[g];
    const ne = s.edgeOffset[g + 1] - e0;
    for (let j = 0; j < n; j++) {
      out.atomicNumber[ns + j] = s.atomicNumber[n0 + j];
      out.nodeGraph[ns + j] = i;
    }
    let cur = 0;
    for (let k = 0; k < ne; k++) {
      const r = s.receivers[e0 + k];
      out.senders[es + k] = s.senders[e0 + k] + ns;
      out.receivers[es + k] = r + ns;
      out.distance[es + k] = s.distance[e0 + k];
      while (cur <= r) out.recvPtr[ns + cur++] = es + k;
    }
    while (cur < n) out.recvPtr[ns + cur++] = es + ne;
    cur = 0;
    for (let k = 0; k < ne; k++) {
      const p = s.senderPerm[e0 + k];
      const snd = s.senders[e0 + p];
      out.sendPerm[es + k] = es + p;
      while (cur <= snd) out.sendPtr[ns + cur++] = es + k;
    }
    while (cur < n) out.sendPtr[ns + cur++] = es + ne;
    out.nNode[i] = n;
    out.nEdge[i] = ne;
    out.target[i] = s.target[g];
    out.mask[i] = 1;
    ns += n;
    es += ne;
  }
  const N = shape.nodes;
  const E = shape.edges;
  for (let k = es; k < E; k++) {
    out.senders[k] = ns;
    out.receivers[k] = ns;
    out.distance[k] = 0;
    out.sendPerm[k] = k;
  }
  for (let j = ns; j < N; j++) {
    out.atomicNumber[j] = 0;
    out.nodeGraph[j] = ids.length;
    out.recvPtr[j] = j === ns ? es : E;
    out.sendPtr[j] = j === ns ? es : E;
  }
  out.recvPtr[N] = E;
  out.sendPtr[N] = E;
  for (let i = ids.length; i < shape.graphs; i++) {
    const pad = i === ids.length;
    out.nNode[i] = pad ? N - ns : 0;
    out.nEdge[i] = pad ? E - es : 0;
    out.target[i] = 0;
    out.mask[i] = 0;
  }
}

function benchPack(log) {
  const batch = 128;
  const store = qm9LikeStore(Number(process.env.GNN_BENCH_STORE || 4096), 12345);
  const G = store.target.length;
  const rand = rng(7);
  const batches = Array.from({ length: 64 }, () => Int32Array.from({ length: batch }, () => Math.floor(rand() * G)));
  let maxN = 0;
  let maxE = 0;
  let sumN = 0;
  let sumE = 0;
  for (const ids of batches) {
    let n = 0;
    let e = 0;
    for (const g of ids) {
      n += store.nodeOffset[g + 1] - store.nodeOffset[g];
      e += store.edgeOffset[g + 1] - store.edgeOffset[g];
    }
    maxN = Math.max(maxN, n);
    maxE = Math.max(maxE, e);
    sumN += n;
    sumE += e;
  }
  // One padded shape for all batches (a static policy's shape).
  const shape = { nodes: maxN + 1, edges: maxE, graphs: batch + 1 };
  const out = allocOut(shape);
  const meanN = sumN / batches.length;
  const meanE = sumE / batches.length;
  // Bytes per call (mean batch): reads (store node, edge and graph arrays),
  // writes (every output array over the padded shape).
  const read = meanN * 1 + meanE * (4 + 4 + 4 + 4 + 4) + batch * (4 * 2 + 4 * 2 + 8 + 4);
  const written = shape.nodes * 16 + 8 + shape.edges * 16 + shape.graphs * 20;
  const traffic = read + written;

  let bi = 0;
  const nativeCall = () => addon.packGraphs(store, batches[bi++ & 63], shape, out);
  const k = timeIt(nativeCall, 1.5, 50, 20000);
  let bj = 0;
  const jsCall = () => packJs(store, batches[bj++ & 63], shape, out);
  for (let i = 0; i < 200; i++) jsCall(); // let the JIT optimise it
  const j = timeIt(jsCall, 1.5, 50, 20000);
  const m = memcpySeconds(traffic, 2001);
  // A fairer floor: memcpy of exactly the store slices the packer reads
  // (scattered graphs of the store), into the same output arrays.
  let bk = 0;
  const sliceSamples = [];
  for (let r = 0; r < 64; r++) sliceSamples.push(addon.copyGraphSlicesBench(store, batches[bk++ & 63], shape, out, 5));
  sliceSamples.sort((a, b) => a - b);
  const slices = sliceSamples[32];
  const data = {
    batch,
    meanNodes: meanN,
    meanEdges: meanE,
    meanNodesPerGraph: meanN / batch,
    meanEdgesPerGraph: meanE / batch,
    shape,
    bytes: traffic,
    seconds: k.seconds,
    reps: k.reps,
    graphsPerSecond: batch / k.seconds,
    gbps: traffic / k.seconds / 1e9,
    memcpyGbps: traffic / m / 1e9,
    ratio: m / k.seconds,
    sliceMemcpySeconds: slices,
    sliceRatio: slices / k.seconds,
    jsSeconds: j.seconds,
    jsGraphsPerSecond: batch / j.seconds,
    speedupVsJs: j.seconds / k.seconds,
  };
  log(
    `packGraphs batch ${batch} (${(meanN / batch).toFixed(1)} nodes, ${(meanE / batch).toFixed(0)} edges per graph): ` +
      `${(data.graphsPerSecond / 1e6).toFixed(2)} M graphs/s, ${data.gbps.toFixed(2)} GB/s, memcpy ${data.memcpyGbps.toFixed(2)} GB/s, ` +
      `ratio ${data.ratio.toFixed(2)} (vs memcpy of the same store slices: ${data.sliceRatio.toFixed(2)}), ${data.speedupVsJs.toFixed(1)}x the JS packer (${(data.jsGraphsPerSecond / 1e6).toFixed(3)} M graphs/s)`,
  );
  return data;
}

function fmt(x, d = 2) {
  return Number(x).toFixed(d);
}

async function run({ log, args = [] }) {
  // --threads N (or GNN_BENCH_THREADS): OpenMP threads for the kernels. On a
  // loaded shared machine, 1 thread avoids measuring barrier waits on a
  // descheduled second thread instead of the kernel.
  const ti = args.indexOf('--threads');
  const threads = Number(ti >= 0 ? args[ti + 1] : process.env.GNN_BENCH_THREADS || 0);
  if (threads > 0) addon.setThreads(threads);
  const info = addon.info();
  const load = os.loadavg()[0];
  const sizes = (process.env.GNN_BENCH_EDGES || '1e4,1e5,1e6,1e7').split(',').map(Number);
  log(`addon ${info.build}, ${info.threads} threads, simd ${info.simd}, ${os.cpus()[0].model}`);
  const segment = benchSegment(log, sizes);
  const pack = benchPack(log);
  const env = {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    cpu: os.cpus()[0].model,
    cores: os.cpus().length,
    threads: info.threads,
    build: info.build,
    simd: info.simd,
    loadAvg1m: load,
  };
  const segOk = segment.filter((r) => r.edges >= 1e6).every((r) => r.ratio >= 0.5);
  const md = [
    '## Kernels',
    '',
    `Command: \`npm run bench -- kernels\` (\`--json\` for JSON). ${env.date}, Node ${env.node}, ${env.cpu}, ` +
      `${env.cores} cores (load average ${fmt(load, 1)} at start), ${env.threads} OpenMP threads, ${env.build} build (${env.simd}). Medians over the reps shown; ` +
      'memcpy = in-run native memcpy moving the same number of bytes (read + written); ratio = memcpy time / kernel time.',
    '',
    '### segmentSumCsr, float32, width 64, rows = edges / 17',
    '',
    '| edges | rows | MB moved | time (ms) | GB/s | memcpy GB/s | ratio | reps |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...segment.map(
      (r) =>
        `| ${r.edges.toExponential(0)} | ${r.rows} | ${fmt(r.bytes / 1e6, 1)} | ${fmt(r.seconds * 1e3, 3)} | ${fmt(r.gbps)} | ${fmt(r.memcpyGbps)} | ${fmt(r.ratio)} | ${r.reps} |`,
    ),
    '',
    `Target ratio >= 0.5 at >= 1e6 edges: ${segOk ? 'met' : 'NOT met'}.`,
    '',
    '### packGraphs, QM9-like fully connected graphs, batch 128',
    '',
    `Store of 4096 graphs, 3..29 atoms; batches average ${fmt(pack.meanNodesPerGraph, 1)} nodes and ${fmt(pack.meanEdgesPerGraph, 0)} edges per graph; ` +
      `one padded shape {nodes: ${pack.shape.nodes}, edges: ${pack.shape.edges}, graphs: ${pack.shape.graphs}}; float32 outputs.`,
    '',
    '| graphs/s | time per batch (µs) | MB moved | GB/s | memcpy GB/s | ratio | slice-memcpy µs | ratio to slice memcpy | JS packer graphs/s | speed-up vs JS |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${fmt(pack.graphsPerSecond / 1e6, 2)} M | ${fmt(pack.seconds * 1e6, 1)} | ${fmt(pack.bytes / 1e6, 2)} | ${fmt(pack.gbps)} | ${fmt(pack.memcpyGbps)} | ${fmt(pack.ratio)} | ${fmt(pack.sliceMemcpySeconds * 1e6, 1)} | ${fmt(pack.sliceRatio)} | ${fmt(pack.jsGraphsPerSecond / 1e6, 3)} M | ${fmt(pack.speedupVsJs, 1)}x |`,
    '',
    `Targets: ratio >= 0.5 to the contiguous in-cache memcpy (${pack.ratio >= 0.5 ? 'met' : 'NOT met'}; to a memcpy of the same scattered store slices: ${fmt(pack.sliceRatio)}), >= 20x the JS packer (${pack.speedupVsJs >= 20 ? 'met' : 'NOT met'}).`,
  ].join('\n');
  return { markdown: md, data: { env, segmentSumCsr: segment, packGraphs: pack } };
}

module.exports = { run };
