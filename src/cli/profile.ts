/**
 * `gnnbatch profile SOURCE ...`: per-kernel profile of training steps (calls,
 * time, flops, bytes, achieved GFLOP/s and GB/s against this machine's
 * measured limits, roofline bound, padding share) and an optional Chrome
 * trace. A thin layer over {@link profileSteps}.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { Option, type Command } from 'commander';
import { writeFileAtomic } from '../util/atomic';
import { renderProfileReport } from '../report/render';
import { POLICY_NAMES } from '../batching';
import { DEFAULT_SEED, defaultTarget } from '../data';
import { measureProfileOverhead, profileSteps, withGemmReference, writeChromeTrace, type KernelProfileEntry, type MachineLimits, type ProfileOverhead, type ProfileResult } from '../train/profile';
import { addSourceOptions, loadSourceFromCli, type SourceOptionValues } from './source-options';
import { intOption, numberOption, formatTable } from './format';
import { ArgumentError, GnnError, UsageError } from '../errors';
import { MODEL_KINDS, type ModelKind } from '../model/config';
import { needsDirections } from '../train/plan';
import { nativeModel } from '../native';

interface ProfileCliOptions extends SourceOptionValues {
  model: string;
  policy: string;
  batch: number;
  steps: number;
  warmup: number;
  threads?: number;
  seed: number;
  latent?: number;
  device: string;
  json?: boolean;
  trace?: string;
  overhead?: boolean;
  html?: string;
  blas?: boolean;
  forces?: boolean;
  energyWeight?: number;
  forceWeight?: number;
  stressWeight?: number;
}

/** The policies of a `--policy` list (usage error naming an unknown one). */
export function parsePolicies(text: string): string[] {
  const names = text.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (!names.length) throw new UsageError(`--policy '${text}': expected one or more of ${POLICY_NAMES.join(', ')}`);
  for (const n of names)
    if (!(POLICY_NAMES as readonly string[]).includes(n)) throw new UsageError(`--policy ${n}: unknown policy (use one of ${POLICY_NAMES.join(', ')})`);
  if (new Set(names).size !== names.length) throw new UsageError(`--policy ${text}: a policy is listed twice`);
  return names;
}

const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** The machine's measured references: best sample, how many, their spread, and any reference raised to a kernel's rate. */
export function formatLimits(l: MachineLimits): string {
  const range = (xs: readonly number[]): string => (xs.length > 1 ? `${f(Math.min(...xs), 1)}-${f(Math.max(...xs), 1)}, ` : '');
  const g = l.gemm_samples ?? [l.gemm_gflops];
  const s = l.stream_samples ?? [l.stream_gbps];
  let out =
    `machine: GEMM reference ${f(l.gemm_gflops, 1)} GFLOP/s (best of ${g.length} interleaved sample(s) of gemm 9984x64x128: ${range(g)}spread ${pct(l.gemm_spread ?? 0)}), ` +
    `bandwidth ${f(l.stream_gbps, 1)} GB/s (best of ${s.length}: ${range(s)}spread ${pct(l.stream_spread ?? 0)}; DRAM copy ${f(l.dram_gbps ?? NaN, 1)} GB/s), ridge ${f(l.ridge_flop_per_byte, 2)} flop/byte\n`;
  if (l.gemm_raised_by?.startsWith('BLAS')) out += `note: the ${l.gemm_raised_by} product ran faster than our GEMM: the reference is the BLAS's rate\n`;
  else if (l.gemm_raised_by) out += `note: kernel ${l.gemm_raised_by} ran faster than every GEMM sample: the reference was measured low and is raised to its rate\n`;
  if (l.stream_raised_by) out += `note: kernel ${l.stream_raised_by} moved bytes faster than every copy sample (operands in cache): the bandwidth reference is raised to its rate\n`;
  return out;
}

/** One shape of {@link blasComparison}: C[M x N] = A[M x K] B[K x N], float32. */
export interface BlasShape {
  m: number;
  n: number;
  k: number;
  /** The BLAS's best sample (GFLOP/s). */
  blas_gflops: number;
  blas_samples: number[];
  /** gnnbatch's own GEMM on the same shape, threads and moment (gemmBench, GFLOP/s). */
  ours_gflops: number;
}

/** Result of {@link blasComparison}. */
export interface BlasComparison {
  available: boolean;
  /** Why the BLAS could not be run (no python3, no numpy, no script). */
  reason?: string;
  /** The BLAS shared objects numpy mapped. */
  library?: string;
  threads: number;
  shapes: BlasShape[];
}

