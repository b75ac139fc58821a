/**
 * `gnnbatch study [SOURCE...]`: runs (or resumes) the study's grid, shows
 * progress, and prints the study's tables. A thin layer over {@link runStudy}.
 */
import type { Command } from 'commander';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { POLICY_NAMES } from '../batching';
import {
  DEFAULT_BATCHES, DEFAULT_EVAL_GRAPHS, DEFAULT_REPS, DEFAULT_STEPS, FULL_REPS, FULL_STEPS,
  analyseStudy, costTables, predictCosts, runStudy, studyTables, tableToText, ttestTable,
  type StudyProgress, type StudyResults,
} from '../experiment';
import type { ModelKind } from '../model/config';
import { intListOption, intOption, numberOption } from './format';
import { addSourceOptions, sourceOptionsFrom, type SourceOptionValues } from './source-options';

interface StudyCliOptions extends SourceOptionValues {
  out: string;
  steps?: number;
  reps?: number;
  batch?: number[];
  models?: string;
  policies?: string;
  threads?: number;
  seed: number;
  evalGraphs: number;
  full?: boolean;
  costPerHour?: number;
  budgetSteps: number;
  fresh?: boolean;
  quiet?: boolean;
}

/** The tables `study` prints (also used on a finished results file). */
export function formatStudyTables(results: StudyResults, budgetSteps: number, costPerHour?: number): string {
  const a = analyseStudy(results.rows);
  let out = '';
  for (const t of studyTables(a)) out += tableToText(t) + '\n';
  out += tableToText(ttestTable(a.ttests, a.alpha)) + '\n';
  const shapes = (data: string, policy: string, batch: number): number | undefined =>
    results.data.find((d) => d.data === data)?.simulation.find((r) => r.policy === policy && r.batch === batch)?.shapes;
  const costs = predictCosts(a.summaries, budgetSteps, costPerHour ?? NaN, shapes);
  for (const t of costTables(costs)) out += tableToText(t) + '\n';
  return out;
}

