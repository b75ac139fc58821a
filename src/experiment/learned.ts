/**
 * Did a study's models learn? The test of a (data, model, batch) cell that
 * decides whether the report and the CLI show significance tests between its
 * policies (tests between models that learned nothing compare noise).
 */
import type { StudyResults } from './results';
import { DEFAULT_FORCE_WEIGHTS } from '../train/force-training';
import { sampleMean as mean, sampleMedian as med } from './stats';

/**
 * A cell's models learned when both (a) their mean test RMSE is clearly below
 * the spread of what the network had to learn over the train split (what
 * predicting the mean scores: the target's standard deviation, or with
 * atomrefs the residual's, since the fitted atomrefs alone already score
 * that): at most {@link LEARNED_RMSE_FRACTION} of it, and (b) the
 * median final train loss (standardised MSE, 1 = predicting the mean) is at
 * most its square. (b) guards against a small test subsample whose own spread
 * is below the train split's, where an untrained model passes (a) alone.
 *
 * Rows of a force study (`forces: true`) are judged on their forces: (a) the
 * test force RMSE against the RMS of the train split's force components
 * (`force_std`, what zero forces score), (b) the train loss against the loss
 * of the mean energy and zero forces, wE + wF (force_std / s)^2, s the
 * energy's spread (the grid's weights; train/force-training.ts's defaults
 * when the grid is not given).
 */
export const LEARNED_RMSE_FRACTION = 0.8;

/** One (data, model, batch) cell of {@link learnedCells}. */
export interface LearnedCell {
  data: string;
  model: string;
  batch: number;
  /** Mean test RMSE over the cell's runs (target units). */
  rmse: number;
  /** Mean spread the RMSE is compared with: the residual std where the runs used atomrefs, else the target std. */
  std: number;
  /** True when the runs used atomrefs (std is the residual's). */
  atomref: boolean;
  /** Median final train loss (standardised MSE). */
  trainLoss: number;
  /** Force rows: `rmse` and `std` are the test force RMSE and the force RMS, and `trainLoss` is divided by the loss of the mean energy and zero forces. */
  forces?: boolean;
  learned: boolean;
}

/** Per (data, model, batch) cell: mean test RMSE, the spread it is compared with, median final train loss, and whether the runs learned. */
export function learnedCells(results: Pick<StudyResults, 'rows'> & { grid?: Pick<StudyResults['grid'], 'forces'> }): LearnedCell[] {
  const cells = new Map<string, { data: string; model: string; batch: number; rmse: number[]; std: number[]; loss: number[]; atomref: boolean; forces: boolean }>();
  const w = results.grid?.forces ?? DEFAULT_FORCE_WEIGHTS;
  for (const r of results.rows) {
    const k = `${r.data}\u0000${r.model}\u0000${r.batch}`;
    if (!cells.has(k)) cells.set(k, { data: r.data, model: r.model, batch: r.batch, rmse: [], std: [], loss: [], atomref: false, forces: false });
    const c = cells.get(k)!;
    const energyStd = r.atomref === true ? r.residual_std : r.target_std;
    if (r.atomref === true) c.atomref = true;
    if (r.forces === true) {
      c.forces = true;
      const fs = r.force_std ?? NaN;
      if (Number.isFinite(r.test_force_rmse)) c.rmse.push(r.test_force_rmse as number);
      if (Number.isFinite(fs)) c.std.push(fs);
      const lossBase = energyStd !== undefined && energyStd > 0 ? w.energy + w.forces * (fs / energyStd) ** 2 : NaN;
      if (Number.isFinite(r.final_train_loss) && Number.isFinite(lossBase) && lossBase > 0) c.loss.push(r.final_train_loss / lossBase);
      continue;
    }
    if (Number.isFinite(r.test_rmse)) c.rmse.push(r.test_rmse);
    if (energyStd !== undefined && Number.isFinite(energyStd)) c.std.push(energyStd);
    if (Number.isFinite(r.final_train_loss)) c.loss.push(r.final_train_loss);
  }
  const f = LEARNED_RMSE_FRACTION;
  return [...cells.values()].map((c) => {
    const rmse = mean(c.rmse);
    const std = mean(c.std);
    const trainLoss = med(c.loss);
    const learned = Number.isFinite(rmse) && Number.isFinite(std) && std > 0 && rmse <= f * std && Number.isFinite(trainLoss) && trainLoss <= f * f;
    return { data: c.data, model: c.model, batch: c.batch, rmse, std, atomref: c.atomref, trainLoss, learned, ...(c.forces ? { forces: true } : {}) };
  });
}
