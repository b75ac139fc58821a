/** `gnnbatch train` through commander on tiny data: the JSON document, the profile table, checkpoint and resume, errors. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registerTrainCommand } from '../../src/cli/train';
import { runCli } from '../helpers/cli';
import { traceViolations } from '../helpers/trace';

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
  // The per-kernel table of `gnnbatch profile` (same formatter), then the native phase totals in one line.
  expect(text).toMatch(/kernel profile \(CPU engine, 4 steps, \d+ threads\)/);
  expect(text).toMatch(/machine: GEMM reference [\d.]+ GFLOP\/s \(best of \d+ .*\), bandwidth [\d.]+ GB\/s/);
  expect(text).toMatch(/kernel\s+calls\s+ms\/step\s+med ms\s+share\s+GFLOP\s+GB\s+GFLOP\/s\s+GB\/s\s+%peak\s+%bw\s+bound\s+pad\s+pad ms/);
  expect(text).toContain('fwd.edge.w1e_gemm_gather');
  expect(text).toMatch(/\badam\s+4\s/);
  expect(text).toMatch(/phases of the update \(native timers, ms\/step\): .*edge_update/);
  expect(fs.existsSync(path.join(dir, 'step-000004', 'model.safetensors'))).toBe(true);
  const resumed = JSON.parse(await run([...base, '--steps', '8', '--resume', dir, '--json']));
  const full = JSON.parse(await run([...base, '--steps', '8', '--json']));
  expect(resumed.steps_run).toBe(4);
  expect(resumed.loss_curve).toEqual(full.loss_curve);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--trace FILE writes a valid trace with the step loop (eval and checkpoint included) and the kernels; implies --profile', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-train-trace-'));
  const file = path.join(dir, 'run.trace.json');
  const text = await run(['train', 'qm9-like:200', '--model', 'mpeu', '--latent', '8', '--batch', '8', '--steps', '4', '--eval-every', '2', '--checkpoint', path.join(dir, 'ck'), '--checkpoint-every', '2', '--trace', file]);
  expect(text).toContain(`trace: ${file}`);
  expect(text).toMatch(/kernel profile \(CPU engine, 4 steps/);
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  expect(traceViolations(doc)).toEqual([]);
  const loop = (doc.traceEvents as { ph: string; tid: number; name: string; args: Record<string, unknown> }[]).filter((e) => e.ph === 'X' && e.tid === 1);
  expect(loop.filter((e) => e.name === 'checkpoint').map((e) => e.args.step)).toEqual([2, 4]);
  expect(loop.filter((e) => e.name === 'eval').map((e) => e.args.split)).toEqual(['val', 'val', 'test']);
  for (const n of ['step 1', 'step 4', 'policy', 'plan_build', 'pack', 'update']) expect(loop.some((e) => e.name === n)).toBe(true);
  expect(doc.traceEvents.some((e: { ph: string; tid: number }) => e.ph === 'X' && e.tid === 2)).toBe(true);
  // --json stays one document (no trace line on stdout).
  expect(() => JSON.parse(text)).toThrow();
  const json = JSON.parse(await run(['train', 'qm9-like:200', '--latent', '8', '--batch', '8', '--steps', '2', '--trace', file, '--json']));
  expect(json.kernel_profile.kernels.length).toBeGreaterThan(0);
  await expect(run(['train', 'qm9-like:50', '--steps', '1', '--trace', dir])).rejects.toThrow(/--trace .*is a directory/);
  await expect(run(['train', 'qm9-like:50', '--steps', '1', '--trace', file, '--device', 'cuda'])).rejects.toMatchObject({ code: 'ERR_GNN_UNSUPPORTED' });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad options fail with a message naming the option or value', async () => {
  await expect(run(['train', 'qm9-like:50', '--batch', '1'])).rejects.toThrow(/--batch 1/);
  await expect(run(['train', 'qm9-like:50', '--policy', 'nope', '--steps', '1'])).rejects.toThrow(/nope/);
  await expect(run(['train', 'qm9-like:50', '--target', 'missing', '--steps', '1'])).rejects.toThrow(/missing/);
});
