/**
 * `gnnbatch batching compare SOURCE`: simulate batching policies without
 * training. The data loader is injected (the data layer owns sources).
 */
import { Command, InvalidArgumentError } from 'commander';
import { compareBatching, formatCompareTable } from '../batching/compare';
import type { BudgetEstimator } from '../batching/budget';
import type { GraphSizes } from '../batching/policy';
import { isPolicyName, POLICY_NAMES } from '../batching/registry';
import { DEFAULT_SEED } from '../data';

/** What the injected loader returns: per-graph sizes and the split to batch over. */
export interface BatchingSource {
  sizes: GraphSizes;
  /** Graph ids of the training split. */
  split: Int32Array;
  /** Optional one-line description printed above the table. */
  description?: string;
}

/** Options passed to the injected loader. */
export interface LoadSizesOptions {
  /** Split seed (the study's 42 unless given). */
  seed: number;
}

/** Loads a SOURCE (file, directory or synthetic name) into sizes and a training split. */
export type LoadSizes = (source: string, opts: LoadSizesOptions) => Promise<BatchingSource>;

/** Where the command writes (defaults: process stdout / stderr). */
export interface BatchingCommandIo {
  out?: (text: string) => void;
  err?: (text: string) => void;
}

interface CompareCliOptions {
  batch: number[];
  policies: string[];
  steps: number;
  seed: number;
  estimator: BudgetEstimator;
  estimationGraphs: number;
  studyCompat?: boolean;
  json?: boolean;
}

function parseIntList(value: string): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new InvalidArgumentError(`expected a comma-separated list of positive integers, got '${value}'`);
  }
  return out;
}

function parsePositiveInt(value: string): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return x;
}

function parseSeed(value: string): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${value}'`);
  return x;
}

function parsePolicies(value: string): string[] {
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!isPolicyName(n)) throw new InvalidArgumentError(`unknown policy '${n}' (expected ${POLICY_NAMES.join(', ')})`);
  }
  return names;
}

function parseEstimator(value: string): BudgetEstimator {
  if (value !== 'study' && value !== 'quantile') throw new InvalidArgumentError(`expected study or quantile, got '${value}'`);
  return value;
}

/**
 * Register `batching compare` on `program`. The table goes to `io.out`
 * (stdout); with `--json` an array of {@link CompareRow}s instead.
 */
export function registerBatchingCommands(program: Command, loadSizes: LoadSizes, io: BatchingCommandIo = {}): Command {
  const out = io.out ?? ((t: string) => void process.stdout.write(t));
  const err = io.err ?? ((t: string) => void process.stderr.write(t));
  const batching = program.command('batching').description('simulate and compare batching policies (no training)');
  batching
    .command('compare')
    .description('run each policy for --steps batches at each batch size and report shapes, fills and padded work')
    .argument('<source>', 'data source understood by the loader (file, directory or synthetic name)')
    .option('--batch <list>', 'batch sizes, comma-separated', parseIntList, [16, 32, 64, 128])
    .option('--policies <list>', `policies, comma-separated (${POLICY_NAMES.join(', ')})`, parsePolicies, [...POLICY_NAMES])
    .option('--steps <n>', 'batches simulated per policy and batch size', parsePositiveInt, 100000)
    .option('--seed <n>', 'split and stream seed', parseSeed, DEFAULT_SEED)
    .option('--estimator <name>', 'budget estimator of dynamic/packed: study or quantile', parseEstimator, 'study' as BudgetEstimator)
    .option('--estimation-graphs <n>', 'graphs the budget estimator reads', parsePositiveInt, 1000)
    .option('--study-compat', "drop every B-th graph of the stream in static policies, as the study's reader did")
    .option('--json', 'print a JSON array of rows instead of a table')
    .action(async (source: string, opts: CompareCliOptions) => {
      const data = await loadSizes(source, { seed: opts.seed });
      const t0 = performance.now();
      const rows = compareBatching({
        sizes: data.sizes,
        split: data.split,
        batchSizes: opts.batch,
        policies: opts.policies,
        steps: opts.steps,
        seed: opts.seed,
        options: { estimator: opts.estimator, estimationGraphs: opts.estimationGraphs, studyCompat: opts.studyCompat ?? false },
        onProgress: (done, total, row) => {
          if (!opts.json && process.stderr.isTTY) err(`\r${done}/${total} ${row.policy} B=${row.batch}   `);
        },
      });
      if (!opts.json && process.stderr.isTTY) err('\n');
      if (opts.json) {
        out(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      out(`${data.description ?? source}: ${data.split.length} training graphs, ${opts.steps} steps per policy, seed ${opts.seed} (${secs} s)\n`);
      out(formatCompareTable(rows) + '\n');
    });
  return batching;
}
