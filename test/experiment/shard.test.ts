/** The shard rule: parsing --shard, the schedulers' environments, the LPT plan and its cost estimate. */
import { codeOf } from '../helpers/codes';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  REFERENCE_COST_MODELS, cellKey, estimateCellCosts, parseCostModels, parseShardSpec, planShards, planStudyShards, readResults, resolveShard,
  runStudy, shardFromEnvironment, studyCells, studyGrid, type PlannedCell,
} from '../../src/experiment';
import { loadSource, splitGraphs } from '../../src/data';
import { sizesOf } from '../../src/batching';


describe('--shard I/N', () => {
  test('parses 1-based shards and rejects the rest as usage errors naming the value', () => {
    expect(parseShardSpec('1/3')).toEqual({ index: 1, count: 3 });
    for (const bad of ['0/3', '4/3', '3', 'a/b', '1/0', '-1/3', '1.5/3', '', ' 3 / 3 ']) {
      expect(() => parseShardSpec(bad)).toThrow(`--shard ${bad}:`);
      expect(codeOf(() => parseShardSpec(bad))).toBe('ERR_GNN_USAGE');
    }
  });

  test('--shard wins over the environment; --shards must agree with it', () => {
    const env = { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '5' };
    expect(resolveShard({ shard: '2/3', env })).toEqual({ index: 2, count: 3, source: 'option' });
    expect(codeOf(() => resolveShard({ shard: '2/3', shards: 4 }))).toBe('ERR_GNN_USAGE');
    expect(resolveShard({ env: {} })).toBeNull();
    expect(() => resolveShard({ shards: 3, env: {} })).toThrow(/--shards 3 needs a shard index/);
  });
});

describe('scheduler environments', () => {
  test('Slurm: ID with MIN/MAX (and STEP), or with COUNT from 0', () => {
    expect(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '2', SLURM_ARRAY_TASK_COUNT: '3' })).toEqual({ index: 1, count: 3, source: 'slurm' });
    expect(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '3' })).toEqual({ index: 3, count: 3, source: 'slurm' });
    expect(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '14', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_MAX: '16', SLURM_ARRAY_TASK_STEP: '2' })).toEqual({ index: 3, count: 4, source: 'slurm' });
    expect(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '5' })).toEqual({ index: 5, count: 5, source: 'slurm' });
    expect(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' }, 2)).toEqual({ index: 2, count: 2, source: 'slurm' });
  });

  test('Slurm: inconsistent variables are ERR_GNN_SHARD_ENV naming them', () => {
    const bad: [Record<string, string>, RegExp, number?][] = [
      [{ SLURM_ARRAY_TASK_ID: '2' }, /without SLURM_ARRAY_TASK_COUNT/],
      [{ SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '5' }, /not one of the array's 5 task/],
      [{ SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '3' }, /SLURM_ARRAY_TASK_ID=0 is not one/],
      [{ SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '9', SLURM_ARRAY_TASK_COUNT: '3' }, /sparse --array list/],
      [{ SLURM_ARRAY_TASK_ID: 'x', SLURM_ARRAY_TASK_COUNT: '3' }, /SLURM_ARRAY_TASK_ID=x: expected an integer/],
      [{ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' }, /--shards 4 but the Slurm array has 3/, 4],
      [{ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3', JOB_COMPLETION_INDEX: '1' }, /both SLURM_ARRAY_TASK_ID .* and JOB_COMPLETION_INDEX/],
    ];
    for (const [env, message, shards] of bad) {
      expect(() => shardFromEnvironment(env, shards)).toThrow(message);
      expect(codeOf(() => shardFromEnvironment(env, shards))).toBe('ERR_GNN_SHARD_ENV');
    }
  });

  test('Kubernetes: JOB_COMPLETION_INDEX (0-based) with --shards N', () => {
    expect(shardFromEnvironment({ JOB_COMPLETION_INDEX: '0' }, 4)).toEqual({ index: 1, count: 4, source: 'kubernetes' });
    expect(resolveShard({ shards: 4, env: { JOB_COMPLETION_INDEX: '3' } })).toEqual({ index: 4, count: 4, source: 'kubernetes' });
    expect(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: '0' })).toThrow(/pass --shards N/);
    expect(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: '4' }, 4)).toThrow(/outside 0\.\.3/);
    expect(codeOf(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: '4' }, 4))).toBe('ERR_GNN_SHARD_ENV');
  });
});

