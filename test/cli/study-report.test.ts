/** `gnnbatch study` as a real child process: the report is written beside results.json at the end, and its path printed. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ensureDist, runDistCli } from './dist-cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-study-report-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => ensureDist(), 300_000);

const grid = ['study', 'qm9-like:200', '--models', 'schnet', '--policies', 'dynamic,static-2pow', '--batch', '8', '--reps', '2', '--steps', '2', '--eval-graphs', '8', '--threads', '2', '--quiet'];

test('study ends with OUT/report.html (charts, recommendation) and prints its path', async () => {
  const out = path.join(tmp, 'run');
  const r = await runDistCli([...grid, '-o', out], { timeoutMs: 240_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const file = path.join(out, 'report.html');
  expect(r.stdout).toContain(`details: ${file} `);
  const html = fs.readFileSync(file, 'utf8');
  expect(html.startsWith('<!doctype html>')).toBe(true);
  expect(html).toContain('<svg');
  expect(html).toContain('Recommendation');
  expect(html).not.toMatch(/<script/);
  // Resuming the finished grid rewrites the report from the saved rows.
  fs.rmSync(file);
  const again = await runDistCli([...grid, '-o', out], { timeoutMs: 240_000 });
  expect(again.status).toBe(0);
  expect(again.stdout).toContain('0 cell(s) run, 4 resumed');
  expect(fs.existsSync(file)).toBe(true);
}, 600_000);

test('--no-report writes no report; a report path that cannot be written fails with ERR_GNN_OUTPUT_PATH after the results are saved', async () => {
  const out = path.join(tmp, 'quiet');
  const r = await runDistCli([...grid, '-o', out, '--no-report'], { timeoutMs: 240_000 });
  expect(r.status).toBe(0);
  expect(r.stdout).not.toContain('report:');
  expect(fs.existsSync(path.join(out, 'report.html'))).toBe(false);
  // A directory where the report file would go: the run fails naming it, the results stay.
  fs.mkdirSync(path.join(out, 'report.html'));
  const bad = await runDistCli([...grid, '-o', out], { timeoutMs: 240_000 });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toContain('ERR_GNN_OUTPUT_PATH');
  expect(bad.stderr).toContain(path.join(out, 'report.html'));
  expect(fs.existsSync(path.join(out, 'results.json'))).toBe(true);
}, 600_000);

test('study merge of complete shards writes the merged report too', async () => {
  const out = path.join(tmp, 'sharded');
  for (const k of ['1/2', '2/2']) expect((await runDistCli([...grid, '-o', out, '--shard', k], { timeoutMs: 240_000 })).status).toBe(0);
  // A shard's report waits for the merge.
  expect(fs.existsSync(path.join(out, 'shard-1-of-2', 'report.html'))).toBe(false);
  const merged = path.join(out, 'merged');
  const m = await runDistCli(['study', 'merge', out, '-o', merged, '--json'], { timeoutMs: 240_000 });
  expect(m.status).toBe(0);
  expect(JSON.parse(m.stdout).report).toBe(path.join(merged, 'report.html'));
  expect(fs.readFileSync(path.join(merged, 'report.html'), 'utf8')).toContain('<svg');
}, 600_000);
