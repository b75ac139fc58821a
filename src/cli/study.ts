/**
 * `gnnbatch study [SOURCE...]`: runs (or resumes) the study's grid, or one
 * shard of it (`--shard I/N`, or a Slurm array / Kubernetes Indexed Job's
 * environment), shows progress, and prints the study's tables.
 * `gnnbatch study merge DIR... -o OUT` merges shards into one results file.
 * A thin layer over {@link runStudy} and {@link mergeStudyDirs}.
 */
import * as fs from 'fs';
import * as path from 'path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { POLICY_NAMES } from '../batching';
import {
  DEFAULT_BATCHES, DEFAULT_EVAL_GRAPHS, DEFAULT_REPS, DEFAULT_STEPS, FULL_REPS, FULL_STEPS, studyCells,
  LEARNED_RMSE_FRACTION, RANKING_STATISTIC, StudyError, analyseStudy, learnedCells, overallRecommendations, overallTable, policyCosts, recommendPolicies, recommendationTable, costTables, mergeStudyDirs, studyGrid, parseCostModels, resolveShard, runStudy, shardDirName, studyTables, tableToText, ttestTable,
  type CellCostCoefficients, type MergeOutcome, type StudyProgress, type StudyResults,
} from '../experiment';
import { forceWeightsText, studyTraining } from '../experiment/results';
import type { ModelKind } from '../model/config';
import { renderReport } from '../report';
import { atomrefSentence } from '../report/render';
import { writeFileAtomic } from '../util/atomic';
import { UsageError } from '../errors';
import { formatTable, intListOption, intOption, numberOption } from './format';
import { decideStudy, type StudyDecisions } from '../experiment/decision';
import { LEARNING_CHECK_SEEDS, LEARNING_CHECK_STEPS, learningCheckOf, learningVerdict } from '../experiment/learning-check';
import { cellSavings, formatHours, formatMoney, studyRate, type PriceRate } from '../experiment/price';
import { Heartbeat, StudyEta, formatDuration, type EtaCell } from './study-progress';
import { parseShardCount } from '../experiment/shard';
import { addSourceOptions, sourceOptionsFrom, type SourceOptionValues } from './source-options';
import { DEFAULT_SEED } from '../data';

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
  currency: string;
  plannedSteps?: number;
  budgetSteps?: number;
  maxReps?: number;
  timeBudget: number;
  maxMemory: number;
  heartbeat: number;
  learningSteps: number;
  learningSeeds: number;
  tables?: boolean;
  json?: boolean;
  fresh?: boolean;
  quiet?: boolean;
  shard?: string;
  shards?: number;
  costModel?: string;
  report: boolean;
  /** true: --atomref, false: --no-atomref, undefined: auto. */
  atomref?: boolean;
  forces?: boolean;
  energyWeight?: number;
  forceWeight?: number;
  stressWeight?: number;
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
export function formatStudyTables(results: StudyResults, budgetSteps: number, costPerHour?: number, currency?: string): string {
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
  const costs = policyCosts(results.rows, budgetSteps, studyRate(results.environment, costPerHour, currency).perHour, shapes);
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
export async function writeStudyReport(outDir: string, results: StudyResults, budgetSteps: number, costPerHour?: number, currency?: string): Promise<string> {
  const file = path.join(outDir, 'report.html');
  const html = await renderReport(results, { budgetSteps, costPerHour, currency, title: studyReportTitle(results) });
  try {
    writeFileAtomic(file, html);
  } catch (e) {
    throw new StudyError('ERR_GNN_OUTPUT_PATH', `${file}: cannot write the study's report (${(e as Error).message})`);
  }
  return file;
}

/** The report's title: a force study's says that it trained energy + forces (undefined: the report's own default). */
export function studyReportTitle(results: Pick<StudyResults, 'grid'>): string | undefined {
  const f = results.grid.forces;
  return f ? `gnnbatch: static vs dynamic batching on energy + forces training (loss weights: ${forceWeightsText(f)}), measured on your data` : undefined;
}

/** Lines of at most `width` columns: words wrapped, continuation lines indented by `indent`. */
export function wrapText(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const start = out.length === 0 && line === '' ? '' : indent;
    if (line && (line + ' ' + word).length > width) {
      out.push(line);
      line = indent + word;
    } else line = line ? `${line} ${word}` : start + word;
  }
  if (line) out.push(line);
  // A single word longer than the width is cut (paths, long names), never left over-wide.
  return out.flatMap((l) => (l.length <= width ? [l] : l.match(new RegExp(`.{1,${width}}`, 'g')) ?? [l]));
}

