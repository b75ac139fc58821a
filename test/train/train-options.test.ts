/** train()'s typed options: the policy and schedule names, and an AbortSignal beside shouldStop. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildStore, qm9Like } from '../../src/data';
import { policyName, POLICY_NAMES } from '../../src/batching';
import { scheduleText, parseSchedule } from '../../src/train/schedule';
import { train } from '../../src/train/trainer';
import { readCheckpoint } from '../../src/train/checkpoint';
import { codeOf } from '../helpers/codes';

const { store } = buildStore([...qm9Like(40, 3)], { graph: { kind: 'fc' } });
const base = { store, target: 'U0', model: { kind: 'schnet' as const, latent: 8, passes: 1, basis: 8 }, policy: 'dynamic' as const, batchSize: 4, seed: 1, skipEval: true };

describe('signal', () => {
  test('aborting stops between steps like shouldStop: resolves stopped early, with a checkpoint of the last step', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-abort-'));
    const ac = new AbortController();
    const { result } = await train({ ...base, steps: 50, checkpointDir: dir, progressEvery: 1, onProgress: (p) => p.step === 3 && ac.abort(), signal: ac.signal });
    expect(result.stopped_early).toBe(true);
    expect(result.steps_run).toBe(3);
    expect(result.checkpoint_step).toBe(3);
    expect(readCheckpoint(dir).step).toBe(3);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an already aborted signal runs no step; an unaborted one changes nothing', async () => {
    const { result } = await train({ ...base, steps: 5, signal: AbortSignal.abort() });
    expect(result.steps_run).toBe(0);
    expect(result.stopped_early).toBe(true);
    const a = await train({ ...base, steps: 4, signal: new AbortController().signal });
    const b = await train({ ...base, steps: 4 });
    expect(a.result.loss_curve).toEqual(b.result.loss_curve);
    expect(a.result.stopped_early).toBe(false);
  });
});

describe('names read from strings', () => {
  test('policyName accepts exactly the registered names', () => {
    for (const n of POLICY_NAMES) expect(policyName(n)).toBe(n);
    expect(() => policyName('dynamc')).toThrow(/unknown batching policy 'dynamc' \(expected one of static-2pow, /);
    expect(codeOf(() => policyName('dynamc'))).toBe('ERR_GNN_ARGUMENT');
  });

  test('scheduleText accepts what parseSchedule reads, and nothing else', () => {
    for (const t of ['constant', 'study', 'exponential', 'exponential:0.9:1000', 'cosine', 'cosine:1e-6']) {
      expect(scheduleText(t)).toBe(t);
      expect(() => parseSchedule(t, 1e-3, 100)).not.toThrow();
    }
    for (const t of ['', 'cos', 'linear:1']) {
      expect(codeOf(() => scheduleText(t))).toBe('ERR_GNN_ARGUMENT');
      expect(codeOf(() => parseSchedule(t, 1e-3, 100))).toBe('ERR_GNN_ARGUMENT');
    }
  });
});
