/** A small trained checkpoint shared by the serving tests (made once per test file). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildStore, qm9Like, type Structure } from '../../src/data';
import { train } from '../../src/train/trainer';

/** Trains `steps` steps of a small MPEU on qm9-like graphs and checkpoints it in a temp folder. */
export async function smallCheckpoint(options: { steps?: number; atomref?: boolean; kind?: 'mpeu' | 'schnet' } = {}): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-serve-'));
  const { store } = buildStore([...qm9Like(300, 3)], { graph: { kind: 'fc' } });
  await train({
    store,
    target: 'U0',
    model: { kind: options.kind ?? 'mpeu', latent: 16, passes: 2, basis: 20 },
    policy: 'dynamic',
    batchSize: 8,
    steps: options.steps ?? 3,
    seed: 1,
    atomref: options.atomref,
    skipEval: true,
    checkpointDir: path.join(dir, 'ck'),
  });
  return path.join(dir, 'ck');
}

/** `n` qm9-like molecules (deterministic). */
export function molecules(n: number, seed = 11): Structure[] {
  return [...qm9Like(n, seed)];
}
