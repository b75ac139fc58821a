/**
 * `gnnbatch profile SOURCE ...`: per-kernel profile of training steps (calls,
 * time, flops, bytes, achieved GFLOP/s and GB/s against this machine's
 * measured limits, roofline bound, padding share) and an optional Chrome
 * trace. A thin layer over {@link profileSteps}.
 */
import * as fs from 'fs';
import { Option, type Command } from 'commander';
import { POLICY_NAMES } from '../batching';
import { defaultTarget } from '../data';
import { measureProfileOverhead, profileSteps, writeChromeTrace, type ProfileOverhead, type ProfileResult } from '../train/profile';
import { addSourceOptions, loadSourceFromCli, type SourceOptionValues } from './source-options';
import { intOption, formatTable } from './format';
import { ArgumentError, GnnError, UsageError } from '../errors';

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
}

/** The per-kernel table and the summary lines of a profile. */
export function formatProfile(r: ProfileResult): string {
  const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  let out =
    `${r.model} / ${r.policy} / B=${r.batch}: ${r.steps} measured steps (after ${r.warmup} warm-up), ${r.threads} threads\n` +
    `step ms median ${f(r.step_ms_median, 3)}, mean ${f(r.step_ms_mean, 3)}; fill nodes ${f(r.node_fill, 3)} edges ${f(r.edge_fill, 3)} graphs ${f(r.graph_fill, 3)}; plan builds ${r.plan_builds}\n` +
    `machine: GEMM peak ${f(r.limits.gemm_gflops, 1)} GFLOP/s, stream ${f(r.limits.stream_gbps, 1)} GB/s, ridge ${f(r.limits.ridge_flop_per_byte, 2)} flop/byte\n` +
    `padding costs ${f(r.padding_ms_per_step, 3)} ms/step (${pct(r.padding_share_of_step)} of the step); GEMM GFLOP/step ${f(r.gemm_gflop_per_step, 4)} (native counter ${f(r.counter_gflop_per_step, 4)})\n\n`;
  const rows = [...r.kernels].sort((a, b) => b.total_ms - a.total_ms);
  out += formatTable(
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

/** Registers `profile` on the program. */
export function registerProfileCommand(program: Command): void {
  const cmd = program
    .command('profile')
    .description('per-kernel profile of training steps: time, flops, bytes, roofline bound and padding share per kernel (and a Chrome trace)')
    .argument('<source>', 'data source: a file, directory, archive, .db, .gnb cache, or qm9-like[:N] / aflow-like[:N]');
  addSourceOptions(cmd);
  cmd
    .addOption(new Option('--model <kind>', 'mpeu | schnet').choices(['mpeu', 'schnet']).default('mpeu'))
    .addOption(new Option('--policy <name>', 'batching policy').choices([...POLICY_NAMES]).default('dynamic'))
    .option('--batch <B>', 'batch size B', intOption('--batch', 2), 32)
    .option('--steps <N>', 'measured steps', intOption('--steps', 1), 20)
    .option('--warmup <N>', 'steps run before measuring (0: plan builds are part of the profile)', intOption('--warmup', 0), 0)
    .option('--threads <T>', 'native threads', intOption('--threads', 1))
    .option('--seed <S>', 'seed of initialisation and batch stream', intOption('--seed', 0), 42)
    .option('--latent <C>', 'latent size (default 64)', intOption('--latent', 1))
    .addOption(new Option('--device <d>', 'cpu (the CUDA engine has its own per-launch profile, not yet behind this command)').choices(['cpu', 'cuda']).default('cpu'))
    .option('--json', 'print one JSON document')
    .option('--trace <file>', 'write a Chrome trace-event JSON (Perfetto, chrome://tracing)')
    .option('--overhead', 'also measure the cost of profiling: the same batches with profiling off and on, interleaved, 5 rounds')
    .action(async (source: string, o: ProfileCliOptions) => {
      if (o.device === 'cuda') throw new GnnError('ERR_GNN_UNSUPPORTED', '--device cuda: gnnbatch profile runs the CPU engine only for now (use --device cpu)');
      if (o.trace !== undefined) {
        if (o.trace === '') throw new UsageError('--trace needs a file name');
        if (fs.existsSync(o.trace) && fs.statSync(o.trace).isDirectory()) throw new UsageError(`--trace ${o.trace}: is a directory, expected a file name`);
      }
      const { store } = await loadSourceFromCli(source, o);
      const target = o.target ?? defaultTarget(store);
      if (!target) throw new ArgumentError(`${source}: the data has no numeric target property`, 'ERR_GNN_DATA_TARGET');
      const r = await profileSteps({
        store,
        target,
        model: { kind: o.model as 'mpeu' | 'schnet', latent: o.latent },
        policy: o.policy,
        batchSize: o.batch,
        steps: o.steps,
        warmup: o.warmup,
        seed: o.seed,
        threads: o.threads,
        collectTrace: o.trace !== undefined,
      });
      if (o.trace !== undefined) writeChromeTrace(o.trace, r);
      let overhead: ProfileOverhead | null = null;
      if (o.overhead)
        overhead = measureProfileOverhead({ store, target, model: { kind: o.model as 'mpeu' | 'schnet', latent: o.latent }, policy: o.policy, batchSize: o.batch, steps: o.steps, seed: o.seed, threads: o.threads });
      const { events: _events, ...doc } = r;
      if (o.json) process.stdout.write(JSON.stringify({ ...doc, trace: o.trace ?? null, overhead }, null, 1) + '\n');
      else {
        process.stdout.write(formatProfile(r));
        if (overhead)
          process.stdout.write(
            `profiling overhead: native step median ${overhead.update_ms_off_median.toFixed(3)} ms off, ${overhead.update_ms_on_median.toFixed(3)} ms on ` +
              `(paired median ${(100 * overhead.overhead_fraction).toFixed(2)}%, of medians ${(100 * overhead.overhead_fraction_of_medians).toFixed(2)}%; ${overhead.samples} interleaved samples each)\n`,
          );
        if (o.trace !== undefined) process.stdout.write(`trace: ${o.trace} (open in https://ui.perfetto.dev or chrome://tracing)\n`);
      }
    });
}
