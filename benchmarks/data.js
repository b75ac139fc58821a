#!/usr/bin/env node
/**
 * Data-layer benchmark (issue 3): build the graph store of 133,885 qm9-like
 * fully connected molecules with 2 threads (target < 30 s), write and reload
 * the .gnb cache (reload target < 2 s), and the store's bytes per edge.
 *
 * Run after building: `npm run build:ts && node benchmarks/data.js [N] [threads]`.
 * Prints one line per figure and a JSON summary on the last line.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const data = require('../dist/data');
const { setThreads } = require('../dist/native');

const N = Number(process.argv[2] ?? 133885);
const threads = Number(process.argv[3] ?? 2);
setThreads(threads);
const sec = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

let t0 = process.hrtime.bigint();
const structures = [...data.qm9Like(N, 42)];
const generateS = sec(t0);

t0 = process.hrtime.bigint();
const { store } = data.buildStore(structures, { graph: data.parseGraphRule('fc'), source: `qm9-like:${N}` });
const buildS = sec(t0);
const edges = store.senders.length;

const file = path.join(os.tmpdir(), `gnnbatch-bench-${process.pid}.gnb`);
t0 = process.hrtime.bigint();
data.saveStore(store, file);
const saveS = sec(t0);
const fileBytes = fs.statSync(file).size;

t0 = process.hrtime.bigint();
const back = data.loadStore(file);
const loadS = sec(t0);
t0 = process.hrtime.bigint();
data.loadStore(file, { verify: false });
const loadNoVerifyS = sec(t0);
fs.rmSync(file, { force: true });
if (back.senders.length !== edges) throw new Error('reloaded store differs');

const stats = data.storeStats(store);
const edgeBytes = store.senders.byteLength + store.receivers.byteLength + store.distance.byteLength + store.senderPerm.byteLength;
const summary = {
  graphs: store.numGraphs, atoms: store.atomicNumber.length, edges, threads,
  generateS, buildS, generateAndBuildS: generateS + buildS, saveS, loadS, loadNoVerifyS,
  storeBytesPerEdge: stats.bytesPerEdge, edgeArrayBytesPerEdge: edgeBytes / edges, fileBytes, fileBytesPerEdge: fileBytes / edges,
};
console.log(`qm9-like:${N} fc, ${threads} threads: ${summary.graphs} graphs, ${summary.atoms} atoms, ${edges} edges`);
console.log(`generate structures      ${generateS.toFixed(2)} s`);
console.log(`build store (native fc)  ${buildS.toFixed(2)} s   (generate + build ${(generateS + buildS).toFixed(2)} s; target < 30 s)`);
console.log(`save .gnb                ${saveS.toFixed(2)} s   (${(fileBytes / 1e6).toFixed(1)} MB)`);
console.log(`reload .gnb              ${loadS.toFixed(2)} s with checksums, ${loadNoVerifyS.toFixed(2)} s without (target < 2 s)`);
console.log(`bytes per edge           ${summary.storeBytesPerEdge.toFixed(2)} in memory (edge arrays alone ${summary.edgeArrayBytesPerEdge}), ${summary.fileBytesPerEdge.toFixed(2)} on disk`);
console.log(JSON.stringify(summary));
