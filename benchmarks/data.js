// Data-layer benchmark (issue 3): `npm run bench -- data [--graphs N] [--threads T] [--json]`.
// Builds the graph store of 133,885 qm9-like fully connected molecules
// (target < 30 s with 2 threads), writes and reloads the .gnb cache (reload
// target < 2 s), and states the store's bytes per edge.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const data = require(path.join(dist, 'data'));
const { setThreads, getThreads } = require(path.join(dist, 'native'));

const { argValue } = require('./args');
const sec = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

async function run({ args, log }) {
  const N = argValue(args, '--graphs', 133885);
  setThreads(argValue(args, '--threads', 2));
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
  const s = {
    graphs: store.numGraphs, atoms: store.atomicNumber.length, edges, threads: getThreads(),
    generate_s: generateS, build_s: buildS, save_s: saveS, load_s: loadS, load_no_verify_s: loadNoVerifyS,
    store_bytes_per_edge: stats.bytesPerEdge, edge_array_bytes_per_edge: edgeBytes / edges, file_bytes: fileBytes,
  };
  log(`qm9-like:${N}: generate ${generateS.toFixed(2)} s, build ${buildS.toFixed(2)} s, save ${saveS.toFixed(2)} s, reload ${loadS.toFixed(2)} s (${loadNoVerifyS.toFixed(2)} s without checksums)`);
  const md = [
    '## Data layer (`npm run bench -- data`)',
    '',
    `qm9-like:${N}, fully connected, ${s.threads} threads: ${s.graphs} graphs, ${s.atoms} atoms, ${s.edges} edges.`,
    '',
    '| step | seconds | target |',
    '|---|---|---|',
    `| generate structures (TypeScript generator) | ${generateS.toFixed(2)} | |`,
    `| build the store (native graph construction) | ${buildS.toFixed(2)} | |`,
    `| generate + build | ${(generateS + buildS).toFixed(2)} | < 30 |`,
    `| save .gnb (${(fileBytes / 1e6).toFixed(0)} MB, atomic) | ${saveS.toFixed(2)} | |`,
    `| reload .gnb with checksums | ${loadS.toFixed(2)} | < 2 |`,
    `| reload .gnb without checksums | ${loadNoVerifyS.toFixed(2)} | |`,
    '',
    `Store size: ${s.store_bytes_per_edge.toFixed(2)} bytes per edge in memory (the four edge arrays: ${s.edge_array_bytes_per_edge} = int32 sender, receiver, sender permutation + float32 distance), ${(fileBytes / edges).toFixed(2)} on disk.`,
  ];
  return { markdown: md.join('\n'), data: s };
}

module.exports = { run };
