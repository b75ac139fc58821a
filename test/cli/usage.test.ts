/**
 * Usage errors of every command print one line naming the problem plus a hint
 * to --help (never the whole help) and exit 2; a checkpoint path that cannot be
 * a directory fails before any training step (issue 14, findings 8 and 9).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli, EXIT_USAGE } from '../../src/cli/main';

async function cli(...args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const status = await runCli(['node', 'gnnbatch', ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { status, out, err };
}

const lines = (t: string): string[] => t.split('\n').filter((l) => l.trim() !== '');

describe('usage errors: one line, a --help hint, exit 2', () => {
  test.each([
    [['train', 'qm9-like:10', '--nope'], /unknown option '--nope'/, 'gnnbatch train --help'],
    [['train'], /missing required argument 'source'/, 'gnnbatch train --help'],
    [['train', 'qm9-like:10', '--format', 'xyz'], /--format.*'xyz'.*choices/, 'gnnbatch train --help'],
    [['train', 'qm9-like:10', '--policy', 'nope'], /--policy.*'nope'/, 'gnnbatch train --help'],
    [['train', 'qm9-like:10', '--batch', '1'], /--batch 1: expected an integer >= 2/, 'gnnbatch train --help'],
    [['train', 'qm9-like:10', '--steps', 'many'], /--steps many/, 'gnnbatch train --help'],
    [['train', 'qm9-like:10', '--checkpoint-every', '2'], /--checkpoint-every needs --checkpoint/, 'gnnbatch train --help'],
    [['batching', 'compare', 'qm9-like:10', '--batch', '0,x'], /--batch.*'0,x'/, 'gnnbatch batching compare --help'],
    [['batching', 'compare', 'qm9-like:10', '--policies', 'static-64,nope'], /unknown policy 'nope'/, 'gnnbatch batching compare --help'],
    [['batching', 'compare', 'qm9-like:10', '--estimator', 'median'], /'median'/, 'gnnbatch batching compare --help'],
    [['data', 'build', 'qm9-like:10'], /required option '-o, --output <file>' not specified/, 'gnnbatch data build --help'],
    [['data', 'stats', 'qm9-like:10', '--format', 'xyz'], /'xyz'/, 'gnnbatch data stats --help'],
    [['frobnicate'], /unknown command 'frobnicate'/, 'gnnbatch --help'],
    [['data', 'stats', 'qm9-like:10', '--graph', 'knn:0'], /--graph graph rule 'knn:0' is not one of/, 'gnnbatch data stats --help'],
  ])('%j', async (args, message, hint) => {
    const r = await cli(...args);
    expect(r.status).toBe(EXIT_USAGE);
    expect(r.out).toBe('');
    expect(lines(r.err)).toHaveLength(1);
    expect(r.err).toMatch(message);
    expect(r.err).toContain(`see '${hint}'`);
    expect(r.err).toContain('ERR_GNN_USAGE');
    expect(r.err).not.toMatch(/Options:|Usage:/);
  });

  test('--help still prints the help and exits 0', async () => {
    const r = await cli('train', '--help');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/Usage: gnnbatch train/);
  });
});

describe('output paths are checked before step 1', () => {
  test('--checkpoint under a regular file (like /etc/hostname/run1) fails at once with a coded one-line error', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-usage-')), 'hostname');
    fs.writeFileSync(file, 'a file, not a folder\n');
    const t0 = Date.now();
    const r = await cli('train', 'qm9-like:50', '--steps', '100000', '--batch', '4', '--latent', '4', '--checkpoint', `${file}/run1`);
    expect(r.status).toBe(1);
    expect(lines(r.err)).toHaveLength(1);
    expect(r.err).toContain(`${file}/run1: cannot be used as a checkpoint directory: a part of the path is a file`);
    expect(r.err).toContain('ERR_GNN_CHECKPOINT_PATH');
    expect(r.out).toBe('');
    expect(Date.now() - t0).toBeLessThan(5000); // 100000 steps were not run first
  });
});

test('data build -o into a folder that does not exist fails before reading the source', async () => {
  const r = await cli('data', 'build', 'qm9-like:100000', '-o', '/nonexistent-gnnbatch-dir/x.gnb');
  expect(r.status).toBe(1);
  expect(lines(r.err)).toHaveLength(1);
  expect(r.err).toMatch(/-o \/nonexistent-gnnbatch-dir\/x\.gnb: cannot be written: the folder \/nonexistent-gnnbatch-dir does not exist \(ERR_GNN_OUTPUT_PATH\)/);
});