/** Shapes compared by default: a large square product and the model's edge products (both orientations). */
export const BLAS_SHAPES: readonly (readonly [number, number, number])[] = [
  [2048, 2048, 2048],
  [9984, 64, 128],
  [9984, 128, 64],
];

/**
 * A strong BLAS on the same cores, run beside our own GEMM: numpy's matmul
 * (Debian's numpy calls the system BLAS, OpenBLAS with libopenblas0) through
 * `/usr/bin/python3` (GNNBATCH_BENCH_PYTHON overrides) and
 * benchmarks/peers/blas_ref.py, with OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS)
 * = `threads`; our gemmBench on each shape right after. Used by the step
 * benchmark and `gnnbatch profile --blas` only; never by the library itself.
 * `available: false` with a reason when python3, numpy or the script is absent.
 */
export function blasComparison(threads: number, shapes: readonly (readonly [number, number, number])[] = BLAS_SHAPES): BlasComparison {
  const script = path.join(__dirname, '..', '..', 'benchmarks', 'peers', 'blas_ref.py');
  if (!fs.existsSync(script)) return { available: false, reason: `${script} is not there (it ships with the repository, not the package)`, threads, shapes: [] };
  const python = process.env.GNNBATCH_BENCH_PYTHON ?? '/usr/bin/python3';
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), OMP_WAIT_POLICY: undefined, GOMP_SPINCOUNT: undefined };
  const r = spawnSync(python, [script, ...shapes.map(([m, n, k]) => `${m}x${n}x${k}`), '--rounds', '3', '--reps', '3'], { env, encoding: 'utf8', timeout: 300_000 });
  if (r.error || r.status !== 0) return { available: false, reason: `${python} ${path.basename(script)} failed: ${r.error?.message ?? r.stderr.trim().split('\n').pop()}`, threads, shapes: [] };
  let doc: { available: boolean; reason?: string; library?: string; shapes?: { m: number; n: number; k: number; gflops: number; samples: number[] }[] };
  try {
    doc = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { available: false, reason: `${path.basename(script)} printed no JSON`, threads, shapes: [] };
  }
  if (!doc.available) return { available: false, reason: doc.reason ?? 'numpy unavailable', threads, shapes: [] };
  const api = nativeModel();
  const ours = (m: number, n: number, k: number): number => {
    api.gemmBench(m, n, k, 1);
    const reps = Math.max(3, Math.min(30, Math.round(2e9 / (2 * m * n * k))));
    let best = 0;
    for (let i = 0; i < 3; i++) best = Math.max(best, (2 * m * n * k) / api.gemmBench(m, n, k, reps) / 1e9);
    return best;
  };
  return {
    available: true,
    library: doc.library,
    threads,
    shapes: (doc.shapes ?? []).map((x) => ({ m: x.m, n: x.n, k: x.k, blas_gflops: x.gflops, blas_samples: x.samples, ours_gflops: ours(x.m, x.n, x.k) })),
  };
}

/** The BLAS comparison in a few lines. */
export function formatBlas(b: BlasComparison): string {
  if (!b.available) return `BLAS reference: not available (${b.reason})\n`;
  const lib = (b.library ?? 'unknown').split(', ').find((x) => /libopenblas|libblis|libmkl/i.test(path.basename(x))) ?? b.library;
  let out = `BLAS reference (numpy, ${lib}, ${b.threads} threads) vs our GEMM, same cores, same run:\n`;
  for (const x of b.shapes) out += `  ${x.m}x${x.n}x${x.k} (MxNxK): BLAS ${f(x.blas_gflops, 1)} GFLOP/s, ours ${f(x.ours_gflops, 1)} GFLOP/s (${f(x.ours_gflops / x.blas_gflops, 2)}x)\n`;
  return out;
}

/**
 * The per-kernel table (most time first) and the line that says how bytes
 * and flops are counted: what `gnnbatch profile` and `train --profile` print.
 */
