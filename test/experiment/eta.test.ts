/** The study's ETA: from the cost model of the cells left, scaled by the measured cells; never NaN or "2m60s". */
import { StudyEta, formatDuration } from '../../src/cli/study-progress';
import type { CellCostEstimate } from '../../src/experiment/shard';

const est = (policy: string, batch: number, total_ms: number): CellCostEstimate =>
  ({ data: 'd', model: 'mpeu', policy, batch, step_ms: 0, compiles: 0, compile_ms: 0, eval_ms: 0, total_ms });
const cell = (policy: string, batch: number) => ({ data: 'd', model: 'mpeu', policy, batch });

describe('formatDuration', () => {
  test('rounds once, then splits: never 60 seconds or minutes in a field', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(59.6)).toBe('1m00s');
    expect(formatDuration(119.6)).toBe('2m00s');
    expect(formatDuration(179.99)).toBe('3m00s');
    expect(formatDuration(3599.7)).toBe('1h00m');
    expect(formatDuration(3725)).toBe('1h02m');
    expect(formatDuration(90000)).toBe('1d01h');
    for (let s = 0; s < 7300; s += 0.37) expect(formatDuration(s)).not.toMatch(/(^|\D)60[sm]/);
  });
  test('not a finite number >= 0: "?" (never NaN)', () => {
    for (const x of [NaN, Infinity, -Infinity, -1]) expect(formatDuration(x)).toBe('?');
  });
});

describe('StudyEta', () => {
  test('before any estimate or finished cell: unknown (NaN, shown as "estimating")', () => {
    expect(new StudyEta().remainingSeconds([cell('dynamic', 16)])).toBeNaN();
    expect(new StudyEta().remainingSeconds([])).toBe(0);
  });

  test('sums the estimates of the cells left (cells ~100x apart), scaled by measured / estimated', () => {
    const eta = new StudyEta();
    eta.addEstimates([est('dynamic', 16, 1000), est('dynamic', 128, 100000), est('exact', 16, 2000)]);
    const left = [cell('dynamic', 16), cell('dynamic', 128), cell('exact', 16)];
    expect(eta.remainingSeconds(left)).toBeCloseTo(103, 9);
    // The first cell took 2 s where 1 s was estimated: this machine is twice as slow as the reference.
    eta.finished(cell('dynamic', 16), 2);
    expect(eta.scale()).toBeCloseTo(2, 12);
    expect(eta.remainingSeconds(left.slice(1))).toBeCloseTo(204, 9);
    // Half of the big cell in flight is done.
    expect(eta.remainingSeconds(left.slice(1), { cell: cell('dynamic', 128), fraction: 0.5 })).toBeCloseTo(104, 9);
  });

  test('a cheap cell just after an expensive one does not swing the ETA (no moving average over cells)', () => {
    const eta = new StudyEta();
    eta.addEstimates([est('a', 16, 100), est('b', 16, 10000), est('c', 16, 100), est('d', 16, 10000)]);
    eta.finished(cell('a', 16), 0.1);
    const before = eta.remainingSeconds([cell('b', 16), cell('c', 16), cell('d', 16)]);
    eta.finished(cell('b', 16), 10);
    const after = eta.remainingSeconds([cell('c', 16), cell('d', 16)]);
    expect(before).toBeCloseTo(20.1, 6);
    expect(after).toBeCloseTo(10.1, 6);
  });

  test('cells of a source not priced yet count at the mean estimate; without estimates the measured mean per cell', () => {
    const eta = new StudyEta();
    eta.addEstimates([est('a', 16, 1000), est('b', 16, 3000)]);
    expect(eta.remainingSeconds([{ data: 'other', model: 'mpeu', policy: 'a', batch: 16 }])).toBeCloseTo(2, 9);
    const bare = new StudyEta();
    bare.finished(cell('a', 16), 4);
    expect(bare.remainingSeconds([cell('b', 16), cell('c', 16)])).toBeCloseTo(8, 9);
  });

  test('absurd measurements are bounded: the scale stays within [0.02, 50]', () => {
    const eta = new StudyEta();
    eta.addEstimates([est('a', 16, 1)]);
    eta.finished(cell('a', 16), 1e6);
    expect(eta.scale()).toBe(50);
    eta.finished(cell('a', 16), NaN);
    expect(Number.isFinite(eta.remainingSeconds([cell('a', 16)]))).toBe(true);
  });
});
