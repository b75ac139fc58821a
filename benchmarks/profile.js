// Per-kernel profile of MPEU, dynamic vs static-2pow (issue 11): `npm run bench -- profile [--steps N] [--warmup N] [--threads T]`.
// The study's question at kernel level: where static-2pow's extra time goes. For B = 32 and 128 on
// qm9-like:20000 (fully connected), each policy is profiled with `profileSteps` (what
// `gnnbatch profile` runs) after a warm-up; the table lists every kernel's ms/step under both
// policies, the difference, the padding time attributed to it under static-2pow, and its roofline
// bound; the same command prints the full tables:
//   gnnbatch profile qm9-like:20000 --model mpeu --batch 32 --policy dynamic,static-2pow --steps 20 --warmup 5
'use strict';
const path = require('path');
const dist = path.join(__dirname, '..', 'dist');
const { loadSource } = require(path.join(dist, 'data'));
const { profileSteps, measureProfileOverhead } = require(path.join(dist, 'train', 'profile'));
const { setThreads, getThreads, nativeInfo } = require(path.join(dist, 'native'));
const { argValue } = require('./args');

const f = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const signed = (x, d) => `${x >= 0 ? '+' : ''}${f(x, d)}`;

async function run({ args, log }) {
  const steps = argValue(args, '--steps', 20);
  const warmup = argValue(args, '--warmup', 5);
  setThreads(argValue(args, '--threads', 2));
  const source = 'qm9-like:20000';
  const { store } = await loadSource(source, { graph: 'fc' });
  const md = [
    '## Per-kernel profile: MPEU, dynamic vs static-2pow (`npm run bench -- profile`)',
    '',
    `${source}, fully connected, target U0, ${getThreads()} threads, SIMD ${nativeInfo().simd}; per policy ${warmup} warm-up steps then ${steps} profiled steps ` +
      '(each policy draws its own batch stream, seed 42). Times are per step over the profiled steps; padding ms = each kernel\'s time x its padded share of rows; ' +
      'bytes count each operand once (see `gnnbatch profile`). Reproduce one batch size with ' +
      `\`gnnbatch profile ${source} --model mpeu --batch 32 --policy dynamic,static-2pow --steps ${steps} --warmup ${warmup}\` (full tables, \`--trace\`, \`--html\`).`,
    '',
  ];
  const data = [];
  for (const batch of [32, 128]) {
    const runs = {};
    for (const policy of ['dynamic', 'static-2pow']) {
      runs[policy] = await profileSteps({ store, target: 'U0', model: { kind: 'mpeu' }, policy, batchSize: batch, steps, warmup, seed: 42 });
      const r = runs[policy];
      log(`B=${batch} ${policy}: step ${f(r.step_ms_median, 1)} ms median, padding ${f(r.padding_ms_per_step, 1)} ms/step (${pct(r.padding_share_of_step)}), edge fill ${f(r.edge_fill, 3)}`);
    }
    const d = runs.dynamic;
    const s = runs['static-2pow'];
    // What profiling costs: the same batches through the native step with profiling off and on, interleaved.
    const overhead = measureProfileOverhead({ store, target: 'U0', model: { kind: 'mpeu' }, policy: 'dynamic', batchSize: batch, steps: 10, seed: 42, rounds: 6 });
    log(`B=${batch} profiling overhead: paired median ${f(100 * overhead.overhead_fraction, 2)}% (${overhead.samples} pairs)`);
    data.push({ batch, dynamic: d, static_2pow: s, overhead });
    const names = [...new Set([...s.kernels, ...d.kernels].map((k) => k.kernel))];
    const row = (r, n) => r.kernels.find((k) => k.kernel === n);
    const rows = names
      .map((n) => ({ n, a: row(d, n), b: row(s, n) }))
      .sort((x, y) => (y.b?.ms_per_step ?? 0) - (x.b?.ms_per_step ?? 0));
    // The 12 costliest native kernels under static-2pow and the host phases; the rest summed.
    const isHost = (x) => (x.b ?? x.a).where === 'host';
    const nativeRows = rows.filter((x) => !isHost(x));
    const top = [...nativeRows.slice(0, 12), ...rows.filter(isHost)];
    const rest = nativeRows.slice(12);
    const sum = (list, side, key) => list.reduce((acc, x) => acc + (x[side]?.[key] ?? 0), 0);
    const extra = s.step_ms_mean - d.step_ms_mean;
    md.push(
      `### B = ${batch}`,
      '',
      `Step (mean over profiled steps): dynamic ${f(d.step_ms_mean, 1)} ms, static-2pow ${f(s.step_ms_mean, 1)} ms (${signed(extra, 1)} ms). ` +
        `Padding: dynamic ${f(d.padding_ms_per_step, 1)} ms/step (${pct(d.padding_share_of_step)} of its step; edge fill ${f(d.edge_fill, 3)}), ` +
        `static-2pow ${f(s.padding_ms_per_step, 1)} ms/step (${pct(s.padding_share_of_step)}; edge fill ${f(s.edge_fill, 3)}); plan builds ${d.plan_builds} and ${s.plan_builds}. ` +
        `Machine limits (in-run): GEMM ${f(d.limits.gemm_gflops, 1)} GFLOP/s, stream ${f(d.limits.stream_gbps, 1)} GB/s. ` +
        'The padding column is the time static-2pow spends on padded rows; where the two steps take about as long, dynamic\'s step carries that much more real work (its fill).',
      '',
      `Cost of profiling (dynamic, the native step of the same 10 batches with profiling off and on, interleaved over 6 rounds, ${overhead.samples} pairs): ` +
        `paired median ${signed(100 * overhead.overhead_fraction, 2)}%, medians ${f(overhead.update_ms_off_median, 1)} ms off and ${f(overhead.update_ms_on_median, 1)} ms on ` +
        `(\`gnnbatch profile ... --overhead\`; the records' hand-over to JS after the step is not included).`,
      '',
      '| kernel | dynamic ms/step | static-2pow ms/step | difference | static-2pow padding ms (share) | static-2pow GFLOP/s (% peak) | bound |',
      '|---|---:|---:|---:|---:|---:|---|',
      ...top.map(({ n, a, b }) => {
        const diff = (b?.ms_per_step ?? 0) - (a?.ms_per_step ?? 0);
        const native = b?.where === 'native';
        return `| ${n} | ${a ? f(a.ms_per_step, 3) : '-'} | ${b ? f(b.ms_per_step, 3) : '-'} | ${signed(diff, 3)} | ${b ? `${f(b.padding_ms_per_step, 3)} (${pct(b.padding_share)})` : '-'} | ${native ? `${f(b.gflops, 1)} (${pct(b.peak_fraction)})` : '-'} | ${b && b.bound !== 'none' ? b.bound : '-'} |`;
      }),
      `| the other ${rest.length} native kernels | ${f(sum(rest, 'a', 'ms_per_step'), 3)} | ${f(sum(rest, 'b', 'ms_per_step'), 3)} | ${signed(sum(rest, 'b', 'ms_per_step') - sum(rest, 'a', 'ms_per_step'), 3)} | ${f(sum(rest, 'b', 'padding_ms_per_step'), 3)} | - | - |`,
      `| all kernels and host phases | ${f(sum(rows, 'a', 'ms_per_step'), 3)} | ${f(sum(rows, 'b', 'ms_per_step'), 3)} | ${signed(sum(rows, 'b', 'ms_per_step') - sum(rows, 'a', 'ms_per_step'), 3)} | ${f(s.padding_ms_per_step, 3)} (${pct(s.padding_ms_per_step / Math.max(1e-12, sum(rows, 'b', 'ms_per_step')))}) | - | - |`,
      '',
    );
  }
  return { markdown: md.join('\n'), data: data.map(({ batch, dynamic, static_2pow, overhead }) => ({ batch, overhead, dynamic: { ...dynamic, events: undefined }, static_2pow: { ...static_2pow, events: undefined } })) };
}

module.exports = { run };
