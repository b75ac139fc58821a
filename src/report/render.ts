/**
 * `results.json` -> one self-contained HTML file: every chart pre-rendered to
 * SVG in Node (no scripts, no network: it opens offline in any browser), the
 * study's tables, the t-tests and the recommendation.
 */
import type { StudyResults } from '../experiment/results';
import { measuredLabel, type HitRate } from '../experiment/recommend';
import { analyseStudy, overallRecommendations, policyCosts, recommendPolicies } from '../experiment/stats';
import { RANKING_STATISTIC, cellDecisionTable, decisionTable, graphTables, overallTable, recommendationTable, stepTimeTables, ttestTable, type Table } from '../experiment/tables';
import { decideStudy } from '../experiment/decision';
import { studyRate } from '../experiment/price';
import { learningCheckOf, learningVerdict } from '../experiment/learning-check';
import { mixedHardware } from '../experiment/merge';
import { LEARNED_RMSE_FRACTION, learnedCells } from '../experiment/learned';
import { ATOMREF_AUTO_MAX_RATIO } from '../train/atomref';
import { profileCharts, reportCharts, type ChartSpec } from './charts';
import type { ProfileResult } from '../train/profile';
import { renderVegaLiteSvg } from './vega';
import { GnnError } from '../errors';

/** Options of {@link renderReport}. */
export interface ReportOptions {
  /** Steps of the planned run the recommendation prices (default 2,000,000). */
  budgetSteps?: number;
  /** Price per hour of the machine (default: the labelled default rate of the hardware class, see experiment/price.ts). */
  costPerHour?: number;
  /** Currency of `costPerHour` (default USD). */
  currency?: string;
  /** Bootstrap resamples of the rerun agreement (default 1000). */
  resamples?: number;
  /** Hit rate of `recommend` over this grid (from `gnnbatch recommend --grid`). */
  hitRate?: HitRate;
  /** Report title. */
  title?: string;
}

/**
 * Every value rendered into the HTML goes through this (strings, and numbers
 * too: a merged file's fields come from shards, and a field that should be a
 * number may hold any text).
 */
export const esc = (s: unknown): string =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** A number as fixed-point text, or the escaped value itself when it is not a finite number. */
const num = (x: unknown, d: number): string => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : esc(x));

function htmlTable(t: Table, highlight?: (row: string[]) => boolean): string {
  const head = `<tr>${t.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr${highlight?.(r) ? ' class="hl"' : ''}>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<h4>${esc(t.title)}</h4>\n<table>${head}\n${body}</table>`;
}

/**
 * What the runs learned: the atomref setting and, per data source, whether
 * per-element reference values were fitted and the spreads that decided it.
 */
export function atomrefSentence(results: Pick<StudyResults, 'grid' | 'data'>): string {
  const mode = results.grid.atomref ?? 'off';
  // A merged file's fields come from shards: anything that is not a finite number is shown as it is (and escaped by the caller).
  const f = (x: unknown): string => (typeof x !== 'number' || !Number.isFinite(x) ? String(x) : Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(3));
  const per = results.data.map((d) =>
    d.atomref
      ? `${d.data} (${d.target}): ${d.atomref.used ? 'fitted' : 'not fitted'}, residual std ${f(d.atomref.residual_std)} of the target's ${f(d.atomref.target_std)} (${typeof d.atomref.ratio === 'number' ? (100 * d.atomref.ratio).toFixed(1) : String(d.atomref.ratio)}%)`
      : `${d.data} (${d.target}): not fitted`,
  );
  const rule = mode === 'auto'
    ? `atomrefs (per-element reference values fitted on the train split; the network learns the residual) where they leave at most ${(100 * ATOMREF_AUTO_MAX_RATIO).toFixed(0)}% of the target's standard deviation (extensive targets such as U0)`
    : mode === 'on' ? 'atomrefs on every source (--atomref)' : 'no atomrefs (--no-atomref, or a study from before atomrefs)';
  return `Targets: ${rule}. ${per.join('; ')}.`;
}

/** Renders every chart (throws when a spec is invalid). */
export async function renderCharts(charts: readonly ChartSpec[]): Promise<{ chart: ChartSpec; svg: string }[]> {
  const out: { chart: ChartSpec; svg: string }[] = [];
  for (const chart of charts) {
    try {
      out.push({ chart, svg: (await renderVegaLiteSvg(chart.spec)).svg });
    } catch (e) {
      throw new GnnError('ERR_GNN_REPORT', `chart ${chart.id}: ${(e as Error).message}`);
    }
  }
  return out;
}

