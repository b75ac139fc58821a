/**
 * `gnnbatch train SOURCE ...`: trains one model with one batching policy and
 * prints the study's timing figures, learning metrics and (opt-in) the kernel
 * profile. A thin layer over {@link train}.
 */
import { Option, type Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { POLICY_NAMES, type PolicyName } from '../batching';
import { train, type TrainResult } from '../train/trainer';
import { DEFAULT_SEED, defaultTarget } from '../data';
import { addSourceOptions, loadSourceFromCli, type SourceOptionValues } from './source-options';
import { intOption, numberOption, formatTable } from './format';
import { prepareCheckpointDir } from '../train/checkpoint';
import { ArgumentError, GnnError, UsageError, isGnnError } from '../errors';
import { checkOutputFile, formatKernelTable, formatLimits } from './profile';
import { writeChromeTrace } from '../train/profile';
import { scheduleText } from '../train/schedule';
import { MODEL_KINDS, type ModelKind } from '../model/config';
import { needsDirections } from '../train/plan';
import { initDistributed, launchedByMpi, type DistributedContext } from '../train/distributed';

/**
 * train() names its options (device 'cuda', clipNorm, lr); the command's user
 * typed flags, so its errors say those instead.
 */
export function inFlagTerms(message: string): string {
  return message
    .replace(/\bdevice '(cpu|cuda|auto)'/g, '--device $1')
    .replace(/\btry clipNorm, a lower lr\b/g, 'try --clip, a lower --lr');
}

interface TrainCliOptions extends SourceOptionValues {
  model: string;
  policy: PolicyName; // commander's choices(POLICY_NAMES) checked it
  batch: number;
  steps: number;
  evalEvery: number;
  threads?: number;
  seed: number;
  checkpoint?: string;
  checkpointEvery: number;
  resume?: string;
  json?: boolean;
  lr: number;
  schedule: string;
  clip: number;
  device: string;
  atomref?: boolean;
  profile?: boolean;
  trace?: string;
  latent?: number;
  passes?: number;
  cutoff?: number;
  sharedFilters?: boolean;
  aggregation?: string;
  readout?: string;
  distributed?: string;
  microBatches?: number;
  forces?: boolean;
  energyWeight?: number;
  forceWeight?: number;
  stressWeight?: number;
  mpiTimeout?: number;
}

/** The force-training rows of the summary (none for energy-only runs). */
function forceRows(r: TrainResult, f: (x: number, d?: number) => string): [string, string][] {
  const ft = r.force_training;
  if (!ft) return [];
  const rows: [string, string][] = [['loss weights energy / forces / stress', `${ft.weights.energy} / ${ft.weights.forces} / ${ft.weights.stress} (${ft.dtype})`]];
  for (const [name, m] of [['val', ft.val], ['test', ft.test]] as const) {
    if (!m) continue;
    rows.push([`${name} energy MAE / RMSE (per structure)`, `${f(m.energy_mae, 4)} / ${f(m.energy_rmse, 4)}`]);
    rows.push([`${name} energy MAE / RMSE (per atom)`, `${f(m.energy_mae_per_atom, 4)} / ${f(m.energy_rmse_per_atom, 4)}`]);
    rows.push([`${name} force MAE / RMSE (per component)`, `${f(m.force_mae, 4)} / ${f(m.force_rmse, 4)}`]);
    if (m.stress_structures > 0) rows.push([`${name} stress RMSE`, f(m.stress_rmse, 5)]);
  }
  return rows;
}

/** Human-readable summary of a run. */
export function formatTrainResult(r: TrainResult): string {
  const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const rows: [string, string][] = [
    ['model / policy / batch', `${r.model} / ${r.policy} / ${r.batch}`],
    ['steps (this run)', `${r.steps} (${r.steps_run})`],
    ['device / threads', `${r.device} / ${r.threads}`],
    ['step ms (median, combined)', f(r.ms_per_step_median)],
    ['batching ms (median / mean)', `${f(r.batching_ms_median, 3)} / ${f(r.batching_ms_mean, 3)}`],
    ['update ms (median / mean)', `${f(r.update_ms_median)} / ${f(r.update_ms_mean)}`],
    ['combined ms mean (incl. compiles)', f(r.combined_ms_mean)],
    ['compilations (plans) / total ms', `${r.compile_count} / ${f(r.compile_ms_total, 1)}`],
    ['graphs per second', f(r.graphs_per_s, 1)],
    ['node / edge / graph fill', `${f(r.node_fill, 3)} / ${f(r.edge_fill, 3)} / ${f(r.graph_fill, 3)}`],
    ['update GFLOP/step, GFLOP/s', `${f(r.gflop_per_step, 3)}, ${f(r.gflops, 1)}`],
    ['final train loss (std. units)', f(r.final_train_loss, 4)],
    [`val RMSE / MAE (${r.target})`, `${f(r.val_rmse, 4)} / ${f(r.val_mae, 4)}`],
    [`test RMSE / MAE (${r.target})`, `${f(r.test_rmse, 4)} / ${f(r.test_mae, 4)}`],
    ['target std (train split)', f(r.target_std, 4)],
    ...(r.atomref ? [['residual std after atomrefs', f(r.residual_std, 4)] as [string, string]] : []),
    ...forceRows(r, f),
  ];
  let out = formatTable(['quantity', 'value'], rows);
  const kp = r.kernel_profile;
  if (kp) {
    // The table `gnnbatch profile` prints, over this run's steps (native kernels of the update).
    out += `\nkernel profile (CPU engine, ${r.steps_run} steps, ${r.threads} threads${kp.dropped_records ? `; ${kp.dropped_records} kernel calls not recorded: buffer full` : ''})\n`;
    out += formatLimits(kp.limits) + '\n';
    out += formatKernelTable(kp.kernels);
  }
  if (r.profile) {
    const phases = r.profile.map((p) => `${p.kernel} ${p.ms_per_step.toFixed(2)} (${(100 * p.share).toFixed(0)}%)`).join(', ');
    if (kp) out += `phases of the update (native timers, ms/step): ${phases}\n`;
    else out += `\nkernel profile (update phases, ms/step): ${phases}\n`;
  }
  return out;
}

/** Registers `train` on the program. */
export function registerTrainCommand(program: Command): void {
  const cmd = program
    .command('train')
    .description('train MPEU, SchNet or PaiNN on SOURCE with one batching policy and report the study timings')
    .argument('<source>', 'data source: a file, directory, archive, .db, .gnb cache, or qm9-like[:N] / aflow-like[:N]');
  addSourceOptions(cmd);
  cmd
    .addOption(new Option('--model <kind>', 'mpeu | schnet | painn (docs/painn.md)').choices([...MODEL_KINDS]).default('mpeu'))
    .addOption(new Option('--policy <name>', 'batching policy').choices([...POLICY_NAMES]).default('dynamic'))
    .option('--batch <B>', 'batch size B', intOption('--batch', 2), 32)
    .option('--steps <N>', 'training steps', intOption('--steps', 0), 1000)
    .option('--eval-every <K>', 'validation every K steps (0: only at the end)', intOption('--eval-every', 0), 0)
    .option('--threads <T>', 'native threads', intOption('--threads', 1))
    .option('--seed <S>', 'seed of initialisation and batch stream', intOption('--seed', 0), DEFAULT_SEED)
    .option('--lr <x>', 'peak learning rate', numberOption('--lr'), 1e-4)
    .option('--schedule <s>', 'constant | exponential[:rate:steps] (the study: 0.96 per 100k) | cosine[:minLr]', 'exponential')
    .option('--clip <x>', 'global-norm gradient clipping (0: off)', numberOption('--clip'), 0)
    .option('--atomref', 'fit per-element reference values on the train split and learn the residual (extensive targets such as U0)')
    .option('--latent <C>', 'latent size (default 64; PaiNN 128)', intOption('--latent', 1))
    .option('--passes <n>', 'message-passing steps / interaction blocks (default 3)', intOption('--passes', 1))
    .option('--cutoff <r>', 'PaiNN: cosine-cutoff radius in Å (default 5)', numberOption('--cutoff'))
    .option('--shared-filters', 'PaiNN: one filter for every interaction block')
    .addOption(new Option('--aggregation <a>', 'mean | sum').choices(['mean', 'sum']))
    .addOption(new Option('--readout <r>', 'mean | sum').choices(['mean', 'sum']))
    .option('--checkpoint <dir>', 'write checkpoints (safetensors + JSON) here')
    .option('--checkpoint-every <K>', 'checkpoint interval in steps (0: at the end)', intOption('--checkpoint-every', 0), 0)
    .option('--resume <dir>', 'resume from a checkpoint directory (bitwise identical on CPU)')
    .addOption(new Option('--device <d>', 'cpu | cuda | auto (CUDA when built with it and a GPU is present)').choices(['cpu', 'cuda', 'auto']).default('cpu'))
    .option('--profile', 'per-kernel profile of the update (calls, time, flops, bytes, GFLOP/s and GB/s against this machine\'s limits, roofline bound, padding share), as `gnnbatch profile` prints it')
    .option('--trace <file>', 'write a Chrome trace-event JSON of the run (Perfetto, chrome://tracing): step loop (policy, plan builds, pack, update, eval, checkpoint) and kernels; implies --profile; CPU engine')
    .addOption(new Option('--distributed <mode>', 'mpi: data-parallel training, one rank per process (mpirun, srun --mpi=pmix; detected from the MPI environment when not given) | none (docs/scale-out.md)').choices(['mpi', 'none']))
    .option('--micro-batches <N>', 'gradient accumulation: one step = N batches of the policy, gradients summed in a fixed order, one Adam step (default 1; with MPI the number of ranks, a multiple of it)', intOption('--micro-batches', 1))
    .option('--mpi-timeout <s>', 'with MPI: abort every rank when a step\'s gradient exchange waits longer than this (a rank died or hangs; default GNN_MPI_TIMEOUT_S or 300)', numberOption('--mpi-timeout'))
    .option('--forces', 'train on energies and forces (the data needs forces; docs/forces.md "Training"): loss = wE MSE(energy) + wF MSE(force components) [+ wS MSE(stress components)]; default target: energy when the data has it')
    .option('--energy-weight <W>', 'with --forces: wE (default 0.01)', numberOption('--energy-weight'))
    .option('--force-weight <W>', 'with --forces: wF (default 0.99)', numberOption('--force-weight'))
    .option('--stress-weight <W>', 'with --forces: wS, the weight of the stress MSE over the 3-D periodic structures with a stress (default 0; > 0 needs data with stress, e.g. aflow-like, extxyz stress/virial, ASE .db)', numberOption('--stress-weight'))
    .option('--json', 'print one JSON document')
    .action(async (source: string, o: TrainCliOptions) => {
      // MPI first (every rank runs this command): rank 0 reports, the others are quiet.
      if (o.mpiTimeout !== undefined && !(o.mpiTimeout > 0)) throw new UsageError(`--mpi-timeout must be a positive number of seconds, got ${o.mpiTimeout}`);
      const dist: DistributedContext | undefined =
        o.distributed === 'mpi' || (o.distributed === undefined && launchedByMpi())
          ? initDistributed({ timeoutMs: o.mpiTimeout !== undefined ? o.mpiTimeout * 1000 : undefined })
          : undefined;
      const quiet = dist !== undefined && dist.rank !== 0;
      // Paths first: a checkpoint directory that cannot be written fails now, not after the last step.
      if (o.checkpoint) prepareCheckpointDir(o.checkpoint);
      if (o.checkpointEvery > 0 && !o.checkpoint) throw new UsageError('--checkpoint-every needs --checkpoint DIR');
      checkOutputFile('--trace', o.trace);
      if (o.trace !== undefined && o.device !== 'cpu') throw new GnnError('ERR_GNN_UNSUPPORTED', `--trace with --device ${o.device}: the trace records the CPU engine's kernels (use --device cpu)`);
      if (!o.forces && (o.energyWeight !== undefined || o.forceWeight !== undefined || o.stressWeight !== undefined))
        throw new UsageError('--energy-weight, --force-weight and --stress-weight need --forces');
      const loaded = await loadSourceFromCli(source, { ...o, directions: o.forces || needsDirections({ kind: o.model as ModelKind }) });
      const store = loaded.store;
      // Forces are the gradient of a total energy: prefer the 'energy' column (ASE's, aflow-like's) when there is one.
      const target = o.target ?? (o.forces && store.targetNames.includes('energy') ? 'energy' : defaultTarget(store));
      if (!target) throw new ArgumentError(`${source}: the data has no numeric target property`, 'ERR_GNN_DATA_TARGET');
      const bar = !o.json && !quiet && process.stderr.isTTY
        ? new SingleBar({ format: 'train |{bar}| {value}/{total} steps | loss {loss} | {sps} steps/s | plans {plans} | eta {eta_formatted}', stream: process.stderr, hideCursor: true }, Presets.shades_classic)
        : null;
      bar?.start(o.steps, 0, { loss: '-', sps: '-', plans: 0 });
      // Ctrl-C: stop after the current step, write the checkpoint, say where it is, exit 130.
      // A second Ctrl-C exits at once (the last checkpoint written is still intact).
      let interrupted = false;
      const onSigint = (): void => {
        if (interrupted) {
          process.stderr.write(`\ninterrupted again: exiting without a final checkpoint${o.checkpoint ? ` (the last complete one in ${o.checkpoint} is intact)` : ''}\n`);
          process.exit(130);
        }
        interrupted = true;
        process.stderr.write('\ninterrupt: stopping after this step (Ctrl-C again to exit at once)\n');
      };
      process.on('SIGINT', onSigint);
      try {
        const { result, trace } = await train({
          store,
          target,
          model: {
            kind: o.model as ModelKind,
            latent: o.latent,
            passes: o.passes,
            cutoff: o.cutoff,
            sharedFilters: o.sharedFilters,
            aggregation: o.aggregation as 'mean' | 'sum' | undefined,
            readout: o.readout as 'mean' | 'sum' | undefined,
          },
          policy: o.policy,
          batchSize: o.batch,
          steps: o.steps,
          seed: o.seed,
          lr: o.lr,
          schedule: scheduleText(o.schedule),
          clipNorm: o.clip,
          atomref: o.atomref,
          device: o.device as 'cpu' | 'cuda' | 'auto',
          evalEvery: o.evalEvery,
          threads: o.threads,
          checkpointDir: o.checkpoint,
          checkpointEvery: o.checkpointEvery,
          resumeDir: o.resume,
          profile: o.profile || o.trace !== undefined,
          trace: o.trace !== undefined,
          onProgress: (p) => bar?.update(p.step, { loss: p.loss.toFixed(4), sps: p.stepsPerSec.toFixed(1), plans: p.compileCount }),
          shouldStop: () => interrupted,
          microBatches: o.microBatches,
          distributed: dist,
          forces: o.forces ? { energy: o.energyWeight, forces: o.forceWeight, stress: o.stressWeight } : undefined,
        });
        bar?.stop();
        dist?.finalize();
        if (quiet) return;
        if (o.trace !== undefined && trace) writeChromeTrace(o.trace, trace);
        if (o.json) process.stdout.write(JSON.stringify(result, null, 1) + '\n');
        else {
          process.stdout.write(formatTrainResult(result));
          if (o.trace !== undefined) process.stdout.write(`trace: ${o.trace} (open in https://ui.perfetto.dev or chrome://tracing)\n`);
        }
        for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
        if (result.stopped_early) {
          const where = result.checkpoint_step !== null && o.checkpoint
            ? `the checkpoint of step ${result.checkpoint_step} is in ${o.checkpoint} (continue with --resume ${o.checkpoint})`
            : 'no checkpoint was written (use --checkpoint DIR to keep progress)';
          process.stderr.write(`interrupted at step ${result.steps}: ${where}\n`);
          process.exitCode = 130;
        }
      } catch (e) {
        if (isGnnError(e)) e.message = inFlagTerms(e.message);
        throw e;
      } finally {
        bar?.stop();
        process.removeListener('SIGINT', onSigint);
      }
    });
}
