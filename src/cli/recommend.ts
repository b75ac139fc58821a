/**
 * `gnnbatch recommend SOURCE --model mpeu --batch 32 [--steps N]`: predicts
 * the fastest batching policy for a planned run from a short calibration and
 * a policy simulation; `--verify` runs the candidates for real;
 * `--grid results.json` measures the hit rate over a finished study.
 */
import type { Command } from 'commander';
import { POLICY_NAMES } from '../batching';
import { measuredLabel, readResults, recommend, studyHitRate, verifyRecommendation, type Recommendation } from '../experiment';
import { writeFileAtomic } from '../util/atomic';
import { MODEL_KINDS, type ModelKind } from '../model/config';
import { needsDirections } from '../train/plan';
import { addSourceOptions, loadSourceFromCli, type SourceOptionValues } from './source-options';
import { formatTable, intOption } from './format';
import { UsageError } from '../errors';
import { DEFAULT_SEED } from '../data';

interface RecommendCliOptions extends SourceOptionValues {
  model: string;
  batch: number;
  steps: number;
  policies?: string;
  threads?: number;
  seed: number;
  json?: boolean;
  verify?: boolean;
  verifySteps?: number;
  grid?: string;
  out?: string;
}

/** Human-readable recommendation. */
export function formatRecommendation(r: Recommendation): string {
  const c = r.cost_model;
  const f = (x: number, d = 2): string => x.toFixed(d);
  let out = `cost model (${c.points.length} calibration shapes, ${f(c.seconds, 1)} s): step ms = ${c.ms_per_edge.toExponential(3)} x padded edges + ${c.ms_per_node.toExponential(3)} x padded nodes + ${f(c.ms_per_step, 3)}; `;
  out += `compile ms = ${c.compile_ms_per_edge.toExponential(3)} x edges + ${f(c.compile_ms_base, 3)}\n`;
  out += formatTable(
    ['policy', 'padded nodes/step', 'padded edges/step', 'graphs/batch', 'step ms', 'compilations', 'compile s', `total s (${r.steps} steps)`],
    r.predictions.map((p) => [p.policy, p.mean_padded_nodes.toFixed(0), p.mean_padded_edges.toFixed(0), p.graphs_per_batch.toFixed(1), f(p.step_ms), String(p.compiles), f(p.compile_ms / 1000, 3), f(p.total_s, 2)]),
  );
  out += `choice: ${r.tied.length > 1 ? `tie: ${r.tied.join(', ')} (within the calibration's ${(100 * r.spread).toFixed(1)}% step-time spread; ${r.choice} predicted fastest)` : r.choice}\nreason: ${r.reason}\n`;
  return out;
}

/** Registers `recommend` on the program. */
export function registerRecommendCommand(program: Command): void {
  const cmd = program
    .command('recommend')
    .description('predict the fastest batching policy for a planned run (calibrated cost model + policy simulation)')
    .argument('[source]', 'data source (as for train); omit with --grid');
  addSourceOptions(cmd);
  cmd
    .option('--model <kind>', 'mpeu | schnet | painn', 'mpeu')
    .option('--batch <B>', 'batch size B', intOption('--batch', 2), 32)
    .option('--steps <N>', 'planned training steps', intOption('--steps', 1), 100000)
    .option('--policies <list>', `candidates, comma-separated (default ${POLICY_NAMES.join(',')})`)
    .option('--threads <T>', 'native threads', intOption('--threads', 1))
    .option('--seed <S>', 'seed of the batch stream', intOption('--seed', 0), DEFAULT_SEED)
    .option('--verify', 'run every candidate for real and print predicted vs measured')
    .option('--verify-steps <n>', 'steps per candidate for --verify (default min(--steps, 30))', intOption('--verify-steps', 1))
    .option('--grid <results>', 'hit rate over a finished study: predict each (data, model, B) of results.json and compare with the measured fastest')
    .option('-o, --out <file>', 'with --grid: write the hit-rate JSON here')
    .option('--json', 'print one JSON document')
    .action(async (source: string | undefined, o: RecommendCliOptions) => {
      if (o.grid) {
        const results = readResults(o.grid);
        const tty = process.stderr.isTTY && !o.json;
        const h = await studyHitRate(results, { threads: o.threads, onProgress: (d, t) => tty && process.stderr.write(`\rcalibrating ${d}/${t}`) });
        if (tty) process.stderr.write('\r\x1b[K');
        if (o.out) writeFileAtomic(o.out, JSON.stringify(h, null, 1));
        if (o.json) process.stdout.write(JSON.stringify(h, null, 1) + '\n');
        else {
          process.stdout.write(formatTable(['data', 'model', 'B', 'predicted', 'measured', 'hit', 'chosen/fastest'], h.rows.map((r) => [r.data, r.model, String(r.batch), r.predicted, measuredLabel(r), r.hit ? 'yes' : 'no', `${r.regret.toFixed(3)}x`])));
          process.stdout.write(`hit rate: ${h.hits}/${h.total} (${(100 * h.rate).toFixed(0)}%), within 5% of the fastest: ${h.within5}/${h.total}; calibration ${h.calibration_seconds.toFixed(0)} s\n`);
        }
        return;
      }
      if (!source) throw new UsageError('recommend: give a SOURCE (or --grid results.json)');
      if (!(MODEL_KINDS as readonly string[]).includes(o.model)) throw new UsageError(`--model ${o.model}: expected one of ${MODEL_KINDS.join(', ')}`);
      const { store } = await loadSourceFromCli(source, { ...o, directions: needsDirections({ kind: o.model as ModelKind }) });
      const opts = {
        store,
        target: o.target,
        model: o.model as ModelKind,
        batchSize: o.batch,
        steps: o.steps,
        policies: o.policies ? o.policies.split(',').map((s) => s.trim()) : undefined,
        threads: o.threads,
        seed: o.seed,
      };
      const rec = recommend(opts);
      const verification = o.verify
        ? await verifyRecommendation({ ...opts, verifySteps: o.verifySteps ?? Math.min(o.steps, 30), onPolicy: (p) => !o.json && process.stderr.isTTY && process.stderr.write(`\rverifying ${p}...\x1b[K`) }, rec)
        : undefined;
      if (!o.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      if (o.json) {
        process.stdout.write(JSON.stringify({ ...rec, verification }, null, 1) + '\n');
        return;
      }
      process.stdout.write(formatRecommendation(rec));
      if (verification) {
        const v = verification;
        process.stdout.write(`\nverification (${v.rows[0]?.steps ?? 0} steps per policy, evaluation skipped)\n`);
        process.stdout.write(formatTable(['policy', 'predicted s', 'measured s', 'measured/predicted'], v.rows.map((r) => [r.policy, r.predicted_s.toFixed(2), r.measured_s.toFixed(2), r.ratio.toFixed(2)])));
        process.stdout.write(`predicted fastest for ${v.rows[0]?.steps ?? 0} steps: ${v.predicted_choice}, measured fastest: ${v.measured_fastest}: ${v.hit ? 'hit' : `miss (choice ${v.regret.toFixed(3)}x the fastest)`}\n`);
      }
    });
}
