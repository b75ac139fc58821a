// "A good guest in its host process" (issue 17): `npm run bench -- host`.
//
// Every figure comes from fresh child processes (benchmarks/host-child.js),
// because libgomp reads its wait policy once per process. Variants:
//   source/libgomp-default : the source build with libgomp's own spin (GOMP_SPINCOUNT=300000, its default)
//   source/bounded         : the source build as gnnbatch loads it (bounded spin, DEFAULT_SPIN_COUNT)
//   source/passive         : OMP_WAIT_POLICY=passive (threads sleep at once)
//   prebuilt/x86-64-v4|v3  : the prebuilt binaries of the package (bounded spin)
//   source/spin=N          : with --spin-counts N,M,...: other spin bounds (GNNBATCH_SPIN_COUNT)
// Training-step rows are interleaved over rounds (ABCD ABCD ...) so machine
// load drifts hit every variant alike; the ratio column is against
// source/libgomp-default's median in the same run.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { argValue } = require('./args');
const { benchCheckpoint } = require('./checkpoint');

const child = path.join(__dirname, 'host-child.js');
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
};

function runChild(mode, env, ck) {
  const out = execFileSync(process.execPath, [child, mode, ck], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop());
}

async function run({ args, log }) {
  const rounds = argValue(args, '--rounds', 3);
  const dist = path.join(__dirname, '..', 'dist');
  const g = require(dist);
  const root = path.join(__dirname, '..');
  const havePrebuilt = fs.existsSync(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'manifest.json'));
  const variants = [
    { name: 'source/libgomp-default', env: { GOMP_SPINCOUNT: '300000' } },
    { name: 'source/bounded', env: {} },
    { name: 'source/passive', env: { OMP_WAIT_POLICY: 'passive' } },
  ];
  // Extra spin bounds to compare (`--spin-counts 10000,30000,300000`): how DEFAULT_SPIN_COUNT was chosen.
  const spinAt = args.indexOf('--spin-counts');
  if (spinAt >= 0) {
    for (const n of String(args[spinAt + 1] ?? '').split(',')) {
      if (!/^\d+$/.test(n)) throw new RangeError(`--spin-counts needs comma-separated integers, got '${args[spinAt + 1] ?? ''}'`);
      variants.push({ name: `source/spin=${n}`, env: { GNNBATCH_SPIN_COUNT: n } });
    }
  }
  if (havePrebuilt) {
    variants.push({ name: 'prebuilt/x86-64-v4', env: { GNNBATCH_ADDON: 'prebuilt' } });
    variants.push({ name: 'prebuilt/x86-64-v3', env: { GNNBATCH_ADDON: 'prebuilt', GNNBATCH_CPU_LEVEL: 'x86-64-v3' } });
  } else {
    log('no prebuilt binaries here (run `npm run build:prebuilt`): prebuilt rows skipped');
  }
  // A checkpoint of the study's MPEU (full size) for the predict rows.
  const { dir, ck } = await benchCheckpoint(g);

  const steps = Object.fromEntries(variants.map((v) => [v.name, []]));
  const levels = {};
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const res = runChild('step', v.env, ck);
      steps[v.name].push(res.step_ms);
      levels[v.name] = `${res.info.isa}/${res.info.simd}`;
      log(`round ${r + 1} ${v.name}: ${res.step_ms.toFixed(1)} ms/step`);
    }
  }
  // Other load on a shared machine only ever adds time, so the best round is the
  // least disturbed estimate of each variant; the median of the rounds is shown too.
  const best = (a) => Math.min(...a);
  const base = best(steps['source/libgomp-default']);
  const baseMedian = median(steps['source/libgomp-default']);
  const stepRows = variants.map((v) => ({
    variant: v.name,
    binary: levels[v.name],
    step_ms_best: best(steps[v.name]),
    step_ms_median: median(steps[v.name]),
    ratio_to_default: best(steps[v.name]) / base,
    ratio_to_default_median: median(steps[v.name]) / baseMedian,
    samples: steps[v.name],
  }));

  const idleRows = [];
  const contendRows = [];
  for (const v of variants.slice(0, 3)) {
    const i = runChild('idle', v.env, ck);
    const c = runChild('contend', v.env, ck);
    idleRows.push({ variant: v.name, ...i });
    contendRows.push({ variant: v.name, ...c });
    log(`${v.name}: idle ${i.cpu_ms_200ms_after_predict.toFixed(2)} ms CPU per 200 ms after a predict, ${i.cpu_ms_2s_idle.toFixed(2)} ms over 2 s; predict sync ${c.sync_alone_ms.toFixed(1)} / async ${c.async_alone_ms.toFixed(1)} ms alone, ${c.sync_busy_ms.toFixed(1)} / ${c.async_busy_ms.toFixed(1)} ms beside a busy pool`);
  }
  fs.rmSync(dir, { recursive: true, force: true });

  const cpu = os.cpus()[0].model;
  const lines = [
    '## Host process: idle threads, spin policy, prebuilt vs source build (`npm run bench -- host`)',
    '',
    `${cpu}, ${os.cpus().length} CPUs. Each cell is a fresh process; training rows are MPEU B=32, dynamic, qm9-like fc, 25 steps (median over steps), in ${rounds} interleaved rounds: the best round (least disturbed by other load) and the median round.`,
    '',
    '| variant | binary | step ms, best round | vs libgomp default | step ms, median round | vs libgomp default | rounds |',
    '|---|---|---|---|---|---|---|',
    ...stepRows.map((r) => `| ${r.variant} | ${r.binary} | ${r.step_ms_best.toFixed(1)} | ${r.ratio_to_default.toFixed(3)} | ${r.step_ms_median.toFixed(1)} | ${r.ratio_to_default_median.toFixed(3)} | ${r.samples.map((x) => x.toFixed(0)).join(' ')} |`),
    '',
    'Predict: 32 qm9-like molecules with the study\'s MPEU, median of 15 calls; "beside a busy pool" = a worker thread of the same process running its own predictions (its own OpenMP team) in a loop.',
    '',
    '| variant | CPU ms in the 200 ms after a predict | CPU ms over 2 s idle | sync ms | async ms | async / sync | sync ms, busy pool | async ms, busy pool | async / sync, busy | sync ms, onnxruntime busy | async ms, onnxruntime busy | async / sync, onnxruntime |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...idleRows.map((r, k) => {
      const c = contendRows[k];
      const ort = c.sync_ort_ms === undefined ? '| n/a | n/a | n/a' : `| ${c.sync_ort_ms.toFixed(1)} | ${c.async_ort_ms.toFixed(1)} | ${(c.async_ort_ms / c.sync_ort_ms).toFixed(2)}`;
      return `| ${r.variant} | ${r.cpu_ms_200ms_after_predict.toFixed(2)} | ${r.cpu_ms_2s_idle.toFixed(2)} | ${c.sync_alone_ms.toFixed(1)} | ${c.async_alone_ms.toFixed(1)} | ${(c.async_alone_ms / c.sync_alone_ms).toFixed(2)} | ${c.sync_busy_ms.toFixed(1)} | ${c.async_busy_ms.toFixed(1)} | ${(c.async_busy_ms / c.sync_busy_ms).toFixed(2)} ${ort} |`;
    }),
    '',
    contendRows.some((c) => c.sync_ort_ms !== undefined)
      ? '"onnxruntime busy" = a worker thread of the same process running onnxruntime-node (its default spinning intra-op pool) on a 4-layer 512-wide MLP in a loop (benchmarks/onnx-mlp.js writes the model).'
      : 'onnxruntime-node was not installed, so its columns are n/a (set GNNBATCH_BENCH_ORT to a folder whose node_modules has it).',
  ];
  return { markdown: lines.join('\n'), data: { cpu, stepRows, idleRows, contendRows } };
}

module.exports = { run };
