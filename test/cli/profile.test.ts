/** `gnnbatch profile` through commander on tiny data: the table, the JSON document, the trace file, usage errors. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registerProfileCommand } from '../../src/cli/profile';
import { runCli } from '../helpers/cli';
import { runCli as runMain } from '../../src/cli/main';

const run = (args: string[]): Promise<string> => runCli(registerProfileCommand, args);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-profile-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const base = ['profile', 'qm9-like:120', '--latent', '8', '--batch', '8', '--threads', '2'];

test('prints the per-kernel table with the machine limits and the padding cost', async () => {
  const text = await run([...base, '--policy', 'static-2pow', '--steps', '3']);
  expect(text).toMatch(/mpeu \/ static-2pow \/ B=8: 3 measured steps/);
  expect(text).toMatch(/GEMM reference [\d.]+ GFLOP\/s \(best of \d+ interleaved sample\(s\).*spread [\d.]+%\), bandwidth [\d.]+ GB\/s/);
  expect(text).toMatch(/padding costs [\d.]+ ms\/step/);
  for (const k of ['fwd.edge.w1e_gemm_gather', 'fwd.aggregate_segment', 'adam', 'pack', 'policy', 'plan_build']) expect(text).toContain(k);
  expect(text).toMatch(/\b(compute|memory)\b/);
});

test('--json prints one document; --trace writes a trace-event file', async () => {
  const file = path.join(tmp, 'run.trace.json');
  const doc = JSON.parse(await run([...base, '--model', 'schnet', '--steps', '2', '--json', '--trace', file]));
  expect(doc.model).toBe('schnet');
  expect(doc.steps).toBe(2);
  expect(doc.trace).toBe(file);
  expect(doc).not.toHaveProperty('events');
  expect(Array.isArray(doc.kernels)).toBe(true);
  expect(doc.kernels[0]).toEqual(expect.objectContaining({ kernel: expect.any(String), calls: expect.any(Number), gflops: expect.any(Number), padding_share: expect.any(Number) }));
  const trace = JSON.parse(fs.readFileSync(file, 'utf8'));
  expect(trace.traceEvents.some((e: { ph: string }) => e.ph === 'X')).toBe(true);
});

test('several policies: one JSON document each, one trace with a process per run, an HTML report with the roofline', async () => {
  const trace = path.join(tmp, 'two.trace.json');
  const html = path.join(tmp, 'two.html');
  const docs = JSON.parse(await run([...base, '--policy', 'dynamic,static-2pow', '--steps', '2', '--json', '--trace', trace, '--html', html]));
  expect(docs.map((d: { policy: string }) => d.policy)).toEqual(['dynamic', 'static-2pow']);
  const pids = new Set(JSON.parse(fs.readFileSync(trace, 'utf8')).traceEvents.map((e: { pid: number }) => e.pid));
  expect([...pids].sort()).toEqual([1, 2]);
  const page = fs.readFileSync(html, 'utf8');
  expect(page.startsWith('<!doctype html>')).toBe(true);
  expect((page.match(/<svg/g) ?? []).length).toBe(2);
  expect(page).toContain('Roofline');
  expect(page).toContain('static-2pow / B=8');
  expect(page).not.toMatch(/<script/);
});

test('usage errors exit 2 with a message naming the option', async () => {
  const errs: string[] = [];
  const io = { out: () => undefined, err: (t: string) => void errs.push(t) };
  expect(await runMain(['node', 'gnnbatch', ...base, '--steps', '0'], io)).toBe(2);
  expect(errs.join('')).toMatch(/--steps 0/);
  expect(await runMain(['node', 'gnnbatch', ...base, '--policy', 'nope'], io)).toBe(2);
  expect(errs.join('')).toMatch(/nope/);
  expect(await runMain(['node', 'gnnbatch', ...base, '--steps', '1', '--trace', tmp], io)).toBe(2);
  expect(errs.join('')).toMatch(/is a directory/);
  expect(await runMain(['node', 'gnnbatch', ...base, '--policy', 'dynamic,dynamic'], io)).toBe(2);
  expect(errs.join('')).toMatch(/listed twice/);
  expect(await runMain(['node', 'gnnbatch', ...base, '--steps', '1', '--html', tmp], io)).toBe(2);
  expect(errs.join('')).toMatch(/--html .* is a directory/);
  expect(await runMain(['node', 'gnnbatch', ...base, '--steps', '1', '--device', 'cuda'], io)).toBe(1);
  expect(errs.join('')).toMatch(/ERR_GNN_UNSUPPORTED/);
});
