/**
 * The study's learning check: does the batching choice change what is
 * learned? The timing grid's runs are too short to learn, so the default
 * study adds a small, longer-running subset: the fastest model, one batch
 * size, the pick there, the runner-up and the study's static-2^N, a few
 * seeds, each run long enough to learn on the built-in data. Runs with the
 * same seed see the same initial weights and the same stream order, so
 * policies are compared with a paired t-test on test RMSE over seeds; the
 * verdict carries the effect size and the seeds a clear answer would take.
 *
 * Stored in `results.json` as the optional top-level `learning_check` (files
 * without it read as "not run").
 *
 * In a force study (`forces: true`) the runs train on energies and forces,
 * and each records its test force MAE/RMSE beside the energy's. The policies
 * are then compared on the test force RMSE (the loss is mostly the force
 * term), and the runs learned when the force RMSE is at most
 * {@link LEARNED_RMSE_FRACTION} of the force components' RMS (what zero
 * forces score); the verdict quotes the energy errors as well.
 */
import type { StudyResults } from './results';
import { sampleMean, sampleVariance, twoSidedP } from './stats';
import { LEARNED_RMSE_FRACTION } from './learned';

/** Learning rate of the check: 10x the study's 1e-4, so that a few hundred steps learn. */
export const LEARNING_CHECK_LR = 1e-3;
/** Default steps and seeds of the check (`--learning-steps`, `--learning-seeds`; 0 steps: no check). */
export const LEARNING_CHECK_STEPS = 400;
export const LEARNING_CHECK_SEEDS = 3;
/** Seeds of the check: base seed + this + s (apart from the timing repetitions' base + rep). */
export const LEARNING_CHECK_SEED_OFFSET = 1000;

/** One run of the check. */
export interface LearningRun {
  policy: string;
  seed: number;
  steps: number;
  test_rmse: number;
  test_mae: number;
  final_train_loss: number;
  /** What predicting the mean scores (the residual's std with atomrefs, else the target's). */
  baseline_std: number;
  seconds: number;
  /** Force runs only: test force errors per component (data units, e.g. eV/Å). */
  test_force_rmse?: number;
  test_force_mae?: number;
  /** Force runs only: RMS of the train split's force components (what predicting zero forces scores). */
  force_baseline?: number;
  /** Force runs only: the loss weights. */
  force_weights?: { energy: number; forces: number };
}

/** The check's setup and runs (`results.json`'s `learning_check`). */
export interface LearningCheck {
  data: string;
  model: string;
  batch: number;
  policies: string[];
  seeds: number[];
  steps: number;
  lr: number;
  runs: LearningRun[];
  /** True in a force study: the runs trained on energies and forces, and policies are compared on the test force RMSE. */
  forces?: boolean;
}

/** A paired comparison of two policies' test RMSE over seeds. */
export interface LearningPair {
  a: string;
  b: string;
  n: number;
  mean_a: number;
  mean_b: number;
  /** Mean of (a - b) over seeds, relative to mean_b. */
  diff: number;
  relative: number;
  t: number;
  p: number;
  /** Cohen's d_z: mean difference / sd of the differences. */
  effect: number;
  /** Seeds a paired t-test would need to detect an effect this size (alpha 0.05, power 0.8); NaN when there is no effect to detect. */
  seeds_needed: number;
}

/** The verdict of the check. */
export interface LearningVerdict {
  learned: boolean;
  pairs: LearningPair[];
  /** Some pair differs at p < alpha. */
  changed: boolean;
  /** One or two sentences for the report and the terminal. */
  sentence: string;
}

/** Seeds for a paired t-test to detect effect size d (alpha 0.05 two-sided, power 0.8): ((1.96 + 0.84) / d)^2 + 2, rounded up. */
export function seedsNeeded(effect: number): number {
  const d = Math.abs(effect);
  if (!(d > 0) || !Number.isFinite(d)) return NaN;
  return Math.ceil(((1.959964 + 0.841621) / d) ** 2 + 2);
}

/** The metric a check compares policies on: test force RMSE in a force study, else test (energy) RMSE. */
export function learningMetric(check: Pick<LearningCheck, 'forces'>): (r: LearningRun) => number {
  return check.forces ? (r) => r.test_force_rmse ?? NaN : (r) => r.test_rmse;
}

/** Paired t-test of a - b over the seeds both have (on {@link learningMetric}). */
export function pairedLearning(check: Pick<LearningCheck, 'runs' | 'forces'>, a: string, b: string): LearningPair {
  const metric = learningMetric(check);
  const bySeed = new Map(check.runs.filter((r) => r.policy === b && Number.isFinite(metric(r))).map((r) => [r.seed, metric(r)]));
  const xa: number[] = [];
  const xb: number[] = [];
  for (const r of check.runs) {
    if (r.policy !== a || !Number.isFinite(metric(r))) continue;
    const y = bySeed.get(r.seed);
    if (y === undefined) continue;
    xa.push(metric(r));
    xb.push(y);
  }
  const d = xa.map((x, i) => x - xb[i]);
  const n = d.length;
  const md = sampleMean(d);
  const sd = Math.sqrt(sampleVariance(d));
  let t = NaN;
  let p = NaN;
  if (n >= 2) {
    if (sd === 0) (t = md === 0 ? 0 : md > 0 ? Infinity : -Infinity), (p = md === 0 ? 1 : 0);
    else (t = md / (sd / Math.sqrt(n))), (p = twoSidedP(t, n - 1));
  }
  const effect = n >= 2 ? (sd === 0 ? (md === 0 ? 0 : Math.sign(md) * Infinity) : md / sd) : NaN;
  return { a, b, n, mean_a: sampleMean(xa), mean_b: sampleMean(xb), diff: md, relative: md / sampleMean(xb), t, p, effect, seeds_needed: seedsNeeded(effect) };
}

