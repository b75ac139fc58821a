/** `gnnbatch train --forces` (issue 22 item 5): weights, metrics in the JSON document and the text summary, and the flags' errors. */
import { registerTrainCommand } from '../../src/cli/train';
import { runCli } from '../helpers/cli';

const run = (args: string[]): Promise<string> => runCli(registerTrainCommand, args);
const base = ['train', '--model', 'schnet', '--latent', '8', '--policy', 'static-64', '--batch', '8', '--steps', '6', '--atomref'];

test('--forces --json: force_training with the weights and energy/force metrics', async () => {
  const doc = JSON.parse(await run([...base.slice(0, 1), 'qm9-like:80', ...base.slice(1), '--forces', '--energy-weight', '1', '--force-weight', '100', '--json']));
  expect(doc.target).toBe('U0');
  expect(doc.force_training.weights).toEqual({ energy: 1, forces: 100, stress: 0 });
  expect(doc.force_training.dtype).toBe('float32');
  for (const k of ['energy_mae', 'energy_rmse', 'energy_mae_per_atom', 'energy_rmse_per_atom', 'force_mae', 'force_rmse'])
    expect(Number.isFinite(doc.force_training.test[k])).toBe(true);
}, 120_000);

test('--forces on aflow-like trains the total energy and reports the stress RMSE in the summary', async () => {
  const text = await run([...base.slice(0, 1), 'aflow-like:40', ...base.slice(1), '--forces', '--graph', 'cutoff:4']);
  expect(text).toMatch(/val RMSE \/ MAE \(energy\)/);
  expect(text).toMatch(/loss weights energy \/ forces \/ stress\s+0\.01 \/ 0\.99 \/ 0 \(float32\)/);
  expect(text).toMatch(/test force MAE \/ RMSE \(per component\)\s+[\d.]+ \/ [\d.]+/);
  expect(text).toMatch(/test stress RMSE\s+[\d.]+/);
}, 120_000);

test('--forces --stress-weight on aflow-like trains on stress too', async () => {
  const doc = JSON.parse(await run([...base.slice(0, 1), 'aflow-like:40', ...base.slice(1), '--forces', '--graph', 'cutoff:4', '--stress-weight', '100', '--json']));
  expect(doc.force_training.weights).toEqual({ energy: 0.01, forces: 0.99, stress: 100 });
  expect(doc.force_training.test.stress_structures).toBeGreaterThan(0);
  expect(Number.isFinite(doc.force_training.test.stress_rmse)).toBe(true);
}, 120_000);

test('weights without --forces, and a stress weight on data without stress, are refused', async () => {
  await expect(run([...base.slice(0, 1), 'qm9-like:40', ...base.slice(1), '--force-weight', '2'])).rejects.toThrow(/need --forces/);
  await expect(run([...base.slice(0, 1), 'qm9-like:40', ...base.slice(1), '--forces', '--stress-weight', '1'])).rejects.toMatchObject({ code: 'ERR_GNN_DATA_TARGET', message: expect.stringMatching(/no stress/) });
}, 60_000);
