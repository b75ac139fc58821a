/**
 * The one model opener (issue 26 item 2): loadModel and createPredictor read a
 * checkpoint through openModel, so both agree with it and with each other.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildStore, qm9Like } from '../../src/data';
import { openModel } from '../../src/inference/open-model';
import { loadModel } from '../../src/inference/load-model';
import { createPredictor } from '../../src/serve';
import { train } from '../../src/train/trainer';
import { molecules, smallCheckpoint } from '../serve/helpers';

let plain: string;
let withRefs: string;
beforeAll(async () => {
  plain = await smallCheckpoint({ steps: 3 });
  withRefs = await smallCheckpoint({ steps: 3, atomref: true });
}, 120_000);
afterAll(() => {
  for (const d of [plain, withRefs]) fs.rmSync(path.dirname(d), { recursive: true, force: true });
});

test('the opened model states what the checkpoint means for prediction', () => {
  const m = openModel(withRefs);
  expect(m.config.kind).toBe('mpeu');
  expect(m.rule).toEqual({ kind: 'fc' });
  expect(m.directions).toBe(false);
  expect(m.atomRefs).not.toBeNull();
  // The training split's elements: qm9-like's H, C, N, O, F (at least H and C), ascending, nothing else.
  const el = m.elements!;
  expect(el).toEqual([...el].sort((a, b) => a - b));
  expect(el).toEqual(expect.arrayContaining([1, 6]));
  for (const z of el) expect([1, 6, 7, 8, 9]).toContain(z);
  const s = molecules(3, 5);
  const store = m.requestStore(s);
  expect(store.numGraphs).toBe(3);
  expect(store.directions).toBeFalsy();
  expect(m.requestStore(s, { directions: true }).directions).toBeTruthy();
  // The atom-reference sum per graph, by hand.
  const offsets = m.offsets(store)!;
  s.forEach((x, g) => {
    let sum = 0;
    for (const z of x.numbers) sum += m.atomRefs![z];
    expect(offsets[g]).toBeCloseTo(sum, 9);
  });
  expect(openModel(plain).offsets(store)).toBeNull();
  expect(m.toTarget(0.5, 2)).toBe(0.5 * m.targetStd + m.targetMean + 2);
});

test('checkStructures names the structure and the problem (ERR_GNN_STRUCTURE)', () => {
  const m = openModel(plain);
  const [a] = molecules(1, 2);
  expect(() => m.checkStructures([a, { ...a, id: 'bad', numbers: Uint8Array.of(1, 200), positions: new Float64Array(6) }])).toThrow(
    expect.objectContaining({ code: 'ERR_GNN_STRUCTURE', message: expect.stringMatching(/structure 1 \(bad\): atomic number 200/) }),
  );
  expect(() => m.checkStructures([{ ...a, numbers: new Uint8Array(0), positions: new Float64Array(0) }])).toThrow(expect.objectContaining({ code: 'ERR_GNN_STRUCTURE' }));
});

test('loadModel and createPredictor agree bit for bit with the opener\'s conversion (with atom references)', async () => {
  const s = molecules(6, 9);
  const model = loadModel(withRefs);
  const a = model.predict(s);
  const p = await createPredictor(withRefs);
  try {
    const b = await p.predict(s);
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(p.elements).toEqual(model.elements);
    expect(p.target).toBe(model.target);
  } finally {
    await p.close();
    model.close();
  }
}, 120_000);

test('a PaiNN checkpoint opens with directions for every request store', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-open-painn-'));
  try {
    const { store } = buildStore([...qm9Like(30, 3)], { graph: { kind: 'fc' }, directions: true });
    await train({ store, target: 'U0', model: { kind: 'painn', latent: 8, passes: 1, basis: 6, readoutHidden: 8 }, policy: 'dynamic', batchSize: 4, steps: 1, seed: 1, skipEval: true, checkpointDir: path.join(dir, 'ck') });
    const m = openModel(path.join(dir, 'ck'));
    expect(m.directions).toBe(true);
    expect(m.requestStore(molecules(2, 4)).directions).toBeTruthy();
    expect((await m.requestStoreAsync(molecules(2, 4))).directions).toBeTruthy();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
