/**
 * One table of checkpoint.json's fields (issue 26, item 3), used by the writer
 * and the reader: checkpoint.json holds exactly the table's fields in its
 * order, what is written reads back equal, and a value outside a field's rule
 * is refused by the reader, in the words of that rule.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveModelConfig } from '../../src/model/config';
import { initParams, paramLayout } from '../../src/model/params';
import { readCheckpoint, writeCheckpoint, MANIFEST_NAME, type CheckpointState } from '../../src/train/checkpoint';
import { MANIFEST_FIELDS, readManifestFields } from '../../src/train/checkpoint-manifest';
import { CheckpointError } from '../../src/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gnn-ckman-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function state(step: number): CheckpointState {
  const config = resolveModelConfig({ kind: 'mpeu', latent: 8, passes: 1, basis: 10, numClasses: 10, readoutHidden: 4 });
  const layout = paramLayout(config);
  const params = initParams(layout, 7) as Float32Array;
  const m = new Float32Array(layout.total).map((_, i) => (i % 7) * 1e-3 - 2e-3);
  const v = new Float32Array(layout.total).map((_, i) => (i % 5) * 1e-4);
  return {
    config, layout, params, m, v, step, seed: 42, policy: 'dynamic', policyOptions: { budget: 3 }, policyState: { cursor: 5, order: [2, 0, 1] },
    batchSize: 8, target: 'U0', targetMean: -1.5, targetStd: 0.25, atomRefs: Array.from({ length: 10 }, (_, z) => 0.5 - z / 10), graphRule: 'cutoff:5',
    schedule: { kind: 'cosine', lr: 1e-3, totalSteps: 100, warmupSteps: 5 }, clipNorm: 10,
    lossCurve: [{ step: 1, loss: 0.5 }, { step: 2, loss: NaN }], evalCurve: [{ step: 2, val_rmse: 0.3, val_mae: 0.2 }],
    recentLosses: [0.5, NaN], forceTraining: null, elements: [1, 6, 8], microBatches: 2,
  };
}

test('checkpoint.json holds exactly the fields of the table, in its order', () => {
  const dir = path.join(tmp, 'order');
  writeCheckpoint(dir, state(3));
  const j = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8')) as Record<string, unknown>;
  expect(Object.keys(j)).toEqual(Object.keys(MANIFEST_FIELDS));
  expect(Object.keys(j).slice(0, 3)).toEqual(['version', 'step', 'files']);
  expect(Object.keys(j.files as object)).toEqual(['model', 'optimizer']);
  // Each rule is written down for the reviewer, not only in code.
  for (const [k, f] of Object.entries(MANIFEST_FIELDS)) expect(`${k}: ${f.rule}`.length).toBeGreaterThan(k.length + 10);
});

test('what the writer writes, the reader reads back equal (NaN through null)', () => {
  const dir = path.join(tmp, 'roundtrip');
  const s = state(4);
  writeCheckpoint(dir, s);
  const r = readCheckpoint(dir, { optimizer: true });
  for (const k of Object.keys(MANIFEST_FIELDS).filter((k) => k !== 'version' && k !== 'files')) expect([k, r[k as keyof typeof r]]).toEqual([k, s[k as keyof CheckpointState]]);
  expect(r.version).toBe(2);
  expect(Buffer.from(r.params.buffer).equals(Buffer.from(s.params.buffer))).toBe(true);
  expect(Buffer.from((r.m as Float32Array).buffer).equals(Buffer.from(s.m.buffer))).toBe(true);
  expect(Buffer.from((r.v as Float32Array).buffer).equals(Buffer.from(s.v.buffer))).toBe(true);
  expect(r.hasOptimizer).toBe(true);
});

/** One broken value per field, the words of its rule the error must carry. */
const BROKEN: [keyof CheckpointState, unknown, string][] = [
  ['step', -1, "field 'step' must be an integer >= 0"],
  ['seed', NaN, "field 'seed' must be a finite number"],
  ['policy', '', "field 'policy' must be a non-empty string"],
  ['batchSize', 1, "field 'batchSize' must be an integer >= 2"],
  ['target', '', "field 'target' must be a non-empty string"],
  ['targetMean', Infinity, "field 'targetMean' must be a finite number"],
  ['targetStd', -1, "field 'targetStd' must be a finite number >= 0"],
  ['atomRefs', [1, 2], "field 'atomRefs' must be null or an array of at least numClasses = 10 finite numbers"],
  ['graphRule', 'radius:5', "field 'graphRule' must be fc, cutoff:R or knn:K"],
  ['schedule', { kind: 'step', lr: 1 }, "field 'schedule' must have kind 'constant', 'exponential' or 'cosine'"],
  ['clipNorm', -2, "field 'clipNorm' must be a finite number >= 0"],
  ['lossCurve', [{ step: 'one', loss: 1 }], "field 'lossCurve[0]' must be {step, loss}"],
  ['recentLosses', new Array(10_001).fill(0), "field 'recentLosses' must be null or an array of at most 10000 finite numbers"],
  ['forceTraining', { weights: { energy: -1, forces: 1, stress: 0 } }, "field 'forceTraining' must be null or an object with weights"],
  ['elements', [8, 6], "field 'elements' must be null or an ascending list of distinct atomic numbers below numClasses = 10"],
  ['microBatches', 0, "field 'microBatches' must be an integer >= 1"],
];

describe.each(BROKEN)('field %s = %j', (key, value, words) => {
  test('the reader refuses it in checkpoint.json with the words of its rule (ERR_GNN_CHECKPOINT_FIELD)', () => {
    const dir = path.join(tmp, `read-${key}`);
    writeCheckpoint(dir, state(5));
    const file = path.join(dir, MANIFEST_NAME);
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    j[key] = value;
    fs.writeFileSync(file, JSON.stringify(j));
    let e: unknown;
    try {
      readCheckpoint(dir);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e).toMatchObject({ code: 'ERR_GNN_CHECKPOINT_FIELD', message: expect.stringContaining(words) });
  });
});

test('the version is checked first, with its own code', () => {
  expect(() => readManifestFields('x.json', { version: 3, step: -1 })).toThrow(expect.objectContaining({ code: 'ERR_GNN_CHECKPOINT_VERSION', message: 'x.json: checkpoint version 3 is not supported (this gnnbatch reads 1 and 2)' }));
});
