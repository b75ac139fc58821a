/**
 * The README's trace check works from a fresh clone: `node scripts/check-trace.mjs FILE` loads a trace
 * written by `gnnbatch profile --trace` with Chrome DevTools' own trace engine (@paulirish/trace_engine,
 * a devDependency) and exits 0; a broken trace exits 1.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registerProfileCommand } from '../../src/cli/profile';
import { runCli } from '../helpers/cli';

const root = path.join(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-check-trace-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const checkTrace = (file: string) =>
  spawnSync(process.execPath, [path.join(root, 'scripts/check-trace.mjs'), file], { cwd: root, encoding: 'utf8', timeout: 60_000 });

test('a profile trace parses with the DevTools trace engine', async () => {
  const file = path.join(tmp, 'trace.json');
  await runCli(registerProfileCommand, ['profile', 'qm9-like:120', '--latent', '8', '--batch', '8', '--steps', '2', '--threads', '1', '--trace', file]);
  const r = checkTrace(file);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('parsed by the DevTools trace engine');
  expect(r.stdout).toMatch(/"kernels": \d+ events/);
});

test('a file that is not a trace fails', () => {
  const file = path.join(tmp, 'broken.json');
  fs.writeFileSync(file, '{"traceEvents": 7}');
  expect(checkTrace(file).status).not.toBe(0);
});