/**
 * The end-of-run summary (at most 100 columns): per (data, model) the pick,
 * its rerun agreement, graphs/s and what it saves at the stated rate, with
 * the reason; where the details are.
 */
export function formatStudySummary(d: StudyDecisions, rate: PriceRate, where: { report?: string | null; outDir: string; training?: string }): string {
  const W = 100;
  const lines: string[] = [];
  if (where.training) lines.push(...wrapText(`trained: ${where.training}`, W, '  '));
  const range = (xs: number[], f: (x: number) => string): string => {
    const ys = xs.filter((x) => Number.isFinite(x));
    if (!ys.length) return 'n/a';
    const lo = Math.min(...ys);
    const hi = Math.max(...ys);
    return lo === hi ? f(lo) : `${f(lo)} to ${f(hi)}`;
  };
  lines.push(...wrapText(`decision: planned run ${d.planned_steps.toLocaleString('en-US')} steps x B graphs per (data, model); ${rate.given ? 'rate' : 'default rate'} ${formatMoney(rate.perHour, rate.currency)}/h${rate.given ? '' : ' (--cost-per-hour to set yours)'}`, W, '  '));
  for (const p of d.pairs) {
    const agree = Number.isFinite(p.agreement) ? `rerun agrees ${(100 * p.agreement).toFixed(0)}%` : 'rerun agreement needs 2+ repetitions';
    lines.push(...wrapText(`* ${p.data} / ${p.model}: ${p.pick} (pick at ${p.wins} of ${p.cells.length} B; ${agree})`, W, '    '));
    const mine = p.cells.filter((c) => c.pick === p.pick);
    const ev = p.cells.map((c) => c.policies.find((x) => x.policy === p.pick)?.graphs_per_s ?? NaN);
    const sv = mine.map((c) => cellSavings(c, rate));
    const slow = sv.map((x) => x.vsSlowest);
    const run = sv.map((x) => x.vsRunnerUp);
    lines.push(...wrapText(
      `graphs/s ${range(ev, (x) => x.toFixed(0))}; saves ${range(slow.map((x) => x?.money ?? NaN), (x) => formatMoney(x, rate.currency))} (${range(slow.map((x) => x?.hours ?? NaN), formatHours)}) vs the slowest, ` +
        `${range(run.map((x) => x?.money ?? NaN), (x) => formatMoney(x, rate.currency))} (${range(run.map((x) => x?.hours ?? NaN), formatHours)}) vs the runner-up` +
        // A tie broken by a criterion other than time can pick a policy a little slower than the runner-up.
        (run.some((x) => (x?.hours ?? 0) < 0) ? ' (negative: at that batch size the pick, chosen within a tie by the stated criterion, is slower than the runner-up by that much)' : ''),
      W, '    ',
    ).map((l) => `    ${l.trimStart()}`));
    lines.push(...wrapText(`why: ${p.reason}`, W - 4, '    ').map((l) => `    ${l.trimStart()}`));
    const ties = p.cells.filter((c) => c.tie).length;
    const open = p.cells.filter((c) => c.open).length;
    if (ties) lines.push(...wrapText(`${ties} of ${p.cells.length} batch size(s) tie; ${open ? `${open} still open (more repetitions, --max-reps / --time-budget, would tell)` : 'each broken by a stated criterion'}`, W - 4, '    ').map((l) => `    ${l.trimStart()}`));
  }
  lines.push(...wrapText(`details: ${where.report ?? path.join(where.outDir, 'results.json')} (per batch size, tables, charts); --tables prints the tables here, --json the decisions`, W, '  '));
  return lines.join('\n') + '\n';
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
    .option('--seed <S>', 'base seed', intOption('--seed', 0), DEFAULT_SEED)
    .option('--eval-graphs <n>', 'graphs of val and test evaluated per cell (0: all)', intOption('--eval-graphs', 0), DEFAULT_EVAL_GRAPHS)
    .option('--full', `the study's own grid: ${FULL_REPS} repetitions, ${FULL_STEPS} steps, full evaluation`)
    .option('--cost-per-hour <x>', 'price per hour of this machine (default: a labelled default rate for its hardware class, USD per core-hour; see the report)', numberOption('--cost-per-hour'))
    .option('--currency <code>', 'currency of --cost-per-hour', 'USD')
    .option('--planned-steps <N>', 'steps of the planned run the decision prices (each trains on N x B graphs; default 2000000, the study\'s long run)', intOption('--planned-steps', 1))
    .addOption(new Option('--budget-steps <N>', 'old name of --planned-steps').argParser(intOption('--budget-steps', 1)).hideHelp())
    .option('--max-reps <R>', 'adaptive repetitions: cells whose ranking is still open get more repetitions, up to R (default 6; --reps is the minimum)', intOption('--max-reps', 1))
    .option('--time-budget <min>', 'wall-time budget of the whole study in minutes: adaptive repetitions only run while it lasts', numberOption('--time-budget'), 10)
    .option('--max-memory <GiB>', 'memory cap: each cell\'s plan cache gets what the cap leaves above the memory in use (LRU; a cell whose one plan needs more fails with its name)', numberOption('--max-memory'), 2)
    .option('--heartbeat <s>', 'when stderr is not a terminal (logs): one progress line every s seconds (0: none)', numberOption('--heartbeat'), 60)
    .option('--learning-steps <N>', 'steps of each learning-check run (fastest model, smallest B, the pick, the runner-up and static-2pow; 0: no check)', intOption('--learning-steps', 0), LEARNING_CHECK_STEPS)
    .option('--learning-seeds <S>', 'seeds of the learning check (runs paired by seed)', intOption('--learning-seeds', 1), LEARNING_CHECK_SEEDS)
    .option('--tables', 'print the detailed tables at the end (default: a summary; the tables are in report.html)')
    .option('--json', 'print the decisions and the analysis as JSON at the end')
    .option('--fresh', 'ignore saved results in the folder (overwrite instead of resuming)')
    .option('--quiet', 'no progress output')
    .option('--shard <I/N>', 'run shard I of N (1-based) into OUT/shard-I-of-N; default: from SLURM_ARRAY_TASK_ID (+ _COUNT or _MIN/_MAX) or JOB_COMPLETION_INDEX with --shards')
    .option('--shards <N>', 'shard count for a Kubernetes Indexed Job (JOB_COMPLETION_INDEX is the index); checked against a Slurm array', (v: string) => parseShardCount(v))
    .option('--cost-model <file>', 'JSON cost coefficients per model for the shard plan (default: built-in reference); give every shard the same file')
    .option('--atomref', 'fit per-element reference values (atomrefs) on every source and learn the residual')
    .option('--no-atomref', 'no atomrefs on any source (default: fitted where they explain the target, i.e. extensive targets such as U0; recorded in results.json)')
    .option('--no-report', 'do not write OUT/report.html at the end (default: the HTML report is written beside results.json when the grid is complete)')
    .option('--forces', 'the study on force training: every cell trains on energies and forces (every model: MPEU, SchNet, PaiNN; the data needs forces; target: energy where the data has it; docs/forces-study.md)')
    .option('--energy-weight <W>', 'with --forces: wE of the loss (default 0.01)', numberOption('--energy-weight'))
    .option('--force-weight <W>', 'with --forces: wF of the loss (default 0.99)', numberOption('--force-weight'))
    .option('--stress-weight <W>', 'with --forces: wS of the loss (default 0; as train --forces takes it)', numberOption('--stress-weight'))
    .action(async (sources: string[], o: StudyCliOptions, command: Command) => {
      if (!o.forces && (o.energyWeight !== undefined || o.forceWeight !== undefined || o.stressWeight !== undefined))
        throw new UsageError('--energy-weight, --force-weight and --stress-weight need --forces');
      const shard = resolveShard({ shard: o.shard, shards: o.shards, env: process.env });
      if (o.costModel && !shard) throw new UsageError('--cost-model only applies to a sharded run (--shard I/N or a scheduler index)');
      const costModels = o.costModel ? readCostModels(o.costModel) : undefined;
      const plannedSteps = o.plannedSteps ?? o.budgetSteps ?? 2000000;
      const outDir = shard ? path.join(o.out, shardDirName(shard)) : o.out;
      const tty = !o.quiet && process.stderr.isTTY;
      let interrupted = false;
      const onSigint = (): void => {
        interrupted = true;
        process.stderr.write('\ninterrupted: stopping after saving finished cells (Ctrl-C again to abort)\n');
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSigint);
      // The ETA comes from the cost model of the cells left (not from cli-progress's moving average: cells differ ~100x in cost).
      const multibar = tty
        ? new MultiBar({ stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 1, format: '{label} |{bar}| {value}/{total} {unit} | {eta_text} {info}' }, Presets.shades_classic)
        : null;
      let overall: SingleBar | null = null;
      let cellBar: SingleBar | null = null;
      const t0 = Date.now();
      const eta = new StudyEta();
      // Cells not finished yet (their (data, model, policy, B)), the cell in flight and its progress.
      let left: EtaCell[] | null = null;
      let current: { cell: EtaCell; name: string; step: number; steps: number } | null = null;
      let finishedNow = 0;
      let cellsNow = 0;
      let gridPolicies: readonly string[] = [];
      const etaSeconds = (): number => (left ? eta.remainingSeconds(left, current ? { cell: current.cell, fraction: current.steps ? current.step / current.steps : 0 } : undefined) : NaN);
      const etaText = (): string => {
        const x = etaSeconds();
        return `eta ${Number.isFinite(x) ? formatDuration(x) : 'estimating'}`;
      };
      const heartbeat = !tty && !o.quiet
        ? new Heartbeat(o.heartbeat, () => ({
            finished: finishedNow, cells: cellsNow, cell: current?.name, step: current?.step, steps: current?.steps,
            elapsed: (Date.now() - t0) / 1000, eta: etaSeconds(), rss: process.memoryUsage().rss,
          }), (line) => process.stderr.write(line))
        : null;
      const onProgress = (e: StudyProgress): void => {
        const c = e.cell;
        const name = c ? `${shard ? `shard ${shard.index}/${shard.count} ` : ''}${c.data} ${c.model} ${c.policy} B=${c.batch} rep ${c.rep}` : '';
        finishedNow = e.finished;
        cellsNow = e.cells;
        if (e.kind === 'estimate' && e.estimates) eta.addEstimates(e.estimates);
        if (e.kind === 'start' && c) current = { cell: c, name, step: 0, steps: 0 };
        if (e.kind === 'step' && e.step && current) (current.step = e.step.step), (current.steps = e.step.steps);
        if ((e.kind === 'done' || e.kind === 'skip') && c && left) {
          const i = left.findIndex((x) => x.data === c.data && x.model === c.model && x.policy === c.policy && x.batch === c.batch);
          if (i >= 0) left.splice(i, 1);
          if (e.kind === 'done' && e.row) eta.finished(c, e.row.cell_seconds);
          current = null;
        }
        if (e.kind === 'extra' && left && e.message) {
          // Adaptive repetitions: the cells added are one more repetition of a (data, model, B) over every policy.
          const m = /^repetition \d+ of (\S+) (\S+) B=(\d+)/.exec(e.message);
          if (m) for (const policy of gridPolicies) left.push({ data: m[1], model: m[2], policy, batch: Number(m[3]) });
        }
        if (multibar) {
          if (!overall) overall = multibar.create(e.cells, e.finished, { label: 'study', unit: 'cells', info: '', eta_text: etaText() });
          overall.setTotal(e.cells);
          if (e.kind === 'start') {
            if (!cellBar) cellBar = multibar.create(1, 0, { label: 'cell ', unit: 'steps', info: '', eta_text: '' });
            cellBar.start(1, 0, { label: 'cell ', unit: 'steps', info: name, eta_text: '' });
          } else if (e.kind === 'step' && e.step && cellBar) {
            cellBar.setTotal(e.step.steps);
            cellBar.update(e.step.step, { info: `${name} | loss ${e.step.loss.toFixed(3)} | plans ${e.step.compileCount}` });
            overall.update(e.finished, { eta_text: etaText() });
          } else if (e.kind === 'done' || e.kind === 'skip') {
            overall.update(e.finished, { info: e.kind === 'skip' ? '(resumed)' : '', eta_text: etaText() });
          } else if (e.kind === 'load' || e.kind === 'extra') overall.update(e.finished, { info: e.message ?? '', eta_text: etaText() });
        } else if (!o.quiet) {
          if (e.kind === 'load' || e.kind === 'extra') process.stderr.write(`${e.message}\n`);
          if (e.kind === 'done' && e.row) {
            const el = (Date.now() - t0) / 1000;
            process.stderr.write(`[${e.finished}/${e.cells}] ${name}: ${e.row.combined_ms_median.toFixed(1)} ms/step median, ${e.row.compile_count} plans, ${e.row.cell_seconds.toFixed(1)} s (elapsed ${formatDuration(el)}, ${etaText()})\n`);
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
          adaptive: { maxReps: o.maxReps ?? Math.max(6, o.reps ?? (o.full ? FULL_REPS : DEFAULT_REPS)), timeBudgetSeconds: 60 * o.timeBudget, plannedSteps },
          maxMemoryBytes: o.maxMemory > 0 ? o.maxMemory * 1024 ** 3 : undefined,
          // The default cap gives way to a cell that cannot fit under it; a cap the user gives is kept.
          maxMemorySoft: command.getOptionValueSource('maxMemory') === 'default',
          learningCheck: { steps: o.learningSteps, seeds: o.learningSeeds },
          forces: o.forces ? { energy: o.energyWeight, forces: o.forceWeight, stress: o.stressWeight } : undefined,
        };
        // The grid's values come from the command line: a bad one is a usage error.
        try {
          studyGrid(options);
        } catch (e) {
          if (e instanceof StudyError) throw new UsageError(e.message, e.code);
          throw e;
        }
        const grid = studyGrid(options);
        gridPolicies = grid.policies;
        // A shard's own cells are known once it is planned: its ETA extrapolates the cells it measured.
        left = shard ? null : studyCells({ ...grid, models: grid.models as ModelKind[], seed: grid.base_seed });
        const cellCount = studyCells({ ...grid, models: grid.models as ModelKind[], seed: grid.base_seed }).length;
        if (!o.quiet) {
          // Something to read before the first bar (a cold start loads and simulates for seconds).
          process.stderr.write(
            `study${grid.forces ? ' on energy + forces' : ''}: ${cellCount} cells (${grid.data.length} source(s) x ${grid.models.length} model(s) x ${grid.policies.length} policies x ${grid.batches.length} batch sizes x ${grid.reps} repetition(s) of ${grid.steps} steps)` +
              `${shard ? `, shard ${shard.index}/${shard.count}` : ''} -> ${outDir}; time budget ${o.timeBudget} min` +
              `${o.maxMemory > 0 ? `, memory cap ${o.maxMemory} GiB` : ', no memory cap'}${tty ? '' : `; a progress line every ${o.heartbeat} s`}\n`,
          );
        }
        heartbeat?.start();
        const outcome = await runStudy(options);
        heartbeat?.stop();
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
        }
        // The picture of what was measured, once the grid is complete (a shard's waits for the merge).
        const report = !outcome.interrupted && o.report && !r.shard ? await writeStudyReport(outDir, r, plannedSteps, o.costPerHour, o.currency) : null;
        if (!r.shard && r.rows.length) {
          const rate = studyRate(r.environment, o.costPerHour, o.currency);
          const shapes = (data: string, policy: string, batch: number): number | undefined =>
            r.data.find((d) => d.data === data)?.simulation.find((x) => x.policy === policy && x.batch === batch)?.shapes;
          const decisions = decideStudy(r.rows, { plannedSteps, shapesAt: shapes });
          if (o.tables) process.stdout.write(formatStudyTables(r, plannedSteps, o.costPerHour, o.currency));
          if (o.json) process.stdout.write(JSON.stringify({ out: outDir, report, rate, training: r.grid.forces ? 'energy+forces' : 'energy', decisions, summaries: analyseStudy(r.rows).summaries }, null, 1) + '\n');
          else {
            process.stdout.write(formatStudySummary(decisions, rate, { report, outDir, training: r.grid.forces ? studyTraining(r.grid) : undefined }));
            const lc = learningCheckOf(r);
            if (lc) process.stdout.write(wrapText(learningVerdict(lc).sentence, 100, '  ').join('\n') + '\n');
          }
        }
        process.stdout.write(
          `${outcome.ran} cell(s) run, ${outcome.skipped} resumed from ${outDir}/results.json, ${formatDuration(outcome.seconds)}, peak rss ${(process.resourceUsage().maxRSS / 1024 ** 2).toFixed(2)} GiB; ${r.environment.cpu_cores} cores\n`,
        );
        if (outcome.interrupted) process.stderr.write(`interrupted: ${r.rows.length} finished cell(s) saved in ${outDir}; run the same command again to resume\n`);
      } finally {
        heartbeat?.stop();
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