describe('planShards (longest processing time first)', () => {
  // 2 data x 1 model x 3 batches x 2 reps = 12 groups of 2 policies each.
  const grid = { data: ['a', 'b'], models: ['mpeu' as const], policies: ['dynamic', 'static-64'], batches: [4, 8, 16], reps: 2, seed: 1 };
  const cells: PlannedCell[] = studyCells(grid).map((c) => ({ ...c, steps: 10 }));
  const cost = (c: PlannedCell): number => c.batch * (c.data === 'a' ? 1 : 3) + (c.policy === 'dynamic' ? 0 : 1);

  test('every cell on exactly one shard, each (data, model, batch, rep) group whole', () => {
    for (const n of [1, 2, 3, 5, 12, 20]) {
      const plan = planShards(cells, cost, n);
      expect(plan.shardOf.size).toBe(cells.length);
      for (const c of cells) expect(plan.shardOf.get(cellKey(c))).toBeGreaterThanOrEqual(1);
      for (const g of plan.groups) expect(new Set(g.cells.map((k) => plan.shardOf.get(k)))).toEqual(new Set([g.shard]));
      expect(plan.groups).toHaveLength(12);
      const loads = new Array<number>(n).fill(0);
      for (const c of cells) loads[(plan.shardOf.get(cellKey(c)) as number) - 1] += cost(c);
      expect(loads).toEqual(plan.loads_ms);
    }
  });

  test('the LPT order: largest group to the least loaded shard, ties to the lowest index', () => {
    const plan = planShards(cells, cost, 3);
    // group costs: b/16: 97 (x2 reps), b/8: 49, b/4: 25, a/16: 33, a/8: 17, a/4: 9
    const shardOf = (data: string, batch: number, rep: number): number => plan.groups.find((g) => g.data === data && g.batch === batch && g.rep === rep)?.shard as number;
    expect(shardOf('b', 16, 0)).toBe(1);
    expect(shardOf('b', 16, 1)).toBe(2);
    expect(shardOf('b', 8, 0)).toBe(3);
    expect(shardOf('b', 8, 1)).toBe(3); // 49 + 49 = 98 after this; shards 1 and 2 hold 97
    expect(plan.loads_ms.reduce((a, b) => a + b, 0)).toBe(2 * (97 + 49 + 25 + 33 + 17 + 9));
    expect(plan.loads_ms).toEqual([156, 156, 148]);
    // deterministic: the same inputs give the same plan
    expect([...planShards(cells, cost, 3).shardOf]).toEqual([...plan.shardOf]);
  });

  test('more balanced than dealing groups round robin on skewed costs', () => {
    const plan = planShards(cells, cost, 4);
    const rr = new Array<number>(4).fill(0);
    plan.groups.forEach((g, i) => (rr[i % 4] += g.cost_ms));
    const ratio = (x: number[]): number => Math.max(...x) / (x.reduce((a, b) => a + b, 0) / x.length);
    expect(ratio(plan.loads_ms)).toBeLessThan(ratio(rr));
  });

  test('bad costs and counts are coded errors', () => {
    expect(() => planShards(cells, () => NaN, 2)).toThrow(/cost estimate of a\|mpeu\|dynamic\|4\|0\|10 is NaN/);
    expect(codeOf(() => planShards(cells, () => -1, 2))).toBe('ERR_GNN_ARGUMENT');
    expect(codeOf(() => planShards(cells, cost, 0))).toBe('ERR_GNN_ARGUMENT');
  });
});

