/**
 * The predictor serves PaiNN: request stores are built with edge directions
 * and each structure's directions are copied into the batch it joins.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildStore, qm9Like, type Structure } from '../../src/data';
import { createPredictor } from '../../src/serve';
import { train } from '../../src/train/trainer';

let dir: string;
let ck: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-serve-painn-'));
  ck = path.join(dir, 'ck');
  const { store } = buildStore([...qm9Like(60, 3)], { graph: { kind: 'fc' }, directions: true });
  await train({
    store, target: 'U0', model: { kind: 'painn', latent: 8, passes: 2, basis: 6, readoutHidden: 8 },
    policy: 'dynamic', batchSize: 4, steps: 3, seed: 1, skipEval: true, checkpointDir: ck,
  });
}, 120_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A rotation about an oblique axis (row-major). */
function rotateStructure(s: Structure): Structure {
  const c = Math.cos(0.9), n = Math.sin(0.9), a = [2 / 3, 1 / 3, 2 / 3];
  const R = [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => (i === j ? c : 0) + (1 - c) * a[i] * a[j] + n * (i === j ? 0 : (j - i === 1 || j - i === -2 ? -1 : 1) * a[3 - i - j])));
  const p = new Float64Array(s.positions.length);
  for (let k = 0; k < p.length; k += 3) for (let i = 0; i < 3; i++) p[k + i] = R[3 * i] * s.positions[k] + R[3 * i + 1] * s.positions[k + 1] + R[3 * i + 2] * s.positions[k + 2];
  return { ...s, positions: p };
}

it('PaiNN predictions: one batch of many equals one call per molecule, and rotating the molecules changes nothing', async () => {
  const p = await createPredictor(ck, { maxBatchGraphs: 8 });
  try {
    const ms = [...qm9Like(12, 77)];
    const together = await p.predict(ms);
    const alone: number[] = [];
    for (const m of ms) alone.push((await p.predict([m]))[0]);
    const turned = await p.predict(ms.map(rotateStructure));
    const scale = Math.max(...Array.from(together, Math.abs));
    for (let i = 0; i < ms.length; i++) {
      expect(Number.isFinite(together[i])).toBe(true);
      expect(Math.abs(together[i] - alone[i])).toBeLessThanOrEqual(1e-5 * scale);
      expect(Math.abs(turned[i] - together[i])).toBeLessThanOrEqual(1e-4 * scale);
    }
    expect(new Set(Array.from(together)).size).toBeGreaterThan(1);
  } finally {
    await p.close();
  }
}, 120_000);
