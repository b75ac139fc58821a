/** A source that holds no structures is an error that says so, not a run over nothing (NaN statistics, "no target"). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSource } from '../../src/data/source';
import { registerDataCommands } from '../../src/cli/data';
import { runCli } from '../helpers/cli';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-empty-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('an empty folder', async () => {
  const empty = path.join(dir, 'nothing');
  fs.mkdirSync(empty);
  await expect(loadSource(empty)).rejects.toMatchObject({ code: 'ERR_GNN_DATA_EMPTY', message: expect.stringContaining('no structures found') });
  await expect(loadSource(empty, { target: 'U0' })).rejects.toMatchObject({ code: 'ERR_GNN_DATA_EMPTY' });
});

test('a folder of unrelated files', async () => {
  const other = path.join(dir, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'hello\n');
  await expect(loadSource(other)).rejects.toMatchObject({ code: 'ERR_GNN_DATA_EMPTY' });
});

test('an empty extended XYZ file', async () => {
  const file = path.join(dir, 'empty.extxyz');
  fs.writeFileSync(file, '');
  await expect(loadSource(file)).rejects.toMatchObject({ code: 'ERR_GNN_DATA_EMPTY', message: expect.stringContaining(file) });
});

test('data stats on an empty folder fails instead of printing NaN', async () => {
  const empty = path.join(dir, 'stats-empty');
  fs.mkdirSync(empty);
  await expect(runCli((p) => { registerDataCommands(p); }, ['data', 'stats', empty])).rejects.toMatchObject({ code: 'ERR_GNN_DATA_EMPTY' });
});
