/** The learning check's verdict: paired t-test over seeds, effect size, and the seeds a clear answer would take. */
import { learningVerdict, pairedLearning, seedsNeeded, type LearningCheck } from '../../src/experiment/learning-check';

function check(rmse: Record<string, number[]>, baseline = 1, loss = 0.1): LearningCheck {
  const policies = Object.keys(rmse);
  const seeds = rmse[policies[0]].map((_, i) => 1042 + i);
  return {
    data: 'qm9-like:20000', model: 'schnet', batch: 16, policies, seeds, steps: 400, lr: 1e-3,
    runs: policies.flatMap((policy) => rmse[policy].map((test_rmse, i) => ({ policy, seed: seeds[i], steps: 400, test_rmse, test_mae: test_rmse, final_train_loss: loss, baseline_std: baseline, seconds: 1 }))),
  };
}

describe('learning check', () => {
  test('a consistent 10% difference over seeds is a change, with its effect size and p', () => {
    const v = learningVerdict(check({ dynamic: [0.30, 0.20, 0.25, 0.35], 'static-2pow': [0.33, 0.221, 0.274, 0.386] }));
    expect(v.learned).toBe(true);
    expect(v.changed).toBe(true);
    const p = v.pairs[0];
    expect(p.n).toBe(4);
    expect(p.relative).toBeCloseTo(-0.0917, 3);
    expect(p.p).toBeLessThan(0.01);
    expect(v.sentence).toMatch(/^Learning check \(qm9-like:20000, schnet, B=16, 400 steps at lr 0.001, 4 seeds\): the batching choice changed what was learned: dynamic vs static-2pow: test RMSE -9.2% .* d_z = -\d+\.\d\d, paired p = /);
  });

  test('differences that flip sign between seeds: no detectable difference, and the seeds it would take', () => {
    const v = learningVerdict(check({ dynamic: [0.30, 0.20, 0.25], exact: [0.31, 0.19, 0.26] }));
    expect(v.changed).toBe(false);
    const p = v.pairs[0];
    expect(p.p).toBeGreaterThan(0.05);
    expect(p.seeds_needed).toBe(seedsNeeded(p.effect));
    expect(v.sentence).toMatch(/no detectable difference in test RMSE between dynamic, exact \(largest: dynamic vs exact, -?\d+\.\d%, d_z = -?\d\.\d\d, paired p = 0\.\d+\); about \d+ seeds \(--learning-seeds\) would detect a difference of this size/);
  });

  test('models that did not learn: no verdict', () => {
    const v = learningVerdict(check({ dynamic: [0.95, 0.97], exact: [0.99, 0.96] }, 1, 0.9));
    expect(v.learned).toBe(false);
    expect(v.changed).toBe(false);
    expect(v.sentence).toContain('the models did not learn');
    expect(v.sentence).toContain('raise --learning-steps');
  });

  test('pairs by seed (a seed missing on one side is left out); seedsNeeded arithmetic', () => {
    const c = check({ a: [1, 2, 3], b: [1.5, 2.5, 3.5] });
    c.runs = c.runs.filter((r) => !(r.policy === 'b' && r.seed === 1044));
    const p = pairedLearning(c, 'a', 'b');
    expect(p.n).toBe(2);
    expect(p.diff).toBeCloseTo(-0.5, 12);
    expect(p.p).toBe(0);
    // d = 0.5: ((1.96 + 0.84) / 0.5)^2 + 2 = 33.4 -> 34; d = 1: 9.85 -> 10.
    expect(seedsNeeded(0.5)).toBe(34);
    expect(seedsNeeded(-1)).toBe(10);
    expect(seedsNeeded(0)).toBeNaN();
  });
});
