/** `gnnbatch study`, `report` and `recommend` through commander on tiny data (plain-line mode: not a TTY). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registerStudyCommand } from '../../src/cli/study';
import { registerReportCommand } from '../../src/cli/report';
import { registerRecommendCommand } from '../../src/cli/recommend';
import { runCli } from '../helpers/cli';

const run = (args: string[]): Promise<string> =>
  runCli((program) => {
    registerStudyCommand(program);
    registerReportCommand(program);
    registerRecommendCommand(program);
  }, args);

test('study -> tables; report -> HTML + Markdown; recommend --grid -> hit rate', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-cli-'));
  const text = await run(['study', 'qm9-like:300', '--models', 'schnet', '--policies', 'dynamic,static-2pow', '--batch', '8', '--reps', '2', '--steps', '3', '--eval-graphs', '8', '-o', dir, '--cost-per-hour', '2', '--budget-steps', '1000', '--tables', '--max-reps', '2', '--learning-steps', '5', '--learning-seeds', '2']);
  expect(text).toMatch(/Learning check \(qm9-like:300, schnet, B=8, 5 steps at lr 0.001, 2 seeds\): the models did not learn/);
  expect(text).toContain('speedup (slowest mean / mean)');
  // The summary: the decision at the given rate, and where the details are.
  expect(text).toContain('decision: planned run 1,000 steps x B graphs per (data, model); rate USD 2.00/h');
  expect(text).toMatch(/\* qm9-like:300 \/ schnet: (dynamic|static-2pow) \(pick at 1 of 1 B; rerun agrees \d+%\)/);
  expect(text).toContain(`details: ${path.join(dir, 'report.html')}`);
  // 3 steps learn nothing: the t-tests are withheld and the output says why.
  expect(text).not.toContain('test RMSE t-tests');
  expect(text).toMatch(/the models did not learn in 1 of 1 \(data, model, B\) cell/);
  expect(text).toMatch(/Targets: atomrefs .* qm9-like:300 \(U0\): fitted/);
  expect(text).toContain('predicted cost of 1000 steps');
  expect(text).toContain('price');
  expect(fs.existsSync(path.join(dir, 'results.csv'))).toBe(true);
  expect(await run(['study', 'qm9-like:300', '--models', 'schnet', '--policies', 'dynamic,static-2pow', '--batch', '8', '--reps', '2', '--steps', '3', '-o', dir, '--max-reps', '2', '--learning-steps', '5', '--learning-seeds', '2'])).toContain('0 cell(s) run, 4 resumed');

  const hit = path.join(dir, 'hit.json');
  const rec = await run(['recommend', '--grid', path.join(dir, 'results.json'), '-o', hit]);
  expect(rec).toMatch(/hit rate: \d\/1/);
  const html = path.join(dir, 'report.html');
  const md = path.join(dir, 'study.md');
  await run(['report', path.join(dir, 'results.json'), '-o', html, '--markdown', md, '--hit-rate', hit]);
  expect(fs.readFileSync(html, 'utf8')).toContain('<svg');
  expect(fs.readFileSync(md, 'utf8')).toContain('Recommendation hit rate');
});

test('recommend SOURCE prints every policy, the choice and the reason', async () => {
  const text = await run(['recommend', 'qm9-like:300', '--model', 'schnet', '--batch', '8', '--steps', '500', '--policies', 'dynamic,static-64']);
  expect(text).toMatch(/choice: (tie: (dynamic, static-64|static-64, dynamic) \(within the calibration's [\d.]+% step-time spread; (dynamic|static-64) predicted fastest\)|dynamic|static-64)\n/);
  expect(text).toContain('reason: ');
  const json = JSON.parse(await run(['recommend', 'qm9-like:300', '--model', 'schnet', '--batch', '8', '--steps', '50', '--policies', 'dynamic,exact', '--verify', '--verify-steps', '3', '--json'])) as { verification: { rows: unknown[] } };
  expect(json.verification.rows).toHaveLength(2);
});
