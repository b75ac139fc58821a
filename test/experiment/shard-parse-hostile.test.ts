/**
 * Issue 21, item 9: shard counts and indices are decimal integers only
 * (`0x1`, `0b0`, `1e3`, ` 1`, ids beyond 2^53 are refused), at most
 * MAX_SHARDS, checked before anything is allocated per shard (a huge
 * SLURM_ARRAY_TASK_COUNT or --shards once reached `new Array(count)` and
 * aborted the study with a V8 out-of-memory).
 */
import { MAX_SHARDS, parseDecimalInteger, parseShardCount, parseShardSpec, planShards, resolveShard, shardFromEnvironment } from '../../src/experiment/shard';
import { registerStudyCommand } from '../../src/cli/study';
import { runCli } from '../helpers/cli';
import { codeOf } from '../helpers/codes';

const NOT_DECIMAL = ['0x1', '0X10', '0b0', '0o7', '1e3', '1E1', ' 1', '1 ', '+1', '-1', '1.0', '1.', '.5', '', ' ', '1_000', 'Infinity', 'NaN', '９'];
const BEYOND_2_53 = '9007199254740993';

test('parseDecimalInteger: digits only, exact (at most 2^53 - 1)', () => {
  expect(parseDecimalInteger('0')).toBe(0);
  expect(parseDecimalInteger('007')).toBe(7);
  expect(parseDecimalInteger('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
  for (const bad of [...NOT_DECIMAL, BEYOND_2_53, '99999999999999999999']) expect(parseDecimalInteger(bad)).toBeNull();
});

test('--shards N: a decimal integer from 1 to MAX_SHARDS, else ERR_GNN_USAGE naming the value', () => {
  expect(MAX_SHARDS).toBe(100000);
  expect(parseShardCount('3')).toBe(3);
  expect(parseShardCount(String(MAX_SHARDS))).toBe(MAX_SHARDS);
  for (const bad of [...NOT_DECIMAL, '0', String(MAX_SHARDS + 1), BEYOND_2_53]) {
    expect(codeOf(() => parseShardCount(bad))).toBe('ERR_GNN_USAGE');
    expect(() => parseShardCount(bad)).toThrow(`--shards ${bad}: expected a decimal integer from 1 to ${MAX_SHARDS}`);
  }
});

test('--shard I/N: decimal integers, N <= MAX_SHARDS', () => {
  expect(parseShardSpec('2/3')).toEqual({ index: 2, count: 3 });
  for (const bad of ['0x1/2', '1/0x2', '0b1/1', '1/1e3', '1e0/2', ' 1/2', '1/2 ', '1 / 2', '+1/2', `1/${MAX_SHARDS + 1}`, `1/${BEYOND_2_53}`, `${BEYOND_2_53}/${BEYOND_2_53}`]) {
    expect(codeOf(() => parseShardSpec(bad))).toBe('ERR_GNN_USAGE');
  }
});

describe('scheduler variables', () => {
  test.each(NOT_DECIMAL.filter((v) => v !== '').map((v) => [v]))('%j in SLURM_ARRAY_TASK_ID / _COUNT / _MIN / _MAX / _STEP or JOB_COMPLETION_INDEX is ERR_GNN_SHARD_ENV', (v) => {
    const envs: [Record<string, string>, number?][] = [
      [{ SLURM_ARRAY_TASK_ID: v, SLURM_ARRAY_TASK_COUNT: '4' }],
      [{ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: v }],
      [{ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: v, SLURM_ARRAY_TASK_MAX: '3' }],
      [{ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: v }],
      [{ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '3', SLURM_ARRAY_TASK_STEP: v }],
      [{ JOB_COMPLETION_INDEX: v }, 4],
    ];
    for (const [env, shards] of envs) {
      expect(codeOf(() => shardFromEnvironment(env, shards))).toBe('ERR_GNN_SHARD_ENV');
      expect(() => shardFromEnvironment(env, shards)).toThrow(/expected an integer written in decimal digits only/);
    }
  });

  test('ids beyond 2^53 are refused (they are not exact)', () => {
    expect(codeOf(() => shardFromEnvironment({ SLURM_ARRAY_TASK_ID: BEYOND_2_53, SLURM_ARRAY_TASK_MIN: BEYOND_2_53, SLURM_ARRAY_TASK_MAX: BEYOND_2_53 }))).toBe('ERR_GNN_SHARD_ENV');
    expect(codeOf(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: BEYOND_2_53 }, 4))).toBe('ERR_GNN_SHARD_ENV');
  });

  test('a huge array is refused at once, naming the maximum (no allocation per shard)', () => {
    const t0 = Date.now();
    for (const env of [
      { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '4000000000' },
      { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: String(MAX_SHARDS + 1) },
      { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '9007199254740990' },
    ]) {
      expect(codeOf(() => resolveShard({ env }))).toBe('ERR_GNN_SHARD_ENV');
      expect(() => resolveShard({ env })).toThrow(`more than the maximum of ${MAX_SHARDS}`);
    }
    expect(codeOf(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: '0' }, 1e9))).toBe('ERR_GNN_SHARD_ENV');
    expect(codeOf(() => resolveShard({ shards: 1e9, env: { JOB_COMPLETION_INDEX: '0' } }))).toBe('ERR_GNN_USAGE');
    expect(Date.now() - t0).toBeLessThan(1000);
    // The largest array allowed still resolves.
    expect(resolveShard({ env: { SLURM_ARRAY_TASK_ID: '99999', SLURM_ARRAY_TASK_COUNT: String(MAX_SHARDS) } })).toEqual({ index: MAX_SHARDS, count: MAX_SHARDS, source: 'slurm' });
  });
});

test('planShards refuses a count beyond MAX_SHARDS before allocating per shard', () => {
  const cells = [{ data: 'a', model: 'mpeu', policy: 'dynamic', batch: 4, rep: 0, steps: 1 }];
  expect(codeOf(() => planShards(cells, () => 1, MAX_SHARDS + 1))).toBe('ERR_GNN_ARGUMENT');
  expect(planShards(cells, () => 1, 3).loads_ms).toHaveLength(3);
});

test('the CLI: --shards 0x3 is a usage error naming the value (not read as 3)', async () => {
  await expect(runCli(registerStudyCommand, ['study', 'qm9-like:10', '--shards', '0x3', '-o', '/nonexistent/never-written'])).rejects.toMatchObject({
    code: 'ERR_GNN_USAGE',
    message: expect.stringContaining('--shards 0x3: expected a decimal integer'),
  });
});