describe('cell cost estimate', () => {
  test('follows the cost model: more steps, bigger batches and padding cost more; mpeu more than schnet', async () => {
    const { store } = await loadSource('qm9-like:300', {});
    const split = splitGraphs(store.numGraphs, { seed: 42 });
    const input = { data: 'q', sizes: sizesOf(store), train: split.train, evalGraphs: 32 };
    const grid = { models: ['mpeu', 'schnet'], policies: ['dynamic', 'static-2pow'], batches: [4, 16], steps: 50, base_seed: 42 };
    const e = estimateCellCosts(input, grid);
    expect(e).toHaveLength(8);
    const get = (model: string, policy: string, batch: number, list = e) => list.find((x) => x.model === model && x.policy === policy && x.batch === batch) as (typeof e)[number];
    for (const x of e) {
      expect(x.total_ms).toBeCloseTo(50 * x.step_ms + x.compile_ms + x.eval_ms, 9);
      expect(x.compiles).toBeGreaterThanOrEqual(1);
    }
    expect(get('mpeu', 'dynamic', 16).step_ms).toBeGreaterThan(get('mpeu', 'dynamic', 4).step_ms);
    expect(get('mpeu', 'dynamic', 16).total_ms).toBeGreaterThan(get('schnet', 'dynamic', 16).total_ms);
    // static-2pow's shapes vary with the batch: more compilations than dynamic's one budget
    expect(get('mpeu', 'static-2pow', 16).compiles).toBeGreaterThan(get('mpeu', 'dynamic', 16).compiles);
    const longer = estimateCellCosts(input, { ...grid, steps: 500 });
    expect(get('mpeu', 'dynamic', 16, longer).total_ms).toBeGreaterThan(get('mpeu', 'dynamic', 16).total_ms);
    // a zero model costs nothing; a missing model is a coded error
    const zero = { ms_per_edge: 0, ms_per_node: 0, ms_per_step: 0, compile_ms_per_edge: 0, compile_ms_base: 0 };
    expect(estimateCellCosts(input, { ...grid, models: ['mpeu'] }, { mpeu: zero }).every((x) => x.total_ms === 0)).toBe(true);
    expect(() => estimateCellCosts(input, grid, { mpeu: REFERENCE_COST_MODELS.mpeu })).toThrow(/no coefficients for model 'schnet'/);
  });

  test('planStudyShards is deterministic and names only grid cells', async () => {
    const grid = studyGrid({ data: ['qm9-like:120'], models: ['schnet'], policies: ['dynamic', 'static-64'], batches: [4, 8], reps: 3, steps: 3, evalGraphs: 8 });
    const cells = studyCells({ ...grid, models: ['schnet'], seed: grid.base_seed }).map((c) => ({ ...c, steps: grid.steps }));
    const a = await planStudyShards({ grid, cells, count: 2 });
    const b = await planStudyShards({ grid, cells, count: 2 });
    expect([...a.plan.shardOf]).toEqual([...b.plan.shardOf]);
    expect(a.plan.shardOf.size).toBe(12);
    expect(new Set(a.plan.shardOf.values())).toEqual(new Set([1, 2]));
  });

  test('more shards than groups: the spare shard writes an empty, mergeable result', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-spare-'));
    const grid = { data: ['qm9-like:120'], models: ['schnet' as const], policies: ['dynamic'], batches: [4], reps: 2, steps: 2, evalGraphs: 4 };
    const out = await runStudy({ ...grid, outDir: dir, shard: { index: 3, count: 3 } });
    expect(out.ran).toBe(0);
    const r = readResults(path.join(dir, 'results.json'));
    expect(r.shard).toMatchObject({ index: 3, count: 3, source: 'option', cells: [] });
    expect(r.shard?.estimated_ms[2]).toBe(0);
    expect(r.rows).toEqual([]);
    expect(r.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  test('parseCostModels reads coefficients per model and names a bad field', () => {
    const m = parseCostModels({ mpeu: { ...REFERENCE_COST_MODELS.mpeu, points: [] } }, 'c.json');
    expect(m).toEqual({ mpeu: REFERENCE_COST_MODELS.mpeu });
    expect(() => parseCostModels({ mpeu: { ...REFERENCE_COST_MODELS.mpeu, ms_per_edge: -1 } }, 'c.json')).toThrow('c.json: mpeu.ms_per_edge must be a finite number >= 0, got -1');
    expect(codeOf(() => parseCostModels([], 'c.json'))).toBe('ERR_GNN_SHARD_COST_MODEL');
  });
});

describe('studyGrid', () => {
  test('duplicate values would duplicate cells: refused with the list named', () => {
    expect(() => studyGrid({ batches: [8, 8] })).toThrow('batch sizes lists 8 twice');
    expect(() => studyGrid({ data: ['qm9-like:10', 'qm9-like:10'] })).toThrow(/data lists qm9-like:10 twice/);
    expect(codeOf(() => studyGrid({ policies: ['dynamic', 'dynamic'] }))).toBe('ERR_GNN_STUDY_DUPLICATE');
    expect(codeOf(() => studyGrid({ policies: ['nope'] }))).toBe('ERR_GNN_STUDY_GRID');
  });
});
