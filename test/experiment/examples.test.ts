/**
 * The cluster examples run as written: the Slurm array script with plain bash
 * and the array variables set by hand (two shards, then its merge mode), with
 * `npx gnnbatch` resolving to this checkout; the Kubernetes manifest's shard
 * count, index wiring and merge step are consistent.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readResults } from '../../src/experiment';

const ROOT = path.resolve(__dirname, '..', '..');
const SLURM = path.join(ROOT, 'examples', 'slurm', 'study-array.sh');
const K8S = path.join(ROOT, 'examples', 'kubernetes', 'study-indexed-job.yaml');

/** A project folder whose `npx gnnbatch` is this checkout's CLI (from src/, transpiled on load). */
function projectWithGnnbatch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-example-'));
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  const bin = path.join(dir, 'node_modules', '.bin', 'gnnbatch');
  const hook = path.join(ROOT, 'test', 'experiment', 'helpers', 'ts-register.js');
  fs.writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" -r "${hook}" "${path.join(ROOT, 'src', 'cli', 'main.ts')}" "$@"\n`);
  fs.chmodSync(bin, 0o755);
  return dir;
}

const clean = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(SLURM_|JOB_COMPLETION_INDEX$)/.test(k)) env[k] = v;
  return env;
};

test('examples/slurm/study-array.sh: two array tasks by hand, then the merge', () => {
  expect(spawnSync('bash', ['-n', SLURM]).status).toBe(0);
  const cwd = projectWithGnnbatch();
  const env = { ...clean(), STUDY_DIR: path.join(cwd, 'study'), STUDY_ARGS: 'qm9-like:100 --models schnet --policies dynamic,static-64 --batch 4 --reps 2 --steps 2 --eval-graphs 4' };
  for (const id of ['5', '6']) {
    const r = spawnSync('bash', [SLURM], { cwd, env: { ...env, SLURM_ARRAY_TASK_ID: id, SLURM_ARRAY_TASK_MIN: '5', SLURM_ARRAY_TASK_MAX: '6', SLURM_ARRAY_TASK_COUNT: '2' }, encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toContain(`shard ${Number(id) - 4}/2 (from slurm)`);
  }
  const m = spawnSync('bash', [SLURM, 'merge'], { cwd, env, encoding: 'utf8' });
  expect({ status: m.status, stderr: m.stderr }).toEqual({ status: 0, stderr: '' });
  const merged = readResults(path.join(cwd, 'study', 'merged', 'results.json'));
  expect(merged.rows).toHaveLength(4);
  expect(merged.merged_from?.map((s) => `${s.index}/${s.count}`)).toEqual(['1/2', '2/2']);
  expect(fs.readFileSync(path.join(cwd, 'study', 'merged', 'report.html'), 'utf8')).toContain('<svg');
  expect(spawnSync('bash', [SLURM, 'nope'], { cwd, env }).status).toBe(2);
});

test('examples/kubernetes/study-indexed-job.yaml: indexed shards on a shared claim, --shards = completions, a suspended merge', () => {
  const text = fs.readFileSync(K8S, 'utf8');
  const docs = text.split(/^---$/m);
  expect(docs).toHaveLength(3);
  expect(docs[0]).toMatch(/kind: PersistentVolumeClaim[\s\S]*name: gnnbatch-study[\s\S]*ReadWriteMany/);
  const job = docs[1];
  expect(job).toMatch(/completionMode: Indexed/);
  const completions = /completions: (\d+)/.exec(job)?.[1];
  expect(/name: STUDY_SHARDS\s+value: "(\d+)"/.exec(job)?.[1]).toBe(completions);
  expect(job).toMatch(/npx --yes gnnbatch@\d+\.\d+\.\d+ study \$STUDY_ARGS --shards "\$STUDY_SHARDS" .*-o \/study$/m);
  expect(job).toMatch(/claimName: gnnbatch-study/);
  const merge = docs[2];
  expect(merge).toMatch(/suspend: true/);
  expect(merge).toMatch(/npx --yes gnnbatch@\d+\.\d+\.\d+ study merge \/study -o \/study\/merged/);
  expect(merge).toMatch(/claimName: gnnbatch-study/);
  // every pod pins the same version (it is part of the grid's fingerprint)
  expect(new Set(text.match(/gnnbatch@\d+\.\d+\.\d+/g))).toEqual(new Set([text.match(/gnnbatch@\d+\.\d+\.\d+/)?.[0]]));
});