/** Registers `study` on the program. */
export function registerStudyCommand(program: Command): void {
  const cmd = program
    .command('study')
    .description('run the study (data x models x policies x batch sizes x repetitions), save results, print its tables')
    .argument('[sources...]', 'data sources (default: qm9-like:20000 aflow-like:8000)');
  // --format/--graph/--target/--drop-edgeless/--data-seed apply to every source
  // (default: each source's own graph rule and first numeric target).
  addSourceOptions(cmd);
  cmd
    .option('-o, --out <dir>', 'output folder (results.json, results.csv); running again resumes', 'study-results')
    .option('--steps <N>', `training steps per cell (default ${DEFAULT_STEPS}; --full: ${FULL_STEPS})`, intOption('--steps', 1))
    .option('--reps <R>', `repetitions per cell, seed = --seed + rep (default ${DEFAULT_REPS}; --full: ${FULL_REPS})`, intOption('--reps', 1))
    .option('--batch <list>', `batch sizes (default ${DEFAULT_BATCHES.join(',')})`, intListOption('--batch', 2))
    .option('--models <list>', 'models, comma-separated (default mpeu,schnet)')
    .option('--policies <list>', `policies, comma-separated (default ${POLICY_NAMES.join(',')})`)
    .option('--threads <T>', 'native threads', intOption('--threads', 1))
    .option('--seed <S>', 'base seed', intOption('--seed', 0), 42)
    .option('--eval-graphs <n>', 'graphs of val and test evaluated per cell (0: all)', intOption('--eval-graphs', 0), DEFAULT_EVAL_GRAPHS)
    .option('--full', `the study's own grid: ${FULL_REPS} repetitions, ${FULL_STEPS} steps, full evaluation`)
    .option('--cost-per-hour <x>', 'price per hour of this machine: adds the price of --budget-steps per policy', numberOption('--cost-per-hour'))
    .option('--budget-steps <N>', 'steps of the planned run the cost table predicts', intOption('--budget-steps', 1), 2000000)
    .option('--fresh', 'ignore saved results in the folder (overwrite instead of resuming)')
    .option('--quiet', 'no progress output')
    .action(async (sources: string[], o: StudyCliOptions) => {
      const list = (v: string | undefined): string[] | undefined => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
      const tty = !o.quiet && process.stderr.isTTY;
      let interrupted = false;
      const onSigint = (): void => {
        interrupted = true;
        process.stderr.write('\ninterrupted: stopping after saving finished cells (Ctrl-C again to abort)\n');
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSigint);
      const multibar = tty
        ? new MultiBar({ stream: process.stderr, hideCursor: true, clearOnComplete: false, format: '{label} |{bar}| {value}/{total} {unit} | eta {eta_formatted} {info}' }, Presets.shades_classic)
        : null;
      let overall: SingleBar | null = null;
      let cellBar: SingleBar | null = null;
      const t0 = Date.now();
      const onProgress = (e: StudyProgress): void => {
        const c = e.cell;
        const name = c ? `${c.data} ${c.model} ${c.policy} B=${c.batch} rep ${c.rep}` : '';
        if (multibar) {
          if (!overall) overall = multibar.create(e.cells, e.finished, { label: 'study', unit: 'cells', info: '' });
          if (e.kind === 'start') {
            if (!cellBar) cellBar = multibar.create(1, 0, { label: 'cell ', unit: 'steps', info: '' });
            cellBar.start(1, 0, { label: 'cell ', unit: 'steps', info: name });
          } else if (e.kind === 'step' && e.step && cellBar) {
            cellBar.setTotal(e.step.steps);
            cellBar.update(e.step.step, { info: `${name} | loss ${e.step.loss.toFixed(3)} | plans ${e.step.compileCount}` });
          } else if (e.kind === 'done' || e.kind === 'skip') {
            overall.update(e.finished, { info: e.kind === 'skip' ? '(resumed)' : '' });
          } else if (e.kind === 'load') overall.update(e.finished, { info: e.message ?? '' });
        } else if (!o.quiet) {
          if (e.kind === 'load') process.stderr.write(`${e.message}\n`);
          if (e.kind === 'done' && e.row) {
            const el = (Date.now() - t0) / 1000;
            process.stderr.write(`[${e.finished}/${e.cells}] ${name}: ${e.row.combined_ms_mean.toFixed(1)} ms/step mean, ${e.row.compile_count} plans, ${e.row.cell_seconds.toFixed(1)} s (elapsed ${el.toFixed(0)} s)\n`);
          }
        }
      };
      try {
        const outcome = await runStudy({
          outDir: o.out,
          data: sources,
          load: sourceOptionsFrom(o),
          models: list(o.models) as ModelKind[] | undefined,
          policies: list(o.policies),
          batches: o.batch,
          reps: o.reps ?? (o.full ? FULL_REPS : undefined),
          steps: o.steps ?? (o.full ? FULL_STEPS : undefined),
          seed: o.seed,
          threads: o.threads,
          evalGraphs: o.full ? 0 : o.evalGraphs,
          resume: !o.fresh,
          onProgress,
          shouldStop: () => interrupted,
        });
        multibar?.stop();
        const r = outcome.results;
        process.stdout.write(formatStudyTables(r, o.budgetSteps, o.costPerHour));
        process.stdout.write(
          `${outcome.ran} cell(s) run, ${outcome.skipped} resumed from ${o.out}/results.json, ${outcome.seconds.toFixed(0)} s; ${r.environment.cpu_model}, ${r.environment.cpu_cores} cores, node ${r.environment.node_version}\n`,
        );
        if (outcome.interrupted) process.stderr.write(`interrupted: ${r.rows.length} finished cell(s) saved in ${o.out}; run the same command again to resume\n`);
      } finally {
        multibar?.stop();
        process.removeListener('SIGINT', onSigint);
      }
    });
}
