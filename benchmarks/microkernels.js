// Our dense products against micro-kernel libraries (issue 27: "evaluate a
// well-kept micro-kernel library against our own, keeping the fused
// gathers/epilogues; decide by measurement"): `npm run bench -- microkernels
// [--rounds N]`.
//
// Compiles benchmarks/peers/microkernels.cpp with the system compiler (-O3
// -march=native, OpenMP) against native/core/dense.cpp and, where installed,
// Debian's libxsmm (`apt-get install libxsmm-dev`: /usr/lib/libxsmm.a, linked
// statically) and BLIS (`libblis-dev`: the OpenMP build's libblis.a), then runs
// it: the training step's product shapes, float32, 2 threads, operands hot
// (reused) and cold (64 MiB written between calls), variants interleaved,
// medians. The libraries are used by this benchmark only; the addon does not
// link them. A library that is not installed is said in the section, not
// skipped silently.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { argValue } = require('./args');

const root = path.join(__dirname, '..');
const LIBXSMM = { header: '/usr/include/libxsmm.h', libs: ['/usr/lib/libxsmm.a', '/usr/lib/libxsmmnoblas.a'] };
const BLIS = {
  include: '/usr/include/x86_64-linux-gnu/blis-openmp',
  libs: ['/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.a'],
};

function build(dir) {
  const have = {
    libxsmm: fs.existsSync(LIBXSMM.header) && LIBXSMM.libs.every((f) => fs.existsSync(f)),
    blis: fs.existsSync(path.join(BLIS.include, 'blis.h')) && BLIS.libs.every((f) => fs.existsSync(f)),
  };
  const exe = path.join(dir, 'microkernels');
  const cxx = process.env.CXX || 'g++';
  const argv = ['-O3', '-march=native', '-fopenmp', '-std=c++17', `-I${path.join(root, 'native')}`, `-I${path.join(root, 'native', 'core')}`];
  if (have.libxsmm) argv.push('-DGNN_HAVE_LIBXSMM');
  if (have.blis) argv.push('-DGNN_HAVE_BLIS', `-I${BLIS.include}`);
  argv.push(path.join(__dirname, 'peers', 'microkernels.cpp'), path.join(root, 'native', 'core', 'dense.cpp'), path.join(root, 'native', 'core', 'threads.cpp'));
  if (have.libxsmm) argv.push(...LIBXSMM.libs);
  if (have.blis) argv.push(...BLIS.libs);
  argv.push('-lpthread', '-lrt', '-ldl', '-lm', '-o', exe);
  execFileSync(cxx, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  return { exe, have };
}

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function run({ args, log }) {
  const rounds = argValue(args, '--rounds', 15);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-microkernels-'));
  try {
    const { exe, have } = build(dir);
    const out = execFileSync(exe, [String(rounds)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
    const rows = [];
    const libs = [];
    const notes = [];
    for (const line of out.split('\n')) {
      const [tag, rest] = line.split('\t');
      if (tag === 'row') rows.push(JSON.parse(rest));
      else if (tag === 'lib') libs.push(rest);
      else if (tag === 'note') notes.push(rest);
    }
    const variants = ['ours', 'libxsmm', 'blis', 'blis-mt'].filter((v) => rows.some((r) => r.variant === v));
    const shapes = [];
    for (const r of rows) {
      const key = `${r.kind} ${r.M}x${r.N}x${r.K} ${r.epilogue} ${r.mode}`;
      let s = shapes.find((x) => x.key === key);
      if (!s) shapes.push((s = { key, kind: r.kind, M: r.M, N: r.N, K: r.K, epilogue: r.epilogue, mode: r.mode, v: {} }));
      s.v[r.variant] = r;
    }
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const lines = [];
    lines.push('## Micro-kernel libraries against our products (`npm run bench -- microkernels`)');
    lines.push('');
    lines.push(
      `${cpu}, ${os.cpus().length} CPUs, 2 threads, float32. The training step's products (E = 9,984 edge rows at B = 32, 39,936 at B = 128; ` +
        `576 node rows at B = 32): NN = C[M x N] = A[M x K] B[K x N] with the step's epilogue (bias + shifted softplus) fused per 96-row block where marked; ` +
        `TN = the weight gradient G[K x N] = X[M x K]^T D[M x N]. ours = native/core/dense.cpp as the addon runs it; ` +
        `libxsmm = its JIT kernel per 96-row block (NN, same fused epilogue in our OpenMP loop) or per 512-row chunk with transposed B, chunk partials summed in order (TN, the same determinism as ours); ` +
        `blis = bli_sgemm per 96-row block, 1 thread each, in our loop (same epilogue); blis-mt = one bli_sgemm with BLIS's own 2 threads, then the epilogue. ` +
        `hot = operands reused; cold = 64 MiB written between calls (the streamed operands come from memory, as inside a step). ` +
        `${rounds} interleaved rounds, medians, GFLOP/s (2MNK / time); the ratio column is ours / the best library. ` +
        `Every library result was compared with ours: largest |difference| / largest |ours| in the last column.`,
    );
    lines.push(`Libraries: ${libs.length ? libs.join('; ') : 'none installed'}` + (have.libxsmm ? '' : '; libxsmm not installed (apt-get install libxsmm-dev)') + (have.blis ? '' : '; BLIS not installed (apt-get install libblis-dev)') + '.');
    if (notes.length) lines.push(`Notes: ${notes.join('; ')}.`);
    lines.push('');
    lines.push(`| product | shape M x N x K | epilogue | operands | ${variants.join(' | ')} | ours / best library | max rel. difference |`);
    lines.push(`|---|---|---|---|${variants.map(() => '---:').join('|')}|---:|---:|`);
    const data = [];
    for (const s of shapes) {
      const libsHere = variants.filter((v) => v !== 'ours' && s.v[v]);
      const best = Math.max(...libsHere.map((v) => s.v[v].gflops));
      const ratio = libsHere.length ? s.v.ours.gflops / best : NaN;
      const diff = Math.max(0, ...libsHere.map((v) => s.v[v].relDiff));
      lines.push(
        `| ${s.kind} | ${s.M} x ${s.N} x ${s.K} | ${s.epilogue} | ${s.mode} | ${variants.map((v) => (s.v[v] ? fmt(s.v[v].gflops) : '-')).join(' | ')} | ${fmt(ratio, 2)} | ${diff.toExponential(1)} |`,
      );
      data.push({ ...s, ratio });
    }
    const nn = data.filter((d) => d.kind === 'NN' && Number.isFinite(d.ratio)).map((d) => d.ratio);
    const tn = data.filter((d) => d.kind === 'TN' && Number.isFinite(d.ratio)).map((d) => d.ratio);
    const range = (x) => (x.length ? `${fmt(Math.min(...x), 2)}-${fmt(Math.max(...x), 2)}` : 'not measured');
    lines.push('');
    lines.push(`Ours / best library: NN products ${range(nn)}, weight gradients (TN) ${range(tn)}. Decision and reasoning: docs/performance.md, "Micro-kernel libraries".`);
    const markdown = lines.join('\n');
    log(markdown);
    return { markdown, data: { rows: data, libraries: libs, have } };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { run };
