/**
 * `gnnbatch study [SOURCE...]`: runs (or resumes) the study's grid, or one
 * shard of it (`--shard I/N`, or a Slurm array / Kubernetes Indexed Job's
 * environment), shows progress, and prints the study's tables.
 * `gnnbatch study merge DIR... -o OUT` merges shards into one results file.
 * A thin layer over {@link runStudy} and {@link mergeStudyDirs}.
 */
import * as fs from 'fs';
import * as path from 'path';
import { InvalidArgumentError, type Command } from 'commander';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { POLICY_NAMES } from '../batching';
import {
  DEFAULT_BATCHES, DEFAULT_EVAL_GRAPHS, DEFAULT_REPS, DEFAULT_STEPS, FULL_REPS, FULL_STEPS,
  LEARNED_RMSE_FRACTION, RANKING_STATISTIC, StudyError, analyseStudy, learnedCells, overallRecommendations, overallTable, policyCosts, recommendPolicies, recommendationTable, costTables, mergeStudyDirs, studyGrid, parseCostModels, resolveShard, runStudy, shardDirName, studyTables, tableToText, ttestTable,
  type CellCostCoefficients, type MergeOutcome, type StudyProgress, type StudyResults,
} from '../experiment';
import type { ModelKind } from '../model/config';
import { renderReport } from '../report';
import { atomrefSentence } from '../report/render';
import { writeFileAtomic } from '../util/atomic';
import { UsageError } from '../errors';
import { formatTable, intListOption, intOption, numberOption } from './format';
import { parseShardCount } from '../experiment/shard';
import { addSourceOptions, sourceOptionsFrom, type SourceOptionValues } from './source-options';

interface StudyCliOptions extends SourceOptionValues {
  out: string;
  steps?: number;
  reps?: number;
  batch?: number[];
  models?: string[];
  policies?: string[];
  threads?: number;
  seed: number;
  evalGraphs: number;
  full?: boolean;
  costPerHour?: number;
  budgetSteps: number;
  fresh?: boolean;
  quiet?: boolean;
  shard?: string;
  shards?: number;
  costModel?: string;
  report: boolean;
  /** true: --atomref, false: --no-atomref, undefined: auto. */
  atomref?: boolean;
}

interface MergeCliOptions {
  out: string;
  allowPartial?: boolean;
  json?: boolean;
  report: boolean;
}

/** Parser for a comma-separated list of names from `allowed` (a usage error names the unknown one). */
function namesOption(what: string, allowed: readonly string[]): (v: string) => string[] {
  return (v: string) => {
    const names = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const n of names) if (!allowed.includes(n)) throw new InvalidArgumentError(`unknown ${what} '${n}' (expected one of ${allowed.join(', ')})`);
    return names;
  };
}

function readCostModels(file: string): Record<string, CellCostCoefficients> {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--cost-model ${file}: cannot read a JSON document (${(e as Error).message})`);
  }
  return parseCostModels(doc, file);
}

/** What `study merge` prints: the inputs, the balance, hardware warnings, what was written. */
export function formatMergeOutcome(m: MergeOutcome, outDir: string): string {
  const shards = m.results.merged_from ?? [];
  let out = formatTable(
    ['shard', 'file', 'cells', 'cell s', 'estimated s', 'machine'],
    shards.map((s) => [
      s.index === null ? '-' : `${s.index}/${s.count}`,
      s.file,
      String(s.rows),
      s.cell_seconds.toFixed(1),
      s.estimated_ms === null ? '-' : (s.estimated_ms / 1000).toFixed(1),
      `${s.environment.cpu_model}, ${s.environment.cpu_cores} cores`,
    ]),
  );
  if (m.balance !== null) out += `balance (max shard / mean): measured ${m.balance.toFixed(3)} (summed cell seconds), estimated ${(m.estimated_balance ?? NaN).toFixed(3)}\n`;
  out += `wrote ${path.join(outDir, 'results.json')} and results.csv: ${m.results.rows.length} rows, fingerprint ${m.results.fingerprint}\n`;
  return out;
}

/** The tables `study` prints (also used on a finished results file). */
export function formatStudyTables(results: StudyResults, budgetSteps: number, costPerHour?: number): string {
  const a = analyseStudy(results.rows);
  let out = '';
  for (const t of studyTables(a)) out += tableToText(t) + '\n';
  out += atomrefSentence(results) + '\n\n';
  // Significance tests between models that learned nothing compare noise: only cells whose runs learned.
  const cells = learnedCells(results);
  const trained = new Set(cells.filter((c) => c.learned).map((c) => `${c.data}\u0000${c.model}\u0000${c.batch}`));
  const untrained = cells.filter((c) => !c.learned);
  if (untrained.length)
    out += `the models did not learn in ${untrained.length} of ${cells.length} (data, model, B) cell(s) (test RMSE above ${LEARNED_RMSE_FRACTION} x the std of what they learn, or train loss above ${(LEARNED_RMSE_FRACTION ** 2).toFixed(2)}): no test-RMSE t-tests for them; train longer (--steps, --full) to compare how the policies learn\n\n`;
  const tests = a.ttests.filter((t) => trained.has(`${t.data}\u0000${t.model}\u0000${t.batch}`));
  if (tests.length) out += tableToText(ttestTable(tests, a.alpha)) + '\n';
  const shapes = (data: string, policy: string, batch: number): number | undefined =>
    results.data.find((d) => d.data === data)?.simulation.find((r) => r.policy === policy && r.batch === batch)?.shapes;
  // One ranking for the cost tables and the recommendation: medians over repetitions, with their range (see RANKING_STATISTIC).
  const costs = policyCosts(results.rows, budgetSteps, costPerHour ?? NaN, shapes);
  for (const t of costTables(costs)) out += tableToText(t) + '\n';
  const recs = recommendPolicies(costs);
  out += tableToText(overallTable(overallRecommendations(recs))) + '\n';
  out += tableToText(recommendationTable(recs, budgetSteps));
  out += `${RANKING_STATISTIC}\n\n`;
  return out;
}

/**
 * Writes the study's HTML report as `report.html` beside its `results.json`
 * and returns the file's path. Throws ERR_GNN_OUTPUT_PATH naming the file
 * when it cannot be written.
 */
export async function writeStudyReport(outDir: string, results: StudyResults, budgetSteps: number, costPerHour?: number): Promise<string> {
  const file = path.join(outDir, 'report.html');
  const html = await renderReport(results, { budgetSteps, costPerHour });
  try {
    writeFileAtomic(file, html);
  } catch (e) {
    throw new StudyError('ERR_GNN_OUTPUT_PATH', `${file}: cannot write the study's report (${(e as Error).message})`);
  }
  return file;
}

