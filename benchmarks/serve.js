// `gnnbatch serve` under load (issue 17): `npm run bench -- serve [--duration S]`.
//
// The server runs in its own process (`gnnbatch serve`, the study's MPEU on a
// short-trained checkpoint); autocannon drives it over loopback from this
// process with POST /v1/predict bodies of 4 qm9-like molecules, at 1, 8 and
// 64 connections, with request batching on (the default budget) and off
// (--max-batch-graphs 4 = the request size, so each request is its own native
// batch). Molecules per native batch and the server's event-loop delay p99 are
// read from its /metrics (deltas around each row).
//
// Serving measured against the engine (issue 27): the server's CPU time per
// molecule (user + system of its process, /proc/PID/stat, over each row) next to
// predictAsync's CPU time per molecule in this process (process.cpuUsage) on
// batches of the row's molecules per native batch, measured right after the row
// (the load generator stopped); the difference is what serving spends outside
// the forward (HTTP, JSON, queueing, scheduling), as a share of the forward's.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const autocannon = require('autocannon');
const { argValue } = require('./args');
const { benchCheckpoint } = require('./checkpoint');

const cli = path.join(__dirname, '..', 'dist', 'cli', 'main.js');

function startServe(ck, extra) {
  const child = spawn(process.execPath, [cli, 'serve', ck, '--port', '0', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = /on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (c, sig) => {
      // Before it listens: the start failed; after: a server that dies mid-run is said, with its last words.
      const e = new Error(`serve ${extra.join(' ') || '(defaults)'} exited (code ${c}, signal ${sig}): ${err.slice(-2000)}`);
      reject(e);
      if (/on http:/.test(err) && !stopping) {
        console.error(e.message);
        exited.push(e.message);
      }
    });
  });
}
/** Servers that died after they started listening (their messages); `stopping` once the benchmark stops them. */
const exited = [];
let stopping = false;

