// `gnnbatch serve` under load (issue 17): `npm run bench -- serve [--duration S]`.
//
// The server runs in its own process (`gnnbatch serve`, the study's MPEU on a
// short-trained checkpoint); autocannon drives it over loopback from this
// process with POST /v1/predict bodies of 4 qm9-like molecules, at 1, 8 and
// 64 connections, with request batching on (the default budget) and off
// (--max-batch-graphs 4 = the request size, so each request is its own native
// batch). Molecules per native batch and the server's event-loop delay p99 are
// read from its /metrics (deltas around each row).
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
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
    child.on('exit', (c) => reject(new Error(`serve exited ${c}: ${err}`)));
  });
}

async function scrape(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
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
        const r = await cannon({ url: `${url}/v1/predict`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections, duration });
        const after = await scrape(url);
        const batches = after.batchCount - before.batchCount;
        const row = {
          mode,
          connections,
          requests_per_s: r.requests.average,
          molecules_per_s: 4 * r.requests.average,
          p50_ms: r.latency.p50,
          p99_ms: r.latency.p99,
          molecules_per_batch: batches > 0 ? (after.batchSum - before.batchSum) / batches : NaN,
          event_loop_p99_ms: after.lagP99 * 1000,
          errors: r.errors + r.timeouts + r.non2xx,
          requests: r.requests.total,
        };
        rows.push(row);
        log(`${mode}, ${connections} conn: ${row.requests_per_s.toFixed(0)} req/s, ${row.molecules_per_s.toFixed(0)} mol/s, p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms, ${row.molecules_per_batch.toFixed(1)} mol/batch, loop p99 ${row.event_loop_p99_ms.toFixed(1)} ms, errors ${row.errors}`);
      }
    }
  } finally {
    for (const { child } of Object.values(servers)) {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
  }
  rows.sort((x, y) => (x.mode === y.mode ? x.connections - y.connections : x.mode === 'batching off' ? -1 : 1));
  fs.rmSync(dir, { recursive: true, force: true });
  const at = (mode, c) => rows.find((r) => r.mode === mode && r.connections === c);
  const speedup64 = at('batching on', 64).molecules_per_s / at('batching off', 64).molecules_per_s;
  const p50ratio1 = at('batching on', 1).p50_ms / at('batching off', 1).p50_ms;
  const cpu = os.cpus()[0].model;
  const lines = [
    '## Serving (`npm run bench -- serve`)',
    '',
    `${cpu}, ${os.cpus().length} CPUs; server and load generator share them. \`gnnbatch serve\` with the study's MPEU (${trainedSteps} training steps), ` +
      `${serveThreads > 0 ? `${serveThreads} native thread(s), ` : ''}autocannon on loopback, ${duration} s per row, POST /v1/predict of 4 qm9-like molecules. Batching off = \`--max-batch-graphs 4\` (each request is one native batch).`,
    '',
    '| mode | connections | requests/s | molecules/s | p50 ms | p99 ms | molecules per native batch | event-loop delay p99 ms | errors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.mode} | ${r.connections} | ${r.requests_per_s.toFixed(0)} | ${r.molecules_per_s.toFixed(0)} | ${r.p50_ms} | ${r.p99_ms} | ${r.molecules_per_batch.toFixed(1)} | ${r.event_loop_p99_ms.toFixed(1)} | ${r.errors} |`),
    '',
    `At 64 connections batching gives ${speedup64.toFixed(2)}x the molecules/s of batching off (target >= 3x); at 1 connection its p50 is ${p50ratio1.toFixed(2)}x batching off's (target <= 1.10).`,
  ];
  return { markdown: lines.join('\n'), data: { cpu, duration, rows, speedup64, p50ratio1 } };
}

module.exports = { run };