/** The report as one HTML string (async: vega renders asynchronously). */
export async function renderReport(results: StudyResults, options: ReportOptions = {}): Promise<string> {
  const a = analyseStudy(results.rows);
  const rendered = await renderCharts(reportCharts(results, a));
  const budget = options.budgetSteps ?? 2000000;
  const shapes = (data: string, policy: string, batch: number): number | undefined =>
    results.data.find((d) => d.data === data)?.simulation.find((r) => r.policy === policy && r.batch === batch)?.shapes;
  // Ranked on medians with the repetitions' range: ties are called where the difference is inside the spread.
  const rate = studyRate(results.environment, options.costPerHour, options.currency);
  const recs = recommendPolicies(policyCosts(results.rows, budget, rate.perHour, shapes));
  const decisions = decideStudy(results.rows, { plannedSteps: budget, shapesAt: shapes, resamples: options.resamples });
  const recTable = recommendationTable(recs, budget);
  const overall = overallTable(overallRecommendations(recs));
  const sections: [ChartSpec['section'], string][] = [
    ['data', 'Graph size distributions'],
    ['time', 'Step time'],
    ['speedup', 'Speedup'],
    ['compile', 'Compilations'],
    ['fill', 'Fill'],
    ['learning', 'Learning curves'],
  ];
  const env = results.environment;
  const n = results.rows.length;
  const g = results.grid;
  let html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(options.title ?? 'gnnbatch study report')}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h4{margin:1.2em 0 .4em}