function getText(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function scrape(url) {
  // A fresh connection per scrape (agent: false), retried: right after a load row
  // the server may still be closing the load generator's sockets and reset a new one.
  let text;
  for (let i = 0; ; i++) {
    try {
      text = await getText(`${url}/metrics`);
      break;
    } catch (e) {
      if (i >= 10) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const get = (name) => {
    const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return {
    batchSum: get('gnnbatch_batch_graphs_sum'),
    batchCount: get('gnnbatch_batch_graphs_count'),
    lagP99: get('gnnbatch_nodejs_eventloop_lag_p99_seconds'),
  };
}

const CLK_TCK = 100; // Linux's USER_HZ: /proc/PID/stat counts CPU time in 1/100 s
/** CPU seconds (user + system) of a process so far, from /proc/PID/stat (NaN where there is none). */
function procCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15: utime, stime
  } catch {
    return NaN;
  }
}

/** predictAsync's CPU ms per molecule in this process on batches of `size` molecules (about `seconds` of calls). */
async function engineCpuPerMolecule(model, mols, size, seconds) {
  const batch = Array.from({ length: Math.max(1, Math.round(size)) }, (_, i) => mols[i % mols.length]);
  await model.predictAsync(batch);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  const lat = [];
  while (performance.now() - t0 < seconds * 1000) {
    const t = performance.now();
    await model.predictAsync(batch);
    lat.push(performance.now() - t);
    n += batch.length;
  }
  const c = process.cpuUsage(c0);
  lat.sort((a, b) => a - b);
  return { cpu_ms_per_molecule: (c.user + c.system) / 1000 / n, batch: batch.length, p50_ms: lat[lat.length >> 1] };
}

function cannon(opts) {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function run({ args, log }) {
  const duration = argValue(args, '--duration', 15);
  // Native threads of the server (default: the addon's, all cores).
  const serveThreads = argValue(args, '--serve-threads', 0);
  const g = require(path.join(__dirname, '..', 'dist'));
  const { dir, ck, steps: trainedSteps } = await benchCheckpoint(g);
  const mols = [...g.qm9Like(4, 77)];
  const body = JSON.stringify({ structures: mols.map((m) => ({ numbers: Array.from(m.numbers), positions: Array.from(m.positions) })) });
  const engine = g.loadModel(ck);
  const rows = [];
  // Both servers run side by side (idle when not measured) and the modes
  // alternate at each concurrency, so drifting machine load hits both alike.
  const servers = {};
  for (const mode of ['batching off', 'batching on']) {
    const extra = mode === 'batching off' ? ['--max-batch-graphs', '4'] : [];
    if (serveThreads > 0) extra.push('--threads', String(serveThreads));
    servers[mode] = await startServe(ck, extra);
  }
  try {
    for (const connections of [1, 8, 64]) {
      for (const mode of ['batching off', 'batching on']) {
        const { url } = servers[mode];
        // A short warm-up at this concurrency, not measured.
        await cannon({ url: `${url}/v1/predict`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections, duration: 1 });
        const before = await scrape(url);
        const cpu0 = procCpuSeconds(servers[mode].child.pid);
        const r = await cannon({ url: `${url}/v1/predict`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections, duration });
        if (exited.length) throw new Error(`a server died during the ${mode} row at ${connections} connections: ${exited.join('; ')}`);
        const cpu1 = procCpuSeconds(servers[mode].child.pid);
        const after = await scrape(url);
        const batches = after.batchCount - before.batchCount;
        const perBatch = batches > 0 ? (after.batchSum - before.batchSum) / batches : 4;
        // The engine alone on batches of the same size, right after the row.
        const e = await engineCpuPerMolecule(engine, mols, perBatch, 3);
        const served = r.requests.total * 4;
        const row = {
          mode,
          connections,
          requests_per_s: r.requests.average,
          molecules_per_s: 4 * r.requests.average,
          p50_ms: r.latency.p50,
          p99_ms: r.latency.p99,
          molecules_per_batch: batches > 0 ? (after.batchSum - before.batchSum) / batches : NaN,
          server_cpu_ms_per_molecule: served > 0 ? ((cpu1 - cpu0) * 1000) / served : NaN,
          engine_cpu_ms_per_molecule: e.cpu_ms_per_molecule,
          engine_batch: e.batch,
          engine_p50_ms: e.p50_ms,
          event_loop_p99_ms: after.lagP99 * 1000,
          errors: r.errors + r.timeouts + r.non2xx,
          requests: r.requests.total,
        };
        row.overhead_share = row.server_cpu_ms_per_molecule / row.engine_cpu_ms_per_molecule - 1;
        rows.push(row);
        log(`${mode}, ${connections} conn: ${row.requests_per_s.toFixed(0)} req/s, ${row.molecules_per_s.toFixed(0)} mol/s, p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms, ${row.molecules_per_batch.toFixed(1)} mol/batch, loop p99 ${row.event_loop_p99_ms.toFixed(1)} ms, errors ${row.errors}; CPU ms/molecule server ${row.server_cpu_ms_per_molecule.toFixed(3)} vs predictAsync ${row.engine_cpu_ms_per_molecule.toFixed(3)} (batches of ${e.batch})`);
      }
    }
  } finally {
    stopping = true;
    for (const { child } of Object.values(servers)) {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
  }
  engine.close?.();
  rows.sort((x, y) => (x.mode === y.mode ? x.connections - y.connections : x.mode === 'batching off' ? -1 : 1));
  fs.rmSync(dir, { recursive: true, force: true });
  const at = (mode, c) => rows.find((r) => r.mode === mode && r.connections === c);
  const speedup64 = at('batching on', 64).molecules_per_s / at('batching off', 64).molecules_per_s;
  const p50ratio1 = at('batching on', 1).p50_ms / at('batching off', 1).p50_ms;
  const overhead64 = at('batching on', 64).overhead_share;
  const cpu = os.cpus()[0].model;
  const lines = [
    '## Serving (`npm run bench -- serve`)',
    '',
    `${cpu}, ${os.cpus().length} CPUs; server and load generator share them. \`gnnbatch serve\` with the study's MPEU (${trainedSteps} training steps), ` +
      `${serveThreads > 0 ? `${serveThreads} native thread(s), ` : ''}autocannon on loopback, ${duration} s per row, POST /v1/predict of 4 qm9-like molecules. Batching off = \`--max-batch-graphs 4\` (each request is one native batch).`,
    '',
    '| mode | connections | requests/s | molecules/s | p50 ms | p99 ms | molecules per native batch | event-loop delay p99 ms | errors | server CPU ms/molecule | predictAsync CPU ms/molecule (same batch size) | serving overhead |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.mode} | ${r.connections} | ${r.requests_per_s.toFixed(0)} | ${r.molecules_per_s.toFixed(0)} | ${r.p50_ms} | ${r.p99_ms} | ${r.molecules_per_batch.toFixed(1)} | ${r.event_loop_p99_ms.toFixed(1)} | ${r.errors} | ${r.server_cpu_ms_per_molecule.toFixed(3)} | ${r.engine_cpu_ms_per_molecule.toFixed(3)} (${r.engine_batch}) | ${(100 * r.overhead_share).toFixed(0)}% |`),
    '',
    `At 64 connections batching gives ${speedup64.toFixed(2)}x the molecules/s of batching off; at 1 connection its p50 is ${p50ratio1.toFixed(2)}x batching off's (target <= 1.10). ` +
      `Serving overhead at 64 connections with batching (server CPU per molecule over predictAsync's on batches of the same size, minus 1: HTTP, JSON, queueing, scheduling): ${(100 * overhead64).toFixed(0)}% (target <= 20%).`,
    '',
    'Server CPU = user + system time of the server process over the row (/proc/PID/stat, 10 ms ticks), per molecule answered; predictAsync CPU = process.cpuUsage of this process over 3 s of back-to-back calls right after the row, with the load generator stopped. Both include the OpenMP team\'s spin-waiting, so the difference is what serving adds.',
  ];
  return { markdown: lines.join('\n'), data: { cpu, duration, rows, speedup64, p50ratio1, overhead64 } };
}

module.exports = { run };
