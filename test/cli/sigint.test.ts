/**
 * Ctrl-C during `gnnbatch train` (issue 14, finding 8): the run stops after
 * the current step, writes its checkpoint, says where it is, and exits 130;
 * the checkpoint resumes.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ensureDist, runDistCli } from './dist-cli';
import { readCheckpoint } from '../../src/train/checkpoint';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-sigint-'));
beforeAll(() => ensureDist(), 300_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('SIGINT: checkpoint written, its place printed, exit status 130', async () => {
  const dir = path.join(tmp, 'run');
  const r = await runDistCli(
    ['train', 'qm9-like:64', '--latent', '4', '--passes', '1', '--batch', '4', '--threads', '1', '--steps', '1000000', '--checkpoint', dir, '--checkpoint-every', '5', '--json'],
    {
      timeoutMs: 60_000,
      onSpawn: (c) => {
        // Interrupt once training runs (no progress bar without a TTY: poll for the first checkpoint).
        const poll = setInterval(() => {
          if (fs.existsSync(path.join(dir, 'checkpoint.json'))) {
            clearInterval(poll);
            setTimeout(() => c.kill('SIGINT'), 100);
          }
        }, 20);
      },
    },
  );
  expect(r.signal).toBeNull();
  expect(r.status).toBe(130);
  const ck = readCheckpoint(dir);
  expect(ck.step).toBeGreaterThan(0);
  expect(r.stderr).toContain(`interrupted at step ${ck.step}: the checkpoint of step ${ck.step} is in ${dir} (continue with --resume ${dir})`);
  const doc = JSON.parse(r.stdout);
  expect(doc.stopped_early).toBe(true);
  expect(doc.checkpoint_step).toBe(ck.step);
});
