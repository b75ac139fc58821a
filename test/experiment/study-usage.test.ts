/** `gnnbatch study` sharding options and `study merge`: usage errors exit 2 with one line, run errors exit 1 with their code. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli, EXIT_USAGE } from '../../src/cli/main';

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    const status = await runCli(['node', 'gnnbatch', ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
    return { status, out, err };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const lines = (t: string): string[] => t.split('\n').filter((l) => l.trim() !== '');

test.each([
  [['study', 'qm9-like:10', '--shard', '4/3'], /--shard 4\/3: expected I\/N with 1 <= I <= N/, 'ERR_GNN_USAGE', 'gnnbatch study --help'],
  [['study', 'qm9-like:10', '--shard', '2/3', '--shards', '4'], /--shard 2\/3 and --shards 4 disagree/, 'ERR_GNN_USAGE', 'gnnbatch study --help'],
  [['study', 'qm9-like:10', '--shards', '3'], /--shards 3 needs a shard index/, 'ERR_GNN_USAGE', 'gnnbatch study --help'],
  [['study', 'qm9-like:10', '--policies', 'dynamic,nope'], /unknown policy 'nope'/, 'ERR_GNN_USAGE', 'gnnbatch study --help'],
  [['study', 'qm9-like:10', '--models', 'gcn'], /unknown model 'gcn'/, 'ERR_GNN_USAGE', 'gnnbatch study --help'],
  [['study', 'qm9-like:10', '--batch', '8,8'], /batch sizes lists 8 twice/, 'ERR_GNN_STUDY_DUPLICATE', 'gnnbatch study --help'],
  [['study', 'qm9-like:10', '--cost-model', 'c.json'], /--cost-model only applies to a sharded run/, 'ERR_GNN_USAGE', 'gnnbatch study --help'],
  [['study', 'merge', 'a'], /required option '-o, --out <dir>' not specified/, 'ERR_GNN_USAGE', 'gnnbatch study merge --help'],
  [['study', 'merge', '-o', 'x'], /missing required argument 'dirs'/, 'ERR_GNN_USAGE', 'gnnbatch study merge --help'],
])('usage: %j', async (args, message, code, hint) => {
  const r = await cli(args);
  expect(r.status).toBe(EXIT_USAGE);
  expect(lines(r.err)).toHaveLength(1);
  expect(r.err).toMatch(message);
  expect(r.err).toContain(code);
  expect(r.err).toContain(`see '${hint}'`);
});

test('scheduler variables that do not describe a shard: exit 1 with ERR_GNN_SHARD_ENV', async () => {
  const r = await cli(['study', 'qm9-like:10', '-o', fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-env-'))], { SLURM_ARRAY_TASK_ID: '3' });
  expect(r.status).toBe(1);
  expect(lines(r.err)).toEqual([expect.stringMatching(/SLURM_ARRAY_TASK_ID=3 is set without SLURM_ARRAY_TASK_COUNT .*ERR_GNN_SHARD_ENV/)]);
  const k = await cli(['study', 'qm9-like:10'], { JOB_COMPLETION_INDEX: '0' });
  expect(k.status).toBe(1);
  expect(k.err).toMatch(/JOB_COMPLETION_INDEX=0 is set but the shard count is not: pass --shards N .*ERR_GNN_SHARD_ENV/);
});

test('merge of a folder without results: exit 1 naming it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-empty-'));
  const r = await cli(['study', 'merge', dir, '-o', path.join(dir, 'out')]);
  expect(r.status).toBe(1);
  expect(lines(r.err)).toEqual([`gnnbatch: ${dir}: holds no results.json, nor do its subfolders (ERR_GNN_MERGE_INPUT)`]);
});
