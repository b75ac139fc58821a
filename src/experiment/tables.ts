/**
 * The study's tables as plain values (header + rows of strings), rendered as
 * aligned text for the terminal or as Markdown for documentation. One table
 * per (data, model): rows are policies, columns are batch sizes.
 */
import type { CellRecommendation, CostRow, OverallRecommendation, PolicyCost, PolicySummary, StudyAnalysis, TTestRow } from './stats';
import type { StudyDecisions } from './decision';
import { cellSavings, formatHours, formatMoney, type PriceRate } from './price';

/** A titled table of strings. */
export interface Table {
  title: string;
  header: string[];
  rows: string[][];
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const hoursRange = (lo: number, hi: number): string => `[${fmt(lo, 2)}-${fmt(hi, 2)}]`;

function pivot(title: string, summaries: readonly PolicySummary[], cell: (s: PolicySummary) => string): Table[] {
  const tables: Table[] = [];
  const pairs = [...new Set(summaries.map((s) => `${s.data}\u0000${s.model}`))];
  for (const pair of pairs) {
    const [data, model] = pair.split('\u0000');
    const here = summaries.filter((s) => s.data === data && s.model === model);
    const batches = [...new Set(here.map((s) => s.batch))].sort((a, b) => a - b);
    const policies = [...new Set(here.map((s) => s.policy))];
    tables.push({
      title: `${title}: ${data}, ${model}`,
      header: ['policy', ...batches.map((b) => `B=${b}`)],
      rows: policies.map((p) => [p, ...batches.map((b) => {
        const s = here.find((x) => x.policy === p && x.batch === b);
        return s ? cell(s) : '-';
      })]),
    });
  }
  return tables;
}

/** Step time (mean over reps of the per-run mean, ± sd; median in brackets), speedup, compilations, fills. */
export function studyTables(a: StudyAnalysis): Table[] {
  const s = a.summaries;
  return [
    ...pivot('mean step time ms (± sd over reps) [median]', s, (x) => `${fmt(x.step_ms_mean, 1)}${Number.isFinite(x.step_ms_sd) ? ` ±${fmt(x.step_ms_sd, 1)}` : ''} [${fmt(x.step_ms_median, 1)}]`),
    ...pivot('speedup (slowest mean / mean) [on medians]', s, (x) => `${fmt(x.speedup)}x [${fmt(x.speedup_median)}x]`),
    ...graphTables(a),
    ...pivot('compilations (plans built) / ms total', s, (x) => `${fmt(x.compile_count, 1)} / ${fmt(x.compile_ms_total, 0)}`),
    ...pivot('fill nodes / edges / graphs (%)', s, (x) => `${fmt(100 * x.node_fill, 0)}/${fmt(100 * x.edge_fill, 0)}/${fmt(100 * x.graph_fill, 0)}`),
  ];
}

/** The speedup tables alone (what docs/study.md shows): per step, and per graph beside it. */
export function speedupTables(a: StudyAnalysis): Table[] {
  return pivot('speedup (slowest mean step time / each policy\'s) [per graph: slowest ms per 1,000 graphs / each\'s]', a.summaries, (x) => `${fmt(x.speedup)}x [${fmt(x.speedup_per_graph)}x]`);
}

/** Throughput per graph: graphs/s, ms per 1,000 graphs and the speedup per graph (steady state: median step times). */
export function graphTables(a: StudyAnalysis): Table[] {
  return pivot('graphs/s (steady state) [ms per 1,000 graphs] speedup per graph', a.summaries, (x) => `${fmt(x.graphs_per_s, 0)} [${fmt(x.ms_per_1000_graphs, 1)}] ${fmt(x.speedup_per_graph)}x`);
}

const pctOrNa = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : 'n/a (1 rep)');
const savedText = (s: { hours: number; money: number } | null, rate: PriceRate): string =>
  s ? `${formatHours(s.hours)} / ${formatMoney(s.money, rate.currency)}` : '-';

/**
 * The decision per (data, model): the pick, its rerun agreement, graphs/s
 * and the savings of the planned run at each batch size (ranges over batch
 * sizes), and the reason.
 */