table{border-collapse:collapse;font-size:.85em;margin:.3em 0 1em}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:right}
td:first-child,th:first-child{text-align:left}tr.hl td{background:#fff3cd}figure{margin:1em 0}figcaption{font-size:.9em;color:#555;margin-bottom:.3em}
.meta{color:#555;font-size:.9em}.warn{background:#fdecea;border:1px solid #f5c2c0;padding:.5em}
</style></head><body>
<h1>${esc(options.title ?? 'gnnbatch: static vs dynamic batching, measured on your data')}</h1>
<p class="meta">${n} runs: data ${esc(g.data.join(', '))}; models ${esc(g.models.join(', '))}; policies ${esc(g.policies.join(', '))}; batch sizes ${esc(g.batches.join(', '))};
${esc(g.reps)} repetition(s) of ${esc(g.steps)} steps (seed ${esc(g.base_seed)} + repetition). Machine: ${esc(env.cpu_model)}, ${esc(env.cpu_cores)} cores, ${esc(env.total_memory_gib)} GiB;
node ${esc(env.node_version)}; native ${esc(env.native?.build)}, SIMD ${esc(env.native?.simd)}, OpenMP ${env.native?.openmp === true ? 'on' : 'off'}, ${esc(env.native?.threads)} threads; gnnbatch ${esc(env.gnnbatch_version)}.
Speedup as in the study: per batch size, the slowest policy's mean step time divided by each policy's.</p>
<p class="meta">${esc(atomrefSentence(results))}</p>
`;
  const mixed = mixedHardware(results.rows);
  if (mixed.length > 0) {
    // A merged (sharded) study whose policies of one cell ran on different machines: their times do not compare.
    html += `<p class="warn"><b>Warning: ${mixed.length} comparison(s) mix hardware</b>, so their step times are not comparable: `;
    html += mixed.map((m) => `${esc(m.data)} / ${esc(m.model)} / B=${esc(m.batch)} ran on ${m.machines.map(esc).join(' and ')}`).join('; ') + '.</p>\n';
  }
  html += `<h2>Decision</h2>\n`;
  html += `<p>Per data set and model, the policy to use, why, and what the difference is worth over a planned run of ${esc(budget.toLocaleString('en-US'))} steps (each trains on steps x B graphs: policies are compared per graph, not per step). `;
  html += `Repetitions are paired (every policy's repetition r ran back to back); a policy whose time is within ${esc((100 * decisions.margin).toFixed(0))}% of the fastest (${esc((100 * decisions.confidence).toFixed(0))}% interval) ties with it, and a tie is broken by compilations over the run, then padded work, then the median time. `;
  html += `"Rerun agrees" is the share of ${esc(decisions.resamples)} bootstrap resamples of the repetitions that pick the same policy.</p>\n`;
  html += `<p class="meta">Price: ${esc(rate.source)}.</p>\n`;
  html += htmlTable(decisionTable(decisions, rate)) + '\n' + htmlTable(cellDecisionTable(decisions, rate), (r) => r[3].endsWith('(tie)')) + '\n';
  html += `<h2>Recommendation (per-step ranking)</h2>\n${htmlTable(overall, (r) => r[2].startsWith('tie'))}\n${htmlTable(recTable, (r) => r[3].startsWith('tie'))}\n<p class="meta">${esc(RANKING_STATISTIC)}</p>\n`;
  if (options.hitRate) {
    const h = options.hitRate;
    html += `<p>Prediction without running every policy (<code>gnnbatch recommend</code>: calibrated cost model + policy simulation): the predicted fastest policy was the measured fastest, or tied with it inside the repetitions' spread, in <b>${esc(h.hits)} of ${esc(h.total)}</b> cells (${num(100 * h.rate, 0)}%), and within 5% of the fastest in ${esc(h.within5)} of ${esc(h.total)}.</p>\n`;
    html += htmlTable(
      { title: 'predicted vs measured fastest', header: ['data', 'model', 'B', 'predicted', 'measured', 'hit', 'chosen / fastest'], rows: h.rows.map((r) => [r.data, r.model, String(r.batch), r.predicted, measuredLabel(r), r.hit ? 'yes' : 'no', `${num(r.regret, 3)}x`]) },
      (r) => r[5] === 'no',
    ) + '\n';
  }
  for (const [section, title] of sections) {
    const here = rendered.filter((r) => r.chart.section === section);
    if (!here.length) continue;
    html += `<h2>${esc(title)}</h2>\n`;
    if (section === 'time') for (const t of [...stepTimeTables(a), ...graphTables(a)]) html += htmlTable(t) + '\n';
    for (const r of here) html += `<figure id="${esc(r.chart.id)}"><figcaption>${esc(r.chart.title)}</figcaption>\n${r.svg}${r.chart.caption ? `<p class="meta">${esc(r.chart.caption)}</p>` : ''}</figure>\n`;
  }
  html += `<h2>Learning: do the policies learn differently?</h2>\n`;
  const lc = learningCheckOf(results);
  if (lc) {
    const v = learningVerdict(lc);
    html += `<h4>Learning check</h4>\n<p${v.changed ? ' class="warn"' : ''}>${esc(v.sentence)}</p>\n`;
    html += htmlTable({
      title: 'learning check: paired t-tests on test RMSE over seeds',
      header: ['policy a', 'policy b', 'seeds', 'RMSE a', 'RMSE b', 'a - b (relative)', 'd_z', 'paired p', 'seeds for power 0.8'],
      rows: v.pairs.map((p) => [p.a, p.b, String(p.n), p.mean_a.toPrecision(4), p.mean_b.toPrecision(4), `${(100 * p.relative).toFixed(2)}%`, Number.isFinite(p.effect) ? p.effect.toFixed(2) : 'n/a', Number.isFinite(p.p) ? p.p.toFixed(4) : 'n/a', Number.isFinite(p.seeds_needed) ? String(p.seeds_needed) : '-']),
    }) + '\n';
  } else html += `<p class="meta">No learning check in this file (it runs after the grid of <code>gnnbatch study</code>; <code>--learning-steps 0</code> turns it off).</p>\n`;
  // Significance tests between models that learned nothing compare noise: show them only where the runs trained.
  const cells = learnedCells(results);
  const untrained = cells.filter((c) => !c.learned);
  const trainedKey = new Set(cells.filter((c) => c.learned).map((c) => `${c.data}\u0000${c.model}\u0000${c.batch}`));
  const tests = a.ttests.filter((t) => trainedKey.has(`${t.data}\u0000${t.model}\u0000${t.batch}`));
  if (untrained.length > 0) {
    html += `<p class="warn"><b>The models did not learn in ${esc(untrained.length)} of ${esc(cells.length)} cell(s)</b> (mean test RMSE not below ${LEARNED_RMSE_FRACTION} x the standard deviation of what the network learns, the target's or after atomrefs the residual's, i.e. what predicting the mean scores, or median final train loss not below ${(LEARNED_RMSE_FRACTION ** 2).toFixed(2)} in standardised units), so no significance test is shown for them: `;
    if (untrained.some((c) => c.forces)) html += `(force-study cells: the test force RMSE against the RMS of the train split's force components, what predicting zero forces scores, and the train loss against that of the mean energy and zero forces) `;
    html += untrained
      .map((c) =>
        c.forces
          ? `${esc(c.data)} / ${esc(c.model)} / B=${esc(c.batch)}: force RMSE ${num(c.rmse, 4)} vs force RMS ${num(c.std, 4)}, train loss ${num(c.trainLoss, 3)} of the zero-force loss`
          : `${esc(c.data)} / ${esc(c.model)} / B=${esc(c.batch)}: RMSE ${num(c.rmse, 4)} vs ${c.atomref ? 'residual ' : ''}std ${num(c.std, 4)}, train loss ${num(c.trainLoss, 3)}`,
      )
      .join('; ');
    html += `. Train longer (<code>--steps</code>, <code>--full</code>) to compare how the policies learn.</p>\n`;
  }
  if (tests.length > 0) {
    html += `<p>Two-sample t-tests (two-sided) on test RMSE between every pair of policies, per data set, model and batch size where the models learned; Student (pooled variance) and Welch; highlighted rows have p &lt; ${a.alpha}.</p>\n`;
    html += htmlTable(ttestTable(tests, a.alpha), (r) => r[9] === '*') + '\n';
  }
  html += '</body></html>\n';
  return html;
}

/**
 * Per-kernel profiles (one per policy, say) as one self-contained HTML file:
 * the roofline, the stacked per-kernel time with its padding part, and the
 * per-kernel table of each run.
 */
export async function renderProfileReport(profiles: readonly ProfileResult[], title = 'gnnbatch kernel profile'): Promise<string> {
  const rendered = await renderCharts(profileCharts(profiles));
  const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  let html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h4{margin:1.2em 0 .4em}
table{border-collapse:collapse;font-size:.85em;margin:.3em 0 1em}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:right}
td:first-child,th:first-child{text-align:left}figure{margin:1em 0}figcaption{font-size:.9em;color:#555;margin-bottom:.3em}.meta{color:#555;font-size:.9em}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="meta">Bytes moved count each operand read once and the output written once (gathered rows once per gathering row, indices 4 bytes); GEMM flops are 2MNK (the native flop counter's); padding time is each kernel's time times its padded share of rows.</p>
`;
  html += `<h2>Summary</h2>\n` + htmlTable({
    title: 'runs',
    header: ['run', 'steps', 'threads', 'step ms (median)', 'padding ms/step', 'padding share', 'edge fill', 'GEMM peak GFLOP/s', 'stream GB/s', 'GFLOP/step'],
    rows: profiles.map((p) => [`${p.model} / ${p.policy} / B=${p.batch}`, String(p.steps), String(p.threads), f(p.step_ms_median, 2), f(p.padding_ms_per_step, 2), pct(p.padding_share_of_step), f(p.edge_fill, 3), f(p.limits.gemm_gflops, 1), f(p.limits.stream_gbps, 1), f(p.counter_gflop_per_step, 3)]),
  }) + '\n';
  html += `<h2>Roofline and time per kernel</h2>\n`;
  for (const r of rendered) html += `<figure id="${esc(r.chart.id)}"><figcaption>${esc(r.chart.title)}</figcaption>\n${r.svg}</figure>\n`;
  html += `<h2>Kernels</h2>\n`;
  for (const p of profiles) {
    html += htmlTable({
      title: `${p.model} / ${p.policy} / B=${p.batch}`,
      header: ['kernel', 'calls', 'ms/step', 'share', 'GFLOP/s', 'GB/s', '% peak', '% bw', 'bound', 'padding', 'padding ms/step'],
      rows: [...p.kernels].sort((a, b) => b.total_ms - a.total_ms).map((k) => [k.kernel, String(k.calls), f(k.ms_per_step, 3), pct(k.share), f(k.gflops, 1), f(k.gbps, 1), k.where === 'native' ? pct(k.peak_fraction) : '-', k.where === 'native' ? pct(k.bandwidth_fraction) : '-', k.bound === 'none' ? '-' : k.bound, pct(k.padding_share), f(k.padding_ms_per_step, 3)]),
    }) + '\n';
  }
  html += '</body></html>\n';
  return html;
}
