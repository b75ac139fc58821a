/** Atomrefs in the study: decided per source (auto by default), recorded in results.json, and what "learned" is measured against. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runStudy, readResults, gridFingerprint, learnedCells, type StudyGrid, type StudyRow } from '../../src/experiment';
import { loadSource, splitGraphs, targetColumn } from '../../src/data';
import { ATOMREF_AUTO_MAX_RATIO, decideAtomrefs } from '../../src/train/atomref';
import { atomrefSentence } from '../../src/report/render';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-atomref-'));

test('auto fits atomrefs for an extensive target (U0) and not for a per-atom one; on/off as said', async () => {
  const { store: q } = await loadSource('qm9-like:300');
  const { store: a } = await loadSource('aflow-like:200');
  const qs = splitGraphs(q.numGraphs, { seed: 42 }).train;
  const as = splitGraphs(a.numGraphs, { seed: 42 }).train;
  const u0 = decideAtomrefs(q, targetColumn(q, 'U0'), qs, 'auto');
  expect(u0.used).toBe(true);
  expect(u0.ratio).toBeLessThan(0.01); // U0 is mostly composition
  expect(u0.residual_std).toBeCloseTo(u0.ratio * u0.target_std, 10);
  const hf = decideAtomrefs(a, targetColumn(a, 'enthalpy_formation_atom'), as, 'auto');
  expect(hf.ratio).toBeGreaterThan(ATOMREF_AUTO_MAX_RATIO);
  expect(hf.used).toBe(false);
  expect(decideAtomrefs(a, targetColumn(a, 'enthalpy_formation_atom'), as, 'on').used).toBe(true);
  expect(decideAtomrefs(q, targetColumn(q, 'U0'), qs, 'off').used).toBe(false);
});

test('the study uses atomrefs by default where they fit, records them, and refuses to resume rows of another setting', async () => {
  const dir = tmp();
  const grid = { data: ['qm9-like:2000'], models: ['schnet' as const], policies: ['dynamic'], batches: [8], reps: 1, steps: 2, evalGraphs: 8, outDir: dir };
  await runStudy(grid);
  const res = readResults(path.join(dir, 'results.json'));
  expect(res.grid.atomref).toBe('auto');
  expect(res.data[0].atomref).toEqual(expect.objectContaining({ mode: 'auto', used: true }));
  const row = res.rows[0];
  expect(row.atomref).toBe(true);
  expect(row.residual_std).toBeCloseTo(res.data[0].atomref!.residual_std, 10);
  expect(row.residual_std!).toBeLessThan(0.01 * row.target_std);
  // With atomrefs the test RMSE is in U0's units but far below its std: the fitted values alone score that
  // (2000 graphs: every element of the test graphs occurs in the train split).
  expect(row.test_rmse).toBeLessThan(0.1 * row.target_std);
  const csv = fs.readFileSync(path.join(dir, 'results.csv'), 'utf8').split('\n');
  const header = csv[0].split(',');
  expect(csv[1].split(',')[header.indexOf('atomref')]).toBe('true');
  expect(atomrefSentence(res)).toMatch(/qm9-like:2000 \(U0\): fitted, residual std/);
  let err: unknown;
  try {
    await runStudy({ ...grid, atomref: 'off' });
  } catch (e) {
    err = e;
  }
  expect((err as { code?: string }).code).toBe('ERR_GNN_STUDY_RESUME');
  expect(String(err)).toContain(path.join(dir, 'results.json'));
  expect(String(err)).toContain("atomref 'auto'");
  // --no-atomref into its own folder: nothing fitted.
  const off = tmp();
  await runStudy({ ...grid, outDir: off, atomref: 'off' });
  const r2 = readResults(path.join(off, 'results.json'));
  expect(r2.rows[0].atomref).toBe(false);
  expect(r2.data[0].atomref?.used).toBe(false);
}, 120_000);

test('a grid without the atomref field (files from before atomrefs) keeps its fingerprint and reads as off', () => {
  const g: StudyGrid = { data: ['d'], models: ['mpeu'], policies: ['dynamic'], batches: [8], reps: 1, steps: 2, base_seed: 42, eval_graphs: 8 };
  expect(gridFingerprint({ ...g, atomref: 'off' }, '1')).toBe(gridFingerprint(g, '1'));
  expect(gridFingerprint({ ...g, atomref: 'auto' }, '1')).not.toBe(gridFingerprint(g, '1'));
});

test('with atomrefs "learned" is measured against the residual std, not the target std', () => {
  const base = { data: 'd', model: 'mpeu', batch: 8, test_rmse: 0.5, target_std: 240, final_train_loss: 0.9 } as unknown as StudyRow;
  // Without atomrefs an RMSE of 0.5 against a std of 240 looks learned... (train loss 0.9 still says no)
  expect(learnedCells({ rows: [{ ...base, final_train_loss: 0.1 }] })[0].learned).toBe(true);
  // ...with atomrefs the baseline is the residual's spread (0.6): 0.5 is not clearly below it.
  const cell = learnedCells({ rows: [{ ...base, final_train_loss: 0.1, atomref: true, residual_std: 0.6 }] })[0];
  expect(cell.std).toBe(0.6);
  expect(cell.atomref).toBe(true);
  expect(cell.learned).toBe(false);
  expect(learnedCells({ rows: [{ ...base, final_train_loss: 0.1, atomref: true, residual_std: 2 }] })[0].learned).toBe(true);
});