export function decisionTable(d: StudyDecisions, rate: PriceRate): Table {
  const range = (xs: number[], f: (x: number) => string): string => {
    const ys = xs.filter((x) => Number.isFinite(x));
    if (!ys.length) return 'n/a';
    const lo = Math.min(...ys);
    const hi = Math.max(...ys);
    return lo === hi ? f(lo) : `${f(lo)} to ${f(hi)}`;
  };
  return {
    title: `decision per data set and model (planned run: ${d.planned_steps.toLocaleString('en-US')} steps x B graphs; rate ${formatMoney(rate.perHour, rate.currency)}/h${rate.given ? '' : ', default'})`,
    header: ['data', 'model', 'pick', 'rerun agrees', 'graphs/s', 'saves vs slowest', 'saves vs runner-up', 'why'],
    rows: d.pairs.map((p) => {
      const here = p.cells.map((c) => ({ c, s: cellSavings(c, rate), ev: c.policies.find((x) => x.policy === p.pick) }));
      return [
        p.data,
        p.model,
        p.pick,
        pctOrNa(p.agreement),
        range(here.map((h) => h.ev?.graphs_per_s ?? NaN), (x) => x.toFixed(0)),
        range(here.filter((h) => h.c.pick === p.pick).map((h) => h.s.vsSlowest?.money ?? NaN), (x) => formatMoney(x, rate.currency)),
        range(here.filter((h) => h.c.pick === p.pick).map((h) => h.s.vsRunnerUp?.money ?? NaN), (x) => formatMoney(x, rate.currency)),
        p.reason,
      ];
    }),
  };
}

/** The decision per (data, model, B): pick, why, agreement, throughput per graph, and the price of the difference. */
export function cellDecisionTable(d: StudyDecisions, rate: PriceRate): Table {
  return {
    title: `decision per batch size (tie margin ${(100 * d.margin).toFixed(0)}%, ${(100 * d.confidence).toFixed(0)}% intervals on paired repetitions; saving over ${d.planned_steps.toLocaleString('en-US')} steps, hours / money)`,
    header: ['data', 'model', 'B', 'pick', 'reps', 'rerun agrees', 'graphs/s', 'ms/1000 graphs', 'per-graph speedup vs slowest', 'saves vs slowest', 'saves vs runner-up', 'why'],
    rows: d.cells.map((c) => {
      const ev = c.policies.find((p) => p.policy === c.pick)!;
      const slowest = c.policies[c.policies.length - 1];
      const s = cellSavings(c, rate);
      return [
        c.data, c.model, String(c.batch), c.tie ? `${c.pick} (tie)` : c.pick, String(c.reps), pctOrNa(c.agreement),
        fmt(ev.graphs_per_s, 0), fmt(ev.ms_per_1000_graphs, 1), `${fmt(slowest.ms_per_1000_graphs / ev.ms_per_1000_graphs)}x`,
        s.vsSlowest ? `${savedText(s.vsSlowest, rate)} (${s.vsSlowest.against})` : '-',
        s.vsRunnerUp ? `${savedText(s.vsRunnerUp, rate)} (${s.vsRunnerUp.against})` : '-',
        c.reason,
      ];
    }),
  };
}

/** Mean step time tables alone (± the sample sd over repetitions, as the terminal's tables). */
export function stepTimeTables(a: StudyAnalysis): Table[] {
  return pivot('mean step time ms (incl. compilation; ± sd over reps) [median]', a.summaries, (x) => `${fmt(x.step_ms_mean, 1)}${Number.isFinite(x.step_ms_sd) ? ` ±${fmt(x.step_ms_sd, 1)}` : ''} [${fmt(x.step_ms_median, 1)}]`);
}

/** How the recommendation ranks, in words (the report and the terminal print it under the table). */
export const RANKING_STATISTIC =
  'Ranked on the median over repetitions of each run\'s predicted time: planned steps x the run\'s median step time (steady state) + expected compilations x its time per compilation. ' +
  'Medians, because a shared machine\'s stalls move means: a few slow steps do not move a run\'s median, one slow repetition does not move the median over repetitions. ' +
  '[min-max] is the range over repetitions; a policy whose range overlaps the fastest\'s is a tie (the difference is inside the repetitions\' spread).';

/** The recommendation per (data, model, batch): the fastest policy, or a tie listing every tied policy, with the spread. */
export function recommendationTable(recs: readonly CellRecommendation[], budgetSteps: number): Table {
  const priced = recs.some((r) => r.ranked.some((c) => Number.isFinite(c.price)));
  return {
    title: `recommended policy for a ${budgetSteps.toLocaleString('en-US')}-step run, per batch size`,
    header: ['data', 'model', 'B', 'policy', 'hours [min-max]', 'compilations', ...(priced ? ['price'] : []), 'next (slower by)', 'vs slowest'],
    rows: recs.map((r) => {
      const best = r.ranked[0];
      const tied = r.ranked.filter((c) => r.tied.includes(c.policy));
      return [
        r.data,
        r.model,
        String(r.batch),
        r.tie ? `tie: ${r.tied.join(', ')}` : best.policy,
        tied.map((c) => `${r.tie ? `${c.policy} ` : ''}${fmt(c.hours, 2)} ${hoursRange(c.hours_min, c.hours_max)}`).join('; '),
        tied.map((c) => fmt(c.compiles, 0)).join('; '),
        ...(priced ? [tied.map((c) => fmt(c.price, 2)).join('; ')] : []),
        r.next ? `${r.next.policy} (+${fmt(100 * r.next_slower, 1)}%)` : '-',
        `${fmt(r.vs_slowest, 2)}x faster`,
      ];
    }),
  };
}