export function formatKernelTable(kernels: readonly KernelProfileEntry[]): string {
  const rows = [...kernels].sort((a, b) => b.total_ms - a.total_ms);
  let out = formatTable(
    ['kernel', 'calls', 'ms/step', 'med ms', 'share', 'GFLOP', 'GB', 'GFLOP/s', 'GB/s', '%peak', '%bw', 'bound', 'pad', 'pad ms'],
    rows.map((k) => [
      k.kernel,
      String(k.calls),
      f(k.ms_per_step, 3),
      f(k.median_ms_per_step, 3),
      pct(k.share),
      f(k.gflop, 3),
      f(k.gb, 3),
      f(k.gflops, 1),
      f(k.gbps, 1),
      k.where === 'native' ? pct(k.peak_fraction) : '-',
      k.where === 'native' ? pct(k.bandwidth_fraction) : '-',
      k.bound === 'none' ? '-' : k.bound,
      pct(k.padding_share),
      f(k.padding_ms_per_step, 3),
    ]),
  );
  out += '\nbytes: each operand read once + output written once (gathered rows once per row, indices 4 B); GFLOP of GEMM rows = 2MNK.\n';
  return out;
}

/** The per-kernel table and the summary lines of a profile. */
export function formatProfile(r: ProfileResult): string {
  const w = r.forces;
  const kind = w ? `; force-training steps (loss weights energy / forces / stress ${w.energy} / ${w.forces} / ${w.stress}: forward, force pass, tangent forward, dual backward, Adam)` : '';
  const out =
    `${r.model} / ${r.policy} / B=${r.batch}: ${r.steps} measured steps (after ${r.warmup} warm-up), ${r.threads} threads${kind}\n` +
    `step ms median ${f(r.step_ms_median, 3)}, mean ${f(r.step_ms_mean, 3)}; fill nodes ${f(r.node_fill, 3)} edges ${f(r.edge_fill, 3)} graphs ${f(r.graph_fill, 3)}; plan builds ${r.plan_builds}\n` +
    formatLimits(r.limits) +
    `matrix work ${f(r.matrix_gflops, 1)} GFLOP/s = ${pct(r.matrix_peak_fraction)} of the GEMM reference; whole step ${f(r.step_gflops, 1)} GFLOP/s = ${pct(r.step_peak_fraction)}\n` +
    `padding costs ${f(r.padding_ms_per_step, 3)} ms/step (${pct(r.padding_share_of_step)} of the step); GEMM GFLOP/step ${f(r.gemm_gflop_per_step, 4)} (native counter ${f(r.counter_gflop_per_step, 4)})\n\n`;
  return out + formatKernelTable(r.kernels);
}

/** A usage error unless `file` (the value of `flag`, when given) names a file that can be written (not empty, not a directory). */
export function checkOutputFile(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  if (file === '') throw new UsageError(`${flag} needs a file name`);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new UsageError(`${flag} ${file}: is a directory, expected a file name`);
}

