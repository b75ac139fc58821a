/**
 * The step recorder of a training run: per-step timings (batching, update,
 * combined wall time, ms), graphs seen, the recent losses and the thinned
 * loss curve, and their summary for the run's result.
 */
import { mean, median } from './metrics';
import type { StepTiming } from './engine';

/** The timing figures of a run's result (ms unless named otherwise). */
export interface StepTimings {
  batching_ms_median: number;
  update_ms_median: number;
  combined_ms_median: number;
  batching_ms_mean: number;
  update_ms_mean: number;
  combined_ms_mean: number;
  /** Real graphs per second of combined step time. */
  graphs_per_s: number;
  /**
   * Mean loss of the run's last (up to) 100 steps. A resumed run continues the
   * window saved in its checkpoint, so the figure equals the uninterrupted
   * run's (also when nothing was left to do); NaN (null in JSON) only when no
   * loss is known (a resume with nothing left to do from a checkpoint written
   * before the window was kept).
   */
  final_train_loss: number;
}

/** Steps whose mean loss is `final_train_loss`. */
export const RECENT_LOSSES = 100;

export class StepRecorder {
  private readonly batching: Float64Array;
  private readonly update: Float64Array;
  private readonly combined: Float64Array;
  private readonly recent: number[];
  private ran = 0;
  private graphs = 0;
  private readonly lossEvery: number;

  /**
   * @param capacity steps this invocation may run
   * @param totalSteps the run's total steps (the loss curve keeps about 500 points and the last step)
   * @param lossCurve the curve so far (resumed runs continue it); appended to in place
   * @param recentLosses the losses of the last (up to) {@link RECENT_LOSSES} steps before this
   *   invocation (a resumed run's, from its checkpoint), oldest first, so that
   *   `final_train_loss` is the uninterrupted run's
   */
  constructor(capacity: number, private readonly totalSteps: number, readonly lossCurve: { step: number; loss: number }[] = [], recentLosses: readonly number[] = []) {
    this.recent = recentLosses.slice(-RECENT_LOSSES);
    this.batching = new Float64Array(Math.max(0, capacity));
    this.update = new Float64Array(Math.max(0, capacity));
    this.combined = new Float64Array(Math.max(0, capacity));
    this.lossEvery = Math.max(1, Math.floor(totalSteps / 500));
  }

  /** Records global step `step` (0-based): what the engine measured and the step's whole wall time. */
  record(step: number, graphs: number, t: StepTiming, combinedMs: number): void {
    const i = this.ran++;
    this.batching[i] = t.batchingMs;
    this.update[i] = t.updateMs;
    this.combined[i] = combinedMs;
    this.graphs += graphs;
    this.recent.push(t.loss);
    if (this.recent.length > RECENT_LOSSES) this.recent.shift();
    if (step % this.lossEvery === 0 || step === this.totalSteps - 1) this.lossCurve.push({ step, loss: t.loss });
  }

  /** The losses of the last (up to) {@link RECENT_LOSSES} steps, oldest first (a checkpoint keeps them). */
  recentLosses(): number[] {
    return this.recent.slice();
  }

  /** Steps recorded. */
  get steps(): number {
    return this.ran;
  }

  timings(): StepTimings {
    const b = this.batching.subarray(0, this.ran), u = this.update.subarray(0, this.ran), c = this.combined.subarray(0, this.ran);
    const totalSec = c.reduce((s, x) => s + x, 0) / 1000;
    return {
      batching_ms_median: median(b),
      update_ms_median: median(u),
      combined_ms_median: median(c),
      batching_ms_mean: mean(b),
      update_ms_mean: mean(u),
      combined_ms_mean: mean(c),
      graphs_per_s: totalSec > 0 ? this.graphs / totalSec : 0,
      final_train_loss: mean(this.recent),
    };
  }
}