/** One recommendation per (data, model) across batch sizes. */
export function overallTable(overall: readonly OverallRecommendation[]): Table {
  return {
    title: 'overall recommendation per data set and model, across batch sizes (fastest or tied at the most batch sizes; then the lowest geometric mean of time / the fastest\'s)',
    header: ['data', 'model', 'policy', 'fastest or tied at', 'geomean vs fastest', 'runner-up'],
    rows: overall.map((o) => {
      const top = o.standing.filter((s) => o.tied.includes(s.policy));
      const runner = o.standing.find((s) => !o.tied.includes(s.policy));
      return [
        o.data,
        o.model,
        o.tie ? `tie: ${o.tied.join(', ')}` : o.tied[0],
        top.map((s) => `${o.tie ? `${s.policy} ` : ''}${s.wins} of ${o.batches.length} B`).join('; '),
        top.map((s) => `${fmt(s.geomean_vs_best, 3)}x`).join('; '),
        runner ? `${runner.policy} (${runner.wins} of ${o.batches.length}, ${fmt(runner.geomean_vs_best, 3)}x)` : '-',
      ];
    }),
  };
}

/** The t-test table (one row per pair of policies per data, model, batch); `onlySignificant` keeps flagged rows. */
export function ttestTable(rows: readonly TTestRow[], alpha: number, onlySignificant = false): Table {
  const pick = onlySignificant ? rows.filter((r) => r.significant) : rows;
  return {
    title: `test RMSE t-tests (two-sided; * = p < ${alpha})${pick.some((r) => r.forces) ? '; force studies: test force RMSE' : ''}`,
    header: ['data', 'model', 'B', 'policy a', 'policy b', 'RMSE a', 'RMSE b', 'Student p', 'Welch p', ''],
    rows: pick.map((r) => [r.data, r.model, String(r.batch), r.a, r.b, fmt(r.mean_a, 4), fmt(r.mean_b, 4), fmtP(r.student.p), fmtP(r.welch.p), r.significant ? '*' : '']),
  };
}

/** Predicted time (and price) of a long run per policy. */
export function costTables(costs: readonly CostRow[]): Table[] {
  const tables: Table[] = [];
  const groups = [...new Set(costs.map((c) => `${c.data}\u0000${c.model}\u0000${c.batch}`))];
  for (const g of groups) {
    const [data, model, batch] = g.split('\u0000');
    const here = costs.filter((c) => c.data === data && c.model === model && String(c.batch) === batch).sort((x, y) => x.hours - y.hours);
    const priced = here.some((c) => Number.isFinite(c.price));
    tables.push({
      title: `predicted cost of ${here[0].steps} steps: ${data}, ${model}, B=${batch}`,
      header: ['policy', 'hours', 'compilations', ...(priced ? ['price'] : [])],
      // Rows of policyCosts carry the range over repetitions.
      rows: here.map((c) => {
        const r = c as CostRow & Partial<PolicyCost>;
        const range = r.hours_min !== undefined && r.hours_max !== undefined ? ` ${hoursRange(r.hours_min, r.hours_max)}` : '';
        return [c.policy, `${fmt(c.hours, 2)}${range}`, fmt(c.compiles, 0), ...(priced ? [fmt(c.price, 2)] : [])];
      }),
    });
  }
  return tables;
}

function fmtP(p: number): string {
  if (!Number.isFinite(p)) return 'n/a';
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}

/** Aligned plain text (title line, header, rule, rows). */
export function tableToText(t: Table): string {
  const w = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
  return [t.title, line(t.header), w.map((x) => '-'.repeat(x)).join('  '), ...t.rows.map(line)].join('\n') + '\n';
}

/** GitHub Markdown (a bold title line, then the table). */
export function tableToMarkdown(t: Table): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const line = (r: string[]): string => `| ${r.map(esc).join(' | ')} |`;
  return [`**${t.title}**`, '', line(t.header), `|${t.header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...t.rows.map(line)].join('\n') + '\n';
}
