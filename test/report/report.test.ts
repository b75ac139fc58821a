/** Every chart of the report renders to SVG in Node (vega headless) without warnings; the HTML is self-contained. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runStudy, type StudyResults } from '../../src/experiment';
import { renderReport, reportCharts, renderVegaLiteSvg, studyMarkdown } from '../../src/report';

let results: StudyResults;

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gnnbatch-report-'));
  const out = await runStudy({ outDir: dir, data: ['qm9-like:300', 'aflow-like:300'], models: ['schnet'], policies: ['dynamic', 'static-2pow', 'exact'], batches: [8, 16], reps: 2, steps: 4, evalGraphs: 16, simulateSteps: 50 });
  results = out.results;
});

describe('report', () => {
  test('every chart spec compiles and renders to SVG without warnings', async () => {
    const charts = reportCharts(results);
    const sections = new Set(charts.map((c) => c.section));
    expect([...sections].sort()).toEqual(['compile', 'data', 'fill', 'learning', 'speedup', 'time']);
    for (const c of charts) {
      const r = await renderVegaLiteSvg(c.spec);
      expect(r.warnings).toEqual([]);
      expect(r.svg.startsWith('<svg')).toBe(true);
      expect(r.svg.length).toBeGreaterThan(1000);
    }
  });

  test('an invalid spec fails', async () => {
    await expect(renderVegaLiteSvg({ mark: 'no-such-mark', data: { values: [] } })).rejects.toThrow();
    const r = await renderVegaLiteSvg({ mark: 'bar', data: { values: [{ a: 1 }] }, encoding: { x: { field: 'a', type: 'no-such-type' } } }).catch((e: Error) => ({ warnings: [e.message] }));
    expect(r.warnings.length).toBeGreaterThan(0);
  });

  test('the HTML is one offline file with the charts, the t-tests and the recommendation', async () => {
    const html = await renderReport(results, { costPerHour: 2.5 });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect((html.match(/<svg/g) ?? []).length).toBe(reportCharts(results).length);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org|vega\.github\.io)/);
    expect(html).toContain('Recommendation');
    expect(html).toContain('price');
    // The ranking statistic is stated; one overall choice per data set and model; step times carry ± their spread, as in the terminal.
    expect(html).toContain('Ranked on the median over repetitions');
    expect(html).toContain('overall recommendation per data set and model');
    expect(html).toMatch(/<td>[\d.]+ ±[\d.]+ \[[\d.]+\]<\/td>/);
  });

  test('t-tests are shown only for cells whose models learned (test RMSE clearly below the target std)', async () => {
    // 4 steps learn nothing (even where a 16-graph test subsample's RMSE is below the train std): no significance table, a note instead.
    const html = await renderReport(results);
    expect(html).toContain('did not learn');
    expect(html).not.toContain('Student p');
    // The same runs as if trained: the t-tests appear, the note does not.
    // (qm9-like's U0 runs use atomrefs: their baseline is the residual's std.)
    const trained = { ...results, rows: results.rows.map((r, i) => ({ ...r, test_rmse: (r.atomref ? (r.residual_std as number) : r.target_std) * (0.1 + 0.001 * i), final_train_loss: 0.02 })) };
    const html2 = await renderReport(trained);
    expect(html2).toContain('Student p');
    expect(html2).not.toContain('did not learn');
  });

  test('a comparison that mixes hardware (a merged sharded study) is flagged in the HTML and the Markdown', async () => {
    expect(await renderReport(results)).not.toContain('mix hardware');
    // One repetition of one cell measured on another machine.
    const rows = results.rows.map((r, i) => (i === 0 ? { ...r, cpu_model: 'Other CPU' } : r));
    const mixed = { ...results, rows };
    const html = await renderReport(mixed);
    expect(html).toContain('1 comparison(s) mix hardware');
    expect(html).toContain(`${rows[0].data} / ${rows[0].model} / B=${rows[0].batch}`);
    expect(studyMarkdown(mixed)).toContain('1 comparison(s) mix hardware');
  });

  test('markdown section with speedup tables', () => {
    const md = studyMarkdown(results);
    expect(md).toContain('**speedup');
    expect(md).toContain('| dynamic |');
  });
});