/** The verdict: did the runs learn, and does any pair of policies differ (paired t-test, alpha)? */
export function learningVerdict(check: LearningCheck, alpha = 0.05): LearningVerdict {
  const metric = learningMetric(check);
  const ok = check.runs.filter((r) => Number.isFinite(metric(r)));
  const rmse = sampleMean(ok.map(metric));
  const base = sampleMean(ok.map((r) => (check.forces ? r.force_baseline ?? NaN : r.baseline_std)));
  const loss = sampleMean(ok.map((r) => r.final_train_loss));
  // Energy: the standardised loss of predicting the mean is 1. Forces: wE + wF (force RMS / energy std)^2, the loss of the mean energy and zero forces.
  const lossBase = check.forces ? sampleMean(ok.map((r) => (r.force_weights ? r.force_weights.energy + r.force_weights.forces * ((r.force_baseline ?? NaN) / r.baseline_std) ** 2 : NaN))) : 1;
  const learned = ok.length > 0 && rmse <= LEARNED_RMSE_FRACTION * base && loss <= LEARNED_RMSE_FRACTION ** 2 * lossBase;
  const pairs: LearningPair[] = [];
  for (let i = 0; i < check.policies.length; i++)
    for (let j = i + 1; j < check.policies.length; j++) pairs.push(pairedLearning(check, check.policies[i], check.policies[j]));
  const where = `${check.data}, ${check.model}, B=${check.batch}, ${check.steps} steps at lr ${check.lr}, ${check.seeds.length} seeds${check.forces ? ', energy + forces' : ''}`;
  const what = check.forces ? 'test force RMSE' : 'test RMSE';
  // A force check also quotes the energy's errors and the force MAE, per policy (means over seeds).
  const energyNote = check.forces
    ? ' Per policy (means over seeds): ' +
      check.policies
        .map((p) => {
          const rs = check.runs.filter((r) => r.policy === p);
          const m = (f: (r: LearningRun) => number | undefined): string => sampleMean(rs.map((r) => f(r) ?? NaN).filter(Number.isFinite)).toPrecision(3);
          return `${p}: force MAE ${m((r) => r.test_force_mae)} / RMSE ${m((r) => r.test_force_rmse)} (RMS of the forces ${m((r) => r.force_baseline)}), energy MAE ${m((r) => r.test_mae)} / RMSE ${m((r) => r.test_rmse)}`;
        })
        .join('; ') + '.'
    : '';
  if (!learned) {
    return {
      learned, pairs, changed: false,
      sentence: `Learning check (${where}): the models did not learn (${what} ${rmse.toPrecision(3)} vs ${base.toPrecision(3)} for predicting ${check.forces ? 'zero forces' : 'the mean'}), so no verdict; raise --learning-steps.${energyNote}`,
    };
  }
  const sig = pairs.filter((p) => p.p < alpha);
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const fmtP = (p: number): string => (Number.isFinite(p) ? (p < 1e-3 ? p.toExponential(1) : p.toFixed(3)) : 'n/a');
  const largest = [...pairs].sort((x, y) => Math.abs(y.relative) - Math.abs(x.relative))[0];
  let sentence: string;
  if (sig.length) {
    sentence = `Learning check (${where}): the batching choice changed what was learned: ` +
      sig.map((p) => `${p.a} vs ${p.b}: ${what} ${pct(p.relative)} (${p.mean_a.toPrecision(3)} vs ${p.mean_b.toPrecision(3)}), d_z = ${p.effect.toFixed(2)}, paired p = ${fmtP(p.p)}`).join('; ') + '.';
  } else if (largest) {
    const need = Number.isFinite(largest.seeds_needed) ? `about ${largest.seeds_needed} seeds (--learning-seeds) would detect a difference of this size (power 0.8)` : 'the runs agree exactly';
    sentence = `Learning check (${where}): no detectable difference in ${what} between ${check.policies.join(', ')} (largest: ${largest.a} vs ${largest.b}, ${pct(largest.relative)}, d_z = ${Number.isFinite(largest.effect) ? largest.effect.toFixed(2) : 'n/a'}, paired p = ${fmtP(largest.p)}); ${need}.`;
  } else sentence = `Learning check (${where}): one policy only, nothing to compare.`;
  return { learned, pairs, changed: sig.length > 0, sentence: sentence + energyNote };
}

/** The check stored in a results document, if any. */
export function learningCheckOf(results: StudyResults): LearningCheck | null {
  const lc = (results as StudyResults & { learning_check?: LearningCheck }).learning_check;
  return lc && typeof lc === 'object' && Array.isArray(lc.runs) && Array.isArray(lc.policies) ? lc : null;
}
