/**
 * The batching study on force training (issue 22 items 5 and 6): `runStudy({
 * forces })` / `study --forces` end to end on tiny grids, what results.json
 * records, merge refusing to mix force and energy studies, PaiNN in a force
 * study, the learning check on forces, and the force-vs-energy comparison.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CSV_COLUMNS, FORCE_COLUMNS, StudyError, compareForceStudy, comparisonProblem, forceRms, forceStudyMarkdown, gridFingerprint, learnedCells,
  mergeStudyResults, readResults, runStudy, studyGrid, analyseStudy, ttestTable, type StudyResults, type StudyRow, type TTestRow,
} from '../../src/experiment';
import { learningVerdict, type LearningCheck, type LearningRun } from '../../src/experiment/learning-check';
import { DEFAULT_FORCE_WEIGHTS } from '../../src/train/force-training';
import { loadSource, splitGraphs } from '../../src/data';
import { registerStudyCommand, studyReportTitle } from '../../src/cli/study';
import { registerReportCommand } from '../../src/cli/report';
import { runCli } from '../helpers/cli';

jest.setTimeout(240_000);

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-fstudy-'));
const grid = { data: ['qm9-like:300'], models: ['mpeu' as const, 'schnet' as const], policies: ['dynamic', 'static-2pow'], batches: [8], steps: 3, reps: 2, evalGraphs: 8 };
const run = (args: string[]): Promise<string> =>
  runCli((program) => {
    registerStudyCommand(program);
    registerReportCommand(program);
  }, args);

const codeOf = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'resolved';
};

describe('a force study and its energy twin (qm9-like:300)', () => {
  const forceDir = tmp();
  const energyDir = tmp();
  let forces: StudyResults;
  let energy: StudyResults;

  beforeAll(async () => {
    forces = (await runStudy({ ...grid, outDir: forceDir, forces: true, learningCheck: { steps: 4, seeds: 2 } })).results;
    energy = (await runStudy({ ...grid, outDir: energyDir, learningCheck: { steps: 4, seeds: 2 } })).results;
  });

  test('results.json records a force study: the weights in the grid, the force columns in every row', async () => {
    const r = readResults(path.join(forceDir, 'results.json'));
    expect(r.grid.forces).toEqual({ ...DEFAULT_FORCE_WEIGHTS });
    expect(r.rows).toHaveLength(8);
    const { store } = await loadSource('qm9-like:300', {});
    const rms = forceRms(store, splitGraphs(store.numGraphs, { seed: 42 }).train);
    expect(rms).toBeGreaterThan(0);
    for (const row of r.rows) {
      expect(row.forces).toBe(true);
      expect(row.target).toBe('U0'); // qm9-like's forces are -dU0/dx
      for (const k of ['val_force_mae', 'val_force_rmse', 'test_force_mae', 'test_force_rmse'] as const) {
        expect(Number.isFinite(row[k])).toBe(true);
        expect(row[k]).toBeGreaterThan(0);
      }
      expect(row.test_force_rmse).toBeGreaterThanOrEqual(row.test_force_mae as number);
      expect(row.force_std).toBeCloseTo(rms, 12);
      expect(Number.isFinite(row.test_rmse)).toBe(true); // the energy's errors stay in test_rmse / test_mae
    }
    const header = fs.readFileSync(path.join(forceDir, 'results.csv'), 'utf8').split('\n')[0];
    expect(header).toBe([...CSV_COLUMNS, ...FORCE_COLUMNS].join(','));
  });

  test('the plain study is unchanged: no force columns, no forces in the grid, its own fingerprint', () => {
    expect(energy.grid.forces).toBeUndefined();
    for (const row of energy.rows) for (const k of FORCE_COLUMNS) expect(row[k]).toBeUndefined();
    expect(fs.readFileSync(path.join(energyDir, 'results.csv'), 'utf8').split('\n')[0]).toBe(CSV_COLUMNS.join(','));
    expect(forces.fingerprint).not.toBe(energy.fingerprint);
    // An energy grid's fingerprint does not cover `forces` at all (files from before keep theirs).
    expect(gridFingerprint({ ...energy.grid }, energy.environment.gnnbatch_version)).toBe(energy.fingerprint);
  });

  test('the force cells trained forces: same seeds, other losses and a slower step than energy only', () => {
    for (const f of forces.rows) {
      const e = energy.rows.find((x) => x.model === f.model && x.policy === f.policy && x.rep === f.rep) as StudyRow;
      expect(e.seed).toBe(f.seed);
      expect(f.loss_curve[0].loss).not.toBe(e.loss_curve[0].loss);
    }
    const sum = (rows: StudyRow[]) => rows.reduce((s, r) => s + r.combined_ms_median, 0);
    expect(sum(forces.rows)).toBeGreaterThan(sum(energy.rows));
  });

  test('the test-RMSE t-tests of a force study are on the force RMSE', () => {
    const t = analyseStudy(forces.rows).ttests.find((x) => x.model === 'schnet') as TTestRow;
    expect(t.forces).toBe(true);
    const mean = (p: string) => forces.rows.filter((r) => r.model === 'schnet' && r.policy === p).reduce((s, r) => s + (r.test_force_rmse as number), 0) / 2;
    expect(t.mean_a).toBeCloseTo(mean(t.a), 12);
    expect(t.mean_b).toBeCloseTo(mean(t.b), 12);
    expect(ttestTable([t], 0.05).title).toContain('force studies: test force RMSE');
    const e = analyseStudy(energy.rows).ttests[0];
    expect(e.forces).toBeUndefined();
    expect(ttestTable([e], 0.05).title).not.toContain('force');
  });

  test('the learning check trains forces and reports force and energy errors', () => {
    const lc = (forces as StudyResults & { learning_check?: LearningCheck }).learning_check as LearningCheck;
    expect(lc.forces).toBe(true);
    expect(lc.runs.length).toBeGreaterThanOrEqual(4);
    for (const x of lc.runs) {
      expect(Number.isFinite(x.test_force_rmse)).toBe(true);
      expect(Number.isFinite(x.test_force_mae)).toBe(true);
      expect(x.force_baseline).toBeGreaterThan(0);
      expect(Number.isFinite(x.test_rmse)).toBe(true);
    }
    const s = learningVerdict(lc).sentence;
    expect(s).toContain('energy + forces');
    expect(s).toMatch(/force MAE [\d.e+-]+ \/ RMSE [\d.e+-]+ .*energy MAE/);
    const plain = (energy as StudyResults & { learning_check?: LearningCheck }).learning_check as LearningCheck;
    expect(plain.forces).toBeUndefined();
    expect(learningVerdict(plain).sentence).not.toContain('force');
  });

  test('merge refuses to mix a force study and an energy study, and rows that contradict their grid', () => {
    let err: unknown;
    try {
      mergeStudyResults([{ file: 'forces.json', results: forces }, { file: 'energy.json', results: energy }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StudyError);
    expect((err as StudyError).code).toBe('ERR_GNN_MERGE_GRID');
    expect((err as Error).message).toMatch(/forces\.json trained on energy \+ forces \(loss weights: energy 0\.01, forces 0\.99\) but energy\.json on energy: .*cannot be merged/);
    // A force study's file with one energy row in it (edited or mixed by hand).
    const edited = JSON.parse(JSON.stringify(forces)) as StudyResults;
    delete (edited.rows[1] as Partial<StudyRow>).forces;
    expect(() => mergeStudyResults([{ file: 'edited.json', results: edited }])).toThrow(/edited\.json: rows\[1\] trained on energy only, but the file's grid is a force study/);
    // The force study on its own merges, and stays a force study.
    const m = mergeStudyResults([{ file: 'forces.json', results: forces }]);
    expect(m.results.grid.forces).toEqual(forces.grid.forces);
    expect(m.results.rows.every((r) => r.forces === true)).toBe(true);
  });

  test('resuming an energy study folder with --forces (or the reverse) is refused', async () => {
    const e1 = await codeOf(runStudy({ ...grid, outDir: energyDir, forces: true }));
    expect(e1).toBe('ERR_GNN_STUDY_RESUME');
    await expect(runStudy({ ...grid, outDir: forceDir })).rejects.toThrow(/trained on energy \+ forces .*this run trains on energy: run with --fresh/);
  });

  test('the comparison with the energy study: picks, per-graph ratios, the markdown', () => {
    expect(comparisonProblem(forces, energy)).toBeNull();
    expect(comparisonProblem(energy, forces)).toMatch(/not a force study/);
    expect(comparisonProblem(forces, { grid: { ...energy.grid, batches: [16] } })).toMatch(/differ in batches/);
    const c = compareForceStudy(forces, energy, { resamples: 0 });
    expect(c.cells.map((x) => x.model).sort()).toEqual(['mpeu', 'schnet']);
    for (const x of c.cells) {
      expect(['dynamic', 'static-2pow']).toContain(x.forces.pick);
      expect(x.force_cost).toBeGreaterThan(0);
      // The pick's ms per 1000 graphs is its decision evidence.
      const ev = c.forces.cells.find((d) => d.model === x.model)?.policies.find((p) => p.policy === x.forces.pick);
      expect(x.forces.ms_per_1000_graphs).toBe(ev?.ms_per_1000_graphs);
      expect(x.forces.runner_up?.ratio).toBeGreaterThanOrEqual(1);
    }
    const md = forceStudyMarkdown(forces, energy, { command: '`x`' });
    expect(md).toContain('energy + forces (loss weights: energy 0.01, forces 0.99');
    expect(md).toMatch(/With forces, (dynamic|static-2pow) is picked at \d/);
    expect(md).toContain('| data | model | B | energy: pick |');
    expect(md).toMatch(/With forces: Learning check \(qm9-like:300, \w+, B=8, 4 steps at lr 0.001, 2 seeds, energy \+ forces\)/);
    expect(md).toContain('Reproduce: `x`');
  });

  test('gnnbatch report --compare writes the comparison; the report title says energy + forces', async () => {
    expect(studyReportTitle(forces)).toMatch(/energy \+ forces training/);
    expect(studyReportTitle(energy)).toBeUndefined();
    const out = tmp();
    const md = path.join(out, 'forces-study.md');
    await run(['report', path.join(forceDir, 'results.json'), '-o', path.join(out, 'r.html'), '--compare', path.join(energyDir, 'results.json'), '--markdown', md]);
    expect(fs.readFileSync(md, 'utf8')).toContain('Batching with forces');
    const html = fs.readFileSync(path.join(out, 'r.html'), 'utf8');
    expect(html).toContain('batching on energy + forces training');
    // A few steps do not learn: the report says so in force terms (force RMSE against the zero-force RMS).
    expect(html).toMatch(/did not learn/);
    expect(html).toMatch(/force RMSE [\d.]+ vs force RMS [\d.]+, train loss [\d.]+ of the zero-force loss/);
    // Swapped files: refused with the reason.
    await expect(run(['report', path.join(energyDir, 'results.json'), '-o', path.join(out, 'r2.html'), '--compare', path.join(forceDir, 'results.json'), '--markdown', md])).rejects.toThrow(/not a force study/);
  });
});

describe('shards of a force study', () => {
  test('merge into one force study; an energy shard of the same grid is refused', async () => {
    const dir = tmp();
    const small = { data: ['qm9-like:300'], models: ['schnet' as const], policies: ['dynamic', 'exact'], batches: [8], steps: 2, reps: 1, evalGraphs: 4 };
    const s1 = (await runStudy({ ...small, outDir: path.join(dir, 's1'), forces: true, shard: { index: 1, count: 2 } })).results;
    const s2 = (await runStudy({ ...small, outDir: path.join(dir, 's2'), forces: true, shard: { index: 2, count: 2 } })).results;
    expect(s1.rows.length + s2.rows.length).toBe(2);
    const m = mergeStudyResults([{ file: 's1', results: s1 }, { file: 's2', results: s2 }]);
    expect(m.missing).toEqual([]);
    expect(m.results.grid.forces).toEqual({ ...DEFAULT_FORCE_WEIGHTS });
    expect(m.results.rows.map((r) => r.forces)).toEqual([true, true]);
    const e2 = (await runStudy({ ...small, outDir: path.join(dir, 'e2'), shard: { index: 2, count: 2 } })).results;
    expect(() => mergeStudyResults([{ file: 's1', results: s1 }, { file: 'e2', results: e2 }])).toThrow(/e2 trained on energy but s1 on energy \+ forces/);
  });
});

describe('PaiNN in a force study', () => {
  test('trains on forces like the other models; bad weights are the grid\'s error', async () => {
    expect(studyGrid({ models: ['mpeu', 'painn'], forces: true }).models).toEqual(['mpeu', 'painn']);
    const r = (await runStudy({ data: ['qm9-like:60'], models: ['painn'], policies: ['exact'], batches: [4], steps: 2, reps: 1, evalGraphs: 4, forces: true, outDir: tmp() })).results;
    expect(r.rows.length).toBeGreaterThan(0);
    expect(r.rows.every((x) => x.model === 'painn' && x.forces === true)).toBe(true);
    expect(Number.isFinite(r.rows[0].test_force_rmse)).toBe(true);
    // Bad weights are the grid's error too.
    expect(() => studyGrid({ forces: { energy: 0, forces: 0 } })).toThrow(/^force study: .*nothing to train/);
    expect(() => studyGrid({ forces: { energy: -1 } })).toThrow(StudyError);
  });
});

describe('aflow-like: the force study trains the crystal energy', () => {
  test('the default target is energy (the forces are its gradient), not the formation enthalpy', async () => {
    const r = (await runStudy({ data: ['aflow-like:60'], models: ['schnet'], policies: ['exact'], batches: [4], steps: 2, reps: 1, evalGraphs: 4, forces: true, outDir: tmp() })).results;
    expect(r.data[0].target).toBe('energy');
    expect(r.rows[0].target).toBe('energy');
    expect(r.rows[0].forces).toBe(true);
    expect(Number.isFinite(r.rows[0].test_force_rmse)).toBe(true);
  });
});

describe('study --forces on the command line', () => {
  test('parses the flag and the weights, records them, and says what was trained', async () => {
    const dir = tmp();
    const text = await run(['study', 'qm9-like:300', '--forces', '--energy-weight', '0.1', '--force-weight', '0.9', '--models', 'schnet', '--policies', 'dynamic,static-2pow', '--batch', '8', '--reps', '1', '--steps', '2', '--eval-graphs', '8', '-o', dir, '--learning-steps', '0', '--max-reps', '1', '--no-report']);
    expect(text).toContain('trained: energy + forces (loss weights: energy 0.1, forces 0.9)');
    const r = readResults(path.join(dir, 'results.json'));
    expect(r.grid.forces).toEqual({ energy: 0.1, forces: 0.9, stress: 0 });
    expect(r.rows.every((x) => x.forces === true)).toBe(true);
  });

  test('usage errors: weights without --forces', async () => {
    await expect(run(['study', 'qm9-like:300', '--energy-weight', '0.5', '-o', tmp()])).rejects.toThrow(/--energy-weight, --force-weight and --stress-weight need --forces/);
  });
});

describe('learning on forces: verdict and learned cells', () => {
  const run1 = (policy: string, seed: number, f: number, e = 1): LearningRun => ({
    policy, seed, steps: 100, test_rmse: e, test_mae: e, final_train_loss: 0.01, baseline_std: 2, seconds: 1,
    test_force_rmse: f, test_force_mae: f / 2, force_baseline: 1, force_weights: { energy: 0.01, forces: 0.99 },
  });

  test('policies are compared on the test force RMSE', () => {
    // Energies identical for both policies; forces consistently 20% worse for b.
    const check: LearningCheck = {
      data: 'd', model: 'schnet', batch: 8, policies: ['a', 'b'], seeds: [1, 2, 3, 4], steps: 100, lr: 1e-3, forces: true,
      runs: [1, 2, 3, 4].flatMap((s) => [run1('a', s, 0.1 + 0.001 * s), run1('b', s, 0.12 + 0.0011 * s)]),
    };
    const v = learningVerdict(check);
    expect(v.learned).toBe(true);
    expect(v.changed).toBe(true);
    expect(v.sentence).toMatch(/a vs b: test force RMSE -1[0-9]\.\d%/);
    // The same runs read as an energy check: energies are equal, nothing changed.
    expect(learningVerdict({ ...check, forces: undefined }).changed).toBe(false);
    // Force errors near the forces' own RMS: not learned.
    const poor = { ...check, runs: check.runs.map((r) => ({ ...r, test_force_rmse: 0.95 })) };
    expect(learningVerdict(poor).learned).toBe(false);
    expect(learningVerdict(poor).sentence).toMatch(/did not learn \(test force RMSE 0\.950 vs 1\.00 for predicting zero forces\)/);
  });

  test('force rows are judged learned on their forces', () => {
    const base = { data: 'd', model: 'm', batch: 8, test_rmse: 5, target_std: 1, final_train_loss: 0.05, forces: true, force_std: 1, test_force_rmse: 0.3 } as unknown as StudyRow;
    // Energy RMSE 5x its spread, but forces learned (0.3 of their RMS; loss 0.05 of the baseline's 0.01 + 0.99).
    expect(learnedCells({ rows: [base] })[0]).toMatchObject({ learned: true, forces: true, rmse: 0.3, std: 1 });
    expect(learnedCells({ rows: [{ ...base, test_force_rmse: 0.9 }] })[0].learned).toBe(false);
    // The baseline loss follows the grid's weights: with wF = 0.05 the loss 0.05 is not below 0.64 x (0.95 + 0.05).
    expect(learnedCells({ rows: [base], grid: { forces: { energy: 0.95, forces: 0.05, stress: 0 } } })[0].learned).toBe(true);
    expect(learnedCells({ rows: [{ ...base, final_train_loss: 0.7 }], grid: { forces: { energy: 0.95, forces: 0.05, stress: 0 } } })[0].learned).toBe(false);
  });
});