/** Registers `study` on the program. */
export function registerStudyCommand(program: Command): void {
  // `study merge ... -o OUT` has its own -o: the program and `study` must stop
  // parsing their options at a subcommand so that merge's options reach it.
  program.enablePositionalOptions();
  const cmd = program
    .command('study')
    .enablePositionalOptions()
    .description('run the study (data x models x policies x batch sizes x repetitions), save results, print its tables')
    .argument('[sources...]', 'data sources (default: qm9-like:20000 aflow-like:8000)');
  // --format/--graph/--target/--drop-edgeless/--data-seed apply to every source
  // (default: each source's own graph rule and first numeric target).
  addSourceOptions(cmd);
  cmd
    .option('-o, --out <dir>', 'output folder (results.json, results.csv, report.html); running again resumes', 'study-results')
    .option('--steps <N>', `training steps per cell (default ${DEFAULT_STEPS}; --full: ${FULL_STEPS})`, intOption('--steps', 1))
    .option('--reps <R>', `repetitions per cell, seed = --seed + rep (default ${DEFAULT_REPS}; --full: ${FULL_REPS})`, intOption('--reps', 1))
    .option('--batch <list>', `batch sizes (default ${DEFAULT_BATCHES.join(',')})`, intListOption('--batch', 2))
    .option('--models <list>', 'models, comma-separated: mpeu, schnet, painn (default mpeu,schnet)', namesOption('model', ['mpeu', 'schnet', 'painn']))
    .option('--policies <list>', `policies, comma-separated (default ${POLICY_NAMES.join(',')})`, namesOption('policy', POLICY_NAMES))
    .option('--threads <T>', 'native threads', intOption('--threads', 1))
    .option('--seed <S>', 'base seed', intOption('--seed', 0), 42)
    .option('--eval-graphs <n>', 'graphs of val and test evaluated per cell (0: all)', intOption('--eval-graphs', 0), DEFAULT_EVAL_GRAPHS)
    .option('--full', `the study's own grid: ${FULL_REPS} repetitions, ${FULL_STEPS} steps, full evaluation`)
    .option('--cost-per-hour <x>', 'price per hour of this machine: adds the price of --budget-steps per policy', numberOption('--cost-per-hour'))
    .option('--budget-steps <N>', 'steps of the planned run the cost table predicts', intOption('--budget-steps', 1), 2000000)
    .option('--fresh', 'ignore saved results in the folder (overwrite instead of resuming)')
    .option('--quiet', 'no progress output')
    .option('--shard <I/N>', 'run shard I of N (1-based) into OUT/shard-I-of-N; default: from SLURM_ARRAY_TASK_ID (+ _COUNT or _MIN/_MAX) or JOB_COMPLETION_INDEX with --shards')
    .option('--shards <N>', 'shard count for a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is the index); checked against a Slurm array', (v: string) => parseShardCount(v))
    .option('--cost-model <file>', 'JSON cost coefficients per model for the shard plan (default: built-in reference); give every shard the same file')
    .option('--atomref', 'fit per-element reference values (atomrefs) on every source and learn the residual')
    .option('--no-atomref', 'no atomrefs on any source (default: fitted where they explain the target, i.e. extensive targets such as U0; recorded in results.json)')
    .option('--no-report', 'do not write OUT/report.html at the end (default: the HTML report is written beside results.json when the grid is complete)')
    .action(async (sources: string[], o: StudyCliOptions) => {
      const shard = resolveShard({ shard: o.shard, shards: o.shards, env: process.env });
      if (o.costModel && !shard) throw new UsageError('--cost-model only applies to a sharded run (--shard I/N or a scheduler index)');
      const costModels = o.costModel ? readCostModels(o.costModel) : undefined;
      const outDir = shard ? path.join(o.out, shardDirName(shard)) : o.out;
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
        const name = c ? `${shard ? `shard ${shard.index}/${shard.count} ` : ''}${c.data} ${c.model} ${c.policy} B=${c.batch} rep ${c.rep}` : '';
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
        const options = {
          outDir,
          data: sources,
          load: sourceOptionsFrom(o),
          models: o.models as ModelKind[] | undefined,
          policies: o.policies,
          batches: o.batch,
          reps: o.reps ?? (o.full ? FULL_REPS : undefined),
          steps: o.steps ?? (o.full ? FULL_STEPS : undefined),
          seed: o.seed,
          threads: o.threads,
          evalGraphs: o.full ? 0 : o.evalGraphs,
          atomref: o.atomref === undefined ? ('auto' as const) : o.atomref ? ('on' as const) : ('off' as const),
          resume: !o.fresh,
          onProgress,
          shouldStop: () => interrupted,
          shard: shard ?? undefined,
          costModels,
        };
        // The grid's values come from the command line: a bad one is a usage error.
        try {
          studyGrid(options);
        } catch (e) {
          if (e instanceof StudyError) throw new UsageError(e.message, e.code);
          throw e;
        }
        const outcome = await runStudy(options);
        multibar?.stop();
        const r = outcome.results;
        // A shard's rows are part of the grid: its comparisons wait for the merge.
        if (r.shard) {
          const est = r.shard.estimated_ms;
          process.stdout.write(
            `shard ${r.shard.index}/${r.shard.count} (from ${r.shard.source}): ${r.shard.cells.length} of the grid's cells, estimated ${(est[r.shard.index - 1] / 1000).toFixed(1)} s ` +
              `(plan: max/mean ${(Math.max(...est) / (est.reduce((a, b) => a + b, 0) / est.length)).toFixed(3)}); fingerprint ${r.fingerprint}\n` +
              `merge when every shard is done: gnnbatch study merge ${o.out} -o ${path.join(o.out, 'merged')}\n`,
          );
        } else process.stdout.write(formatStudyTables(r, o.budgetSteps, o.costPerHour));
        process.stdout.write(
          `${outcome.ran} cell(s) run, ${outcome.skipped} resumed from ${outDir}/results.json, ${outcome.seconds.toFixed(0)} s; ${r.environment.cpu_model}, ${r.environment.cpu_cores} cores, node ${r.environment.node_version}\n`,
        );
        if (outcome.interrupted) process.stderr.write(`interrupted: ${r.rows.length} finished cell(s) saved in ${outDir}; run the same command again to resume\n`);
        // The picture of what was measured, once the grid is complete (a shard's waits for the merge).
        else if (o.report && !r.shard) {
          const file = await writeStudyReport(outDir, r, o.budgetSteps, o.costPerHour);
          process.stdout.write(`report: ${file}\n`);
        }
      } finally {
        multibar?.stop();
        process.removeListener('SIGINT', onSigint);
      }
    });

  cmd
    .command('merge')
    .description('merge shard results (study --shard) into one results.json/results.csv that report and recommend --grid read')
    .argument('<dirs...>', 'shard folders, results.json files, or a folder whose subfolders hold them (the study\'s --out)')
    .requiredOption('-o, --out <dir>', 'output folder (results.json, results.csv)')
    .option('--allow-partial', 'write the merge even when cells are missing (listed in results.json as missing_cells)')
    .option('--json', 'print the merge summary as JSON')
    .option('--no-report', 'do not write OUT/report.html (default: written when no cell is missing)')
    .action(async (dirs: string[], o: MergeCliOptions) => {
      const m = mergeStudyDirs(dirs, o.out, { allowPartial: o.allowPartial });
      // The merged grid's picture, as an unsharded study ends with (not for a partial merge).
      const report = o.report && m.missing.length === 0 ? await writeStudyReport(o.out, m.results, 2000000) : null;
      if (o.json) {
        process.stdout.write(JSON.stringify({ out: o.out, files: m.files, rows: m.results.rows.length, missing: m.missing, balance: m.balance, estimated_balance: m.estimated_balance, mixed_hardware: m.mixed_hardware, fingerprint: m.results.fingerprint, report }, null, 1) + '\n');
      } else {
        process.stdout.write(formatMergeOutcome(m, o.out));
        if (report) process.stdout.write(`report: ${report}\n`);
      }
      if (m.missing.length) process.stderr.write(`warning: ${m.missing.length} cell(s) missing (--allow-partial): ${m.missing.slice(0, 5).join(', ')}${m.missing.length > 5 ? ', ...' : ''}\n`);
      for (const g of m.mixed_hardware) {
        process.stderr.write(`warning: ${g.data} ${g.model} B=${g.batch} mixes hardware across repetitions (${g.machines.join(' | ')}): its speedups and t-tests compare machines\n`);
      }
    });
}
