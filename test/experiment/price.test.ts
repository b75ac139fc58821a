/** The price of the pick: hours and money over the planned run, against the slowest and the runner-up, with the rate stated. */
import { DEFAULT_RATES, formatHours, formatMoney, saving, studyRate } from '../../src/experiment/price';

describe('price', () => {
  test('saving = (other hours - pick hours) x rate; negative when the pick is slower', () => {
    expect(saving({ hours: 10 }, { policy: 'static-64', hours: 25 }, { perHour: 3 })).toEqual({ against: 'static-64', hours: 15, money: 45, ratio: 2.5 });
    const s = saving({ hours: 10 }, { policy: 'dynamic', hours: 9.5 }, { perHour: 2 });
    expect(s.hours).toBeCloseTo(-0.5, 12);
    expect(s.money).toBeCloseTo(-1, 12);
  });

  test('a given rate is used as given, in the stated currency', () => {
    const r = studyRate({ cpu_cores: 2 }, 3, 'EUR');
    expect(r).toMatchObject({ perHour: 3, currency: 'EUR', given: true });
    expect(r.source).toBe('rate given: EUR 3.00 per hour (--cost-per-hour)');
  });

  test('without a rate: the labelled default for the hardware class (per core-hour x cores), with its source', () => {
    const r = studyRate({ cpu_cores: 2 });
    expect(r.given).toBe(false);
    expect(r.currency).toBe('USD');
    expect(r.perHour).toBeCloseTo(2 * DEFAULT_RATES.cpu_per_core_hour, 12);
    expect(r.source).toMatch(/^default rate for a 2-core CPU machine: USD 0.0425 per core-hour x 2 = USD 0.0850 per hour \(AWS EC2 on-demand/);
    expect(studyRate({ cpu_cores: 72 }).perHour).toBeCloseTo(3.06, 10);
    // A nonsense core count falls back to one core rather than NaN.
    expect(studyRate({ cpu_cores: Number.NaN }).perHour).toBe(DEFAULT_RATES.cpu_per_core_hour);
  });

  test('formatting', () => {
    expect(formatMoney(12.345, 'USD')).toBe('USD 12.35');
    expect(formatMoney(0.01234, 'EUR')).toBe('EUR 0.0123');
    expect(formatMoney(NaN, 'USD')).toBe('n/a');
    expect(formatHours(0.5)).toBe('30.0 min');
    expect(formatHours(5.25)).toBe('5.25 h');
    expect(formatHours(72)).toBe('3.0 days');
  });
});

describe('savings of a decided cell', () => {
  const { cellSavings } = require('../../src/experiment/price') as typeof import('../../src/experiment/price');
  const p = (policy: string, hours: number) => ({ policy, hours });
  test('against the slowest and the runner-up', () => {
    const s = cellSavings({ pick: 'dynamic', policies: [p('dynamic', 10), p('exact', 12), p('static-64', 30)] as never }, { perHour: 0.5 });
    expect(s.vsSlowest).toEqual({ against: 'static-64', hours: 20, money: 10, ratio: 3 });
    expect(s.vsRunnerUp).toEqual({ against: 'exact', hours: 2, money: 1, ratio: 1.2 });
  });
  test('a pick chosen by a tie-break may cost a little against the fastest (negative saving)', () => {
    const s = cellSavings({ pick: 'static-2pow', policies: [p('static-64', 10), p('static-2pow', 10.1)] as never }, { perHour: 1 });
    expect(s.vsRunnerUp!.against).toBe('static-64');
    expect(s.vsRunnerUp!.hours).toBeCloseTo(-0.1, 12);
    expect(s.vsSlowest!.against).toBe('static-64');
  });
  test('savings follow the paired ratios: a runner-up with the lower median but a paired ratio above 1 costs more', () => {
    const q = (policy: string, hours: number, ratio: number) => ({ policy, hours, ratio });
    // The decision's order: A fastest (ratio 1), B 1.17x on paired repetitions although its median is lower.
    const s = cellSavings({ pick: 'A', policies: [q('A', 1.0, 1), q('B', 0.99, 1.17), q('C', 3, 3)] as never }, { perHour: 1 });
    expect(s.vsRunnerUp!.against).toBe('B');
    expect(s.vsRunnerUp!.hours).toBeCloseTo(0.17, 12);
    expect(s.vsRunnerUp!.ratio).toBeCloseTo(1.17, 12);
    expect(s.vsSlowest!.against).toBe('C');
    expect(s.vsSlowest!.hours).toBeCloseTo(2, 12);
  });
  test('one policy: nothing to save against', () => {
    expect(cellSavings({ pick: 'dynamic', policies: [p('dynamic', 1)] as never }, { perHour: 1 })).toEqual({ vsSlowest: null, vsRunnerUp: null });
  });
});
