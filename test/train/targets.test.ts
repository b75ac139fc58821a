/** Target preparation: checks, atomrefs, and the standardised targets the packer reads. */
import { buildStore, qm9Like, splitGraphs, targetColumn } from '../../src/data';
import { prepareTargets } from '../../src/train/targets';
import { codeOf } from '../helpers/codes';

const { store } = buildStore([...qm9Like(60, 2)], { graph: { kind: 'fc' } });
const split = splitGraphs(store.numGraphs, { seed: 42 });

describe('prepareTargets', () => {
  test('packs (target - mean) / std of the train split, and reports the raw statistics', () => {
    const p = prepareTargets(store, 'U0', split);
    const col = targetColumn(store, 'U0');
    for (let g = 0; g < store.numGraphs; g++) expect(p.arrays.target[g]).toBe((col[g] - p.stats.mean) * (1 / p.stats.std));
    let m = 0;
    for (const g of split.train) m += p.arrays.target[g];
    expect(Math.abs(m / split.train.length)).toBeLessThan(1e-9);
    expect(p.rawStats).toEqual(p.stats); // no atomrefs: the network learns the target itself
    expect(p.offsets).toBeUndefined();
    expect(p.warnings).toEqual([]);
  });

  test('with atomref the residual is standardised and its spread is smaller for U0', () => {
    const p = prepareTargets(store, 'U0', split, { atomref: true });
    const col = targetColumn(store, 'U0');
    const off = p.offsets as Float64Array;
    for (const g of split.train) expect(p.arrays.target[g]).toBeCloseTo((col[g] - off[g] - p.stats.mean) / p.stats.std, 12);
    expect(p.stats.std).toBeLessThan(p.rawStats.std);
    expect(p.atomRefs?.length).toBeGreaterThan(0);
  });

  test('a train graph without a finite target is a coded TrainingError; val/test ones are warnings', () => {
    const bad = { ...store, targets: store.targets.slice() };
    const T = store.targetNames.length, t = store.targetNames.indexOf('U0');
    bad.targets[split.train[0] * T + t] = NaN;
    expect(codeOf(() => prepareTargets(bad, 'U0', split))).toBe('ERR_GNN_TARGET_MISSING');
    bad.targets[split.train[0] * T + t] = Infinity;
    expect(codeOf(() => prepareTargets(bad, 'U0', split))).toBe('ERR_GNN_TARGET_NONFINITE');
    const val = { ...store, targets: store.targets.slice() };
    val.targets[split.val[0] * T + t] = NaN;
    expect(prepareTargets(val, 'U0', split).warnings).toEqual([expect.stringMatching(/1 graph\(s\) of the validation split have no finite value for 'U0'/)]);
    expect(prepareTargets(val, 'U0', split, { skipEval: true }).warnings).toEqual([]);
  });
});
