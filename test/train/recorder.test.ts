/** The step recorder: what a run's timing figures and loss curve are made of. */
import { StepRecorder } from '../../src/train/recorder';

const t = (loss: number, batchingMs: number, updateMs: number) => ({ loss, gradNorm: 1, batchingMs, updateMs });

describe('StepRecorder', () => {
  test('medians and means of the recorded steps only, graphs per second of combined time', () => {
    const r = new StepRecorder(10, 10);
    r.record(0, 4, t(3, 1, 2), 4);
    r.record(1, 4, t(2, 2, 4), 6);
    r.record(2, 8, t(1, 3, 6), 10);
    expect(r.steps).toBe(3);
    expect(r.timings()).toEqual({
      batching_ms_median: 2, update_ms_median: 4, combined_ms_median: 6,
      batching_ms_mean: 2, update_ms_mean: 4, combined_ms_mean: 20 / 3,
      graphs_per_s: 16 / 0.02, final_train_loss: 2,
    });
  });

  test('the loss curve keeps about 500 points plus the last step, after a resumed curve', () => {
    const resumed = [{ step: 0, loss: 9 }];
    const r = new StepRecorder(1000, 2000, resumed);
    for (let s = 1000; s < 2000; s++) r.record(s, 1, t(s, 0, 0), 0);
    expect(r.lossCurve).toBe(resumed);
    expect(r.lossCurve.length).toBe(1 + 250 + 1); // every 4th step of 1000, and step 1999
    expect(r.lossCurve[r.lossCurve.length - 1]).toEqual({ step: 1999, loss: 1999 });
    expect(r.timings().final_train_loss).toBe(mean100());
  });
});

function mean100(): number {
  let s = 0;
  for (let x = 1900; x < 2000; x++) s += x;
  return s / 100;
}
