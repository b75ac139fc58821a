/** `gnnbatch train` through commander on tiny data: the JSON document, the profile table, checkpoint and resume, errors. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registerTrainCommand } from '../../src/cli/train';
import { runCli } from '../helpers/cli';

const run = (args: string[]): Promise<string> => runCli(registerTrainCommand, args);

const REQUIRED = ['ms_per_step_median', 'batching_ms_median', 'update_ms_median', 'combined_ms_mean', 'compile_count', 'compile_ms_total', 'graphs_per_s', 'node_fill', 'edge_fill', 'final_train_loss', 'val_rmse', 'test_rmse', 'test_mae', 'threads', 'steps'];

test('--json prints one document with the study timing and learning fields', async () => {
  const doc = JSON.parse(await run(['train', 'qm9-like:200', '--model', 'schnet', '--latent', '8', '--policy', 'static-64', '--batch', '8', '--steps', '5', '--json']));
  for (const k of REQUIRED) expect(doc).toHaveProperty(k);
  expect(doc.steps).toBe(5);
  expect(doc.policy).toBe('static-64');
  expect(doc.target).toBe('U0');
  expect(doc.compile_count).toBeGreaterThanOrEqual(1);
});

test('--profile prints the kernel table; --checkpoint then --resume continues to the same loss curve', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-train-cli-'));
  const base = ['train', 'qm9-like:200', '--model', 'mpeu', '--latent', '8', '--policy', 'dynamic', '--batch', '8', '--seed', '3'];
  const text = await run([...base, '--steps', '4', '--profile', '--checkpoint', dir]);
  expect(text).toContain('kernel profile (update, per step)');
  expect(text).toMatch(/edge_update/);
  expect(fs.existsSync(path.join(dir, 'step-000004', 'model.safetensors'))).toBe(true);
  const resumed = JSON.parse(await run([...base, '--steps', '8', '--resume', dir, '--json']));
  const full = JSON.parse(await run([...base, '--steps', '8', '--json']));
  expect(resumed.steps_run).toBe(4);
  expect(resumed.loss_curve).toEqual(full.loss_curve);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad options fail with a message naming the option or value', async () => {
  await expect(run(['train', 'qm9-like:50', '--batch', '1'])).rejects.toThrow(/--batch 1/);
  await expect(run(['train', 'qm9-like:50', '--policy', 'nope', '--steps', '1'])).rejects.toThrow(/nope/);
  await expect(run(['train', 'qm9-like:50', '--target', 'missing', '--steps', '1'])).rejects.toThrow(/missing/);
});