/** Registers `profile` on the program. */
export function registerProfileCommand(program: Command): void {
  const cmd = program
    .command('profile')
    .description('per-kernel profile of training steps: time, flops, bytes, roofline bound and padding share per kernel (and a Chrome trace)')
    .argument('<source>', 'data source: a file, directory, archive, .db, .gnb cache, or qm9-like[:N] / aflow-like[:N]');
  addSourceOptions(cmd);
  cmd
    .addOption(new Option('--model <kind>', 'mpeu | schnet | painn').choices([...MODEL_KINDS]).default('mpeu'))
    .option('--policy <names>', `batching policy, or several comma-separated (profiled one after the other): ${POLICY_NAMES.join(', ')}`, 'dynamic')
    .option('--batch <B>', 'batch size B', intOption('--batch', 2), 32)
    .option('--steps <N>', 'measured steps', intOption('--steps', 1), 20)
    .option('--warmup <N>', 'steps run before measuring (0: plan builds are part of the profile)', intOption('--warmup', 0), 0)
    .option('--threads <T>', 'native threads', intOption('--threads', 1))
    .option('--seed <S>', 'seed of initialisation and batch stream', intOption('--seed', 0), DEFAULT_SEED)
    .option('--latent <C>', 'latent size (default 64; PaiNN 128)', intOption('--latent', 1))
    .addOption(new Option('--device <d>', 'cpu (the CUDA engine has its own per-launch profile, not yet behind this command)').choices(['cpu', 'cuda']).default('cpu'))
    .option('--json', 'print one JSON document (an array of them for several policies)')
    .option('--trace <file>', 'write a Chrome trace-event JSON (Perfetto, chrome://tracing); one process per policy')
    .option('--html <file>', 'write an HTML report: roofline chart, per-kernel time stacked by run with its padding part, the tables')
    .option('--blas', 'also run a strong BLAS on the same cores (numpy through /usr/bin/python3, OpenBLAS on Debian; benchmarks/peers/blas_ref.py) beside our GEMM on 2048^3 and the model\'s shapes')
    .option('--overhead', 'also measure the cost of profiling: the same batches with profiling off and on, interleaved, 6 rounds')
    .option('--forces', 'profile force-training steps (energies and forces: the force pass and the double backward as their own rows, sites force.* and dbl.*; the data needs forces; every model; docs/forces.md); default target: energy when the data has it')
    .option('--energy-weight <W>', 'with --forces: wE (default 0.01)', numberOption('--energy-weight'))
    .option('--force-weight <W>', 'with --forces: wF (default 0.99)', numberOption('--force-weight'))
    .option('--stress-weight <W>', 'with --forces: wS (default 0; > 0 adds the stress term, whose kernels get rows too; the data needs stress)', numberOption('--stress-weight'))
    .action(async (source: string, o: ProfileCliOptions) => {
      if (o.device === 'cuda') throw new GnnError('ERR_GNN_UNSUPPORTED', '--device cuda: gnnbatch profile runs the CPU engine only for now (use --device cpu)');
      const policies = parsePolicies(o.policy);
      checkOutputFile('--trace', o.trace);
      checkOutputFile('--html', o.html);
      if (!o.forces && (o.energyWeight !== undefined || o.forceWeight !== undefined || o.stressWeight !== undefined))
        throw new UsageError('--energy-weight, --force-weight and --stress-weight need --forces');
      const forces = o.forces ? { energy: o.energyWeight, forces: o.forceWeight, stress: o.stressWeight } : undefined;
      const { store } = await loadSourceFromCli(source, { ...o, directions: o.forces || needsDirections({ kind: o.model as ModelKind }) });
      // Forces are the gradient of a total energy: prefer the 'energy' column when there is one (as train --forces does).
      const target = o.target ?? (o.forces && store.targetNames.includes('energy') ? 'energy' : defaultTarget(store));
      if (!target) throw new ArgumentError(`${source}: the data has no numeric target property`, 'ERR_GNN_DATA_TARGET');
      const model = { kind: o.model as ModelKind, latent: o.latent };
      const runs: { r: ProfileResult; overhead: ProfileOverhead | null }[] = [];
      for (const policy of policies) {
        const r = await profileSteps({ store, target, model, policy, batchSize: o.batch, steps: o.steps, warmup: o.warmup, seed: o.seed, threads: o.threads, collectTrace: o.trace !== undefined, forces });
        const overhead = o.overhead ? measureProfileOverhead({ store, target, model, policy, batchSize: o.batch, steps: o.steps, seed: o.seed, threads: o.threads, forces }) : null;
        runs.push({ r, overhead });
      }
      const blas = o.blas ? blasComparison(runs[0]?.r.threads ?? 1) : null;
      // Every figure against the best reference of the run: the BLAS too, where it ran faster than our GEMM.
      if (blas?.available && blas.shapes.length) {
        const best = blas.shapes.reduce((a, b) => (b.blas_gflops > a.blas_gflops ? b : a));
        for (const x of runs) x.r = withGemmReference(x.r, best.blas_gflops, `BLAS ${best.m}x${best.n}x${best.k}`);
      }
      if (o.trace !== undefined) writeChromeTrace(o.trace, runs.map((x) => x.r));
      if (o.html !== undefined) writeFileAtomic(o.html, await renderProfileReport(runs.map((x) => x.r)));
      const docs = runs.map(({ r, overhead }) => {
        const { events: _events, ...doc } = r;
        return { ...doc, trace: o.trace ?? null, overhead, blas };
      });
      if (o.json) process.stdout.write(JSON.stringify(docs.length === 1 ? docs[0] : docs, null, 1) + '\n');
      else {
        for (const { r, overhead } of runs) {
          process.stdout.write(formatProfile(r));
          if (overhead)
            process.stdout.write(
              `profiling overhead: native step median ${overhead.update_ms_off_median.toFixed(3)} ms off, ${overhead.update_ms_on_median.toFixed(3)} ms on ` +
                `(paired median ${(100 * overhead.overhead_fraction).toFixed(2)}%, of medians ${(100 * overhead.overhead_fraction_of_medians).toFixed(2)}%; ${overhead.samples} interleaved samples each)\n`,
            );
          if (runs.length > 1) process.stdout.write('\n');
        }
        if (blas) process.stdout.write(formatBlas(blas));
        if (o.trace !== undefined) process.stdout.write(`trace: ${o.trace} (open in https://ui.perfetto.dev or chrome://tracing)\n`);
        if (o.html !== undefined) process.stdout.write(`report: ${o.html}\n`);
      }
    });
}
