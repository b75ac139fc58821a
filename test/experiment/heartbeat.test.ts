/** The heartbeat: one progress line every N seconds when stderr is not a terminal (logs of batch jobs). */
import { Heartbeat, heartbeatLine } from '../../src/cli/study-progress';
import { formatStudySummary, wrapText } from '../../src/cli/study';
import { decideStudy } from '../../src/experiment/decision';
import { studyRate } from '../../src/experiment/price';
import { syntheticRow } from './helpers/synthetic-study';

describe('heartbeat', () => {
  test('the line: time, cells, the cell in flight with its step, elapsed, ETA, memory', () => {
    const line = heartbeatLine({ finished: 37, cells: 192, cell: 'qm9-like:20000 mpeu dynamic B=32 rep 1', step: 12, steps: 20, elapsed: 190.2, eta: 400.4, rss: 1.5 * 1024 ** 3 }, new Date('2026-01-01T10:11:12Z'));
    expect(line).toBe('[10:11:12] study: 37/192 cells; now qm9-like:20000 mpeu dynamic B=32 rep 1 step 12/20; elapsed 3m10s, eta 6m40s, rss 1.50 GiB');
    expect(heartbeatLine({ finished: 0, cells: 10, elapsed: 1, eta: NaN }, new Date('2026-01-01T00:00:00Z'))).toBe('[00:00:00] study: 0/10 cells; elapsed 1s, eta estimating');
  });

  test('beats every N seconds while started, with the state read at each beat; none after stop; 0 disables', () => {
    jest.useFakeTimers();
    try {
      const lines: string[] = [];
      let finished = 0;
      const hb = new Heartbeat(30, () => ({ finished, cells: 4, elapsed: finished * 30, eta: (4 - finished) * 30 }), (l) => lines.push(l));
      hb.start();
      jest.advanceTimersByTime(29_000);
      expect(lines).toEqual([]);
      finished = 1;
      jest.advanceTimersByTime(1_000);
      finished = 2;
      jest.advanceTimersByTime(30_000);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/study: 1\/4 cells; elapsed 30s, eta 1m30s\n$/);
      expect(lines[1]).toMatch(/study: 2\/4 cells; elapsed 1m00s, eta 1m00s\n$/);
      hb.stop();
      jest.advanceTimersByTime(120_000);
      expect(lines).toHaveLength(2);
      const off = new Heartbeat(0, () => ({ finished: 0, cells: 1, elapsed: 0, eta: 0 }), (l) => lines.push(l));
      off.start();
      jest.advanceTimersByTime(600_000);
      expect(lines).toHaveLength(2);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('end-of-run summary', () => {
  test('fits 100 columns, names the pick, agreement, graphs/s, savings with the rate, and points to the report', () => {
    const rows = [16, 32, 64, 128].flatMap((batch) =>
      [0, 1, 2].flatMap((rep) => ['dynamic', 'static-2pow', 'static-64', 'static-constant', 'exact', 'packed'].map((policy, i) =>
        syntheticRow({ data: 'qm9-like:20000', model: 'mpeu', policy, batch, rep, ms: (10 + i) * (1 + 0.03 * rep), compiles: i === 2 ? 190 : 1 }))),
    );
    const d = decideStudy(rows, { resamples: 50 });
    const text = formatStudySummary(d, studyRate({ cpu_cores: 2 }), { report: 'study-results/report.html', outDir: 'study-results' });
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    expect(text).toContain('qm9-like:20000 / mpeu: dynamic (pick at 4 of 4 B; rerun agrees 100%)');
    expect(text).toMatch(/graphs\/s \d+ to \d+; saves USD [\d.]+( to [\d.]+)? \(.*\) vs the slowest/);
    expect(text).toContain('default rate USD 0.0850/h');
    expect(text).toContain('study-results/report.html');
    expect(text.split('\n').length).toBeLessThan(15);
  });

  test('wrapText keeps every line within the width, even a single long word', () => {
    const lines = wrapText(`why: ${'word '.repeat(60)}${'x'.repeat(150)}`, 100, '    ');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
    expect(lines[1].startsWith('    word')).toBe(true);
  });
});
